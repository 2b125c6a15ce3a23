"""Every notebook is paired with its jupytext source, and the two say the same (docs/CONVENTIONS.md).

``notebooks/NN_name.ipynb`` (inputs and the stored outputs) and ``notebook_sources/NN_name.md`` (MyST
markdown, the inputs only) are a jupytext pair configured in ``pyproject.toml``. Editing one of them alone
and committing leaves the pair out of sync; ``jupytext --sync`` then changes a file, and this test fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jupytext
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((REPO_ROOT / "notebook_sources").glob("[0-9][0-9]_*.md"))


def source_of(notebook: Path) -> Path:
    return REPO_ROOT / "notebook_sources" / notebook.with_suffix(".md").name


def inputs(nb) -> list[tuple[str, str, list[str]]]:
    """What a source holds of a notebook: each cell's type, text and tags."""
    return [(cell.cell_type, cell.source, list(cell.metadata.get("tags", []))) for cell in nb.cells]


def sync_copy(tmp_path: Path) -> Path:
    """A copy of the pairs and the jupytext configuration, with their modification times."""
    copy = tmp_path / "course"
    for folder in ("notebooks", "notebook_sources"):
        shutil.copytree(REPO_ROOT / folder, copy / folder, copy_function=shutil.copy2)
    shutil.copy2(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def jupytext_sync(folder: Path, notebooks: list[Path]) -> None:
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet",
                    *(str(folder / "notebooks" / path.name) for path in notebooks)],
                   cwd=folder, check=True, capture_output=True, text=True, env=dict(os.environ))


def test_pairing_is_configured_in_pyproject():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["jupytext"]
    assert config["formats"] == "notebooks///ipynb,notebook_sources///md:myst"


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert NOTEBOOKS, "no notebooks found"
    assert [source_of(path) for path in NOTEBOOKS] == SOURCES


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_source_has_the_notebooks_cells(notebook):
    source = jupytext.read(source_of(notebook))
    stored = jupytext.read(notebook)
    assert inputs(source) == inputs(stored), (
        f"{source_of(notebook).name} and {notebook.name} differ: run `jupytext --sync {notebook.relative_to(REPO_ROOT)}`")


def test_jupytext_sync_changes_nothing(tmp_path):
    copy = sync_copy(tmp_path)
    before = {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()}
    jupytext_sync(copy, NOTEBOOKS)
    changed = [str(path.relative_to(copy)) for path, content in before.items() if path.read_bytes() != content]
    assert not changed, f"`jupytext --sync` rewrote {changed}: the pairs are out of sync"


def test_a_notebook_edited_alone_is_caught(tmp_path):
    """The check above can fail: an edit to the .ipynb only shows up as a sync that rewrites the source."""
    copy = sync_copy(tmp_path)
    edited = copy / "notebooks" / NOTEBOOKS[0].name
    nb = jupytext.read(edited)
    nb.cells[0].source += "\n\nAn instructor's note."
    jupytext.write(nb, edited)
    source = copy / "notebook_sources" / source_of(NOTEBOOKS[0]).name
    before = source.read_text()
    jupytext_sync(copy, NOTEBOOKS[:1])
    assert "An instructor's note." in source.read_text() and source.read_text() != before


def test_editing_a_source_and_syncing_changes_the_notebook(tmp_path):
    copy = sync_copy(tmp_path)
    source = copy / "notebook_sources" / source_of(NOTEBOOKS[0]).name
    source.write_text(source.read_text().replace("\n```{code-cell}", "\nA new paragraph.\n\n```{code-cell}", 1))
    os.utime(source)  # newer than the notebook: jupytext takes the inputs from it
    jupytext_sync(copy, NOTEBOOKS[:1])
    synced = jupytext.read(copy / "notebooks" / NOTEBOOKS[0].name)
    assert any("A new paragraph." in cell.source for cell in synced.cells)
    original = jupytext.read(NOTEBOOKS[0])
    assert sum(len(cell.get("outputs", [])) for cell in synced.cells) == \
        sum(len(cell.get("outputs", [])) for cell in original.cells), "syncing must keep the stored outputs"
