"""The instructor's path of docs/INSTRUCTORS.md, with nbgrader's own command line, prints no warning.

On notebook 01 (the cheapest to grade) the test does what an instructor and three students do:

1. ``python scripts/make_student_versions.py`` makes the course directory (nbgrader's
   ``generate_assignment``) with the course's ``nbgrader_config.py``;
2. ``nbgrader release_assignment`` publishes it to an exchange folder (``--Exchange.root``), as on
   JupyterHub; each student runs ``nbgrader fetch_assignment``, answers and ``nbgrader submit``\\s
   (``--student``: all three share this machine's account): *right* pastes the instructor's solutions,
   *wrong* returns a wrong value from each, *stub* hands the student version in untouched;
3. ``nbgrader collect``, ``autograde``, ``generate_feedback`` and ``export`` in the course directory.

It checks the grades (3 of 3, 0, 0 in ``grades.csv``), that no command prints a line with "warning" (the
stock configuration printed a checksum warning per test cell and student, three SQLAlchemy warnings per
student, the kernel's plain-TCP warning and nbconvert's missing alternative texts), and that the
feedback shows no hidden test and loads nothing from the network (no MathJax: formulas are MathML).
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the homework tests need nbgrader (pip install -e '.[test]')")
pytest.importorskip("latex2mathml", reason="the course's feedback needs latex2mathml (pip install -e '.[test]')")
from test_offline import external_resources  # noqa: E402
from test_student_versions import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, region, wrong_solution  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NB01 = "01_noise_to_image.ipynb"
ASSIGNMENT = NB01.removesuffix(".ipynb")
COURSE_ID = "diffusion-course"
STUDENTS = ("right", "wrong", "stub")


def run(command: list[str], cwd: Path) -> str:
    """Run a command; fail with its output if it fails or prints a warning; return its output."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    warnings = [line for line in output.splitlines() if "warn" in line.lower()]
    assert not warnings, f"{' '.join(command[2:4])} printed warnings:\n" + "\n".join(warnings)
    return output


def nbgrader(*arguments: str, cwd: Path, exchange: Path) -> str:
    return run([sys.executable, "-m", "nbgrader", *arguments, f"--Exchange.root={exchange}"], cwd)


def answered(notebook: nbformat.NotebookNode, source: nbformat.NotebookNode, student: str) -> nbformat.NotebookNode:
    """The fetched notebook as ``student`` hands it in (solutions from the instructor's ``source``)."""
    for mine, theirs in zip(notebook.cells, source.cells):
        if BEGIN_SOLUTION in theirs.source:
            if student == "right":
                mine.source = theirs.source
            elif student == "wrong":
                mine.source = wrong_solution(theirs.source)
    return notebook


def test_release_submit_autograde_feedback_export_without_warnings(tmp_path):
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's exchange is shared by every user of the machine
    run([sys.executable, str(ROOT / "scripts" / "make_student_versions.py"), str(ROOT / "notebooks" / NB01),
         "--course-dir", str(course), "--output", str(tmp_path / "student"), "--quiet"], ROOT)
    source = nbformat.read(course / "source" / ASSIGNMENT / NB01, as_version=4)  # the copy that was released
    nbgrader("release_assignment", ASSIGNMENT, cwd=course, exchange=exchange)

    for student in STUDENTS:
        home = tmp_path / "home" / student
        home.mkdir(parents=True)
        # a student's own nbgrader configuration names the course (on JupyterHub: ~/.jupyter/nbgrader_config.py)
        (home / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n")
        nbgrader("fetch_assignment", ASSIGNMENT, cwd=home, exchange=exchange)
        fetched = home / ASSIGNMENT / NB01
        nbformat.write(answered(nbformat.read(fetched, as_version=4), source, student), fetched)
        nbgrader("submit", ASSIGNMENT, f"--student={student}", cwd=home, exchange=exchange)

    # The three students share this machine's account, so their submissions are not owned by accounts
    # named like them; on a hub they are, and collect's owner check stays on there.
    nbgrader("collect", ASSIGNMENT, "--ExchangeCollect.check_owner=False", cwd=course, exchange=exchange)
    nbgrader("autograde", ASSIGNMENT, cwd=course, exchange=exchange)
    nbgrader("generate_feedback", ASSIGNMENT, cwd=course, exchange=exchange)
    nbgrader("export", cwd=course, exchange=exchange)

    with open(course / "grades.csv", newline="", encoding="utf-8") as handle:
        grades = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(handle)}
    tests = sum(BEGIN_HIDDEN in cell.source for cell in source.cells)
    assert grades == {"right": (tests, tests), "wrong": (0.0, tests), "stub": (0.0, tests)}, grades

    hidden = {line.strip() for cell in source.cells for line in region(cell.source, BEGIN_HIDDEN, END_HIDDEN).split("\n")
              if line.strip() and BEGIN_HIDDEN in cell.source}
    for student in STUDENTS:
        page = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", "", page)
        shown = sorted(line for line in hidden if line in text)
        assert not shown, f"the feedback of {student} shows hidden tests: {shown[:5]}"
        assert not external_resources(page), f"the feedback of {student} loads {external_resources(page)}"
        assert "<math" in page, "the feedback's formulas should be MathML"
