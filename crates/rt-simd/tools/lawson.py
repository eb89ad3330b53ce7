"""Lawson's algorithm: the polynomial that minimizes the largest weighted error on a set
of points, by iteratively reweighted least squares. Shared by the coefficient generators."""

import numpy as np


def lawson_fit(
    xs: np.ndarray,
    target: np.ndarray,
    sensitivity: np.ndarray,
    terms: int,
    iterations: int,
    floor: float,
) -> tuple[np.ndarray, float]:
    """Coefficients (lowest first) of the polynomial p minimizing
    max |(p(x) - target) * sensitivity| over ``xs``, and that maximum.

    Each round solves a weighted least-squares problem and raises the weight of the points
    where the error is largest; ``floor`` keeps every weight above zero.
    """
    basis = np.vander(xs, terms, increasing=True)
    weights = np.ones_like(xs)
    for _ in range(iterations):
        w = weights * sensitivity
        coeffs, *_ = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)
        error = np.abs((basis @ coeffs - target) * sensitivity)
        weights = weights * np.sqrt(error / error.max()) + floor
    return coeffs, float(error.max())
