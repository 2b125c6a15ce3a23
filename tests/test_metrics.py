"""Frechet distance on Gaussians whose distance is known in closed form, and the classifier measures."""
import numpy as np
import pytest
import torch

from course_utils.metrics import (class_histogram, confident_share, frechet_distance, gaussian_statistics,
                                  mnist_fid)


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
