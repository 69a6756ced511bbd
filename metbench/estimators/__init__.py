"""Estimator plugins: the protocol, submission folders, and isolated runs."""

from __future__ import annotations

from metbench.estimators.isolation import Limits, run_isolated
from metbench.estimators.protocol import Estimator, UncertaintyEstimator
from metbench.estimators.submission import Submission, SubmissionError, load_submission

__all__ = [
    "Estimator",
    "Limits",
    "Submission",
    "SubmissionError",
    "UncertaintyEstimator",
    "load_submission",
    "run_isolated",
]
