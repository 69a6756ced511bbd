"""Two entries of one dataset side by side: the paired differences of their figures.

Every entry of a dataset is scored on the same events with the same bootstrap resamples (the
multiplicities depend on the event id only), so the replicas of two entries' headline S can be
subtracted resample by resample (:mod:`metbench.scoring.ranking`): the 95% interval of
``S(B) - S(A)`` is that of the paired differences. The results files keep the replicas of the
headline S only; the other figures' differences are given without an interval (each entry's own
interval is beside it), never with one made up.

The differences are computed here, at build time, for every pair of entries of a task; the site
writes them per dataset (``data/<group id>.compare.js``), loaded by ``compare.html`` only.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from metbench.results import as_results
from metbench.scoring.ranking import RankedValue, paired_differences, ranked_value

__all__ = ["PAIRED_FIGURES", "compare_data", "paired_difference"]

#: Figures whose paired interval the results allow (their bootstrap replicas are stored).
PAIRED_FIGURES: Final[tuple[str, ...]] = ("S",)


def paired_difference(a: RankedValue, b: RankedValue, confidence: float = 0.95) -> dict[str, Any]:
    """``S(B) - S(A)`` with the central interval of the paired bootstrap differences.

    Parameters
    ----------
    a, b
        The two entries' values and replicas (:func:`metbench.scoring.ranking.ranked_value`).
    confidence
        Of the interval.

    Returns
    -------
    dict
        ``{"value", "low", "high", "paired"}``: ``value`` None when either value is missing;
        ``low``/``high`` None and ``paired`` False unless both have replicas of the same
        resamples (same resampling, count, seed and events), as :func:`paired_ranks` requires.
    """
    if a.value is None or b.value is None:
        return {"value": None, "low": None, "high": None, "paired": False}
    out: dict[str, Any] = {"value": float(b.value) - float(a.value), "low": None, "high": None,
                           "paired": False}  # fmt: skip
    diff = paired_differences(a, b)
    if diff is not None and len(diff):
        alpha = (1 - confidence) / 2
        low, high = np.quantile(diff, [alpha, 1 - alpha])
        out.update(low=float(low), high=float(high), paired=True)
    return out


def compare_data(
    results: list[dict[str, Any]], views: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The differences of every pair of entries of one dataset, per task.

    Parameters
    ----------
    results
        The dataset's results documents.
    views
        Its tables per task (:func:`metbench.leaderboard.data.site_data`'s ``tasks``): the
        figures of the ``all`` view are the ones differenced.

    Returns
    -------
    dict
        ``{"paired": [...], "confidence": c, "tasks": {task: {"figures": [keys], "pairs":
        {A: {B: {"S": [value, low, high], "d": [value per figure]}}}}}}`` with ``A < B``
        (names in sorted order): the figures of B minus those of A (the other order is the
        negative), ``S`` with its paired interval (``low``/``high`` None when the two have no
        common replicas), ``d`` one difference per key of ``figures`` (None where either value
        is missing). Kept compact: the compare page loads it per dataset.
    """
    confidence = 0.95
    out: dict[str, Any] = {"paired": list(PAIRED_FIGURES), "confidence": confidence, "tasks": {}}
    by_name = {as_results(r).name: as_results(r) for r in results}
    for task, task_views in views.items():
        rows: list[dict[str, Any]] = next((v["rows"] for v in task_views if v["id"] == "all"), [])
        if not rows:
            continue
        figures = {row["entry"]: row["figures"] for row in rows}
        keys = list(rows[0]["figures"])
        confidence = float(by_name[rows[0]["entry"]].scores.get("confidence") or confidence)
        values = {
            name: ranked_value(by_name[name].task(task), by_name[name].scores, oracle=False)
            for name in figures
        }
        pairs: dict[str, dict[str, Any]] = {}
        names = sorted(figures)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                s = paired_difference(values[a], values[b], confidence)
                d = []
                for k in keys:
                    va, vb = figures[a][k]["value"], figures[b][k]["value"]
                    d.append(None if va is None or vb is None else float(vb) - float(va))
                pairs.setdefault(a, {})[b] = {"S": [s["value"], s["low"], s["high"]], "d": d}
        out["tasks"][task] = {"figures": keys, "pairs": pairs}
    out["confidence"] = confidence
    return out
