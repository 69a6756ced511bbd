"""Flat-array helpers for jagged (per-event) data: offsets and gathers."""

from __future__ import annotations

import numpy as np

__all__ = ["gather_index", "offsets_from_counts"]


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    """Event offsets (length n + 1, starting at 0) from per-event counts."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def gather_index(offsets: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the particles of ``events`` and the offsets of the gathered events.

    Parameters
    ----------
    offsets
        Event offsets into the flat particle arrays (length n_events + 1).
    events
        Event indices to gather, in order; repetitions allowed.
    """
    events = np.asarray(events, dtype=np.int64)
    starts = offsets[events]
    counts = offsets[events + 1] - starts
    new_offsets = offsets_from_counts(counts)
    idx = np.arange(new_offsets[-1], dtype=np.int64) + np.repeat(starts - new_offsets[:-1], counts)
    return idx, new_offsets
