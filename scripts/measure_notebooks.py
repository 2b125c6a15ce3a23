#!/usr/bin/env python
"""Measure what each notebook costs: wall time and peak memory of a run with its default parameters.

    python scripts/measure_notebooks.py                      # every notebooks/NN_*.ipynb
    python scripts/measure_notebooks.py notebooks/01_noise_to_image.ipynb notebooks/02_forward_process.ipynb

Each notebook runs top to bottom in a fresh ``python3`` kernel (working directory ``notebooks/``,
``HF_HUB_OFFLINE=1``), exactly as stored: default parameters, nothing injected. Measured:

- ``wall_s``: seconds from the first cell to the end of the last one (kernel start-up not included);
- ``slowest_cell_s`` and ``slowest_cell``: the slowest cell and its index;
- ``unet_ms_per_image``: the machine's speed, measured before the notebooks: one evaluation of the shipped
  pixel DDPM (notebooks 03-04) on a batch of 256 digits, per image (2 warm-up calls, the median of 10), with
  the notebooks' default threads: the figure of notebook 04's section 1, so that times taken on different
  machines can be compared;
- ``peak_rss_mib``: the kernel process's peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``,
  the same figure as ``VmHWM`` in ``/proc/<pid>/status`` on Linux), read in the kernel after the last
  cell. This is what must fit in Binder's memory limit (mybinder.org: 2 GiB at most, 1 GiB
  guaranteed); processes the notebook starts itself are not included.

The results are merged into ``docs/notebook_costs.json`` (one entry per notebook; notebooks not
measured this time keep their entry) and the table ``docs/notebook_costs.md`` is regenerated from it.
The same table replaces the block between ``<!-- notebook-costs:begin -->`` and
``<!-- notebook-costs:end -->`` in docs/INSTRUCTORS.md and README.md, where those markers are, and one line of
run times (each notebook, the whole course, the largest peak) replaces the README's ``course-time`` block under
its course map. All
files are written atomically. ``--tables-only`` regenerates the tables from the JSON without measuring. Each entry records the machine (CPU count, torch version) and the
load average before and after the run: timings taken while other jobs ran are not comparable, so measure
on an otherwise idle machine. The notebooks are not modified.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # also when a test loads this file by path
from reports import README, publish, write_block  # noqa: E402

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
JSON_PATH = ROOT / "docs" / "notebook_costs.json"
MARKDOWN_PATH = ROOT / "docs" / "notebook_costs.md"
BINDER_LIMIT_MIB = 2048
HEADROOM_MIB = 1144  # 1.2e9 bytes: what a kernel may take and leave Binder's Jupyter server its share of 2 GB
TABLE_DOCUMENTS = (ROOT / "docs" / "INSTRUCTORS.md", ROOT / "README.md")
TABLE_KEY = "notebook-costs"
COURSE_TIME_KEY = "course-time"  # the line under the README's course map

PEAK_MEMORY_CELL = """\
import json, resource, sys
_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"peak_rss_bytes": _peak}))"""


def default_notebooks() -> list[Path]:
    return sorted(path for path in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.match(path.name))


def parameter(nb: nbformat.NotebookNode, name: str):
    """The default value of ``name`` in the notebook's ``parameters`` cell (None if it has none)."""
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
                    return ast.literal_eval(node.value)
    return None


def torch_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:  # noqa: BLE001 - only informative
        return "unknown"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "course_utils"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def unet_ms_per_image(threads: int, batch: int = 256) -> float:
    """Milliseconds per image of one evaluation of the shipped pixel DDPM on this CPU (notebook 04, section 1), the
    median of 10 calls: on a shared machine single calls vary by 20% or more."""
    import torch

    from course_utils.ddpm import load_ddpm

    torch.set_num_threads(threads)
    model = load_ddpm()[0]
    x, t = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.full((batch,), 500)
    with torch.no_grad():
        for _ in range(2):  # warm-up: the first calls allocate
            model(x, t)
        seconds = []
        for _ in range(10):
            start = time.perf_counter()
            model(x, t)
            seconds.append(time.perf_counter() - start)
    return round(statistics.median(seconds) / batch * 1000, 2)


def measure(path: Path, timeout: int = 600) -> dict:
    """Run ``path`` in a fresh kernel; returns the measurements (raises CellExecutionError on an error)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    load_before = load_average()
    cell_times = []
    with client.setup_kernel(env=dict(os.environ, HF_HUB_OFFLINE="1")):
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell_start = time.perf_counter()
            client.execute_cell(cell, index)
            cell_times.append((time.perf_counter() - cell_start, index))
        wall = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(PEAK_MEMORY_CELL)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    text = "".join(output.get("text", "") for output in probe.outputs if output.output_type == "stream")
    peak = json.loads(text.strip().splitlines()[-1])["peak_rss_bytes"]
    slowest = sorted(cell_times, reverse=True)
    slowest_time, slowest_index = slowest[0]
    print("  slowest cells: " + ", ".join(f"cell {index} {seconds:.1f} s" for seconds, index in slowest[:5]),
          flush=True)  # where to cut when a notebook runs over its time
    return {
        "wall_s": round(wall, 1),
        "slowest_cell_s": round(slowest_time, 1),
        "slowest_cell": slowest_index,
        "peak_rss_mib": round(peak / 2**20),
        "threads": parameter(nb, "THREADS"),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "torch": torch_version(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "commit": git_commit(),
        "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def markdown_table(costs: dict) -> str:
    lines = [
        "<!-- Generated by scripts/measure_notebooks.py from docs/notebook_costs.json: do not edit by hand. -->",
        "",
        "| Notebook | Wall time | Slowest cell | Peak memory (kernel) | Threads | CPUs | UNet ms/image | Load avg before/after | Measured |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name in sorted(costs):
        entry = costs[name]
        memory = f"{entry['peak_rss_mib']} MiB" + (" (over Binder's 2 GiB)" if entry["peak_rss_mib"] > BINDER_LIMIT_MIB else "")
        lines.append(
            f"| {name} | {entry['wall_s']:.0f} s | {entry['slowest_cell_s']:.0f} s (cell {entry['slowest_cell']}) "
            f"| {memory} | {entry['threads']} | {entry['cpu_count']} | {entry.get('unet_ms_per_image', '-')} "
            f"| {entry['load_average_before']} / {entry['load_average_after']} | {entry['measured']}, {entry['commit']} |")
    lines += ["", "Default parameters, fresh kernel, kernel start-up not included. A load average above the "
              "number of CPUs plus one (the notebook's own threads count in it) means other jobs shared the machine "
              "and the times are too long. *UNet ms/image* is the machine's speed (one evaluation of the shipped "
              "pixel DDPM per image, as notebook 04 section 1 times it): times scale with it from one machine to "
              "another.", ""]
    return "\n".join(lines)


def course_time(costs: dict) -> str:
    """One line for the README's course map: each notebook's wall time and the whole course's, from the same JSON."""
    def duration(seconds: float) -> str:
        return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"

    times = ", ".join(f"{name[:2]} {duration(costs[name]['wall_s'])}" for name in sorted(costs))
    total = sum(entry["wall_s"] for entry in costs.values())
    peak = max(entry["peak_rss_mib"] for entry in costs.values())
    busy = sorted(name[:2] for name, entry in costs.items()
                  if max(entry["load_average_before"] or 0, entry["load_average_after"] or 0) > entry["cpu_count"] + 1)
    caveat = (f" The times of {', '.join(busy)} were measured while other jobs shared the machine (load average above "
              f"its CPU count plus one) and are too long; peak memory does not depend on it." if busy else "")
    speeds = sorted({entry["unet_ms_per_image"] for entry in costs.values() if "unet_ms_per_image" in entry})
    speed = ""
    if speeds:  # entries measured before the speed was recorded have none
        span = f"{speeds[0]:g}" if len(speeds) == 1 else f"{speeds[0]:g} to {speeds[-1]:g}"
        speed = f" (one UNet evaluation: {span} ms per image)"
    return (f"Run times with the default parameters on a {costs[min(costs)]['cpu_count']}-core CPU{speed}: {times}; "
            f"all {len(costs)} notebooks in {duration(total)} ({total:.0f} s of notebook wall time), no kernel above "
            f"{peak} MiB. Measured by `scripts/measure_notebooks.py`, see [Measured](#measured).{caveat}\n")


def write_results(costs: dict, json_path: Path, markdown_path: Path, documents: tuple[Path, ...] = TABLE_DOCUMENTS) -> None:
    publish(costs, markdown_table(costs), json_path, markdown_path, TABLE_KEY, documents=documents)
    if README in documents:
        write_block(README, course_time(costs), COURSE_TIME_KEY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to measure (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--json", type=Path, default=JSON_PATH, help="results file (default docs/notebook_costs.json)")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN_PATH, help="table (default docs/notebook_costs.md)")
    parser.add_argument("--tables-only", action="store_true", help="only regenerate the tables from the JSON file")
    args = parser.parse_args(argv)
    if args.tables_only:
        if not args.json.is_file():
            parser.error(f"{args.json} does not exist: measure first")
        write_results(json.loads(args.json.read_text(encoding="utf-8")), args.json, args.markdown)
        return 0
    if args.timeout < 1:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    paths = [path.resolve() for path in args.notebooks] or default_notebooks()
    for path in paths:
        if not path.is_file() or not NOTEBOOK_NAME.match(path.name):
            parser.error(f"{path} is not a notebook named NN_name.ipynb")
    costs = json.loads(args.json.read_text(encoding="utf-8")) if args.json.is_file() else {}
    failed = []
    thread_counts = {parameter(nbformat.read(path, as_version=4), "THREADS") or 1 for path in paths}
    speeds = {threads: unet_ms_per_image(threads) for threads in sorted(thread_counts)}  # before the notebooks
    print("UNet ms per image: " + ", ".join(f"{ms} with {threads} thread(s)" for threads, ms in speeds.items()), flush=True)
    for path in paths:
        print(f"measuring {path.name} ...", flush=True)
        try:
            costs[path.name] = measure(path, args.timeout)
            costs[path.name]["unet_ms_per_image"] = speeds[costs[path.name]["threads"] or 1]
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:  # report it, measure the others
            print(f"FAILED {path.name} (not recorded):\n{error}", file=sys.stderr)
            failed.append(path.name)
            continue
        entry = costs[path.name]
        print(f"{path.name}: {entry['wall_s']} s, peak {entry['peak_rss_mib']} MiB "
              f"(load average {entry['load_average_before']} -> {entry['load_average_after']})", flush=True)
        write_results(costs, args.json, args.markdown)  # after each notebook, so an interruption keeps the rest
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
