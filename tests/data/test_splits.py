from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metbench.data.source import EventSource
from metbench.data.splits import SPLITS, assign_splits, split_uniform
from tests.conftest import manifest_of

MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """Reference SplitMix64 finaliser in Python integers (Steele, Lea, Flood 2014)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


@given(st.integers(min_value=0, max_value=2**62))
def test_hash_equals_reference_splitmix64(event_id):
    expected = (_splitmix64(event_id) >> 11) / 2**53
    assert split_uniform(np.array([event_id]))[0] == expected


def test_assignment_is_stable_and_balanced():
    ids = np.arange(1_000_000, dtype=np.int64) + 4 * 10**12
    codes = assign_splits(ids, {"train": 0.5, "val": 0.1, "test": 0.4})
    assert np.array_equal(codes, assign_splits(ids.copy(), {"train": 0.5, "val": 0.1, "test": 0.4}))
    frac = np.bincount(codes, minlength=3) / len(ids)
    np.testing.assert_allclose(frac, [0.5, 0.1, 0.4], atol=0.002)  # ~4 binomial sigma
    # pinned: these event ids fall in these splits for ever (a changed hash would move them)
    pinned = np.array([1 * 10**12, 1 * 10**12 + 1, 4 * 10**12 + 7, 6 * 10**12 + 10**6 + 3])
    assert [SPLITS[c] for c in assign_splits(pinned, {"train": 0.5, "val": 0.1, "test": 0.4})] == [
        SPLITS[int(np.searchsorted([0.5, 0.6], (_splitmix64(int(i)) >> 11) / 2**53, side="right"))]
        for i in pinned
    ]


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(np.arange(3), {"train": 0.5, "test": 0.4})
    with pytest.raises(ValueError, match="unknown split"):
        assign_splits(np.arange(3), {"train": 0.5, "dev": 0.5})


def test_dataset_splits_are_disjoint_complete_and_follow_the_hash(mini_dataset):
    m = manifest_of(mini_dataset)
    seen = {}
    for split in SPLITS:
        ids = np.concatenate(
            [b.event["event_id"] for b in EventSource(mini_dataset, split, batch_size=500)]
        )
        seen[split] = ids
        assert np.all(assign_splits(ids, m["splits"]["fractions"]) == SPLITS.index(split))
    all_ids = np.concatenate(list(seen.values()))
    assert len(all_ids) == len(np.unique(all_ids)) == 2040
    for split in SPLITS:
        expected = sum(p["events"][split] for p in m["processes"].values())
        assert len(seen[split]) == expected
