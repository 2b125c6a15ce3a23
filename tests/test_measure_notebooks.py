"""scripts/measure_notebooks.py: the cost tables are generated from docs/notebook_costs.json, never edited by hand."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("measure_notebooks", ROOT / "scripts" / "measure_notebooks.py")
measure_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure_notebooks)
import reports  # noqa: E402  (on sys.path once measure_notebooks is loaded)

ENTRY = {"wall_s": 12.3, "slowest_cell_s": 8.0, "slowest_cell": 5, "peak_rss_mib": 700, "threads": 2, "cpu_count": 2,
         "load_average_before": 0.1, "load_average_after": 1.2, "torch": "2.13.0", "python": "3.11.7",
         "machine": "x86_64", "commit": "abc1234", "measured": "2025-01-01 00:00 UTC"}


def stored_costs() -> dict:
    path = ROOT / "docs" / "notebook_costs.json"
    if not path.is_file():
        pytest.skip("docs/notebook_costs.json does not exist yet (run scripts/measure_notebooks.py)")
    return json.loads(path.read_text(encoding="utf-8"))


def test_stored_tables_are_generated_from_the_json():
    table = measure_notebooks.markdown_table(stored_costs())
    assert (ROOT / "docs" / "notebook_costs.md").read_text(encoding="utf-8") == table, \
        "docs/notebook_costs.md is stale: run python scripts/measure_notebooks.py --tables-only"
    for document in measure_notebooks.TABLE_DOCUMENTS:
        if document.is_file():
            text = document.read_text(encoding="utf-8")
            assert reports.with_table(text, table, measure_notebooks.TABLE_KEY) == text, \
                f"the cost table in {document.name} is stale: run python scripts/measure_notebooks.py --tables-only"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = measure_notebooks.course_time(stored_costs())
    assert reports.markers(measure_notebooks.COURSE_TIME_KEY)[0] in readme, "the README lost its course-time markers"
    assert reports.with_table(readme, line, measure_notebooks.COURSE_TIME_KEY) == readme, \
        "the run times under the README's course map are stale: run python scripts/measure_notebooks.py --tables-only"


def test_every_measured_notebook_exists():
    missing = [name for name in stored_costs() if not (ROOT / "notebooks" / name).is_file()]
    assert not missing, f"docs/notebook_costs.json measures notebooks that do not exist: {missing}"


def test_every_notebook_kernel_stays_under_the_binder_headroom():
    over = {name: entry["peak_rss_mib"] for name, entry in stored_costs().items()
            if entry["peak_rss_mib"] > measure_notebooks.HEADROOM_MIB}
    assert not over, (f"kernel peaks above {measure_notebooks.HEADROOM_MIB} MiB (1.2 GB), which leaves too little of "
                      f"Binder's 2 GB for the Jupyter server: {over}")


def test_table_rounds_and_flags_the_binder_limit():
    table = measure_notebooks.markdown_table({"01_a.ipynb": ENTRY, "02_b.ipynb": dict(ENTRY, peak_rss_mib=3000)})
    rows = [line for line in table.splitlines() if line.startswith("| 0")]
    assert rows[0].startswith("| 01_a.ipynb | 12 s | 8 s (cell 5) | 700 MiB |")
    assert "3000 MiB (over Binder's 2 GiB)" in rows[1] and "over Binder" not in rows[0]


def test_course_time_lists_every_notebook_and_sums_them():
    line = measure_notebooks.course_time({"01_a.ipynb": ENTRY, "02_b.ipynb": dict(ENTRY, wall_s=95.0, peak_rss_mib=900)})
    assert line.startswith("Run times with the default parameters on a 2-core CPU: 01 12 s, 02 1.6 min; ")
    assert "all 2 notebooks in 1.8 min (107 s of notebook wall time), no kernel above 900 MiB." in line
    assert "measured while other jobs" not in line
    busy = measure_notebooks.course_time({"01_a.ipynb": ENTRY, "02_b.ipynb": dict(ENTRY, load_average_after=3.5)})
    assert "The times of 02 were measured while other jobs shared the machine" in busy
    own_threads = measure_notebooks.course_time({"01_a.ipynb": dict(ENTRY, load_average_after=2.6)})
    assert "other jobs" not in own_threads  # 2 CPUs, 2 notebook threads and a little more: not another job


def test_the_machine_speed_is_reported_when_measured():
    fast, slow = dict(ENTRY, unet_ms_per_image=1.93), dict(ENTRY, unet_ms_per_image=3.9)
    table = measure_notebooks.markdown_table({"01_a.ipynb": fast, "02_b.ipynb": ENTRY})
    rows = [line for line in table.splitlines() if line.startswith("| 0")]
    assert "| 2 | 2 | 1.93 |" in rows[0] and "| 2 | 2 | - |" in rows[1]  # an older entry without it
    assert "2-core CPU (one UNet evaluation: 1.93 ms per image):" in measure_notebooks.course_time({"01_a.ipynb": fast})
    assert "(one UNet evaluation: 1.93 to 3.9 ms per image)" in \
        measure_notebooks.course_time({"01_a.ipynb": fast, "02_b.ipynb": slow, "03_c.ipynb": fast})
    assert "UNet evaluation" not in measure_notebooks.course_time({"01_a.ipynb": ENTRY})


def test_unet_speed_is_a_positive_number_of_milliseconds():
    assert 0 < measure_notebooks.unet_ms_per_image(threads=1, batch=4) < 1000


def test_with_table_replaces_only_the_marked_block():
    text = "intro\n<!-- notebook-costs:begin -->\nold\n<!-- notebook-costs:end -->\nrest\n"
    assert reports.with_table(text, "new\n", "notebook-costs") == \
        "intro\n<!-- notebook-costs:begin -->\nnew\n<!-- notebook-costs:end -->\nrest\n"
    assert reports.with_table(text, "new\n", "sampler-table") == text
    assert reports.with_table("no markers", "new\n", "notebook-costs") == "no markers"


def test_parameter_reads_the_default_from_the_parameters_cell():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("THREADS = 3  # threads\nSEED = 0  # seed", metadata={"tags": ["parameters"]})]
    assert measure_notebooks.parameter(nb, "THREADS") == 3
    assert measure_notebooks.parameter(nb, "MISSING") is None


def test_publish_writes_json_markdown_and_the_marked_documents(tmp_path):
    marked = tmp_path / "README.md"
    marked.write_text("a\n<!-- demo:begin -->\nold\n<!-- demo:end -->\nb\n", encoding="utf-8")
    unmarked = tmp_path / "OTHER.md"
    unmarked.write_text("no markers here\n", encoding="utf-8")
    reports.publish({"fid": 1.5}, "| fid |\n| 1.5 |\n", tmp_path / "demo.json", tmp_path / "demo.md", "demo",
                    heading="Demo", documents=(marked, unmarked, tmp_path / "missing.md"))
    assert json.loads((tmp_path / "demo.json").read_text()) == {"fid": 1.5}
    assert (tmp_path / "demo.md").read_text() == "# Demo\n\n| fid |\n| 1.5 |\n"
    assert marked.read_text() == "a\n<!-- demo:begin -->\n| fid |\n| 1.5 |\n<!-- demo:end -->\nb\n"
    assert unmarked.read_text() == "no markers here\n"
    assert not (tmp_path / "missing.md").exists()


def test_a_result_written_outside_docs_leaves_the_readme_alone(tmp_path):
    readme = reports.README.read_text(encoding="utf-8")
    reports.publish({"fid": 1.5}, "| fid |\n| 1.5 |\n", tmp_path / "t.json", tmp_path / "t.md", "sampler-table")
    assert (tmp_path / "t.md").read_text() == "| fid |\n| 1.5 |\n"
    assert reports.README.read_text(encoding="utf-8") == readme
