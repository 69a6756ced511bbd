"""Paired differences of two entries (metbench/leaderboard/compare.py), against the replicas of
the committed results (no browser needed)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from metbench.leaderboard.compare import compare_data, paired_difference
from metbench.leaderboard.data import seed_spreads, site_data
from metbench.results import find_results, read_results
from metbench.scoring.ranking import RankedValue

ROOT = Path(__file__).resolve().parents[2]


def _pu200() -> list[dict]:
    return [
        r
        for r in map(read_results, find_results([ROOT / "leaderboard" / "results"]))
        if r["dataset"]["name"] == "pu200"
    ]


def test_paired_interval_is_that_of_the_replica_differences():
    """Correlated replicas give a paired interval much narrower than the two entries' own; other
    resamples or a missing replica give no interval, a missing value no difference."""
    rng = np.random.default_rng(1)
    common = rng.normal(0, 5, 400)
    a = RankedValue(50.0, 50 + common, ("poisson", 400, 0, 1000))
    b = RankedValue(51.0, 51 + common + rng.normal(0, 0.1, 400), ("poisson", 400, 0, 1000))
    diff = paired_difference(a, b)
    low, high = np.quantile(b.replicas - a.replicas, [0.025, 0.975])
    assert diff == {"value": 1.0, "low": pytest.approx(low), "high": pytest.approx(high),
                    "paired": True}  # fmt: skip
    assert diff["low"] > 0  # A is better: its S is lower on every resample
    other = RankedValue(51.0, b.replicas, ("poisson", 400, 1, 1000))  # another seed
    assert paired_difference(a, other) == {"value": 1.0, "low": None, "high": None,
                                           "paired": False}  # fmt: skip
    assert paired_difference(a, RankedValue(None))["value"] is None


def test_compare_data_of_the_committed_results():
    """Every pair of the pu200 MET table, once (A < B): S with the interval of the stored
    replicas' differences, every other figure B − A without one."""
    results = _pu200()
    group = site_data(results)["groups"][0]
    compare = group["compare"]
    table = compare["tasks"]["met"]
    names = sorted(
        r["entry"] for r in next(v for v in group["tasks"]["met"] if v["id"] == "all")["rows"]
    )
    assert sum(len(b) for b in table["pairs"].values()) == len(names) * (len(names) - 1) // 2
    assert all(a < b for a, bs in table["pairs"].items() for b in bs)
    head = {r["entry"]["name"]: r["scores"]["tasks"]["met"] for r in results}
    a, b = "pf", "puppi"
    pair = table["pairs"][a][b]
    diff = np.asarray(head[b]["headline"]["replicas"]) - np.asarray(head[a]["headline"]["replicas"])
    low, high = np.quantile(diff, [0.025, 0.975])
    assert pair["S"] == pytest.approx(
        [head[b]["headline"]["S"]["value"] - head[a]["headline"]["S"]["value"], low, high]
    )
    k = table["figures"].index("rms_perp")
    assert pair["d"][k] == pytest.approx(
        head[b]["overall"]["rms_perp"]["value"] - head[a]["overall"]["rms_perp"]["value"]
    )
    assert compare["confidence"] == 0.95 and compare["paired"] == ["S"]
    assert compare_data(results, {}) == {"paired": ["S"], "confidence": 0.95, "tasks": {}}


def test_seed_spread_only_for_results_that_differ_in_their_seed():
    """The results record no seeds of their own: S over seeds is given for results that differ
    only in ``parameters.seed`` (and None for the rest: the site shows —)."""
    results = _pu200()
    base = next(r for r in results if r["entry"]["name"] == "chs")
    seeded = []
    for seed, s in ((1, 40.0), (2, 43.0), (3, 46.0)):
        c = copy.deepcopy(base)
        c["entry"]["name"] = f"chs-{seed}"
        c["entry"]["parameters"] = {"seed": seed}
        c["scores"]["headline"]["value"] = s
        seeded.append(c)
    other = copy.deepcopy(seeded[0])
    other["entry"]["name"] = "chs-other"
    other["entry"]["parameters"] = {"seed": 9, "cut": 1}  # other parameters: another entry
    spreads = seed_spreads([*results, *seeded, other])
    assert spreads["chs-1"] == spreads["chs-3"] == {
        "figure": "S", "n": 3, "min": 40.0, "max": 46.0, "std": pytest.approx(3.0),
        "seeds": [1, 2, 3], "budget": None, "members": ["chs-1", "chs-2", "chs-3"],
    }  # fmt: skip
    assert spreads["chs"] is None and spreads["chs-other"] is None
