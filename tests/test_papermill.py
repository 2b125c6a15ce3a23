"""The notebooks' `parameters` cells work: papermill runs them with other values, and bad values are refused.

Each run compares what the notebook prints with what the stored (default) run printed, so a parameter
that is accepted but ignored fails the test. Notebooks 04-10 run with small values once in CI, as student
versions (tests/test_student_versions.py checks there that each value was honoured); here papermill runs
01, 02 and 07's real-checkpoint branch with other values, and every notebook with a bad one.
"""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils import ddpm, samplers, validation

papermill = pytest.importorskip("papermill")
from papermill.exceptions import PapermillExecutionError  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NB01 = "01_noise_to_image.ipynb"
NB02 = "02_forward_process.ipynb"


def run(path: Path, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    return papermill.execute_notebook(
        str(path), str(tmp_path / path.name), parameters=parameters, kernel_name="python3",
        cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False, execution_timeout=600,
    )


def stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.output_type == "stream" and o.get("name") == "stdout")


def stored_stdout(path: Path) -> str:
    text = stdout(nbformat.read(path, as_version=4))
    if not text:
        pytest.skip(f"{path.name} has no stored outputs yet (run scripts/execute_notebooks.py)")
    return text


def toy_loop_rows(text: str) -> dict[int, float]:
    """Notebook 01's toy-loop table: step -> std of the image (rows `step std corr corr`)."""
    rows = re.findall(r"^\s*(\d+)\s+(\d+\.\d+)\s+[+-]\d+\.\d+\s+-?\d+\.\d+\s*$", text, re.MULTILINE)
    return {int(step): float(std) for step, std in rows}


def test_notebook_01_runs_with_more_smaller_steps(require_notebook, tmp_path):
    path = require_notebook(NB01)
    default = toy_loop_rows(stored_stdout(path))
    assert max(default) == 10, "the stored run should use the default NUM_STEPS = 10"

    text = stdout(run(path, tmp_path, NUM_STEPS=20))  # STEP_SIZE follows: 1 / 20
    rows = toy_loop_rows(text)
    assert sorted(rows) == list(range(21)), "the toy loop should take NUM_STEPS = 20 steps"
    # each step adds noise of std STEP_SIZE: std after N steps is sqrt(1 + N * STEP_SIZE**2)
    assert rows[20] == pytest.approx(math.sqrt(1 + 20 * 0.05**2), abs=0.02)
    assert default[10] == pytest.approx(math.sqrt(1 + 10 * 0.1**2), abs=0.02)
    assert rows[20] < default[10], "smaller steps should add less noise in total"
    # 20 steps of 0.05 remove all of the noise, like the default 10 steps of 0.1: changing NUM_STEPS alone
    # must not make the oracle overshoot
    assert "noise left after the loop: +0.00 x the true noise" in text


def test_notebook_01_reports_the_noise_left(require_notebook, tmp_path):
    """A product NUM_STEPS * STEP_SIZE below 1 leaves noise, and the notebook says how much."""
    path = require_notebook(NB01)
    text = stdout(run(path, tmp_path, NUM_STEPS=4, STEP_SIZE=0.2))
    assert "noise left after the loop: +0.20 x the true noise" in text


def alpha_bar_rows(text: str) -> dict[int, float]:
    """Notebook 02's closed-form table: t -> alpha_bar_t (rows `t alpha_bar | ...`)."""
    rows = re.findall(r"^\s*(\d+)\s+(\d+\.\d+) \|", text, re.MULTILINE)
    return {int(t): float(abar) for t, abar in rows}


def test_notebook_02_runs_with_a_short_linear_schedule(require_notebook, tmp_path):
    path = require_notebook(NB02)
    default = alpha_bar_rows(stored_stdout(path))
    assert max(default) == 999, "the stored run should use the default NUM_TIMESTEPS = 1000"

    text = stdout(run(path, tmp_path, NUM_TIMESTEPS=50, SCHEDULE="linear"))
    rows = alpha_bar_rows(text)
    assert sorted(rows) == [0, 12, 25, 37, 49], "the tables should cover t = 0 .. NUM_TIMESTEPS - 1"
    # linear schedule, T = 50: alpha_bar_t = prod_{s <= t} (1 - beta_s), betas from 1e-4 to 0.02
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 50, dtype=torch.float64), 0)
    for t, value in rows.items():
        assert value == pytest.approx(expected[t].item(), abs=1e-4), t
    assert rows[49] > 0.5 > default[999], "50 linear steps leave most of the signal, 1000 cosine steps none"
    assert "of 50" in text and "of 1000" not in text


def test_notebook_02_refuses_a_bad_parameter_by_name(require_notebook, tmp_path):
    path = require_notebook(NB02)
    with pytest.raises(PapermillExecutionError) as raised:
        run(path, tmp_path, NUM_TIMESTEPS=1)
    assert raised.value.ename == "ValueError"
    assert "NUM_TIMESTEPS" in str(raised.value)
    assert "got 1" in raised.value.evalue


def test_notebook_01_refuses_a_bad_parameter_by_name(require_notebook, tmp_path):
    path = require_notebook(NB01)
    with pytest.raises(PapermillExecutionError) as raised:
        run(path, tmp_path, STEP_SIZE=0)
    assert raised.value.ename == "ValueError"
    assert "STEP_SIZE" in raised.value.evalue


def test_a_misspelled_parameter_is_refused_before_any_work(require_notebook, tmp_path):
    """papermill only warns about a name the parameters cell lacks; the notebook refuses it by name."""
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(NB01), tmp_path, NUM_STEP=50)
    assert raised.value.ename == "ValueError"
    assert "unknown parameter(s) NUM_STEP (did you mean NUM_STEPS?)" in raised.value.evalue


# Notebooks 04-10: bad values are refused by name; 07 also runs a Stable Diffusion checkpoint. Their tiny runs
# with good values are the student-version runs (tests/test_student_versions.py), which inject parameters the
# same way.
NB04, NB05 = "04_samplers.ipynb", "05_latent_diffusion.ipynb"
NB06, NB07 = "06_text_conditioning.ipynb", "07_stable_diffusion.ipynb"


def test_notebook_07_runs_a_stable_diffusion_checkpoint_with_its_pndm_scheduler(require_notebook, tmp_path,
                                                                                 tiny_stable_diffusion):
    # the real-model branch, end to end: the notebook's own hand-written loop, knobs, scheduler swap, image-to-image
    # and inpainting on a checkpoint laid out like stable-diffusion-v1-5, whose PNDMScheduler.step takes no generator
    text = stdout(run(require_notebook(NB07), tmp_path, THREADS=1, MODEL=str(tiny_stable_diffusion),
                      PROMPT="an astronaut riding a horse", SAMPLING_STEPS=5, NUM_IMAGES=2))
    assert f"running: {tiny_stable_diffusion}, from a local folder" in text
    assert "scheduler: PNDMScheduler" in text and "shipped (PNDM):" in text
    assert "largest pixel difference below 1e-4: True" in text
    assert "ms for 2 images" in text and "images 64x64x3 <-> latents 8x8x4" in text


# One bad value per notebook through papermill, end to end (a kernel each); the other bad values go through the
# same checks without a kernel, below. NB07's MODEL = "" is refused by the extra check after check_parameters.
@pytest.mark.parametrize("notebook, name, value", [(NB04, "STEP_COUNTS", [1, 5]), (NB05, "KL_WEIGHT", -1.0),
                                                   (NB06, "GUIDANCE_SCALE", 80.0), (NB07, "MODEL", "")])
def test_notebooks_04_to_07_refuse_a_bad_parameter_by_name(require_notebook, tmp_path, notebook, name, value):
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(notebook), tmp_path, THREADS=1, **{name: value})
    assert raised.value.ename == "ValueError"
    assert name in raised.value.evalue and f"got {value!r}" in raised.value.evalue


NB08 = "08_flow_matching.ipynb"


def test_notebook_08_refuses_a_bad_parameter_by_name(require_notebook, tmp_path):
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(NB08), tmp_path, THREADS=1, SHIFT=0.0)
    assert raised.value.ename == "ValueError"
    assert "SHIFT" in raised.value.evalue and "got 0.0" in raised.value.evalue


NB09 = "09_controlnet.ipynb"


def test_notebook_09_refuses_a_bad_parameter_by_name(require_notebook, tmp_path):
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(NB09), tmp_path, THREADS=1, CONDITIONING_SCALE=6.0)
    assert raised.value.ename == "ValueError"
    assert "CONDITIONING_SCALE" in raised.value.evalue and "got 6.0" in raised.value.evalue


NB10 = "10_few_step.ipynb"


def test_notebook_10_refuses_a_bad_parameter_by_name(require_notebook, tmp_path):
    with pytest.raises(PapermillExecutionError) as raised:
        run(require_notebook(NB10), tmp_path, THREADS=1, NFE_LIST=[0, 2])
    assert raised.value.ename == "ValueError"
    assert "NFE_LIST" in raised.value.evalue and "got [0, 2]" in raised.value.evalue


def setup_checks(path: Path) -> dict:
    """The checks a notebook's setup cell hands to ``check_parameters``, evaluated here without a kernel: the
    same expressions, with the names they use from ``course_utils``."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells
                if c.cell_type == "code" and "check_parameters(globals()" in c.source)
    call = next(node for node in ast.walk(ast.parse(cell.source))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check_parameters")
    namespace = {**vars(validation), "ddpm": ddpm, "samplers": samplers}
    return {keyword.arg: eval(compile(ast.Expression(keyword.value), path.name, "eval"), namespace)
            for keyword in call.keywords}


@pytest.mark.parametrize("notebook, name, value", [
    (NB04, "DDIM_STEPS", 3), (NB04, "SAMPLER_NAMES", ["plms"]), (NB04, "NUM_SAMPLES", 1),
    (NB05, "LIVE_VAE_STEPS", 0), (NB06, "SAMPLES_PER_DIGIT", 0), (NB07, "NUM_IMAGES", 100),
    (NB07, "SAMPLING_STEPS", 4), (NB08, "NFE_LIST", [0, 5]), (NB08, "GRID_SEEDS", 65), (NB08, "LIVE_BATCH_SIZE", True),
    (NB09, "MEASURED_SCALES", [1, 7]), (NB09, "CONTROLS_PER_DIGIT", 0), (NB09, "LIVE_TRAIN_STEPS", -1),
    (NB10, "TOY_PAIRS", 8), (NB10, "LIVE_PAIRS", 0), (NB10, "GRID_SEEDS", 65)])
def test_setup_cell_checks_refuse_a_bad_value_by_name(require_notebook, notebook, name, value):
    check = setup_checks(require_notebook(notebook))[name]
    with pytest.raises((ValueError, TypeError), match=re.escape(name)) as raised:
        check(name, value)
    assert f"got {value!r}" in str(raised.value)
