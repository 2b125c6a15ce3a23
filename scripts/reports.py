"""Where the scripts put their results, so that every number in the docs is a script's output.

A result goes to three places: a JSON file (``docs/NAME.json``, for tests and later scripts), a markdown
table (``docs/NAME.md``), and the same table inside README.md (and any other document given) between
the markers ``<!-- KEY:begin -->`` and ``<!-- KEY:end -->``. Documents without the markers are left
alone. Every file is written atomically.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_utils.checkpoints import atomic_write, write_json  # noqa: E402

README = ROOT / "README.md"


def machine(device=None) -> str:
    """What ran a training run, for its manifest: the GPU's name on CUDA, else the CPU's core count."""
    import os

    import torch

    if device is not None and torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()}-core CPU"


def reproduce_command(script: str, argv: list[str] | None) -> str:
    """The shell command that reruns ``script`` with these arguments, for a manifest or a table's settings."""
    arguments = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"scripts/{script}", *(shlex.quote(a) for a in arguments)])


def relative(path: Path) -> str:
    """``path`` as the manifests and tables name files: relative to the course when inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def markers(key: str) -> tuple[str, str]:
    """The pair of HTML comments that delimit the generated block ``key`` in a markdown document."""
    return f"<!-- {key}:begin -->", f"<!-- {key}:end -->"


def with_table(text: str, table: str, key: str) -> str:
    """``text`` with the block between the ``key`` markers replaced by ``table`` (unchanged without markers)."""
    begin_marker, end_marker = markers(key)
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        return text
    return text[:begin + len(begin_marker)] + "\n" + table + text[end:]


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def measured_runs(json_path: Path, settings: dict, same: tuple[str, ...], fresh: bool = False) -> dict:
    """The runs already measured in ``json_path`` when its settings agree with ``settings`` on every key of
    ``same`` (checkpoint, sample count, seed, ...), so an interrupted measurement continues; else none."""
    if fresh or not json_path.is_file():
        return {}
    previous = json.loads(json_path.read_text())
    if all(previous.get("settings", {}).get(key) == settings[key] for key in same):
        runs = previous.get("runs", {})
        print(f"continuing {json_path}: {len(runs)} run(s) already measured")
        return runs
    print(f"{json_path} was made with other settings or another checkpoint: starting over")
    return {}


def commands_text(table: dict) -> str:
    """The commands that measured the table's runs, in order, each in backticks (a table may be extended by several
    invocations, :func:`measured_runs`); a run stored without its ``"command"`` (an older table) was measured by the
    settings' command."""
    commands = dict.fromkeys(run.get("command", table["settings"]["command"]) for run in table["runs"].values())
    quoted = [f"`{command}`" for command in commands or [table["settings"]["command"]]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def publish(result: dict, table: str, json_path: Path, markdown_path: Path, key: str,
            heading: str = "", documents: tuple[Path, ...] | None = None) -> None:
    """Write ``result`` as JSON, ``table`` (under ``heading``) as markdown, and ``table`` into ``documents``
    (by default README.md, but only for a result written into docs/: a trial run with its own ``--json``
    leaves the README alone)."""
    write_json(json_path, result)
    write_text(markdown_path, (f"# {heading}\n\n" if heading else "") + table)
    if documents is None:
        documents = (README,) if json_path.resolve().parent == ROOT / "docs" else ()
    for document in documents:
        write_block(document, table, key)


def write_block(document: Path, table: str, key: str) -> None:
    """Put ``table`` between the ``key`` markers of ``document``; a missing document or an unchanged block is left
    alone (no write)."""
    if document.is_file():
        text = document.read_text(encoding="utf-8")
        updated = with_table(text, table, key)
        if updated != text:
            write_text(document, updated)


def output_path_problem(option: str, path: Path) -> str | None:
    """Why a script cannot write its result to ``path`` (the value of ``option``), or None; checked before any
    work, so a misspelled folder stops the script at once instead of after a long measurement."""
    if path.is_dir():
        return f"{option} must be a file path, got the folder {path}"
    if not path.parent.is_dir():
        return f"{option} {path}: the folder {path.parent} does not exist (create it, or choose another path)"
    return None


def parse_with_outputs(parser: argparse.ArgumentParser, argv: list[str] | None, name: str,
                       fresh: bool = False) -> argparse.Namespace:
    """Add ``--json`` and ``--markdown`` (default ``docs/NAME.json`` and ``docs/NAME.md``) as the
    last options of ``parser``, with ``fresh`` also ``--fresh`` (for a script that continues from
    ``--json``, see :func:`measured_runs`), and parse ``argv``; a path that cannot be written stops
    the script at once, with an argparse error (:func:`output_path_problem`)."""
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / f"{name}.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / f"{name}.md")
    if fresh:
        parser.add_argument("--fresh", action="store_true", help="ignore runs already in --json")
    args = parser.parse_args(argv)
    for option, output in (("--json", args.json), ("--markdown", args.markdown)):  # before any work
        problem = output_path_problem(option, output)
        if problem:
            parser.error(problem)
    return args


def measure_samples(draw, classifier, reference, num_samples: int, batch_size: int, seed: int,
                    description: str | None = None) -> dict:
    """One row of a sampler table: ``num_samples`` images drawn ``batch_size`` at a time by
    ``draw(count, generator)`` from one generator seeded with ``seed`` (``samplers.sample_in_batches``), timed,
    and measured against the reference features: the NFE, MNIST FID, confident share, class histogram and
    milliseconds per image (sampling only)."""
    from course_utils.metrics import evaluate_samples  # only the measuring scripts need the classifier's code
    from course_utils.samplers import sample_in_batches

    started = time.perf_counter()
    images, nfe = sample_in_batches(draw, num_samples, batch_size, seed, description)
    seconds = time.perf_counter() - started
    result = evaluate_samples(classifier, images, reference)
    return {"nfe": nfe, "mnist_fid": round(result["fid"], 3),
            "confident_share": round(result["confident_share"], 4),
            "class_histogram": [round(float(v), 4) for v in result["class_histogram"]],
            "ms_per_image": round(1000 * seconds / num_samples, 3)}
