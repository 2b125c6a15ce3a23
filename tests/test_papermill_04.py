"""Notebook 04's `parameters` cell works: a tiny run honours every parameter, and bad values are refused by name.

(Kept apart from tests/test_papermill.py so that the notebooks' authors can work in parallel; it can be merged
into it.) Runs with THREADS=1 and a handful of samples: about 15 s.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

papermill = pytest.importorskip("papermill")
from papermill.exceptions import PapermillExecutionError  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NB04 = "04_samplers.ipynb"
TINY = dict(THREADS=1, NUM_SAMPLES=8, STEP_COUNTS=[3, 2], REFERENCE_STEPS=4, SAMPLER_NAMES=["ddim", "heun_karras"],
            DDIM_STEPS=10, GRID_SEEDS=3)


def run(path: Path, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    return papermill.execute_notebook(
        str(path), str(tmp_path / path.name), parameters=parameters, kernel_name="python3",
        cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False, execution_timeout=600,
    )


def stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.output_type == "stream" and o.get("name") == "stdout")


def table_rows(text: str) -> set[tuple[str, int, int]]:
    """(sampler, steps, NFE) of the rows of section 6's table (`name steps nfe fid confident [ms]`)."""
    rows = re.findall(r"^([a-z_+]+)\s+(\d+)\s+(\d+)\s+\d+\.\d\s+\d\.\d\d(?:\s+\d+\.\d)?\s*$", text, re.MULTILINE)
    return {(name, int(steps), int(nfe)) for name, steps, nfe in rows}


def test_notebook_04_runs_tiny_and_honours_its_parameters(require_notebook, tmp_path):
    text = stdout(run(require_notebook(NB04), tmp_path, **TINY))
    assert "8 samples per run" in text
    assert "on 1 thread(s)" in text
    expected = {("ddim", 2, 2), ("ddim", 3, 3), ("heun_karras", 2, 3), ("heun_karras", 3, 5), ("ddpm", 4, 4)}
    assert table_rows(text) == expected  # printed twice (with and without timings), same rows
    assert "diffusers DDIMScheduler gives the same digits: True, with 10 network evaluations" in text
    assert "Euler's method and unclipped DDIM agree to 0.01: True" in text
    assert "agrees False" not in text


@pytest.mark.parametrize("name, value", [("STEP_COUNTS", [1, 5]), ("DDIM_STEPS", 3), ("SAMPLER_NAMES", ["plms"]),
                                         ("NUM_SAMPLES", 1)])
def test_notebook_04_refuses_a_bad_parameter_by_name(require_notebook, tmp_path, name, value):
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(NB04), tmp_path, **{**TINY, name: value})
    assert raised.value.ename == "ValueError"
    assert name in raised.value.evalue and f"got {value!r}" in raised.value.evalue
