"""The bootstrap's arithmetic: event multiplicities follow their documented formula, and every
resampled sum is the float64 sum, whatever the block size or BLAS threads (a re-scored result
must agree with the recorded one to metbench.verify.REL_TOL on any machine)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson

from metbench.scoring.bootstrap import event_poisson_counts, grouped_sums, resample_sums
from metbench.verify import REL_TOL

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """SplitMix64's finaliser on Python integers (Steele, Lea & Flood 2014)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def test_event_poisson_counts_follow_their_documented_formula():
    """Resample b of event i: the top 16 bits of h_i a_b + c_b (mod 2^64) through Poisson(1)'s
    inverse CDF, recomputed with Python integers and scipy; events across several blocks."""
    seed, n_boot = 7, 200
    ids = np.array([0, 1, 2, 5, 1023, 1024, 1025, 4097, 123_456_789, 2**40 + 3])
    rng = np.random.default_rng([0x6D657462, seed])
    a = rng.integers(0, 1 << 63, n_boot, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    c = rng.integers(0, 1 << 63, n_boot, dtype=np.uint64)
    mixed_seed = splitmix64(seed)
    # the ids spread over a longer array, so that they land in different blocks
    spread = np.arange(5000) + 10**12
    spread[np.arange(len(ids)) * 450] = ids
    got = event_poisson_counts(spread, n_boot, seed)[np.arange(len(ids)) * 450]
    for row, event in zip(got, ids, strict=True):
        h = splitmix64(int(event) ^ mixed_seed)
        top = [((h * int(a_b) + int(c_b)) & MASK64) >> 48 for a_b, c_b in zip(a, c, strict=True)]
        expected = poisson.ppf((np.array(top) + 0.5) / 65536, 1.0)
        np.testing.assert_array_equal(row, expected)


def test_event_poisson_counts_are_poisson_one():
    counts = event_poisson_counts(np.arange(20_000), 200, seed=1)
    freq = np.bincount(counts.ravel(), minlength=6)[:6] / counts.size
    np.testing.assert_allclose(freq, poisson.pmf(np.arange(6), 1.0), atol=0.002)
    assert counts.mean() == pytest.approx(1.0, abs=0.002)


@pytest.mark.parametrize("n", [1, 2047, 2048, 2049, 10_000])
def test_resample_sums_are_the_exactly_rounded_sums(n):
    """Against math.fsum (exactly rounded): far inside verify's tolerance, at any block split.
    A float32 accumulation, as scoring used before, misses it (the check can fail)."""
    rng = np.random.default_rng(n)
    counts = rng.poisson(1.0, size=(n, 200)).astype(np.uint8)
    values = rng.normal(0, 1, size=(n, 3)) * np.array([1.0, 300.0, 1e4]) + np.array([0, 50, 0])
    got = resample_sums(counts, values)
    assert got.shape == (200, 3) and got.dtype == np.float64
    for b in (0, 17, 199):
        for j in range(3):
            exact = math.fsum(float(k) * v for k, v in zip(counts[:, b], values[:, j], strict=True))
            scale = math.fsum(
                abs(float(k) * v) for k, v in zip(counts[:, b], values[:, j], strict=True)
            )
            assert abs(got[b, j] - exact) <= 1e-13 * scale
    one_d = resample_sums(counts, values[:, 1])
    np.testing.assert_allclose(one_d, got[:, 1], rtol=1e-13)
    if n >= 2048:
        float32 = counts.astype(np.float32).T @ values.astype(np.float32)
        assert not np.allclose(float32, got, rtol=REL_TOL, atol=0)


def test_grouped_sums_match_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    n, groups = 30_000, 7
    group = rng.integers(-1, groups, n)
    values = np.stack([rng.exponential(40, n), rng.normal(0, 20, n) ** 2], 1)
    counts = event_poisson_counts(np.arange(n), 200, seed=2)
    point, boot = grouped_sums(group, groups, values, counts)
    assert boot is not None
    keep = group >= 0
    for j in range(2):
        np.testing.assert_allclose(
            point[:, j], np.bincount(group[keep], values[keep, j], minlength=groups), rtol=1e-12
        )
        for b in (0, 99, 199):
            w = counts[keep, b] * values[keep, j]
            expected = np.bincount(group[keep], w, minlength=groups)
            np.testing.assert_allclose(boot[b, :, j], expected, rtol=1e-11)
