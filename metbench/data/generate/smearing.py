"""Smearing shared by the detector's subsystems."""

from __future__ import annotations

import numpy as np

__all__ = ["lognormal_smear"]


def lognormal_smear(rng: np.random.Generator, value: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Draw from a log-normal with mean ``value`` and standard deviation ``sigma`` (as Delphes).

    Entries with ``value <= 0`` stay 0.
    """
    value = np.asarray(value, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    out = np.zeros_like(value)
    ok = value > 0
    v = value[ok]
    s2 = np.log1p((sigma[ok] / v) ** 2)
    mu = np.log(v) - 0.5 * s2
    out[ok] = np.exp(mu + np.sqrt(s2) * rng.standard_normal(v.shape))
    return out
