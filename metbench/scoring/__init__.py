"""Scoring: the one definition of every metbench figure, with bootstrap intervals."""

from __future__ import annotations

from metbench.scoring.binning import CMS_QT_EDGES, Binning
from metbench.scoring.bootstrap import (
    DEFAULT_N_BOOT,
    GroupedSample,
    event_poisson_counts,
    grouped_statistics,
)
from metbench.scoring.metrics import (
    FIGURES,
    HEADLINE_EDGES,
    TAIL_THRESHOLDS,
    components,
    pileup_fit,
)
from metbench.scoring.ranking import RANK_RULE, paired_ranks
from metbench.scoring.score import HEADLINE, ScoringError, Truth, load_truth, score

__all__ = [
    "CMS_QT_EDGES",
    "DEFAULT_N_BOOT",
    "FIGURES",
    "HEADLINE",
    "HEADLINE_EDGES",
    "RANK_RULE",
    "TAIL_THRESHOLDS",
    "Binning",
    "GroupedSample",
    "ScoringError",
    "Truth",
    "components",
    "event_poisson_counts",
    "grouped_statistics",
    "load_truth",
    "paired_ranks",
    "pileup_fit",
    "score",
]
