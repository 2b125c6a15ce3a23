"""Homework: the exercises are graded, and the student versions made by nbgrader are clean and work.

For every course notebook (the instructor version in notebooks/, with solutions and hidden tests):

- it has at least two exercises, each a solution cell followed by a cell with hidden tests;
- its student version (``scripts/make_student_versions.py``, i.e. ``nbgrader generate_assignment``)
  contains no solution code, no hidden tests and no outputs, and is otherwise the same notebook;
- executed cell by cell, the student version fails *only* at the exercises, each with the stub's
  ``NotImplementedError``, never before or between them. After each stub fails, the test plays a
  student who solves it: it runs the instructor's solution cell and goes on, so every cell after the
  first exercise is checked too. At each exercise's test cell it also checks that the instructor's
  hidden tests pass with the solution, and that the test cell (visible and hidden tests) fails when the
  solution region is replaced by a wrong answer, so the tests can fail.

Notebooks 03 and later train and sample for minutes with their defaults; they are executed with small
parameters, injected after the parameters cell as papermill injects them: ``TINY_PARAMETERS`` where a
notebook has its own, else ``CHEAP_PARAMETERS`` (only those its parameters cell defines). This run is each
notebook's only tiny run in CI: the ``test_notebook_NN_tiny_run_honours_its_parameters`` tests read what it
printed and check that every parameter was honoured (the values differ from the defaults, so a parameter
that is accepted but ignored fails them). Papermill itself runs notebooks 01, 02 and 07 with other values
and every notebook with a bad one (tests/test_papermill.py).

``test_autograde_scores_a_submission`` runs the nbgrader pipeline of docs/INSTRUCTORS.md on notebook 01
(``zip_collect``, ``autograde``, ``generate_feedback``):
a submission whose first answer passes the visible check but not the hidden tests, whose second answer
is right and whose third is missing scores exactly the second exercise's point.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from textwrap import dedent

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the homework tests need nbgrader (pip install -e '.[test]')")
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
WRONG_VALUE = "-12345.0"  # what a wrong answer returns or assigns; no exercise's answer is this
# Small values for the expensive parameters of notebooks 03 and later (applied where a notebook has them).
CHEAP_PARAMETERS = {"THREADS": 1, "LIVE_TRAIN_STEPS": 2, "LIVE_VAE_STEPS": 2, "LIVE_BATCH_SIZE": 8, "SAMPLING_STEPS": 5,
                    "NUM_SAMPLES": 8, "EVAL_SAMPLES": 16, "SAMPLES_PER_DIGIT": 2, "NUM_IMAGES": 2, "NFE_LIST": [2],
                    "GRID_SEEDS": 2, "CONTROLS_PER_DIGIT": 1, "MEASURED_SCALES": [1.0], "TOY_PAIRS": 64,
                    "TOY_TRAIN_STEPS": 5, "LIVE_PAIRS": 8, "PAIR_NFE": 2}
NB04, NB05, NB06 = "04_samplers.ipynb", "05_latent_diffusion.ipynb", "06_text_conditioning.ipynb"
NB08, NB09, NB10 = "08_flow_matching.ipynb", "09_controlnet.ipynb", "10_few_step.ipynb"
# A notebook's own tiny values, chosen to differ from its defaults (and from each other) so that the
# tests below can see each one honoured.
TINY_PARAMETERS = {
    NB04: dict(THREADS=1, NUM_SAMPLES=8, STEP_COUNTS=[3, 2], REFERENCE_STEPS=4, SAMPLER_NAMES=["ddim", "heun_karras"],
               DDIM_STEPS=10, GRID_SEEDS=3),
    NB05: dict(THREADS=1, LIVE_VAE_STEPS=2, LIVE_BATCH_SIZE=8, SAMPLING_STEPS=7, NUM_SAMPLES=4, EVAL_SAMPLES=24),
    NB06: dict(THREADS=1, GUIDANCE_SCALE=2.5, SAMPLING_STEPS=4, SAMPLES_PER_DIGIT=2, LIVE_TRAIN_STEPS=1,
               LIVE_BATCH_SIZE=4),
    NB08: dict(THREADS=1, LIVE_TRAIN_STEPS=12, LIVE_BATCH_SIZE=4, NUM_SAMPLES=6, NFE_LIST=[3, 1], SHIFT=2.0,
               GRID_SEEDS=2),
    NB09: dict(THREADS=1, SAMPLING_STEPS=3, LIVE_TRAIN_STEPS=2, LIVE_BATCH_SIZE=4, CONTROLS_PER_DIGIT=1,
               MEASURED_SCALES=[0.5, 2], CONDITIONING_SCALE=1.5),
    NB10: dict(THREADS=1, TOY_PAIRS=64, TOY_TRAIN_STEPS=5, LIVE_PAIRS=4, PAIR_NFE=2, LIVE_TRAIN_STEPS=2,
               LIVE_BATCH_SIZE=2, NUM_SAMPLES=6, NFE_LIST=[3, 1], GRID_SEEDS=2),
}


def load_script():
    spec = importlib.util.spec_from_file_location("make_student_versions", ROOT / "scripts" / "make_student_versions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student_versions = load_script()


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and BEGIN_SOLUTION in cell.source


def is_test(cell) -> bool:
    return cell.cell_type == "code" and BEGIN_HIDDEN in cell.source


def region(source: str, begin: str, end: str) -> str:
    """The lines between the markers (all regions of the cell), dedented."""
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return dedent("\n".join(lines))


def wrong_solution(source: str) -> str:
    """The solution cell with each solution region replaced by a wrong answer.

    Inside a function the region becomes ``return -12345.0``; at the top level every name the region
    assigns is set to -12345.0 instead.
    """
    def build(as_return: bool) -> str:
        lines, body, indent, inside = [], [], "", False
        for line in source.split("\n"):
            if BEGIN_SOLUTION in line:
                inside, body, indent = True, [], re.match(r"\s*", line).group(0)
            elif END_SOLUTION in line:
                inside = False
                if as_return:
                    lines.append(f"{indent}return {WRONG_VALUE}")
                    continue
                tree = ast.parse(dedent("\n".join(body)))
                names = [target.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                         for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                         if isinstance(target, ast.Name)]
                lines.extend(f"{indent}{name} = {WRONG_VALUE}" for name in dict.fromkeys(names))
                if not names:
                    lines.append(f"{indent}pass")
            elif inside:
                body.append(line)
            else:
                lines.append(line)
        return "\n".join(lines)

    candidate = build(as_return=True)
    try:
        compile(candidate, "<solution cell>", "exec")
    except SyntaxError:  # `return` outside a function: the region is top-level code
        candidate = build(as_return=False)
    return candidate


def with_parameters(source: str, overrides: dict) -> str:
    """The parameters cell with the overrides (for the names it defines) appended, like papermill does."""
    defined = {node.targets[0].id for node in ast.parse(source).body if isinstance(node, ast.Assign)}
    extra = [f"{name} = {value!r}  # CI: small value" for name, value in overrides.items() if name in defined]
    return "\n".join([source, *extra])


@contextmanager
def kernel(cwd: Path):
    """A fresh python3 kernel in ``cwd``; yields ``run(source) -> CellExecutionError | None``. The outputs of
    the last cell run are in ``run.outputs``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}})

    def run(source: str):
        cell = nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
        try:
            client.execute_cell(cell, len(nb.cells) - 1)
        except CellExecutionError as error:
            return error
        finally:
            run.outputs = cell.outputs  # nbclient gives the cell a new list when it runs it
        return None

    with client.setup_kernel():
        yield run


def describe(error) -> str:
    return f"{error.ename}: {error.evalue}"


# --------------------------------------------------------------------------------------------------
# the instructor versions
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_exercise_is_graded_by_hidden_tests(name):
    cells = read(NOTEBOOK_DIR / name).cells
    solutions = [i for i, cell in enumerate(cells) if is_solution(cell)]
    tests = [i for i, cell in enumerate(cells) if is_test(cell)]
    assert len(solutions) >= 2, f"{name} has {len(solutions)} exercise(s) with `{BEGIN_SOLUTION}`; at least 2 expected"
    assert len(tests) >= 2, f"{name} has {len(tests)} cell(s) with `{BEGIN_HIDDEN}`; at least 2 expected"
    for number, index in enumerate(solutions):
        following = solutions[number + 1] if number + 1 < len(solutions) else len(cells)
        assert any(index < t < following for t in tests), \
            f"{name}: the exercise in cell {index} has no cell with hidden tests after it (before the next exercise)"
        assert region(cells[index].source, BEGIN_SOLUTION, END_SOLUTION).strip(), f"{name}: empty solution in cell {index}"
    for index in tests:
        assert region(cells[index].source, BEGIN_HIDDEN, END_HIDDEN).strip(), f"{name}: empty hidden tests in cell {index}"
        assert not is_solution(cells[index]), f"{name}: cell {index} has a solution and hidden tests; split them"


def test_wrong_solution_replaces_the_region():
    function = 'def f(x):\n    """doc"""\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n'
    assert wrong_solution(function) == f'def f(x):\n    """doc"""\n    return {WRONG_VALUE}\n'
    top_level = f"{BEGIN_SOLUTION}\nsamples = g()\nshare = h(samples)\n{END_SOLUTION}\nshow(samples)"
    assert wrong_solution(top_level) == f"samples = {WRONG_VALUE}\nshare = {WRONG_VALUE}\nshow(samples)"


# --------------------------------------------------------------------------------------------------
# the student versions
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    """Student versions of every course notebook, made by the script (nbgrader) in a temporary course dir."""
    base = tmp_path_factory.mktemp("homework")
    make_student_versions.generate([NOTEBOOK_DIR / name for name in NOTEBOOKS], base / "course", base / "student",
                                   quiet=True)
    return base / "student"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_version_has_no_solutions_hidden_tests_or_outputs(name, student_dir):
    instructor, student = read(NOTEBOOK_DIR / name), read(student_dir / name)
    assert len(student.cells) == len(instructor.cells), "nbgrader must keep every cell"
    text = "\n".join(cell.source for cell in student.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"`{marker}` survived in the student version"
    for index, (mine, theirs) in enumerate(zip(instructor.cells, student.cells)):
        assert mine.cell_type == theirs.cell_type
        if theirs.cell_type == "code":
            assert not theirs.outputs and theirs.execution_count is None, f"cell {index} kept its outputs"
        if is_solution(mine) or is_test(mine):
            begin, end = (BEGIN_SOLUTION, END_SOLUTION) if is_solution(mine) else (BEGIN_HIDDEN, END_HIDDEN)
            outside = {line.strip() for line in mine.source.split("\n")} - \
                {line.strip() for line in region(mine.source, begin, end).split("\n")}
            secret = [line.strip() for line in region(mine.source, begin, end).split("\n")
                      if line.strip() and line.strip() not in outside]
            leaked = [line for line in secret if line in {x.strip() for x in theirs.source.split("\n")}]
            assert not leaked, f"cell {index}: lines of the {'solution' if begin == BEGIN_SOLUTION else 'hidden tests'} " \
                               f"survived in the student version: {leaked}"
            if is_solution(mine):
                assert "raise NotImplementedError()" in theirs.source, f"cell {index} has no stub"
                assert theirs.metadata["nbgrader"]["solution"] is True
            else:
                assert theirs.metadata["nbgrader"]["grade"] is True and theirs.metadata["nbgrader"]["locked"] is True
        elif index > 0:
            assert theirs.source == mine.source, f"cell {index} changed in the student version"
    assert "raise NotImplementedError" not in "".join(c.source for c in instructor.cells if c.cell_type == "code"), \
        "the instructor version should not contain the stub"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_version_keeps_the_bootstrap_and_drops_the_solution_badge(name, student_dir):
    instructor, student = read(NOTEBOOK_DIR / name), read(student_dir / name)
    assert student.cells[1].source == instructor.cells[1].source, "the Colab bootstrap cell must stay as it is"
    assert f"blob/main/notebooks/{name}" not in student.cells[0].source, \
        "the student version must not link to the instructor version (with solutions) on Colab"
    assert make_student_versions.COLAB_NOTE in student.cells[0].source


def test_colab_url_base_points_the_badge_at_the_published_student_version():
    name = NOTEBOOKS[0]
    nb = read(NOTEBOOK_DIR / name)
    base = "https://colab.research.google.com/github/someone/course-2025/blob/main/student"
    make_student_versions.replace_colab_badge(nb, name, base)
    assert f"]({base}/{name})" in nb.cells[0].source and "blob/main/notebooks" not in nb.cells[0].source


def test_leftover_markers_are_detected():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"x = 1\n{BEGIN_HIDDEN}\nassert x\n{END_HIDDEN}")]
    assert make_student_versions.leftover_markers(nb), "a hidden-test marker must be reported"
    nb.cells = [nbformat.v4.new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()")]
    assert make_student_versions.leftover_markers(nb) == []


def test_a_cell_with_a_solution_and_hidden_tests_is_refused():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\nx = 1\n{END_SOLUTION}\n{BEGIN_HIDDEN}\nassert x\n{END_HIDDEN}")]
    with pytest.raises(ValueError, match="both a solution region and hidden tests"):
        make_student_versions.add_nbgrader_metadata(nb)


class StudentRun:
    """What happened when the student version was executed cell by cell (see the module docstring)."""

    def __init__(self):
        self.stubs = []  # (solution cell, index of the cell that failed first in the exercise, error)
        self.unexpected = None  # (cell index, error, what was run) of the first error outside the stubs
        self.hidden_results = []  # (test cell index, error or None) with the instructor's solution
        self.wrong_results = []  # (test cell index, error or None) with a wrong solution
        self.printed = []  # stdout of each cell of the notebook's own flow, in order (not the graders' re-runs)

    @property
    def stdout(self) -> str:
        return "".join(self.printed)


def exercises(cells) -> list[tuple[int, int]]:
    """(solution cell, test cell) index pairs: each solution cell with the first hidden-test cell after it."""
    pairs = []
    for index, cell in enumerate(cells):
        if is_solution(cell):
            test = next((i for i in range(index + 1, len(cells)) if is_test(cells[i])), None)
            if test is not None:
                pairs.append((index, test))
    return pairs


def execute_student_version(name: str, student_dir: Path) -> StudentRun:
    """Run the student version; at each exercise, check the stub, then solve it as described above."""
    instructor, student = read(NOTEBOOK_DIR / name), read(student_dir / name)
    spans = dict(exercises(instructor.cells))  # solution cell -> its test cell
    record = StudentRun()

    def source(index: int) -> str:
        cell = student.cells[index]
        if "parameters" in cell.metadata.get("tags", []):
            return with_parameters(cell.source, TINY_PARAMETERS.get(name, CHEAP_PARAMETERS))
        return cell.source

    with kernel(student_dir) as run:

        def keep_stdout():
            record.printed.extend(o.get("text", "") for o in run.outputs
                                  if o.get("output_type") == "stream" and o.get("name") == "stdout")

        def must_run(index: int, code: str, what: str, flow: bool = True) -> bool:
            error = run(code)
            if error is not None:
                record.unexpected = (index, error, what)
            elif flow:
                keep_stdout()
            return error is None

        index = 0
        while index < len(student.cells):
            if student.cells[index].cell_type != "code":
                index += 1
                continue
            if index not in spans:
                if not must_run(index, source(index), "the student version's cell"):
                    return record
                index += 1
                continue
            solution, test = index, spans[index]
            span = [i for i in range(solution, test + 1) if student.cells[i].cell_type == "code"]
            # 1. the stub: the first error in the exercise (solution cell to test cell) must be NotImplementedError
            first_error = None
            for i in span:
                error = run(source(i))
                if error is not None:
                    first_error = (i, error)
                    break
                keep_stdout()
            record.stubs.append((solution, *(first_error or (None, None))))
            if first_error is None or first_error[1].ename != "NotImplementedError":
                return record
            # 2. the student solves it: the instructor's solution, then the rest of the exercise, visible checks included
            if not must_run(solution, instructor.cells[solution].source, "the instructor's solution"):
                return record
            for i in span[1:]:
                if not must_run(i, source(i), "the student version's cell, after the instructor's solution"):
                    return record
            # 3. the hidden tests pass with the solution; 4. a wrong answer fails the test cell
            record.hidden_results.append((test, run(region(instructor.cells[test].source, BEGIN_HIDDEN, END_HIDDEN))))
            run(wrong_solution(instructor.cells[solution].source))
            record.wrong_results.append((test, run(instructor.cells[test].source)))
            # 5. back to the right answer for the cells after the exercise
            if not (must_run(solution, instructor.cells[solution].source, "the instructor's solution, again", False)
                    and must_run(test, source(test), "the exercise's test cell, again", False)):
                return record
            index = test + 1
    return record


@pytest.fixture(scope="module")
def student_runs(student_dir):
    cache = {}

    def get(name: str) -> StudentRun:
        if name not in cache:
            cache[name] = execute_student_version(name, student_dir)
        return cache[name]

    return get


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_version_fails_only_at_the_exercises(name, student_runs):
    record = student_runs(name)
    cells = read(NOTEBOOK_DIR / name).cells
    if record.unexpected:
        index, error, what = record.unexpected
        pytest.fail(f"cell {index} failed outside the exercises' stubs ({what}) with {describe(error)}\n"
                    f"{cells[index].source}")
    for solution, index, error in record.stubs:
        assert error is not None, \
            f"the exercise in cell {solution} ran to its test cell without error: is its solution stubbed?"
        assert error.ename == "NotImplementedError", \
            f"the exercise in cell {solution} failed in cell {index} with {describe(error)}, not the stub's NotImplementedError"
    assert [s for s, _, _ in record.stubs] == [s for s, _ in exercises(cells)], "not every exercise was reached"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_instructor_solutions_pass_the_hidden_tests(name, student_runs):
    record = student_runs(name)
    reached = [index for index, _ in record.hidden_results]
    assert reached == [test for _, test in exercises(read(NOTEBOOK_DIR / name).cells)], \
        f"only the exercise test cells {reached} were reached (see test_student_version_fails_only_at_the_exercises)"
    failed = [(index, describe(error)) for index, error in record.hidden_results if error is not None]
    assert not failed, f"hidden tests failed with the instructor's solution: {failed}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_wrong_solution_fails_the_exercise_tests(name, student_runs):
    record = student_runs(name)
    reached = [index for index, _ in record.wrong_results]
    assert reached == [test for _, test in exercises(read(NOTEBOOK_DIR / name).cells)], \
        f"only the exercise test cells {reached} were reached (see test_student_version_fails_only_at_the_exercises)"
    passed = [index for index, error in record.wrong_results if error is None]
    assert not passed, f"the test cells {passed} pass even when the solution returns {WRONG_VALUE}"


# --------------------------------------------------------------------------------------------------
# the tiny runs honour their parameters (what the student-version runs above printed)
# --------------------------------------------------------------------------------------------------

def tiny_stdout(student_runs, name: str) -> str:
    record = student_runs(name)
    if record.unexpected:
        pytest.fail(f"{name}'s tiny run stopped early (see test_student_version_fails_only_at_the_exercises)")
    return record.stdout


def sampler_table_rows(text: str) -> set[tuple[str, int, int]]:
    """(sampler, steps, NFE) of notebook 04's table rows (`name steps nfe fid confident [ms]`)."""
    rows = re.findall(r"^([a-z_+]+)\s+(\d+)\s+(\d+)\s+\d+\.\d\s+\d\.\d\d(?:\s+\d+\.\d)?\s*$", text, re.MULTILINE)
    return {(name, int(steps), int(nfe)) for name, steps, nfe in rows}


def test_notebook_04_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB04)
    assert "8 samples per run" in text
    assert "on 1 thread(s)" in text
    expected = {("ddim", 2, 2), ("ddim", 3, 3), ("heun_karras", 2, 3), ("heun_karras", 3, 5), ("ddpm", 4, 4)}
    assert sampler_table_rows(text) == expected  # printed twice (with and without timings), same rows
    assert "diffusers DDIMScheduler gives the same digits: True, with 10 network evaluations" in text
    assert "Euler's method and unclipped DDIM agree to 0.05 everywhere: True, on average to 0.001: True" in text
    assert "agrees False" not in text


def test_notebook_05_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB05)
    assert "24 samples, DDPM 7 steps, 24 real digits" in text
    assert "std of the raw latents" in text and "image (1, 32, 32) -> latent (4, 8, 8)" in text


def test_notebook_06_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB06)
    assert re.search(r"adherence at w = 2\.5: \d\.\d\d of 20 samples", text)
    assert "course_utils.guidance gives the same latents: True" in text


def test_notebook_08_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB08)
    assert "6 samples per run" in text
    rows = re.findall(r"^(flow, Euler(?:, shift 2)?|DDPM, DDIM)\s+(\d+)\s+\d+\.\d\s+\d\.\d\d\s*$", text, re.MULTILINE)
    assert sorted(rows) == sorted((name, nfe) for name in ("flow, Euler", "flow, Euler, shift 2", "DDPM, DDIM")
                                  for nfe in ("1", "3"))
    assert "diffusers' loop against ours, largest difference: 0.0e+00" in text
    assert "Euler on the straight path against DDIM, largest difference below 1e-4: True" in text


def test_notebook_09_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB09)
    assert re.findall(r"^scale (\S+): Chamfer \d+\.\d\d px, IoU \d\.\d\d, prompt adherence \d\.\d\d$", text,
                      re.MULTILINE) == ["0.5", "2"]
    assert "largest difference, untrained ControlNet vs none: 0.0" in text
    assert "notebook 06's loop with the residuals = StableDiffusionControlNetPipeline" in text
    assert re.search(r"zero convolution: from [1-9]\.\de-0\d to [1-9]\.\de-0\d after 2 live steps", text)


def test_notebook_10_tiny_run_honours_its_parameters(student_runs):
    text = tiny_stdout(student_runs, NB10)
    assert "6 samples per run" in text
    rows = re.findall(r"^(flow model|reflowed)\s+(\d+)\s+\d+\.\d\s+\d\.\d\d\s*$", text, re.MULTILINE)
    assert sorted(rows) == sorted((name, nfe) for name in ("flow model", "reflowed") for nfe in ("1", "3"))
    assert re.search(r"after 2 steps$", text, re.MULTILINE)
    assert "distance to a point" in text and text.count("/") >= 2  # one distance per NFE_LIST entry


# --------------------------------------------------------------------------------------------------
# the nbgrader pipeline: autograde restores the hidden tests
# --------------------------------------------------------------------------------------------------

NB01 = "01_noise_to_image.ipynb"
# Exercise 1 of notebook 01: an answer that passes the visible check (10 and 100 steps) but not the hidden
# tests (0 and 3 steps). The student sees a passing check; the autograder gives no point.
RIGHT_1 = "return math.sqrt(1.0 + (num_steps * step_size) ** 2)"
SNEAKY_1 = "return math.sqrt(1.0 + (num_steps * step_size) ** 2) if num_steps >= 10 else 1.5"


def test_autograde_scores_a_submission(tmp_path):
    instructor = read(NOTEBOOK_DIR / NB01)
    solutions = [i for i, cell in enumerate(instructor.cells) if is_solution(cell)]
    first = instructor.cells[solutions[0]].source
    if RIGHT_1 not in first:
        pytest.fail(f"exercise 1 of {NB01} changed: update RIGHT_1 and SNEAKY_1 in this test\n{first}")
    course, assignment = tmp_path / "course", NB01[:-len(".ipynb")]
    make_student_versions.generate([NOTEBOOK_DIR / NB01], course, tmp_path / "student", quiet=True)
    submission = read(course / "release" / assignment / NB01)
    sneaky = first.replace(RIGHT_1, SNEAKY_1)
    submission.cells[solutions[0]].source = sneaky
    submission.cells[solutions[1]].source = instructor.cells[solutions[1]].source  # right
    # exercise 3 is left as it is: `raise NotImplementedError()`

    # what the student sees: the visible check of exercise 1 passes with the sneaky answer
    first_test = next(i for i in range(solutions[0] + 1, len(submission.cells)) if is_test(instructor.cells[i]))
    with kernel(tmp_path) as run:
        for index in range(first_test + 1):
            cell = submission.cells[index]
            if cell.cell_type == "code":
                is_parameters = "parameters" in cell.metadata.get("tags", [])
                error = run(with_parameters(cell.source, {"THREADS": 1}) if is_parameters else cell.source)
                assert error is None, f"cell {index} failed in the student's run: {describe(error)}"

    # the LMS path of docs/INSTRUCTORS.md: downloaded submissions -> zip_collect -> autograde -> generate_feedback
    archive = course / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True)
    nbformat.write(submission, archive / f"student-a_{NB01}")
    for step in (["zip_collect", assignment], ["autograde", assignment], ["generate_feedback", assignment]):
        result = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=course, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"nbgrader {' '.join(step)} failed:\n{result.stdout}{result.stderr}"
    assert (course / "submitted" / "student-a" / assignment / NB01).is_file(), "zip_collect did not find the submission"
    feedback = course / "feedback" / "student-a" / assignment / NB01.replace(".ipynb", ".html")
    assert feedback.is_file(), "generate_feedback wrote no feedback"
    tests = [cell for cell in instructor.cells if is_test(cell)]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = [gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"] if "nbgrader" in cell.metadata
                                       else f"{cell.get('id')}-tests", assignment, assignment, "student-a").score
                  for cell in tests]
    assert scores == [0.0, 1.0, 0.0] + [0.0] * (len(tests) - 3), \
        f"expected 0 points for the sneaky answer, 1 for the right one, 0 for the missing one; got {scores}"
    graded = read(course / "autograded" / "student-a" / assignment / NB01)
    assert BEGIN_HIDDEN in graded.cells[first_test].source, "autograde must run the hidden tests"
