"""Train the course's MNIST classifier, the feature extractor behind "MNIST FID" (course_utils.metrics).

    python scripts/train_classifier.py

Writes data/mnist_classifier.safetensors and its manifest (with the measured test accuracy).
Small random shifts make its features respond to digit shape rather than exact pixel position.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import OVERWRITE_FLAG, save_weights, shipped_output_problem, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.metrics import MnistClassifier  # noqa: E402
from reports import reproduce_command  # noqa: E402  (scripts/ is on sys.path: it holds this script)
from resumable import in_range, integer_in  # noqa: E402


def random_shift(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each batch by up to ``max_shift`` pixels (padding with background, -1)."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    return padded[:, :, max_shift + dy: max_shift + dy + 28, max_shift + dx: max_shift + dx + 28]


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    model.eval()
    predictions = torch.cat([model(batch).argmax(1) for batch in images.split(1000)])
    return float((predictions == labels).float().mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=integer_in(1, 1000), default=3)
    parser.add_argument("--batch-size", type=integer_in(1, 60_000), default=128)
    parser.add_argument("--lr", type=in_range(0, 1, include_low=False), default=2e-3)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--out", type=Path, default=DATA_DIR / "mnist_classifier.safetensors",
                        help=f"default data/mnist_classifier.safetensors, the shipped classifier: {OVERWRITE_FLAG} "
                             f"is then needed")
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help="allow --out to replace a shipped file in data/")
    args = parser.parse_args(argv)
    problem = shipped_output_problem("--out", args.out, args.overwrite_shipped)
    if problem:
        parser.error(problem)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, train_labels = mnist_tensors("train")
    test_images, test_labels = mnist_tensors("test")
    model = MnistClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    steps_per_epoch = len(train_images) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_images), generator=generator)
        for index in tqdm(order[: steps_per_epoch * args.batch_size].split(args.batch_size), desc=f"epoch {epoch + 1}"):
            loss = F.cross_entropy(model(random_shift(train_images[index], generator)), train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test_images, test_labels):.4f}", flush=True)
    test_accuracy = accuracy(model, test_images, test_labels)
    sha = save_weights(model.state_dict(), args.out, {"architecture": "MnistClassifier"})
    write_json(args.out.with_suffix(".json"), {
        "file": args.out.name, "sha256": sha, "seed": args.seed, "epochs": args.epochs,
        "command": reproduce_command("train_classifier.py", argv),
        "test_accuracy": round(test_accuracy, 4), "wall_time_minutes": round((time.time() - started) / 60, 1),
    })
    print(f"test accuracy {test_accuracy:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
