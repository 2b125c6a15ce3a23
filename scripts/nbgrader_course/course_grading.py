"""nbgrader preprocessors of the diffusion course, loaded by this folder's ``nbgrader_config.py``.

Each one fixes a place where nbgrader's stock pipeline misleads an instructor or a student
(docs/INSTRUCTORS.md, "What the course's nbgrader configuration changes"):

- :class:`RestoreHiddenTests` (autograde): nbgrader's gradebook keeps each test cell *with* its hidden
  tests and their checksum, while the student version has them removed, so stock ``OverwriteCells``
  warns "checksum ... has changed" for every test cell of every submission, tampered or not. This
  subclass puts the hidden tests back silently when the submitted cell is exactly the released one;
  a cell the student did change is still reported and overwritten by ``OverwriteCells``.
- :class:`HideHiddenTests` (feedback): removes the hidden tests from the feedback and shortens the
  error of a test cell to its last line (``AssertionError: ...``), so the traceback's code lines do not
  show them either.
- :class:`MathToMathML` (feedback): renders the markdown's ``$...$`` and ``$$...$$`` as MathML, which
  browsers draw themselves; the feedback then needs no MathJax from a CDN and works offline.
- :class:`DescribeImages` (feedback): gives each figure an alternative text (nbconvert warns, and
  screen readers say nothing, when an image has none).
"""
from __future__ import annotations

import copy
import re

from latex2mathml.converter import convert as latex_to_mathml
from nbgrader import utils
from nbgrader.api import MissingEntry
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells
from traitlets import Bool

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
# Code (fenced blocks and inline spans) is kept as it is; math is $$...$$ (display) or $...$ (inline).
CODE_OR_MATH = re.compile(r"(```.*?```|`[^`\n]*`)|\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$",
                          re.DOTALL)


def hidden_test_clearer(config) -> ClearHiddenTests:
    """nbgrader's ClearHiddenTests with the delimiters of ``config`` (and none of its other sections,
    which nbgrader's preprocessors would warn about)."""
    section = config.ClearHiddenTests
    delimiters = {name: section[name] for name in ("begin_test_delimeter", "end_test_delimeter") if name in section}
    return ClearHiddenTests(**delimiters)


def released_source(cell, config) -> str:
    """The source of test cell ``cell`` as the student version has it: hidden-test region removed."""
    released = copy.deepcopy(cell)
    hidden_test_clearer(config)._remove_hidden_test_region(released)
    return released.source


class RestoreHiddenTests(OverwriteCells):
    """``OverwriteCells`` that restores an untouched test cell's hidden tests without a warning."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and utils.is_grade(cell):
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None  # OverwriteCells reports it
            if source_cell is not None and cell.source == released_source(source_cell, self.config):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)


class FeedbackPreprocessor(Preprocessor):
    """An nbconvert preprocessor that is on when listed (nbconvert's base class is off by default)."""

    enabled = Bool(True).tag(config=True)


class HideHiddenTests(FeedbackPreprocessor):
    """Remove hidden tests from the feedback; a test cell's error shows only its last line."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        if hidden_test_clearer(self.config)._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


def markdown_with_mathml(source: str) -> str:
    """``source`` with every ``$...$`` / ``$$...$$`` outside code replaced by MathML (inline / block).

    A formula that latex2mathml cannot convert is left as TeX in a code span, readable as it is.
    """
    def replace(match: re.Match) -> str:
        code, display, inline = match.groups()
        if code is not None:
            return code
        tex = display if display is not None else inline
        try:
            mathml = latex_to_mathml(tex.strip(), display="block" if display is not None else "inline")
        except Exception:  # noqa: BLE001 - latex2mathml raises many kinds of errors on TeX it lacks
            return f"`{tex}`"
        return mathml.replace("\n", "")

    return CODE_OR_MATH.sub(replace, source)


class MathToMathML(FeedbackPreprocessor):
    """Markdown math rendered as MathML when the feedback is generated (no MathJax, no network)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            cell.source = markdown_with_mathml(cell.source)
        return cell, resources


class DescribeImages(FeedbackPreprocessor):
    """An alternative text for every figure that has none: which cell drew it."""

    def preprocess_cell(self, cell, resources, cell_index):
        for number, output in enumerate(cell.get("outputs", []), start=1):
            for mime in IMAGE_TYPES:
                if mime in output.get("data", {}):
                    meta = output.setdefault("metadata", {}).setdefault(mime, {})
                    meta.setdefault("alt", f"figure {number} drawn by code cell {cell_index}")
        return cell, resources
