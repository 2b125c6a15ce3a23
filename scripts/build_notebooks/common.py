"""Shared pieces of the notebook generators (``nb01.py``, ``nb02.py``, ...).

Each generator writes ``notebooks/NN_name.ipynb`` *without outputs*; the stored outputs come from
executing it with its defaults afterwards (docs/CONVENTIONS.md):

    python scripts/build_notebooks/nb01.py
    python scripts/execute_notebooks.py notebooks/01_noise_to_image.ipynb

Cell ids are derived from the notebook number and the cell position, so regenerating a notebook
gives a clean diff.
"""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat import v4

from course_utils.checkpoints import atomic_write

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
REPOSITORY = "diffusion-course/diffusion-course"

BOOTSTRAP = """\
# On Colab, fetch the course and install it; locally and on Binder it is installed already.
import sys
if "google.colab" in sys.modules:
    !git clone --depth 1 https://github.com/diffusion-course/diffusion-course /content/diffusion-course
    !pip install --quiet -e /content/diffusion-course
    sys.path.insert(0, "/content/diffusion-course")"""


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell; ``text`` may be indented (it is dedented) and start with a newline."""
    return v4.new_markdown_cell(dedent(text).strip("\n"))


def code(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    """A code cell; ``tags`` go to ``metadata.tags`` (e.g. ``["parameters"]`` for papermill)."""
    cell = v4.new_code_cell(dedent(text).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def quick_check(notebook_number: int) -> list[nbformat.NotebookNode]:
    """The review-quiz section that closes every notebook: its questions are ``COURSE_QUIZ[notebook_number]``."""
    return [
        md("""
        ## Quick check

        Pick an answer and press *Check*. Without a live kernel (on GitHub, say) the questions are shown
        with their answers folded away.
        """),
        code(f"""
        from course_utils.homework import review

        review({notebook_number})  # the questions: course_utils.homework.COURSE_QUIZ[{notebook_number}]
        """),
    ]


def colab_badge(filename: str) -> str:
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{filename})"
    )


def notebook(filename: str, title_cell: str, parameters: str, cells: list) -> nbformat.NotebookNode:
    """Assemble a notebook in the course layout: title, Colab bootstrap, parameters, then ``cells``.

    ``title_cell`` may contain ``{badge}``, replaced by the Colab badge for ``filename``.
    """
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        md(dedent(title_cell).replace("{badge}", colab_badge(filename))),
        code(BOOTSTRAP),
        code(parameters, tags=["parameters"]),
        *cells,
    ]
    prefix = filename.split("_")[0]
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"nb{prefix}-{index:02d}"
    nbformat.validate(nb)
    return nb


def write(nb: nbformat.NotebookNode, filename: str) -> Path:
    """Write ``notebooks/filename`` atomically (``course_utils.checkpoints.atomic_write``)."""
    target = NOTEBOOK_DIR / filename
    atomic_write(target, lambda temporary: nbformat.write(nb, str(temporary)))
    print(f"wrote {target.relative_to(ROOT)} ({len(nb.cells)} cells, no outputs: run scripts/execute_notebooks.py)")
    return target
