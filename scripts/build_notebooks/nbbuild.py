"""Tiny helpers for writing course notebooks as Python (the .ipynb is generated, then executed).

Each ``nbNN.py`` beside this file lists a notebook's cells with :func:`md` and :func:`code` and calls
:func:`write_notebook`; ``python scripts/execute_notebooks.py`` then stores the outputs of a real run.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

REPOSITORY = "diffusion-course/diffusion-course"
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

COLAB_BOOTSTRAP = f"""\
# On Colab, fetch the course and install it; locally and on Binder it is installed already.
import sys
if "google.colab" in sys.modules:
    !git clone --depth 1 https://github.com/{REPOSITORY} /content/diffusion-course
    !pip install --quiet -e /content/diffusion-course
    sys.path.insert(0, "/content/diffusion-course")"""


def md(text: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, tags: list[str] | None = None):
    cell = nbformat.v4.new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


def colab_badge(filename: str) -> str:
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{filename}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def write_notebook(filename: str, cells: list) -> Path:
    """Write the cells (after the title cell's badge and the Colab bootstrap) to notebooks/FILENAME."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [cells[0], code(COLAB_BOOTSTRAP), *cells[1:]]
    path = NOTEBOOK_DIR / filename
    nbformat.write(notebook, path)
    return path
