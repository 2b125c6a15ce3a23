"""MNIST, read from the original idx files with numpy (no torchvision).

The four gzip files in ``data/mnist/`` are the originals published by Yann LeCun, Corinna Cortes
and Christopher J.C. Burges (CC BY-SA 3.0). Each is verified against its SHA-256 before use.

idx format (http://yann.lecun.com/exdb/mnist/): a big-endian header -- magic number, item count,
and for images the row and column counts -- followed by uint8 values.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from .validation import check_choice, check_image_range, check_path, check_tensor

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MNIST_DIR = DATA_DIR / "mnist"

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "b09d8b89df4ad239afc76a323dbe9559169cd8cca365467dfe8aa1f7ca54109b",
    "train-labels-idx1-ubyte.gz": "c51906e7929bbf7c824fbd16019b56297269ca82cba449c5b5d59c0a02147fed",
    "t10k-images-idx3-ubyte.gz": "f72c2dff3457595ec2fe452d25d97b7f974a74ad5b006687704212bedd1486d8",
    "t10k-labels-idx1-ubyte.gz": "4baf84ddd60ae342cfdd282ec3fba3249a201a4459782165496a7cbebbe49a2e",
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
REPAIR_HINT = (
    "Restore the original file with `git checkout -- data/mnist` (or re-clone the course); "
    "the files are the gzip idx files from http://yann.lecun.com/exdb/mnist/."
)


class DataFileError(RuntimeError):
    """A bundled data file is missing, corrupt or malformed."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    if check_path("path", path).is_dir():
        raise ValueError(f"path must be a file, got the folder {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(name: str, directory: Path = MNIST_DIR) -> Path:
    """Return ``directory / name`` after checking that it exists and has the expected SHA-256."""
    check_choice("name", name, sorted(MNIST_SHA256))
    path = check_path("directory", directory) / name
    if not path.is_file():
        raise DataFileError(f"MNIST file {path} is missing. {REPAIR_HINT}")
    actual = sha256_of(path)
    if actual != MNIST_SHA256[name]:
        raise DataFileError(
            f"MNIST file {path} is corrupt: SHA-256 {actual[:12]}... "
            f"does not match the expected {MNIST_SHA256[name][:12]}.... {REPAIR_HINT}"
        )
    return path


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzip idx file into a uint8 array of shape (count,) or (count, rows, cols)."""
    if not check_path("path", path).is_file():
        raise DataFileError(f"{path} is missing (or not a file). {REPAIR_HINT}")
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:  # not gzip, cut short, damaged, unreadable
        raise DataFileError(f"{path} is not a readable gzip file ({error}). {REPAIR_HINT}") from None
    magic = int.from_bytes(raw[0:4], "big")
    dims = {2049: 1, 2051: 3}.get(magic)
    if dims is None:
        raise DataFileError(f"{path} is not an MNIST idx file (magic number {magic}). {REPAIR_HINT}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    header = 4 + 4 * dims
    if len(raw) - header != int(np.prod(shape)):
        raise DataFileError(f"{path} is truncated: header says {shape}. {REPAIR_HINT}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(split: str = "train", directory: Path = MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split as ``(images uint8 [N, 28, 28], labels uint8 [N])``.

    ``split`` is ``"train"`` (60,000 digits) or ``"test"`` (10,000 digits).
    """
    check_choice("split", split, sorted(SPLIT_FILES))
    image_file, label_file = SPLIT_FILES[split]
    images = read_idx(verified_path(image_file, directory))
    labels = read_idx(verified_path(label_file, directory))
    return images, labels


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 images [N, 28, 28] (a numpy array, or a tensor on any device) -> float tensor [N, 1, 28, 28] in
    [-1, 1], the range diffusion models use, on the same device. Keeping a data set as bytes and converting
    each batch when it is drawn takes a quarter of the memory of converting it all up front."""
    if not isinstance(images, (np.ndarray, torch.Tensor)):
        raise TypeError(f"images must be a uint8 array [N, 28, 28] (as load_mnist returns), got "
                        f"{type(images).__name__}")
    if images.dtype not in (np.uint8, torch.uint8):
        raise TypeError(f"images must be uint8 in 0..255 (as load_mnist returns), got dtype {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"images must be [N, 28, 28] (as load_mnist returns), got shape {tuple(images.shape)}")
    floats = images.to(torch.float32) if torch.is_tensor(images) else torch.tensor(images, dtype=torch.float32)
    return floats.div_(127.5).sub_(1.0).unsqueeze(1)  # in place: one copy


def to_pixel_range(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_model_range`, clamped: [-1, 1] -> [0, 1] for display."""
    check_tensor("images", images, floating=True)
    check_image_range("images", images, any_noise=True)  # noisy x_t are shown too
    return images.add(1.0).div(2.0).clamp(0.0, 1.0)


def mnist_bytes(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as stored, as tensors: images uint8 [N, 28, 28] in 0..255 and int64 labels [N].

    The 60,000 training digits take 47 MB, against 188 MB as float32: draw batches from these and convert
    each with :func:`to_model_range`."""
    images, labels = load_mnist(split)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))  # copy: the file's bytes are read-only


def mnist_tensors(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as model-ready tensors: images [N, 1, 28, 28] in [-1, 1] and int64 labels [N]."""
    images, labels = mnist_bytes(split)
    return to_model_range(images), labels
