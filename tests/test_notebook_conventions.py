"""Every course notebook follows docs/CONVENTIONS.md; checked statically, without running anything."""
from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))
REPOSITORY = "diffusion-course/diffusion-course"
MAX_BYTES = 3 * 1024 * 1024

COLAB_BOOTSTRAP = f"""\
# On Colab, fetch the course (a re-run updates it) and install it without changing Colab's own
# packages; locally and on Binder it is installed already.
import os
import sys
if "google.colab" in sys.modules:
    course_dir = "/content/diffusion-course"
    if os.path.isdir(course_dir):
        !git -C {{course_dir}} pull --quiet --ff-only
    else:
        !git clone --depth 1 https://github.com/{REPOSITORY} {{course_dir}}
    !pip install --quiet --no-deps -e {{course_dir}}
    !pip install --quiet "torchmetrics>=1.9"
    sys.path.insert(0, course_dir)"""


def normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def is_checked(cell) -> bool:
    lines = cell.source.lstrip().splitlines()
    return bool(lines) and lines[0].strip() == "# NBVAL_CHECK_OUTPUT"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS], scope="module")
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def test_the_course_has_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_name.ipynb found"


def test_notebook_numbers_are_unique_and_consecutive():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), [p.name for p in NOTEBOOKS]


def test_every_notebook_is_on_the_readme_course_map():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.name}" not in readme]
    assert not missing, f"add these notebooks to the course map in README.md: {missing}"


MAX_CODE_LINES = 15


def test_code_cells_are_short(notebook):
    """docs/CONVENTIONS.md: a code cell shows one step of the story, at most 15 lines (blank lines count)."""
    path, nb = notebook
    long = {index: len(cell.source.strip().splitlines()) for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and len(cell.source.strip().splitlines()) > MAX_CODE_LINES}
    assert not long, f"{path.name}: code cells longer than {MAX_CODE_LINES} lines (cell index: lines): {long}"


def test_is_valid_nbformat_and_small(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size / 2**20:.1f} MiB (limit 3 MiB)"


def test_title_cell_has_colab_badge_for_this_notebook(notebook):
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown", "cell 1 must be the markdown title cell"
    badge = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{path.name}"
    assert badge in first.source, f"the Colab badge in cell 1 must link to {badge}"
    links = re.findall(r"https://colab\.research\.google\.com/github/[^\s)]+", "\n".join(
        c.source for c in nb.cells if c.cell_type == "markdown"))
    wrong = [link for link in links if link != badge]
    assert not wrong, f"Colab links to other notebooks: {wrong}"


def test_first_code_cell_is_the_colab_bootstrap(notebook):
    _, nb = notebook
    assert nb.cells[1].cell_type == "code", "cell 2 must be the Colab bootstrap code cell"
    assert normalized(nb.cells[1].source) == normalized(COLAB_BOOTSTRAP)


def test_parameters_cell_has_only_literal_assignments(notebook):
    _, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found {len(tagged)}"
    cell = tagged[0]
    assert cell is code_cells(nb)[1], "the parameters cell must come right after the Colab bootstrap"
    tree = ast.parse(cell.source)
    assert tree.body, "the parameters cell is empty"
    for statement in tree.body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name), \
            f"line {statement.lineno}: only `NAME = literal` assignments are allowed"
        name = statement.targets[0].id
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"parameter {name} must be UPPER_CASE"
        try:
            ast.literal_eval(statement.value)
        except ValueError:
            pytest.fail(f"parameter {name} is not a literal: {ast.unparse(statement.value)}")
    commented = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(cell.source).readline)
                 if tok.type == tokenize.COMMENT}
    uncommented = [s.targets[0].id for s in tree.body if s.lineno not in commented]
    assert not uncommented, f"parameters without a comment on their line: {uncommented}"


def parameter_names(nb) -> list[str]:
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return [statement.targets[0].id for statement in ast.parse(cell.source).body]


def test_setup_cell_checks_every_parameter_with_course_utils_validation(notebook):
    """The cell after the imports calls `check_parameters(globals(), NAME=check, ...)` naming every parameter
    (and only them), so each one is validated and a misspelled papermill parameter is refused by name."""
    _, nb = notebook
    setup_cell = code_cells(nb)[3]
    calls = [node for node in ast.walk(ast.parse(setup_cell.source))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check_parameters"]
    assert len(calls) == 1, "the setup cell must call course_utils.validation.check_parameters once"
    checked = [keyword.arg for keyword in calls[0].keywords]
    assert sorted(checked) == sorted(parameter_names(nb)), \
        f"check_parameters names {sorted(checked)}, the parameters cell defines {sorted(parameter_names(nb))}"


def test_has_a_checked_cell_with_stored_output_and_no_stderr(notebook):
    _, nb = notebook
    checked = [c for c in code_cells(nb) if is_checked(c)]
    assert checked, "no cell begins with `# NBVAL_CHECK_OUTPUT`"
    for cell in checked:
        assert cell.outputs, f"checked cell has no stored output, nbval would compare nothing:\n{cell.source}"
        streams = {o.get("name") for o in cell.outputs if o.output_type == "stream"}
        assert "stderr" not in streams, f"checked cell writes to stderr (keep tqdm/warnings out):\n{cell.source}"


def test_executed_top_to_bottom_in_one_run_without_errors(notebook):
    _, nb = notebook
    cells = code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert None not in counts, "some code cells were never executed: run scripts/execute_notebooks.py"
    assert counts == list(range(1, len(cells) + 1)), \
        f"execution counts {counts} are not one clean top-to-bottom run: run scripts/execute_notebooks.py"
    assert any(c.outputs for c in cells), "no stored outputs"
    errors = [(i, o.get("ename")) for i, c in enumerate(cells) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error outputs stored in code cells {errors}"


def test_nbgrader_markers_are_balanced(notebook):
    _, nb = notebook
    for cell in code_cells(nb):
        for what in ("SOLUTION", "HIDDEN TESTS"):
            begins = cell.source.count(f"### BEGIN {what}")
            ends = cell.source.count(f"### END {what}")
            assert begins == ends, f"unbalanced ### BEGIN/END {what} in:\n{cell.source}"


def test_stored_notebooks_carry_no_random_widget_or_animation_ids(repo_root):
    # scripts/execute_notebooks.py numbers them, so re-executing an unchanged notebook gives no diff
    sys.path.insert(0, str(repo_root / "scripts"))
    from execute_notebooks import RANDOM_ID, stable_ids

    random_ids = {path.name: {match.group(1) for match in RANDOM_ID.finditer(path.read_text())
                              if not match.group(1).startswith("0000000000")} for path in NOTEBOOKS}
    assert not any(random_ids.values()), f"random ids left (run scripts/execute_notebooks.py): {random_ids}"

    def run(box: str, label: str, layout: str, creation_order: tuple[str, ...], animation: str):
        """A notebook as one run leaves it: a box shown in an output, its label and layout, and an animation."""
        models = {box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{label}"],
                                                             "layout": f"IPY_MODEL_{layout}"}},
                  label: {"model_name": "HTMLModel", "state": {"value": "Check"}},
                  layout: {"model_name": "LayoutModel", "state": {}}}
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("quiz()", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": box},
                                  "text/html": f"<img id='_anim_img{animation}'>"})])]
        nb.cells[0].id = "quiz"  # nbformat draws cell ids at random
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "state": {model_id: models[model_id] for model_id in creation_order}, "version_major": 2}}
        return stable_ids(nb)

    ids = [f"{n:x}" * 32 for n in range(1, 5)]
    first = run(*ids[:3], creation_order=(ids[2], ids[0], ids[1]), animation=ids[3])
    other_ids = ["3afd67f3ba5a4f6c939eae7d2e7bb984", "9c0f15d4e8a2f1b3c4d5e6f7a8b9c0d1", "0123456789abcdef0123456789abcdef",
                 "fedcba9876543210fedcba9876543210"]
    second = run(*other_ids[:3], creation_order=(other_ids[1], other_ids[2], other_ids[0]), animation=other_ids[3])
    assert first == second, "another run (other random ids, models created in another order) must store the same text"
    assert '"model_id": "00000000000000000000000000000001"' in first and "_anim_img00000000000000000000000000000004" in first
