"""The bins every figure is reported in: true MET or boson qT, true pileup, vertices, process."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "CMS_QT_EDGES",
    "Binning",
    "category_binning",
    "edge_binning",
    "quantile_edges",
]

#: The qT bin edges of the CMS DeepMET paper's recoil figures [GeV]; the last bin is open.
CMS_QT_EDGES: Final[tuple[float, ...]] = (
    0, 5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 120, 140, 170, 200, 230, 260, 290, 350,
)  # fmt: skip


@dataclass(frozen=True)
class Binning:
    """A partition of events into labelled groups.

    Attributes
    ----------
    name
        What is binned (``truth``, ``n_pu``, ``n_pv``, ``process``).
    labels
        One label per bin (``"[20, 30)"``, a process name, ...).
    index
        ``(n,)`` bin of each event (-1: in no bin).
    edges
        Numeric edges for ordered binnings (``len(labels) + 1``; the last may be ``inf``), else
        None.
    """

    name: str
    labels: tuple[str, ...]
    index: np.ndarray
    edges: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:g}"


def edge_binning(name: str, values: np.ndarray, edges: tuple[float, ...]) -> Binning:
    """Bins ``[e_i, e_{i+1})`` with an open last bin ``[e_last, inf)``; values below the first edge
    or NaN fall in no bin."""
    full = (*tuple(float(e) for e in edges), float("inf"))
    if any(b <= a for a, b in itertools.pairwise(full)):
        raise ValueError(f"bin edges of {name} must increase: {edges}")
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(np.asarray(full), values, side="right") - 1
    index[~np.isfinite(values) & ~np.isposinf(values)] = -1
    index[(index < 0) | (index >= len(full) - 1)] = -1
    labels = tuple(f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(full))
    return Binning(name, labels, index.astype(np.int64), full)


def quantile_edges(values: np.ndarray, n_bins: int) -> tuple[float, ...]:
    """Integer edges at the quantiles of an integer variable (such as ``n_pu``), each bin holding
    about the same number of events; duplicate edges are merged.

    The edges depend on the truth only, so every estimator scored on the same events sees the
    same bins.
    """
    values = np.sort(np.asarray(values))
    if len(values) == 0:
        return (0.0,)
    # bin k starts at the value of rank k n / n_bins, so each bin holds about n / n_bins events
    starts = values[(np.arange(n_bins) * len(values)) // n_bins]
    return tuple(float(e) for e in np.unique(np.floor(starts)))


def category_binning(
    name: str, values: np.ndarray, labels: tuple[str, ...] | None = None
) -> Binning:
    """One bin per distinct value (sorted), or per given label."""
    uniq, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
    labels = labels if labels is not None else tuple(uniq.tolist())
    lookup = {label: i for i, label in enumerate(labels)}
    to_label = np.array([lookup.get(u, -1) for u in uniq.tolist()], dtype=np.int64)
    return Binning(name, labels, to_label[inverse.ravel()] if len(uniq) else inverse, None)
