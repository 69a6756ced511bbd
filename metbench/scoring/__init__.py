"""Scoring: the one definition of every metbench figure, with bootstrap intervals."""

from __future__ import annotations

from metbench.scoring.binning import CMS_QT_EDGES, Binning
from metbench.scoring.bootstrap import DEFAULT_N_BOOT, GroupedSample, grouped_statistics
from metbench.scoring.metrics import FIGURES, TAIL_THRESHOLDS, components, pileup_fit
from metbench.scoring.score import HEADLINE, ScoringError, Truth, load_truth, rank_with_ties, score

__all__ = [
    "CMS_QT_EDGES",
    "DEFAULT_N_BOOT",
    "FIGURES",
    "HEADLINE",
    "TAIL_THRESHOLDS",
    "Binning",
    "GroupedSample",
    "ScoringError",
    "Truth",
    "components",
    "grouped_statistics",
    "load_truth",
    "pileup_fit",
    "rank_with_ties",
    "score",
]
