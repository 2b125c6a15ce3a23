"""Issue 30: a notebook a learner can read. Its prose stays within a word budget, its code in short lines
with one statement each. Checked statically on the stored notebooks, without running anything."""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))

MAX_PROSE_WORDS = 2500
MAX_LINE_CHARACTERS = 100
# Notebooks whose issue-30 edit is not landed yet (05-09: their first-pass patches wait in the issue's
# notes for a re-execution). Each xfail is strict: it fails once the notebook complies, and the mark must
# then be removed.
OVER_WORD_BUDGET: set[str] = set()
WITH_LONG_LINES: set[str] = set()
WITH_SEMICOLONS: set[str] = set()

FENCED_CODE = re.compile(r"^```.*?^```", re.S | re.M)
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"\$[^$\n]+\$")
CODE_SPAN = re.compile(r"`[^`\n]*`")
HTML_OR_BADGE_LINE = re.compile(r"^\s*(<|\[!\[)")
WORD = re.compile(r"\S*[A-Za-z0-9]\S*")


def prose_words(markdown: str) -> int:
    """Words of prose in one markdown cell: fenced code, $$display$$ and $inline$ math, `code spans` and
    lines that are HTML or a badge are removed first; a word is a whitespace-separated token holding at least
    one letter or digit (so list bullets, table rules and lone punctuation do not count)."""
    text = FENCED_CODE.sub(" ", markdown)
    text = DISPLAY_MATH.sub(" ", text)
    text = INLINE_MATH.sub(" ", text)
    text = CODE_SPAN.sub(" ", text)
    lines = [line for line in text.splitlines() if not HTML_OR_BADGE_LINE.match(line)]
    return len(WORD.findall("\n".join(lines)))


def notebook_prose_words(nb) -> int:
    return sum(prose_words(cell.source) for cell in nb.cells if cell.cell_type == "markdown")


def python_source(cell_source: str) -> str:
    """The cell as Python: IPython's `!shell` and `%magic` lines blanked (tokenize cannot read them)."""
    return "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in cell_source.splitlines())


def statement_semicolons(cell_source: str) -> list[int]:
    """Line numbers where `;` separates two statements (a `;` followed on its line by more code)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(python_source(cell_source) + "\n").readline))
    lines = []
    for index, token in enumerate(tokens):
        if token.type == tokenize.OP and token.string == ";":
            rest = [t for t in tokens[index + 1:] if t.start[0] == token.start[0]]
            if any(t.type not in (tokenize.COMMENT, tokenize.NEWLINE, tokenize.NL) for t in rest):
                lines.append(token.start[0])
    return sorted(set(lines))


def marked(names: set[str], reason: str):
    return [pytest.param(p, id=p.name, marks=pytest.mark.xfail(strict=True, reason=reason))
            if p.name in names else pytest.param(p, id=p.name) for p in NOTEBOOKS]


def test_prose_words_counts_words_not_formulas_code_or_badges():
    cell = ("# A title\n[![Open In Colab](https://x/badge.svg)](https://y)\n<div>html here</div>\n"
            "The noise $\\epsilon \\sim N(0, I)$ is `torch.randn` drawn.\n- one\n\n$$x_t = a x_0$$\n"
            "```python\nprint('code words')\n```\n| a | b |\n|---|---|\n")
    assert prose_words(cell) == 2 + 4 + 1 + 2  # title, sentence, bullet, table


def test_statement_semicolons_finds_only_semicolons_between_statements():
    assert statement_semicolons("a = 1; b = 2\nplt.show();  # no output\ns = ';'\n!echo a; b") == [1]


@pytest.mark.parametrize("path", marked(OVER_WORD_BUDGET, "issue 30: prose still over 2,500 words"))
def test_prose_is_at_most_2500_words(path):
    words = notebook_prose_words(nbformat.read(path, as_version=4))
    assert words <= MAX_PROSE_WORDS, f"{path.name}: {words} words of prose (at most {MAX_PROSE_WORDS})"


@pytest.mark.parametrize("path", marked(WITH_LONG_LINES, "issue 30: code lines still over 100 characters"))
def test_code_lines_are_at_most_100_characters(path):
    nb = nbformat.read(path, as_version=4)
    # cell 1 is the Colab bootstrap, verbatim (tests/test_notebook_conventions.py); its clone line is shell
    long = [(index, len(line)) for index, cell in enumerate(nb.cells) if cell.cell_type == "code" and index != 1
            for line in cell.source.splitlines() if len(line) > MAX_LINE_CHARACTERS]
    assert not long, f"{path.name}: code lines over {MAX_LINE_CHARACTERS} characters (cell, length): {long}"


@pytest.mark.parametrize("path", marked(WITH_SEMICOLONS, "issue 30: `;` still joins statements"))
def test_one_statement_per_line(path):
    nb = nbformat.read(path, as_version=4)
    joined = [(index, line) for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for line in statement_semicolons(cell.source)]
    assert not joined, f"{path.name}: `;` joins statements (cell, line): {joined}"
