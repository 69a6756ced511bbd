"""Ranks from paired bootstrap differences (metbench.scoring.ranking)."""

from __future__ import annotations

import numpy as np

from metbench.scoring.ranking import RankedValue, paired_ranks
from metbench.scoring.score import Truth, score


def _entry(values: np.ndarray, ranked: bool = True) -> RankedValue:
    return RankedValue(float(np.median(values)), values, ("poisson-by-event-id", 200, 0), ranked)


def test_paired_differences_separate_what_overlapping_intervals_do_not():
    rng = np.random.default_rng(0)
    common = rng.normal(20.0, 1.0, 200)  # the resamples move both entries together
    a = _entry(common)
    b = _entry(common + 0.3 + rng.normal(0, 0.05, 200))  # always a bit worse than a
    # their own intervals overlap widely ...
    assert np.quantile(b.replicas, 0.025) < np.quantile(a.replicas, 0.975)
    # ... yet the difference is significant: a ranks ahead of b
    assert paired_ranks({"a": a, "b": b}) == {"a": 1, "b": 2}


def test_ties_when_the_difference_interval_contains_zero():
    rng = np.random.default_rng(1)
    common = rng.normal(20.0, 1.0, 200)
    a = _entry(common + rng.normal(0, 0.5, 200))
    b = _entry(common + 0.05 + rng.normal(0, 0.5, 200))
    c = _entry(common + 5.0)
    ranks = paired_ranks({"a": a, "b": b, "c": c})
    assert ranks == {"a": 1, "b": 1, "c": 3}


def test_oracle_and_entries_without_s_are_not_ranked():
    rng = np.random.default_rng(2)
    common = rng.normal(20.0, 1.0, 200)
    entries = {
        "oracle": _entry(common - 10, ranked=False),
        "a": _entry(common),
        "none": RankedValue(None, ranked=False),
    }
    assert paired_ranks(entries) == {"oracle": None, "a": 1, "none": None}


def test_without_shared_resamples_the_values_decide():
    a = RankedValue(10.0, np.full(200, 10.0), ("poisson-by-event-id", 200, 0))
    b = RankedValue(10.1, np.full(200, 10.1), ("poisson-by-event-id", 200, 1))  # other seed
    assert paired_ranks({"a": a, "b": b}) == {"a": 1, "b": 2}


def test_score_replicas_pair_two_estimators_on_the_same_events():
    """Two estimators scored separately share their resamples (keyed by event id), so a small
    systematic improvement is resolved although the two intervals overlap."""
    rng = np.random.default_rng(3)
    n = 6000
    mag = rng.exponential(60.0, n) + 5
    phi = rng.uniform(-np.pi, np.pi, n)
    t = np.stack([mag * np.cos(phi), mag * np.sin(phi)], 1)
    noise = rng.normal(0, 20, (n, 2))
    truth = Truth(
        np.arange(n, dtype=np.int64), np.full(n, "w_lnu"), np.zeros(n, np.int64),
        np.zeros(n, np.int64), t[:, 0], t[:, 1], np.full(n, np.nan), np.full(n, np.nan),
    )  # fmt: skip
    better = score(t + noise, truth)["tasks"]["met"]["headline"]
    worse = score(t + 1.05 * noise, truth)["tasks"]["met"]["headline"]
    assert better["S"]["high"] > worse["S"]["low"]  # the intervals overlap
    keyed = {
        name: RankedValue(h["S"]["value"], np.asarray(h["replicas"]), "same")
        for name, h in (("better", better), ("worse", worse))
    }
    assert paired_ranks(keyed) == {"better": 1, "worse": 2}
