"""Ranks from paired bootstrap differences.

Every entry scored on the same events shares the bootstrap resamples (the multiplicities depend on
the event id only, :func:`metbench.scoring.bootstrap.event_poisson_counts`), so the replicas of two
entries' S can be subtracted resample by resample: the interval of ``S(B) - S(A)`` accounts for
the events they have in common. The rule:

* A ranks ahead of B only if the central interval (95%) of ``S(B) - S(A)`` lies above 0;
* an entry's rank is 1 + the number of entries ranked ahead of it; entries ahead of none of each
  other share a rank (a tie);
* the oracle (a reference line) and entries without S are not ranked.

Without replicas (scored with ``n_boot = 0``, or with other resamples) the point values decide and
nothing ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = ["RANK_RULE", "RankedValue", "paired_differences", "paired_ranks", "ranked_value"]

#: The one-line statement of the rule, printed under every ranked table.
RANK_RULE: Final = (
    "A ranks ahead of B only if the 95% interval of S(B) - S(A) over the shared bootstrap "
    "resamples lies above 0; rank = 1 + entries ranked ahead; the oracle is a reference, not ranked."
)


@dataclass(frozen=True)
class RankedValue:
    """What the ranking needs of an entry: its value (lower is better), its bootstrap replicas
    (or None), the identity of those resamples (entries are paired only when equal), and whether
    it takes part (False for the oracle and for an entry without S)."""

    value: float | None
    replicas: np.ndarray | None = None
    resamples: Any = None
    ranked: bool = True


def ranked_value(task: dict[str, Any] | None, scores: dict[str, Any], oracle: bool) -> RankedValue:
    """The :class:`RankedValue` of a resolution task's headline S in a results file's scores."""
    if task is None:
        return RankedValue(None, ranked=False)
    head = task["headline"]
    value = head["S"]["value"]
    replicas = head.get("replicas")
    resamples = (scores.get("resampling"), scores.get("n_boot"), scores.get("seed"),
                 task.get("n_events"))  # fmt: skip
    return RankedValue(
        value,
        np.asarray(replicas, dtype=np.float64) if replicas is not None else None,
        resamples,
        ranked=bool(head.get("ranked")) and value is not None and not oracle,
    )


def paired_differences(a: RankedValue, b: RankedValue) -> np.ndarray | None:
    """The finite replica differences ``S(B) - S(A)``, resample by resample, or None when the two
    are not paired (either lacks replicas, or they come from other resamples)."""
    if (
        a.replicas is None
        or b.replicas is None
        or a.resamples != b.resamples
        or len(a.replicas) != len(b.replicas)
    ):
        return None
    diff = b.replicas - a.replicas
    return diff[np.isfinite(diff)]


def paired_ranks(
    entries: dict[str, RankedValue], confidence: float = 0.95
) -> dict[str, int | None]:
    """Ranks by the rule of this module; None for entries that are not ranked."""
    ranked = {
        k: v
        for k, v in entries.items()
        if v.ranked and v.value is not None and np.isfinite(v.value)
    }
    names = list(ranked)
    alpha = (1 - confidence) / 2
    ahead_of: dict[str, int] = dict.fromkeys(names, 0)
    for b in names:
        for a in names:
            if a == b:
                continue
            ra, rb = ranked[a], ranked[b]
            diff = paired_differences(ra, rb)
            if diff is not None:
                a_ahead = len(diff) > 0 and float(np.quantile(diff, alpha)) > 0
            else:
                a_ahead = float(ra.value) < float(rb.value)  # type: ignore[arg-type]
            if a_ahead:
                ahead_of[b] += 1
    out: dict[str, int | None] = {k: None for k in entries}
    for name in names:
        out[name] = 1 + ahead_of[name]
    return out
