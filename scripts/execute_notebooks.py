#!/usr/bin/env python
"""Execute course notebooks in place with their default parameters, so the stored outputs come from a real run.

    python scripts/execute_notebooks.py                      # every notebooks/NN_*.ipynb
    python scripts/execute_notebooks.py notebooks/02_forward_process.ipynb

Each notebook is first synchronised with its jupytext source ``notebook_sources/NN_name.md``
(``jupytext --sync``: the newer of the two gives the inputs), so an edit to either is what runs. Each
runs in a fresh ``python3`` kernel with the working directory ``notebooks/`` and
``HF_HUB_OFFLINE=1`` (the course runs offline), with a limit of 600 s per cell. The executed notebook
replaces the file atomically (temporary file in the same folder, then ``os.replace``), so an error or
an interruption leaves the previous version untouched. Prints each notebook's wall time; exits with
status 1 if any notebook failed.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext.cli
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from course_utils.checkpoints import atomic_write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")


def default_notebooks() -> list[Path]:
    """All ``notebooks/NN_name.ipynb``, in course order."""
    return sorted(path for path in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.match(path.name))


# Random ids (uuid4 hex) that widgets (tqdm's progress bars, sliders) and matplotlib's animations get afresh at every run
RANDOM_ID = re.compile(r'(?:"model_id": "|IPY_MODEL_|_anim_img)([0-9a-f]{32})')


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"  # notebook metadata: every widget model's state
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # an output that shows one widget


def widget_order(nb: nbformat.NotebookNode) -> list[str]:
    """The notebook's widget model ids in an order that does not depend on the run: depth first from each widget
    an output shows, in cell order, following each model's references (children, layout, style) in the order of
    its sorted state keys; models nothing refers to come last. (The kernel stores the models in the order it
    happened to create them, which differs from run to run.)"""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    order: list[str] = []

    def visit(model_id: str) -> None:
        if model_id in order or model_id not in state:
            return
        order.append(model_id)
        model_state = state[model_id].get("state", {})
        for key in sorted(model_state):
            values = model_state[key] if isinstance(model_state[key], list) else [model_state[key]]
            for value in values:
                if isinstance(value, str) and value.startswith("IPY_MODEL_"):
                    visit(value[len("IPY_MODEL_"):])

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                visit(view["model_id"])
    return order + [model_id for model_id in state if model_id not in order]


def stable_ids(nb: nbformat.NotebookNode) -> str:
    """The notebook as JSON text with each random widget and animation id replaced by a number
    (``00000000000000000000000000000001``, ...): widgets in :func:`widget_order`, then any other id in order of
    first appearance. Re-executing an unchanged notebook then changes nothing but what its computation changed."""
    order = {model_id: f"{number + 1:032x}" for number, model_id in enumerate(widget_order(nb))}
    text = nbformat.writes(nb)
    for match in RANDOM_ID.finditer(text):
        order.setdefault(match.group(1), f"{len(order) + 1:032x}")
    if not order:
        return text
    numbered = re.sub(r"[0-9a-f]{32}", lambda match: order.get(match.group(0), match.group(0)), text)
    return nbformat.writes(nbformat.reads(numbered, as_version=4))  # written again: the models sorted by number


def write_atomically(nb: nbformat.NotebookNode, path: Path) -> None:
    text = stable_ids(nb)
    atomic_write(path, lambda temporary: Path(temporary).write_text(text if text.endswith("\n") else text + "\n"))


def execute(path: Path, timeout: int = 600) -> float:
    """Sync ``path`` with its source, run it top to bottom and store the outputs in it, and sync the
    source again (its timestamp); returns the wall time in seconds."""
    jupytext.cli.jupytext(["--sync", "--quiet", str(path)])
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        record_timing=False,  # no timestamps in the stored notebook: re-running gives a clean diff
        coalesce_streams=True,  # one stdout output per cell, however the kernel happened to flush it
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    client.execute(env=env)
    elapsed = time.perf_counter() - start
    nbformat.validate(nb)
    write_atomically(nb, path)
    jupytext.cli.jupytext(["--sync", "--quiet", str(path)])
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    paths = [path.resolve() for path in args.notebooks] or default_notebooks()
    if not paths:
        parser.error(f"no notebooks named NN_name.ipynb in {NOTEBOOK_DIR}")
    failed = []
    for path in paths:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            failed.append(path)
            continue
        print(f"executing {path.name} ...", flush=True)
        try:
            elapsed = execute(path, args.timeout)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            # Report this notebook and go on with the others: one dead kernel must not stop a batch.
            print(f"FAILED {path.name} ({type(error).__name__}; file left unchanged):\n{error}", file=sys.stderr)
            failed.append(path)
            continue
        print(f"{path.name}: {elapsed:.1f} s wall time", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(path.name for path in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
