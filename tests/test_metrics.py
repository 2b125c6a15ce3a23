"""Frechet distance on Gaussians whose distance is known in closed form, and the classifier measures."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from course_utils.metrics import (ClassifierFeatures, class_histogram, classify, confident_share, evaluate_samples,
                                  fid_noise, frechet_distance, gaussian_statistics, load_classifier, mnist_fid)


def test_identical_gaussians_have_zero_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    assert frechet_distance(np.ones(6), sigma, np.ones(6), sigma) == pytest.approx(0.0, abs=1e-8)


def test_mean_shift_with_equal_covariance_is_squared_distance():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, -2.0])
    assert frechet_distance(mu1, np.eye(3), mu2, np.eye(3)) == pytest.approx(9 + 0 + 16)


def test_diagonal_covariances_give_squared_difference_of_standard_deviations():
    # For commuting covariances, Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum (s1_i - s2_i)^2 of the standard deviations.
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert frechet_distance(np.zeros(3), np.diag(var1), np.zeros(3), np.diag(var2)) == pytest.approx(expected)


def test_one_dimensional_case():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]])) == pytest.approx(4 + 1)


def test_non_commuting_covariances_match_the_formula_with_a_generic_matrix_root():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    eigenvalues = np.linalg.eigvals(s1 @ s2)  # (S1 S2)^(1/2) has the square roots of these as eigenvalues
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eigenvalues.real).sum()
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_samples_estimates_the_gaussian_distance():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=generator)
    b = torch.randn(20000, 3, generator=generator) * 2 + 1
    # exact: ||mu||^2 = 3, and per dimension (1 - 2)^2 = 1
    assert mnist_fid(a, b) == pytest.approx(6.0, rel=0.05)


def test_fid_noise_draws_disjoint_sets_of_one_pool():
    pool = torch.randn(3000, 4, generator=torch.Generator().manual_seed(0))
    small, large = fid_noise(pool, 50, draws=30, seed=1), fid_noise(pool, 1000, draws=30, seed=1)
    assert small["floor"].shape == small["gap"].shape == (30,)
    assert (small["floor"] >= 0).all()
    # the data floor of one distribution: biased above 0, less so and less noisy with more samples
    assert large["floor"].mean() < small["floor"].mean()
    assert large["floor"].std() < small["floor"].std() and large["gap"].std() < small["gap"].std()
    # a gap between two sets of the same distribution is 0 on average
    assert abs(small["gap"].mean()) < 3 * small["gap"].std() / np.sqrt(30)
    # one draw by hand: the seed's permutation, cut into three sets
    order = torch.randperm(3000, generator=torch.Generator().manual_seed(1))
    reference, first, second = pool[order[:50]], pool[order[50:100]], pool[order[100:150]]
    assert small["floor"][0] == pytest.approx(mnist_fid(reference, first))
    assert small["gap"][0] == pytest.approx(mnist_fid(reference, first) - mnist_fid(reference, second))
    np.testing.assert_array_equal(fid_noise(pool, 50, draws=30, seed=1)["gap"], small["gap"])
    with pytest.raises(ValueError, match=r"at least 3 \* size = 3003 rows"):
        fid_noise(pool, 1001)
    with pytest.raises(ValueError, match="draws"):
        fid_noise(pool, 50, draws=1)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_statistics(np.zeros((1, 4)))


def test_confident_share_and_histogram():
    probabilities = torch.tensor([[0.95, 0.05] + [0.0] * 8, [0.5, 0.5] + [0.0] * 8, [0.0] * 9 + [1.0]])
    assert confident_share(probabilities) == pytest.approx(2 / 3)
    assert confident_share(probabilities, threshold=0.4) == pytest.approx(1.0)
    histogram = class_histogram(probabilities)
    assert histogram.sum() == pytest.approx(1.0)
    assert histogram[0] == pytest.approx(2 / 3) and histogram[9] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="threshold"):
        confident_share(probabilities, threshold=0.0)


@pytest.fixture(scope="module")
def classifier_and_digits():
    """The course classifier and two disjoint sets of 500 real MNIST test digits, in [-1, 1]."""
    from course_utils.data import mnist_tensors

    images, _ = mnist_tensors("test")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return load_classifier(), images[order[:500]], images[order[500:1000]]


def _noisy(digits):
    return (digits + 0.5 * torch.randn(digits.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)


def _blurred(digits):
    return F.avg_pool2d(digits, 3, stride=1, padding=1, count_include_pad=False)


@pytest.mark.parametrize("make_other", [lambda digits: digits, _noisy, _blurred], ids=["real", "noisy", "blurred"])
def test_mnist_fid_equals_torchmetrics_fid_with_the_course_classifier(classifier_and_digits, make_other):
    """The hand-written FID agrees with torchmetrics' FrechetInceptionDistance given the course classifier's
    features (``feature=ClassifierFeatures(...)``: no Inception, no download, no torch-fidelity).

    Both start from the same float32 features and compute the statistics in float64 (torchmetrics from
    running sums); they differ in the matrix square root (torchmetrics: eigenvalues of the non-symmetric
    S1 S2; the course: the symmetric S1^(1/2) S2 S1^(1/2)), and torchmetrics returns float32. About 40 of
    the 128 features are 0 on every digit, so both covariances are singular, and in the course's route the
    square roots of rounding noise (~1e-14) on their zero eigenvalues add up to ~1e-5 (measured: relative
    differences 1.2e-6 real vs real, 8e-8 noisy, 7e-9 blurred; with the dead features dropped the two agree
    to 1e-12). rel=1e-5 allows that and still tells the biased 1/N covariance (0.13-0.17% off) apart.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    classifier, reference, digits = classifier_and_digits
    other = make_other(digits)
    real_features, _ = classify(classifier, reference)
    course = evaluate_samples(classifier, other, real_features)["fid"]

    metric = FrechetInceptionDistance(feature=ClassifierFeatures(classifier))
    assert isinstance(metric.inception, ClassifierFeatures)  # the custom extractor, not Inception-v3
    metric.update(reference, real=True)
    metric.update(other, real=False)
    library = metric.compute().item()
    assert course == pytest.approx(library, rel=1e-5)

    # The comparison can fail: the same formula with the biased (1/N) covariance is off by more than rel=1e-5.
    other_features, _ = classify(classifier, other)
    biased = [(f.double().mean(0).numpy(), np.cov(f.double().numpy(), rowvar=False, bias=True))
              for f in (real_features, other_features)]
    assert frechet_distance(*biased[0], *biased[1]) != pytest.approx(library, rel=1e-5)


def test_data_floor_is_far_below_the_fid_of_noisy_digits(classifier_and_digits):
    classifier, reference, digits = classifier_and_digits
    real_features, _ = classify(classifier, reference)
    floor = evaluate_samples(classifier, digits, real_features)["fid"]
    assert 0 < floor < evaluate_samples(classifier, _noisy(digits), real_features)["fid"] / 5


def test_adherence_is_the_share_read_as_the_requested_digit(classifier_and_digits):
    from course_utils.data import mnist_tensors
    from course_utils.metrics import adherence, read_digits

    images, labels = mnist_tensors("test")
    classifier = classifier_and_digits[0]
    read = read_digits(classifier, images[:200])
    assert read.dtype == torch.long and read.shape == (200,)
    assert adherence(classifier, images[:200], labels[:200]) == pytest.approx((read == labels[:200]).float().mean())
    assert adherence(classifier, images[:200], labels[:200]) > 0.95  # the classifier reads real digits
    assert adherence(classifier, images[:200], (labels[:200] + 1) % 10) < 0.05  # every digit asked for wrongly
    assert adherence(classifier, images[:3], read[:3].tolist()) == 1.0  # a list works as well as a tensor
    with pytest.raises(ValueError, match="requested must hold one integer digit per image"):
        adherence(classifier, images[:3], [1, 2])
    with pytest.raises(ValueError, match="requested"):
        adherence(classifier, images[:2], [1.0, 2.0])


def test_the_two_test_digit_sets_are_disjoint_and_behind_the_feature_sets():
    from course_utils import metrics

    reference_digits, other_digits = metrics.test_digit_sets(50, seed=3)
    assert reference_digits.shape == other_digits.shape == (50, 1, 28, 28)
    as_bytes = lambda digits: {row.numpy().tobytes() for row in digits}  # noqa: E731
    assert len(as_bytes(reference_digits)) == 50 and not as_bytes(reference_digits) & as_bytes(other_digits)
    classifier = metrics.load_classifier()
    reference, other = metrics.real_feature_sets(classifier, 50, seed=3)
    assert torch.allclose(reference, classify(classifier, reference_digits)[0])
    assert torch.allclose(other, classify(classifier, other_digits)[0])
