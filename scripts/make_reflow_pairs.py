#!/usr/bin/env python
"""Draw the (noise, image) pairs of reflow (notebook 10): noise from seeded generators, each carried to its image by
the flow model's ODE (``course_utils.reflow.reflow_pairs``: Euler, or Heun, on uniform sigmas).

    python scripts/make_reflow_pairs.py --num-pairs 50000 --nfe 20 --threads 1     # 35 to 60 min of one CPU core
    python scripts/make_reflow_pairs.py --flow checkpoints/flow_long.safetensors --run-dir runs/reflow_pairs_long

Resumable: the pairs are made in chunks of --chunk-size. Chunk k's noise comes from a generator seeded with
(seed, k) (``resumable.step_generator``), so a chunk is the same whenever it is made. Each finished chunk is written
atomically to --run-dir as ``chunk_KKKKK.safetensors``, then ``progress.json`` records it (its SHA-256, pairs and
seconds) and ``log.csv`` its speed. A killed run, run again with the same command, goes on after the last chunk it
finished; a run with other settings (flow model, NFE, sampler, seed, chunk size, dtype) in the same --run-dir is
refused. A larger --num-pairs later extends the same pairs. One network evaluation costs 2 to 2.5 ms of CPU time
per image on one thread of the course's 2-core CPU: 50,000 pairs at 20 NFE are 1,000,000 evaluations, 35 to 45
minutes of one core alone, about an hour while other work shares the CPU.

At the end the chunks are joined into one safetensors file (--out, default RUN_DIR/pairs.safetensors) holding
``noise`` and ``images`` [N, 1, 28, 28], and its manifest (``pairs.json``: SHA-256, command, seed, the flow model's
SHA-256, NFE, wall and CPU seconds, machine, and the quality of the pairs' images: MNIST FID of the first 1,000 against 1,000
real test digits, and the confident share of all). scripts/train_reflow.py reads both.

Stored as float16 by default: 50,000 pairs take 157 MB (float32: 314 MB). Rounding moves a value in [-1, 1] by at
most 2^-12 (0.00024, a thirtieth of one grey level of 1/127.5) and a noise value of size 4 by at most 0.002; the
2-rectified flow's own regression error is far larger. The pairs stay in runs/ (not in git, which holds the trained
model only).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import (OVERWRITE_FLAG, atomic_write, images_seen, sha256_of,  # noqa: E402
                                      shipped_output_problem, write_json)
from course_utils.data import DATA_DIR  # noqa: E402
from course_utils.flow import steps_for_evaluations  # noqa: E402
from course_utils.metrics import classify, confident_share, load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.reflow import load_flow_file, reflow_pairs  # noqa: E402
from reports import machine, relative, reproduce_command  # noqa: E402
from resumable import exported_file_problem, integer_in, step_generator  # noqa: E402

IMAGE_SHAPE = (1, 28, 28)
QUALITY_SAMPLES = 1000  # images of the pairs measured by MNIST FID, as the course's tables


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flow", type=Path, default=DATA_DIR / "flow_mnist.safetensors",
                        help="the flow model whose ODE makes the pairs (a .safetensors with its .json manifest; "
                             "default data/flow_mnist.safetensors)")
    parser.add_argument("--num-pairs", type=integer_in(1, 10_000_000), default=50_000, help="default 50,000")
    parser.add_argument("--nfe", type=integer_in(1, 1000), default=20,
                        help="network evaluations per pair (default 20: 20 Euler steps; Heun: 2 N - 1, odd)")
    parser.add_argument("--sampler", choices=("euler", "heun"), default="euler")
    parser.add_argument("--chunk-size", type=integer_in(1, 100_000), default=500,
                        help="pairs per chunk: the unit of resuming, of the noise seeds and of the log (default 500)")
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250,
                        help="images per network call (default 250; it does not change the pairs)")
    parser.add_argument("--store-dtype", choices=("float16", "float32"), default="float16",
                        help="dtype of the stored pairs (default float16: half the bytes, rounding far below the "
                             "model's error)")
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the network runs (the noise is always drawn on the CPU, so the pairs agree up "
                             "to rounding)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "reflow_pairs")
    parser.add_argument("--out", type=Path, default=None, help="the joined pairs (default RUN_DIR/pairs.safetensors)")
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help="allow --out to replace a file in data/")
    args = parser.parse_args(argv)
    args.out = args.out or args.run_dir / "pairs.safetensors"
    if args.out.suffix != ".safetensors":
        parser.error(f"--out must name a .safetensors file (its manifest goes beside it as .json), got {args.out}")
    if args.out.is_dir():
        parser.error(f"--out must be a file path, got the folder {args.out}")
    problem = shipped_output_problem("--out", args.out, args.overwrite_shipped)
    if problem:
        parser.error(problem)
    if args.run_dir.exists() and not args.run_dir.is_dir():
        parser.error(f"--run-dir must be a folder, got the file {args.run_dir}")
    problem = exported_file_problem("--flow", args.flow, "export one with python "
                                    "scripts/train_ddpm.py --objective flow, which writes both")
    if problem:
        parser.error(problem)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA GPU")
    if args.sampler == "heun" and args.nfe % 2 == 0:
        parser.error(f"--nfe must be odd for --sampler heun (N steps spend 2 N - 1 evaluations), got {args.nfe}")
    return args


def chunk_path(run_dir: Path, index: int) -> Path:
    return run_dir / f"chunk_{index:05d}.safetensors"


def chunk_sizes(num_pairs: int, chunk_size: int) -> list[int]:
    full, rest = divmod(num_pairs, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def chunk_noise(seed: int, index: int, chunk_size: int, count: int) -> torch.Tensor:
    """Chunk ``index``'s noise: a full chunk drawn from (seed, index), its first ``count`` kept, so that a chunk
    cut short by --num-pairs is the beginning of the same chunk made whole later."""
    return torch.randn((chunk_size, *IMAGE_SHAPE), generator=step_generator(seed, index))[:count]


def make_chunk(model, seed: int, index: int, chunk_size: int, count: int, args) -> dict[str, torch.Tensor]:
    noise = chunk_noise(seed, index, chunk_size, count)
    steps = steps_for_evaluations(args.nfe, args.sampler)
    images = torch.cat([reflow_pairs(model, part, steps, args.sampler).cpu() for part in noise.split(args.batch_size)])
    dtype = getattr(torch, args.store_dtype)
    return {"noise": noise.to(dtype), "images": images.to(dtype)}


def load_progress(path: Path, settings: dict) -> dict:
    """The chunks finished by an earlier run with the same settings (refuses a run dir made with others)."""
    if not path.is_file():
        return {"settings": settings, "chunks": {}}
    progress = json.loads(path.read_text())
    changed = {key: (progress["settings"].get(key), value) for key, value in settings.items()
               if progress["settings"].get(key) != value}
    if changed:
        described = ", ".join(f"{key}: run has {old!r}, asked {new!r}" for key, (old, new) in changed.items())
        raise SystemExit(f"{path} was made with other settings ({described}). Use the run's settings, or another "
                         f"--run-dir.")
    return progress


def chunk_is_done(progress: dict, run_dir: Path, index: int, count: int) -> bool:
    record = progress["chunks"].get(str(index))
    path = chunk_path(run_dir, index)
    return record is not None and record["count"] == count and path.is_file() and sha256_of(path) == record["sha256"]


def log_chunk(run_dir: Path, index: int, done: int, seconds: float, cpu_seconds: float, count: int) -> None:
    """One row per chunk: chunk, pairs made so far, wall seconds, CPU seconds, wall ms per pair."""
    with open(run_dir / "log.csv", "a", newline="") as handle:
        csv.writer(handle).writerow([index, done, f"{seconds:.2f}", f"{cpu_seconds:.2f}", f"{1000 * seconds / count:.2f}"])


def pair_quality(images: torch.Tensor, seed: int) -> dict:
    """MNIST FID of the pairs' first images against as many real test digits (the course's tables use 1,000), and the
    confident share of all: the reflowed model learns these images, so they bound what it can reach."""
    classifier = load_classifier()
    size = min(QUALITY_SAMPLES, len(images))
    features, probabilities = classify(classifier, images[:size].float().clamp(-1, 1))
    result = {"fid_samples": size}
    if size >= 2:
        reference, _ = real_feature_sets(classifier, size, seed=seed)
        result["mnist_fid"] = round(mnist_fid(reference, features), 3)
    shares = [confident_share(classify(classifier, part.float().clamp(-1, 1))[1]) * len(part)
              for part in images.split(5000)]
    result["confident_share"] = round(sum(shares) / len(images), 4)
    return result


def join_chunks(args, settings: dict, progress: dict, flow_manifest: dict, argv) -> dict:
    """Write the pairs file and its manifest from the finished chunks."""
    parts = [load_file(str(chunk_path(args.run_dir, index))) for index in range(len(chunk_sizes(args.num_pairs,
                                                                                                args.chunk_size)))]
    noise = torch.cat([part["noise"] for part in parts])  # chunk_sizes add up to num_pairs
    images = torch.cat([part["images"] for part in parts])
    metadata = {"settings": json.dumps(settings, sort_keys=True), "num_pairs": str(len(noise))}
    atomic_write(args.out, lambda tmp: save_file({"noise": noise.contiguous(), "images": images.contiguous()},
                                                 str(tmp), metadata=metadata))
    records = [progress["chunks"][str(i)] for i in range(len(parts))]
    seconds = sum(record["seconds"] for record in records)
    cpu_seconds = sum(record.get("cpu_seconds", record["seconds"]) for record in records)
    manifest = {
        "file": args.out.name, "sha256": sha256_of(args.out), "command": reproduce_command("make_reflow_pairs.py", argv),
        "seed": args.seed, "num_pairs": len(noise), "nfe": args.nfe, "sampler": args.sampler,
        "steps": steps_for_evaluations(args.nfe, args.sampler), "shift": 1.0, "chunk_size": args.chunk_size,
        "store_dtype": args.store_dtype, "network_evaluations": len(noise) * args.nfe,
        "flow": {"file": relative(args.flow), "sha256": flow_manifest["sha256"], "steps": flow_manifest.get("steps"),
                 "images_seen": images_seen(flow_manifest), "command": flow_manifest.get("command")},
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
        "threads": sorted({record["threads"] for record in records}),
        "machine": machine(torch.device(args.device)), "device": args.device, "quality": pair_quality(images, args.seed),
    }
    write_json(args.out.with_suffix(".json"), manifest)
    return manifest


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, flow_manifest = load_flow_file(args.flow)
    model = model.to(args.device)
    settings = {"flow_sha256": flow_manifest["sha256"], "nfe": args.nfe, "sampler": args.sampler, "seed": args.seed,
                "chunk_size": args.chunk_size, "store_dtype": args.store_dtype}
    args.run_dir.mkdir(parents=True, exist_ok=True)
    progress_path = args.run_dir / "progress.json"
    progress = load_progress(progress_path, settings)
    sizes = chunk_sizes(args.num_pairs, args.chunk_size)
    todo = [i for i, count in enumerate(sizes) if not chunk_is_done(progress, args.run_dir, i, count)]
    done = made = sum(sizes) - sum(sizes[i] for i in todo)
    if done:
        print(f"continuing {args.run_dir}: {done:,} of {args.num_pairs:,} pairs already made", flush=True)
    started = time.time()
    for index in todo:
        clock, cpu_clock = time.perf_counter(), time.process_time()
        chunk = make_chunk(model, args.seed, index, args.chunk_size, sizes[index], args)
        seconds, cpu_seconds = time.perf_counter() - clock, time.process_time() - cpu_clock
        path = chunk_path(args.run_dir, index)
        atomic_write(path, lambda tmp: save_file(chunk, str(tmp)))
        progress["chunks"][str(index)] = {"count": sizes[index], "sha256": sha256_of(path),
                                          "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                                          "threads": args.threads}
        write_json(progress_path, progress)
        log_chunk(args.run_dir, index, done + sizes[index], seconds, cpu_seconds, sizes[index])
        done += sizes[index]
        rate = (time.time() - started) / (done - made)  # seconds per pair in this run
        print(f"chunk {index + 1}/{len(sizes)}: {done:,}/{args.num_pairs:,} pairs, "
              f"{1000 * seconds / sizes[index]:.1f} ms/pair, {rate * (args.num_pairs - done) / 60:.1f} min left",
              flush=True)
    manifest = join_chunks(args, settings, progress, flow_manifest, argv)
    print(f"wrote {args.out} ({manifest['num_pairs']:,} pairs, sha256 {manifest['sha256'][:12]}...; "
          f"{manifest['seconds'] / 60:.1f} min of sampling; their images: {manifest['quality']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
