"""Fixed train/validation/test splits by a hash of ``event_id``.

The split of an event depends on its ``event_id`` alone (a SplitMix64 hash mapped to [0, 1)), so it is
the same for every entry, every run and every machine, and no event can be in two splits.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["SPLITS", "assign_splits", "split_uniform"]

#: Split names, in the order of the codes returned by :func:`assign_splits`.
SPLITS: Final[tuple[str, ...]] = ("train", "val", "test")

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def split_uniform(event_id: np.ndarray) -> np.ndarray:
    """A number in [0, 1) per event: SplitMix64(event_id) / 2**64 (53-bit resolution)."""
    z = np.asarray(event_id, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign_splits(event_id: np.ndarray, fractions: dict[str, float]) -> np.ndarray:
    """Split code (index into :data:`SPLITS`) of each event.

    Parameters
    ----------
    event_id
        int64 event identifiers.
    fractions
        Fraction of events per split name; must sum to 1 (missing splits count as 0).
    """
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; splits are {SPLITS}")
    f = np.array([fractions.get(name, 0.0) for name in SPLITS], dtype=np.float64)
    if np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    edges = np.cumsum(f)[:-1]
    return np.searchsorted(edges, split_uniform(event_id), side="right").astype(np.int8)
