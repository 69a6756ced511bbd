"""The estimator protocol: numpy in, numpy out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from metbench.events import EventBatch

__all__ = ["Estimator", "UncertaintyEstimator"]


@runtime_checkable
class Estimator(Protocol):
    """What the harness calls. Construction takes the manifest's ``[parameters]`` as keyword
    arguments (plus ``device`` and ``weights_dir`` if the constructor accepts them, by name or
    through ``**kwargs``).

    Optional methods, used when present: ``fit(train, val)``, ``save(folder)``, ``load(folder)``
    (a classmethod) and ``predict_uncertainty(batch)``.
    """

    def predict(self, batch: EventBatch) -> np.ndarray:
        """MET of each event: ``(n, 2)`` float array of (px, py) [GeV]."""
        ...


@runtime_checkable
class UncertaintyEstimator(Estimator, Protocol):
    """An estimator that also gives a per-event covariance."""

    def predict_uncertainty(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 2)`` covariance of the MET estimate [GeV^2]."""
        ...
