"""course_utils.data: the bundled MNIST files, their checksums and the errors that say how to repair them."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.data import DataFileError

TEST_FILES = data.SPLIT_FILES["test"]


@pytest.fixture(scope="module")
def test_split():
    return data.load_mnist("test")


@pytest.fixture
def mnist_copy(tmp_path):
    """A copy of the test-split files in a temporary folder, to corrupt or delete."""
    for name in TEST_FILES:
        shutil.copy(data.MNIST_DIR / name, tmp_path / name)
    return tmp_path


def test_load_mnist_shapes_dtypes_and_labels(test_split):
    images, labels = test_split
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0


def test_load_mnist_train_split():
    images, labels = data.load_mnist("train")
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60_000,) and set(np.unique(labels)) == set(range(10))


def test_known_first_labels(test_split):
    # The first test digits of MNIST are 7, 2, 1, 0, 4 (a check that labels and images are not shuffled).
    assert test_split[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_model_range_round_trip(test_split):
    images = data.to_model_range(test_split[0][:16])
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() == -1.0 and images.max() == 1.0
    back = data.to_pixel_range(images) * 255
    np.testing.assert_allclose(back[:, 0].round().numpy(), test_split[0][:16], atol=0)


def test_mnist_tensors():
    images, labels = data.mnist_tensors("test")
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and int(labels.min()) == 0 and int(labels.max()) == 9


def test_mnist_bytes_converted_batch_by_batch_equal_the_float_set():
    digits, labels = data.mnist_bytes("test")
    assert digits.shape == (10_000, 28, 28) and digits.dtype == torch.uint8 and labels.dtype == torch.int64
    digits[0, 0, 0] = 7  # a writable copy: the file's bytes are untouched
    assert data.load_mnist("test")[0][0, 0, 0] == 0
    images, _ = data.mnist_tensors("test")
    indices = torch.tensor([3, 9_999, 42])
    assert torch.equal(data.to_model_range(data.mnist_bytes("test")[0][indices]), images[indices])


def test_directory_argument_loads_a_good_copy(mnist_copy):
    images, labels = data.load_mnist("test", directory=mnist_copy)
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)


def test_corrupt_file_raises_with_repair_hint(mnist_copy):
    path = mnist_copy / TEST_FILES[0]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="corrupt") as error:
        data.load_mnist("test", directory=mnist_copy)
    message = str(error.value)
    assert TEST_FILES[0] in message
    assert "git checkout -- data/mnist" in message


def test_missing_file_raises_with_repair_hint(mnist_copy):
    (mnist_copy / TEST_FILES[1]).unlink()
    with pytest.raises(DataFileError, match="missing") as error:
        data.load_mnist("test", directory=mnist_copy)
    assert TEST_FILES[1] in str(error.value)
    assert "git checkout -- data/mnist" in str(error.value)


@pytest.mark.parametrize("split", ["validation", "Train", "", None])
def test_bad_split_raises(split):
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_mnist(split)


def test_unknown_file_name_raises():
    with pytest.raises(ValueError, match="name must be one of"):
        data.verified_path("emnist-images.gz")


def test_read_idx_rejects_wrong_magic_and_truncation(tmp_path):
    wrong_magic = tmp_path / "wrong.gz"
    wrong_magic.write_bytes(gzip.compress((1234).to_bytes(4, "big") + bytes(8)))
    with pytest.raises(DataFileError, match="magic number 1234"):
        data.read_idx(wrong_magic)
    truncated = tmp_path / "truncated.gz"
    header = (2049).to_bytes(4, "big") + (10).to_bytes(4, "big")
    truncated.write_bytes(gzip.compress(header + bytes(7)))  # 10 labels promised, 7 present
    with pytest.raises(DataFileError, match="truncated"):
        data.read_idx(truncated)
    complete = tmp_path / "complete.gz"
    complete.write_bytes(gzip.compress(header + bytes(range(10))))
    assert data.read_idx(complete).tolist() == list(range(10))


def test_sha256_of_detects_any_change(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"abc")
    assert data.sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path.write_bytes(b"abd")
    assert data.sha256_of(path) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
