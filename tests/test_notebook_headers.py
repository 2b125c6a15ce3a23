"""Each notebook's title cell says how long it runs, and that time is the measured one.

The title cell (docs/CONVENTIONS.md) gives the wall time of a run with the default parameters on a
2-core CPU as ``**Time:** N s`` or ``*Runs in N s (M min)``. The number must agree with
``docs/notebook_costs.json`` (``scripts/measure_notebooks.py``), within 10% or 2 s, so that a notebook
whose cost changes is re-measured and its header updated.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))
COSTS = json.loads((ROOT / "docs" / "notebook_costs.json").read_text(encoding="utf-8"))
STATED_TIME = re.compile(r"(?:\*\*Time:\*\*|\*Runs in) (\d+) s(?: \((\d+\.\d) min\))?")


def stated_seconds(title: str) -> tuple[int, float | None]:
    """The seconds (and minutes, if given) that a title cell states; AssertionError without them."""
    match = STATED_TIME.search(title)
    assert match, "the title cell must state the run time as '**Time:** N s' or '*Runs in N s (M min)'"
    return int(match.group(1)), float(match.group(2)) if match.group(2) else None


def test_stated_time_is_read_and_can_fail():
    assert stated_seconds("*Runs in 195 s (3.3 min) on a 2-core CPU*") == (195, 3.3)
    assert stated_seconds("**Time:** 5 s on a 2-core CPU") == (5, None)
    with pytest.raises(AssertionError):
        stated_seconds("*Runs in about 2 minutes on a 2-core CPU*")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_title_cell_states_the_measured_time(path):
    assert path.name in COSTS, f"{path.name} has no measurement in docs/notebook_costs.json"
    measured = COSTS[path.name]["wall_s"]
    seconds, minutes = stated_seconds(nbformat.read(path, as_version=4).cells[0].source)
    assert abs(seconds - measured) <= max(2.0, 0.1 * measured), \
        f"{path.name} says {seconds} s but docs/notebook_costs.json measured {measured:.1f} s: write {measured:.0f} s"
    if minutes is not None:
        assert abs(minutes - seconds / 60) <= 0.051, f"{seconds} s is {seconds / 60:.2f} min, not {minutes} min"
