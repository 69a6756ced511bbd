"""Estimator plugins: the protocol, submission folders, and isolated runs."""

from __future__ import annotations

from metbench.estimators.isolation import Limits, run_isolated
from metbench.estimators.protocol import (
    CovarianceEstimator,
    Estimator,
    NeutrinoEstimator,
    TrainableEstimator,
    UncertaintyEstimator,
)
from metbench.estimators.submission import Submission, SubmissionError, load_submission

__all__ = [
    "CovarianceEstimator",
    "Estimator",
    "Limits",
    "NeutrinoEstimator",
    "Submission",
    "SubmissionError",
    "TrainableEstimator",
    "UncertaintyEstimator",
    "load_submission",
    "run_isolated",
]
