"""Shared setup of the asv benchmarks: the fixed small dataset (the ``mini`` preset, seed 1, from
``$METBENCH_DATA``; generated on first use) and its batches."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

from metbench.data.cache import resolve_dataset
from metbench.data.source import EventSource
from metbench.events import EventBatch

ROOT = Path(__file__).resolve().parents[1]


@cache
def mini() -> Path:
    return resolve_dataset("mini")


def batch_of(size: int, max_particles: int = 4500) -> EventBatch:
    """The first ``size`` events of mini's test split, without truth (what predict sees)."""
    batch = next(iter(EventSource(mini(), "test", batch_size=size, max_particles=max_particles)))
    return replace(batch, truth={})


def with_chains(size: int) -> EventBatch:
    """tt -> 2l2nu events of mini's test split with the truth-matched b quarks and leptons."""
    source = EventSource(mini(), "test", batch_size=size, processes=["ttbar_2l2nu"])
    batch = next(iter(source))
    return replace(batch, truth={k: batch.truth[k] for k in ("truth_leptons", "truth_b_quarks")})
