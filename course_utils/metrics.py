"""Measuring generated digits (notebooks 03-06).

Three numbers, all from a small MNIST classifier trained for the course (``scripts/train_classifier.py``):

- **MNIST FID**: the Frechet distance between Gaussians fitted to the classifier's penultimate-layer
  features of real and generated digits (Heusel et al. 2017, https://arxiv.org/abs/1706.08500, eq. 6):
  FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
  Inception-v3 features (the usual FID) need a download and are meant for 299x299 photographs; a
  classifier trained on MNIST sees what matters in 28x28 digits. Its values are not comparable with
  published FIDs, only with each other and with the *data floor*: the FID between two disjoint sets of
  real digits of the same size, which is not 0 because of sampling noise.
- **Confident share**: the fraction of samples the classifier assigns to some class with probability >= 0.9.
- **Class histogram**: how the samples spread over the ten digits (mode collapse shows here).
- **Adherence** (conditional models, notebooks 06-09): the share of samples read as the digit asked for.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .validation import check_image_range, check_images, check_integer, check_number, check_tensor


class MnistClassifier(nn.Module):
    """Three conv blocks and two linear layers; ``features`` returns the 128-d penultimate activations."""

    FEATURE_DIM = 128

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7 -> 3
        )
        self.hidden = nn.Linear(128 * 3 * 3, self.FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.FEATURE_DIM, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], [B, 1, 28, 28] -> features [B, 128]."""
        return F.relu(self.hidden(self.conv(images).flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))


def _check_classifier(classifier) -> None:
    if not isinstance(classifier, MnistClassifier):
        raise TypeError(f"classifier must be the course's MnistClassifier (metrics.load_classifier()), got "
                        f"{type(classifier).__name__}")


def _check_digits(name: str, images, at_least: int) -> None:
    """Float images [N, 1, 28, 28] with N >= ``at_least`` (pipeline images are 32x32: crop them first)."""
    check_images(name, images, size=28, channels=1)
    check_image_range(name, images, digits=True)  # the classifier learnt [-1, 1] digits
    if len(images) < at_least:
        raise ValueError(f"{name} must hold at least {at_least} images, got shape {tuple(images.shape)}")


def _check_features(name: str, features) -> None:
    """Classifier features [N, D] with N >= 2 (a covariance needs two), all finite."""
    check_tensor(name, features, dims=2)
    if len(features) < 2:
        raise ValueError(f"{name} must be [N, D] with N >= 2 (a covariance needs two samples), got shape "
                         f"{tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name} must be finite, got NaN or inf (did sampling diverge?)")


def _check_probabilities(probabilities, classes: int | None = None) -> None:
    check_tensor("probabilities", probabilities, dims=2, shape=(None, classes))
    if len(probabilities) == 0:
        raise ValueError(f"probabilities must hold at least one sample, got shape {tuple(probabilities.shape)}")


def _check_real(name: str, array: np.ndarray) -> None:
    """A numpy array of finite real numbers (a NaN would pass through the distance silently)."""
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")


def load_classifier() -> MnistClassifier:
    """The course's shipped classifier (``data/mnist_classifier.safetensors``), in eval mode."""
    from .checkpoints import load_weights

    state_dict, _ = load_weights("mnist_classifier")
    model = MnistClassifier()
    model.load_state_dict(state_dict)
    return model.eval()


@torch.no_grad()
def classify(classifier: MnistClassifier, images: torch.Tensor, batch_size: int = 200):
    """Features [N, 128] and class probabilities [N, 10] for images in [-1, 1], on the CPU (the measures
    are computed there). The images may be on any device: each batch goes to the classifier's."""
    _check_classifier(classifier)
    _check_digits("images", images, at_least=1)
    check_integer("batch_size", batch_size, 1, 1_000_000)
    device = next(classifier.parameters()).device
    features, probabilities = [], []
    for batch in images.split(batch_size):
        feature = classifier.features(batch.to(device).clamp(-1, 1))
        features.append(feature.cpu())
        probabilities.append(classifier.head(feature).softmax(dim=1).cpu())
    return torch.cat(features), torch.cat(probabilities)


class ClassifierFeatures(nn.Module):
    """The classifier's feature extractor as the ``feature`` module of torchmetrics' FID.

    ``torchmetrics.image.fid.FrechetInceptionDistance(feature=ClassifierFeatures(classifier))`` computes
    the same MNIST FID as :func:`mnist_fid` without Inception-v3 (no download, no ``torch-fidelity``); the
    tests use it as an independent check of the hand-written formula. What torchmetrics expects of a custom
    ``feature`` module (torchmetrics 1.x, ``src/torchmetrics/image/fid.py``,
    https://github.com/Lightning-AI/torchmetrics/blob/master/src/torchmetrics/image/fid.py): ``forward``
    returns an ``(N, d)`` matrix; an integer ``num_features`` attribute gives ``d`` (without it torchmetrics
    probes the module with a random 3x299x299 image, which this network cannot take); ``update`` hands the
    images to the module unchanged (``normalize`` only converts inputs for the default Inception), so they
    are given as here: float images in [-1, 1], ``[N, 1, 28, 28]``. The features are clamped and computed
    exactly as in :func:`classify`; they use no dropout, so train and eval mode give the same features.
    """

    def __init__(self, classifier: MnistClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.FEATURE_DIM

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images.clamp(-1, 1))


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of features [N, D]."""
    try:
        features = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"features must be an array of numbers [N, D], got {type(features).__name__}: "
                        f"{error}") from None
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [N, D] with N >= 2, got shape {features.shape}")
    _check_real("features", features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2)).

    Tr((S1 S2)^(1/2)) is computed as the trace of the root of the symmetric matrix S1^(1/2) S2 S1^(1/2),
    which has the same eigenvalues (Dowson & Landau 1982) and is numerically safer.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    for name, array in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        _check_real(name, array)
    if mu1.ndim != 1:
        raise ValueError(f"mu1 must be a vector [D], got shape {mu1.shape}")
    if mu2.shape != mu1.shape:
        raise ValueError(f"shapes do not match: mu2 must have the shape of mu1 {mu1.shape}, got {mu2.shape}")
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (mu1.size, mu1.size):
            raise ValueError(f"shapes do not match: {name} must be [D, D] = {(mu1.size, mu1.size)} for mu1 of shape "
                             f"{mu1.shape}, got {sigma.shape}")
        eigenvalues = np.linalg.eigvalsh((sigma + sigma.T) / 2)  # ascending
        if eigenvalues[0] < -1e-4 * np.abs(eigenvalues).max():  # beyond rounding: not a covariance
            raise ValueError(f"{name} must be a covariance matrix (positive semi-definite), got an eigenvalue "
                             f"{eigenvalues[0]:.3g}")
    root1 = _sqrt_psd(sigma1)
    cross = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def mnist_fid(real_features: torch.Tensor, generated_features: torch.Tensor) -> float:
    """FID between two sets of classifier features."""
    _check_features("real_features", real_features)
    _check_features("generated_features", generated_features)
    if generated_features.shape[1] != real_features.shape[1]:
        raise ValueError(f"generated_features must have the width of real_features ({real_features.shape[1]}), got "
                         f"shape {tuple(generated_features.shape)}")
    return frechet_distance(*gaussian_statistics(real_features.cpu().numpy()),
                            *gaussian_statistics(generated_features.cpu().numpy()))


def fid_noise(features: torch.Tensor, size: int, draws: int = 20, seed: int = 0) -> dict:
    """How far an MNIST FID of ``size`` samples moves from one draw of digits to the next.

    ``features`` are the classifier features of a pool of real digits (notebook 04: all 10,000 test digits).
    Each of ``draws`` draws splits a random permutation of the pool into three disjoint sets R, A and B of
    ``size`` rows and returns, one entry per draw (numpy arrays [draws]):

    - ``"floor"``: FID(R, A), the data floor; its spread is the sampling noise of one FID at this size;
    - ``"gap"``: FID(R, A) - FID(R, B), two sets of the same distribution measured against the same
      reference, as two samplers are in one table; its spread is the noise of a difference between them.

    This is the sampling distribution itself, drawn afresh each time. A bootstrap of one set (resampling
    with replacement) repeats about 37% of its features, and for the FID of 128-d features that inflates
    the spread: on MNIST's test digits by 1.4 times at 256 digits and 1.8 times at 1,000 (20 draws each). Generated digits far from
    the data vary at least as much as real ones: by the delta method, the mean term ||mu_r - mu_g||^2 adds a
    variance of about 4 (mu_r - mu_g)^T (S_r + S_g) (mu_r - mu_g) / size, which grows with the distance.
    """
    _check_features("features", features)
    check_integer("size", size, 2, 1_000_000)
    check_integer("draws", draws, 2, 100_000)
    check_integer("seed", seed, 0, 2**32 - 1)
    if 3 * size > len(features):
        raise ValueError(f"features must hold at least 3 * size = {3 * size} rows (three disjoint sets), got "
                         f"{len(features)}")
    features, generator = features.cpu(), torch.Generator().manual_seed(seed)
    floor, gap = np.empty(draws), np.empty(draws)
    for draw in range(draws):
        order = torch.randperm(len(features), generator=generator)
        reference, first, second = (features[order[k * size:(k + 1) * size]] for k in range(3))
        floor[draw] = mnist_fid(reference, first)
        gap[draw] = floor[draw] - mnist_fid(reference, second)
    return {"floor": floor, "gap": gap}


def confident_share(probabilities: torch.Tensor, threshold: float = 0.9) -> float:
    """Fraction of samples whose most likely class has probability >= ``threshold``."""
    _check_probabilities(probabilities)
    check_number("threshold", threshold, 0.0, 1.0, open_low=True)
    return float((probabilities.max(dim=1).values >= threshold).float().mean())


def read_digits(classifier: MnistClassifier, images: torch.Tensor) -> torch.Tensor:
    """The digit the classifier reads in each image, argmax_k p(k | x): a long tensor [N] on the CPU."""
    return classify(classifier, images)[1].argmax(dim=1)


def adherence(classifier: MnistClassifier, images: torch.Tensor, requested) -> float:
    """Prompt adherence: the share of images the classifier reads as the digit they were asked for,

        adherence = (1/N) sum_i [argmax_k p(k | x_i) = y_i],

    the classifier accuracy of class-conditional samples (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598,
    measure the same trade-off with Inception scores). ``requested`` holds the N digits y_i (a tensor or a list)."""
    _check_digits("images", images, at_least=1)
    requested = torch.as_tensor(requested).cpu()
    if requested.dtype.is_floating_point or requested.dtype == torch.bool or requested.shape != (len(images),):
        raise ValueError(f"requested must hold one integer digit per image ({len(images)}), got "
                         f"{requested.dtype} of shape {tuple(requested.shape)}")
    if len(requested) and (requested.min() < 0 or requested.max() > 9):
        raise ValueError(f"requested must hold digits 0-9 (the class each image was asked for), got values in "
                         f"[{requested.min().item()}, {requested.max().item()}]")
    return float((read_digits(classifier, images) == requested).float().mean())


def class_histogram(probabilities: torch.Tensor) -> np.ndarray:
    """Share of samples assigned to each digit 0-9 (sums to 1)."""
    _check_probabilities(probabilities, classes=10)
    counts = torch.bincount(probabilities.argmax(dim=1), minlength=10).double()
    return (counts / counts.sum()).cpu().numpy()


def evaluate_samples(classifier: MnistClassifier, samples: torch.Tensor, real_features: torch.Tensor) -> dict:
    """FID against ``real_features``, confident share and class histogram of ``samples`` in [-1, 1]."""
    _check_digits("samples", samples, at_least=2)
    _check_features("real_features", real_features)
    features, probabilities = classify(classifier, samples)
    return {
        "fid": mnist_fid(real_features, features),
        "confident_share": confident_share(probabilities),
        "class_histogram": class_histogram(probabilities),
    }


NUM_TEST_DIGITS = 10_000  # MNIST's test split


def test_digit_indices(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions among the 10,000 MNIST test digits of the two disjoint random sets of
    :func:`test_digit_sets`: the first ``size`` and the next ``size`` of a permutation seeded with ``seed``."""
    check_integer("size", size, 2, NUM_TEST_DIGITS // 2)  # two disjoint sets of the test digits
    check_integer("seed", seed, 0, 2**32 - 1)
    order = torch.randperm(NUM_TEST_DIGITS, generator=torch.Generator().manual_seed(seed))
    return order[:size], order[size:2 * size]


def test_digit_sets(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint random sets of ``size`` MNIST test digits in [-1, 1], [size, 1, 28, 28] each
    (:func:`test_digit_indices`): the reference set that generated digits are compared with, and the other set,
    whose FID against the reference is the data floor (:func:`real_feature_sets`). A model that transforms real
    digits (a VAE's reconstruction) is measured on the other set, so that no digit is compared with itself."""
    from .data import mnist_bytes, to_model_range

    first, second = test_digit_indices(size, seed)
    digits, _ = mnist_bytes("test")  # converted per set: only 2 * size digits as floats
    return to_model_range(digits[first]), to_model_range(digits[second])


def real_feature_sets(classifier: MnistClassifier, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier features of the two disjoint sets of :func:`test_digit_sets`.

    The first is the reference that generated digits are compared with; FID(first, second) is the data floor.
    """
    _check_classifier(classifier)
    reference_digits, other_digits = test_digit_sets(size, seed)
    reference, _ = classify(classifier, reference_digits)
    other, _ = classify(classifier, other_digits)
    return reference, other
