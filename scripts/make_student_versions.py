#!/usr/bin/env python
"""Make the student versions of the course notebooks with nbgrader: solutions stubbed, hidden tests removed.

    python scripts/make_student_versions.py                      # every notebooks/NN_*.ipynb -> student/
    python scripts/make_student_versions.py notebooks/01_noise_to_image.ipynb --output /tmp/student

What it does, per notebook ``notebooks/NN_name.ipynb`` (the instructor version, with solutions):

1. copies it into an nbgrader course directory (default ``build/nbgrader``) as the assignment
   ``NN_name``: ``source/NN_name/NN_name.ipynb``, adding nbgrader's cell metadata on the way. The
   course marks exercises only with nbgrader's text markers (docs/CONVENTIONS.md), so every code cell
   with ``### BEGIN SOLUTION`` becomes an *autograded answer* cell and every code cell with
   ``### BEGIN HIDDEN TESTS`` an *autograder tests* cell worth one point (read-only for students). With
   that metadata the full nbgrader pipeline works (``autograde`` restores the hidden tests from the
   gradebook), not just ``generate_assignment``. Cells that already carry nbgrader metadata keep it.
2. runs ``nbgrader generate_assignment NN_name --force`` in the course directory (with the
   ``nbgrader_config.py`` this script copies there from ``scripts/nbgrader_course/``, with the
   preprocessors and feedback template it loads, and the gradebook ``gradebook.db`` that
   ``autograde`` needs later): solutions become ``# YOUR CODE HERE`` / ``raise NotImplementedError()``,
   hidden tests are removed, outputs are cleared, test cells get checksums;
3. checks the result (no solution or hidden-test marker is left, no outputs) and copies
   ``release/NN_name/NN_name.ipynb`` to ``student/NN_name.ipynb`` (atomically).

The Colab badge of the instructor version opens ``notebooks/NN_name.ipynb`` on GitHub, which has the
solutions. In the student version it is replaced by a note that says how to open the notebook in
Colab (upload it: its first code cell clones and installs the course, so ``course_utils`` and the
bundled data work from any folder), or, with ``--colab-url-base URL``, by a badge that opens
``URL/NN_name.ipynb`` (for instance the ``student/`` folder of a branch where you publish them).

See docs/INSTRUCTORS.md for releasing, collecting and autograding.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat

from course_utils.checkpoints import atomic_write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
DEFAULT_COURSE_DIR = ROOT / "build" / "nbgrader"
DEFAULT_OUTPUT = ROOT / "student"
# nbgrader_config.py, the preprocessors it loads and the feedback template: copied into the course directory
NBGRADER_FILES = Path(__file__).resolve().parent / "nbgrader_course"

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
COLAB_BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/[^)\s]+\)")
COLAB_NOTE = ("*Colab: upload this notebook (File → Upload notebook) and run it from the top; its first code "
              "cell fetches and installs the course.*")



def course_notebooks() -> list[Path]:
    """All ``notebooks/NN_name.ipynb``, in course order."""
    return sorted(path for path in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.match(path.name))


def has_solution(source: str) -> bool:
    return BEGIN_SOLUTION in source


def has_hidden_tests(source: str) -> bool:
    return BEGIN_HIDDEN in source


def add_nbgrader_metadata(nb: nbformat.NotebookNode, points: int = 1) -> tuple[int, int]:
    """Mark solution cells and hidden-test cells for nbgrader, in place; returns (solutions, tests).

    Solution cell: ``{"solution": true, "grade": false, "locked": false}``; test cell:
    ``{"grade": true, "solution": false, "locked": true, "points": points}`` (nbgrader schema 3).
    The grade id is the cell id (unique within the notebook, stable across rebuilds).
    """
    solutions = tests = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        is_solution, is_test = has_solution(cell.source), has_hidden_tests(cell.source)
        if is_solution and is_test:
            raise ValueError(f"cell {index} has both a solution region and hidden tests; put the tests in the next cell")
        if "nbgrader" in cell.metadata:
            meta = cell.metadata["nbgrader"]
            solutions += bool(meta.get("solution"))
            tests += bool(meta.get("grade"))
            continue
        grade_id = cell.get("id") or f"cell-{index:02d}"
        if is_solution:
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": f"{grade_id}-solution", "locked": False,
                                         "schema_version": 3, "solution": True, "task": False}
            solutions += 1
        elif is_test:
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"{grade_id}-tests", "locked": True,
                                         "points": points, "schema_version": 3, "solution": False, "task": False}
            tests += 1
    return solutions, tests


def replace_colab_badge(nb: nbformat.NotebookNode, filename: str, colab_url_base: str | None) -> None:
    """Point the title cell's Colab badge at the student version, or replace it by a note."""
    title = nb.cells[0]
    if title.cell_type != "markdown":
        return
    if colab_url_base:
        url = f"{colab_url_base.rstrip('/')}/{filename}"
        badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
    else:
        badge = COLAB_NOTE
    title.source = COLAB_BADGE.sub(lambda _match: badge, title.source)


def leftover_markers(nb: nbformat.NotebookNode) -> list[str]:
    """Solution or hidden-test markers (or outputs) still in a notebook that should have none."""
    problems = []
    for index, cell in enumerate(nb.cells):
        for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
            if marker in cell.source:
                problems.append(f"cell {index} still contains {marker!r}")
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"cell {index} still has outputs")
    return problems


def write_atomically(nb: nbformat.NotebookNode, path: Path) -> None:
    atomic_write(path, lambda temporary: nbformat.write(nb, str(temporary)))


def nbgrader_api(course_dir: Path):
    """nbgrader's Python API (``nbgrader.apps.NbGraderAPI``) for ``course_dir``, configured from the
    ``nbgrader_config.py`` there: the same configuration the ``nbgrader`` command uses in that folder."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    config.CourseDirectory.root = str(course_dir)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def generate(paths: list[Path], course_dir: Path, output: Path, colab_url_base: str | None = None,
             quiet: bool = False) -> list[Path]:
    """Make student versions of ``paths`` in ``output`` via the nbgrader course directory ``course_dir``."""
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(NBGRADER_FILES, course_dir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    api = nbgrader_api(course_dir)
    written = []
    for path in paths:
        assignment, filename = path.stem, path.name
        nb = nbformat.read(path, as_version=4)
        solutions, tests = add_nbgrader_metadata(nb)
        if not solutions:
            print(f"{filename}: no exercises (no {BEGIN_SOLUTION!r}); the student version is a copy without outputs",
                  file=sys.stderr)
        replace_colab_badge(nb, filename, colab_url_base)
        source_dir = course_dir / "source" / assignment
        if source_dir.exists():
            shutil.rmtree(source_dir)
        write_atomically(nb, source_dir / filename)

        # the same as `nbgrader generate_assignment NN_name --force --create` run in course_dir
        result = api.generate_assignment(assignment, force=True, create=True)
        released = course_dir / "release" / assignment / filename
        if not result["success"] or not released.is_file():
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                               f"{result.get('error') or ''}\n{result.get('log') or ''}")
        student = nbformat.read(released, as_version=4)
        problems = leftover_markers(student)
        if problems:
            raise RuntimeError(f"{released}: the student version is not clean: {problems}")
        target = output / filename
        write_atomically(student, target)
        written.append(target)
        if not quiet:
            print(f"{filename}: {solutions} exercise(s), {tests} hidden-test cell(s) -> {target}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="instructor notebooks (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--course-dir", type=Path, default=DEFAULT_COURSE_DIR,
                        help="nbgrader course directory to build in (default: build/nbgrader)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the student notebooks go (default: student/)")
    parser.add_argument("--colab-url-base", default=None,
                        help="Colab URL of the folder where you publish the student notebooks, e.g. "
                             "https://colab.research.google.com/github/ORG/REPO/blob/BRANCH/student")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.notebooks] or course_notebooks()
    if not paths:
        parser.error(f"no notebooks named NN_name.ipynb in {NOTEBOOK_DIR}")
    for path in paths:
        if not path.is_file() or not NOTEBOOK_NAME.match(path.name):
            parser.error(f"{path} is not a course notebook notebooks/NN_name.ipynb")
    if args.colab_url_base and not args.colab_url_base.startswith("https://colab.research.google.com/"):
        parser.error(f"--colab-url-base must start with https://colab.research.google.com/, got {args.colab_url_base!r}")
    try:
        generate(paths, args.course_dir.resolve(), args.output.resolve(), args.colab_url_base, args.quiet)
    except (RuntimeError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
