"""Measure the shipped pixel DDPM: MNIST FID (with its data floor), confident share, class histogram.

    python scripts/evaluate_ddpm.py --num-samples 1000 --steps 100 --write-manifest

Samples with the notebook's default sampler (DDPM ancestral, respaced to --steps steps) and writes the
figures into the "quality" entry of data/ddpm_mnist.json with --write-manifest, and the table into README.md
between the ``pixel-model`` markers.
--from-state evaluates the EMA weights of an unfinished training run instead (runs/ddpm_mnist/state.pt),
--checkpoint a pixel DDPM exported elsewhere (a training run's --out, with its .json manifest beside it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import images_seen, load_manifest, training_commands, write_json  # noqa: E402
from course_utils.data import DATA_DIR  # noqa: E402
from course_utils.ddpm import PREDICTION_TYPES, load_ddpm, sample_ddpm  # noqa: E402
from course_utils.metrics import (classify, confident_share, evaluate_samples, load_classifier, mnist_fid,  # noqa: E402
                                  real_feature_sets, test_digit_sets)
from course_utils.schedules import alphas_cumprod, make_betas  # noqa: E402
from course_utils.unet import TinyUNet  # noqa: E402
from reports import README, reproduce_command, with_table, write_text  # noqa: E402  (scripts/ is on sys.path)
from resumable import exported_file_problem, integer_in  # noqa: E402


def model_from_state(state_path: Path, prediction_type: str):
    """The EMA weights of an unfinished run (pixel UNet 32/64/128, cosine schedule) and its prediction target."""
    try:
        state = torch.load(state_path, weights_only=True, map_location="cpu")
    except Exception as error:  # not a torch file, damaged, or holding objects weights_only refuses
        raise SystemExit(f"--from-state {state_path} is not a training state (runs/NAME/state.pt): torch.load "
                         f"could not read it ({type(error).__name__})") from None
    if not isinstance(state, dict) or "ema" not in state or "step" not in state:
        raise SystemExit(f"--from-state {state_path} is not a training state written by scripts/train_ddpm.py "
                         f"(it holds no 'ema' weights and 'step')")
    model = TinyUNet((32, 64, 128))
    try:
        model.load_state_dict(state["ema"])
    except RuntimeError:
        raise SystemExit(f"--from-state {state_path} holds another network than the pixel UNet 32/64/128 "
                         f"(a latent or resized run: evaluate its exported .safetensors instead)") from None
    prediction_type = state.get("settings", {}).get("prediction_type", prediction_type)
    print(f"EMA weights of {state_path} at step {state['step']} ({prediction_type})")
    return model.eval(), alphas_cumprod(make_betas("cosine", 1000)).float(), prediction_type


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000,
                        help="samples, and real test digits per set (2 to 5000)")
    parser.add_argument("--steps", type=integer_in(1, 1000), default=100, help="sampler steps (default 100)")
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--from-state", type=Path, default=None)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a .safetensors pixel DDPM with its .json manifest beside it (default: the shipped one)")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, default="v_prediction",
                        help="the target of a --from-state run that did not record it (default v_prediction)")
    parser.add_argument("--write-manifest", action="store_true")
    args = parser.parse_args(argv)
    if args.from_state is not None and not args.from_state.is_file():
        parser.error(f"--from-state must be a training state file such as runs/ddpm_mnist/state.pt, got "
                     f"{args.from_state} (not a file)")
    if args.checkpoint is not None and (args.from_state is not None or args.write_manifest):
        parser.error("--checkpoint evaluates another file than the shipped model: it goes without --from-state "
                     "and --write-manifest (export to data/ with scripts/train_ddpm.py --overwrite-shipped first)")
    if args.checkpoint is not None:
        problem = exported_file_problem("--checkpoint", args.checkpoint,
                                        "export one with python scripts/train_ddpm.py --out PATH")
        if problem:
            parser.error(problem)
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        model, alpha_bar, manifest = load_ddpm(args.checkpoint.stem, args.checkpoint.parent)
        prediction_type = manifest["config"]["prediction_type"]
    elif args.from_state:
        model, alpha_bar, prediction_type = model_from_state(args.from_state, args.prediction_type)
    else:
        model, alpha_bar, manifest = load_ddpm()
        prediction_type = manifest["config"]["prediction_type"]
    classifier = load_classifier()
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    data_floor = mnist_fid(reference, other)

    generator = torch.Generator().manual_seed(args.seed)
    started = time.time()
    samples = torch.cat([
        sample_ddpm(model, min(args.batch_size, args.num_samples - start), alpha_bar, args.steps, generator,
                    prediction_type=prediction_type)
        for start in range(0, args.num_samples, args.batch_size)
    ])
    seconds_per_image = (time.time() - started) / args.num_samples
    result = evaluate_samples(classifier, samples, reference)
    reference_digits, _ = test_digit_sets(args.num_samples, seed=args.seed)
    real_confident = confident_share(classify(classifier, reference_digits)[1])
    quality = {
        "num_samples": args.num_samples, "sampler": f"DDPM ancestral, {args.steps} steps", "seed": args.seed,
        "prediction_type": prediction_type,
        "mnist_fid": round(result["fid"], 2), "data_floor_fid": round(data_floor, 2),
        "confident_share": round(result["confident_share"], 4),
        "real_confident_share": round(real_confident, 4),
        "class_histogram": [round(float(v), 4) for v in result["class_histogram"]],
        "sampling_seconds_per_image": round(seconds_per_image, 4), "threads": args.threads,
        "command": reproduce_command("evaluate_ddpm.py", argv),
    }
    print(json.dumps(quality, indent=2))
    if args.write_manifest:
        manifest_file = DATA_DIR / "ddpm_mnist.json"
        manifest = load_manifest(DATA_DIR / "ddpm_mnist.safetensors")
        manifest["quality"] = quality
        write_json(manifest_file, manifest)
        readme = README.read_text(encoding="utf-8")
        write_text(README, with_table(readme, markdown_table(manifest), "pixel-model"))
        print(f"updated {manifest_file} and {README.name}")


def markdown_table(manifest: dict) -> str:
    """The shipped model's record and measured quality, as the README shows them."""
    quality, config = manifest["quality"], manifest["config"]
    shares = ", ".join(f"{100 * share:.1f}" for share in quality["class_histogram"])
    return "\n".join([
        f"`TinyUNet` with widths {'/'.join(map(str, config['channels']))}, {manifest['parameters']:,} parameters, "
        f"{config['schedule']} schedule with T = {config['num_train_timesteps']}, {config['prediction_type']} target, "
        f"EMA {manifest['ema_decay']}, stored as {manifest.get('store_dtype', 'float32')}. Trained on "
        f"{images_seen(manifest):,} images ({manifest['steps']:,} steps), {manifest['wall_time_minutes']:.0f} min "
        f"on a {manifest['machine']}, by these commands in order (each continues the one before): "
        + "; ".join(f"`{command}`" for command in training_commands(manifest))
        + f". Measured by `{quality['command']}`, {quality['num_samples']:,} samples with {quality['sampler']}:",
        "",
        "| measure | shipped model | real digits (data floor) |",
        "|---|---:|---|",
        f"| MNIST FID, {quality['num_samples']:,} samples | **{quality['mnist_fid']:.2f}** | "
        f"**{quality['data_floor_fid']:.2f}** ({quality['num_samples']:,} test digits against {quality['num_samples']:,} others) |",
        f"| confident share (classifier p >= 0.9) | **{100 * quality['confident_share']:.1f}%** | "
        f"{100 * quality['real_confident_share']:.1f}% |",
        f"| class shares, digits 0-9 | {shares}% | 10% each |",
        "",
    ])


if __name__ == "__main__":
    main()
