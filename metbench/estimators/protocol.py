"""The plugin contract: what the harness calls on an entry's estimator, numpy in, numpy out.

These protocols are the reference; the worker checks them with :func:`satisfies` (``isinstance``
checks only that the names exist; this also checks that they are callable) and names what is
missing (:func:`missing_methods`). Construction takes the manifest's ``[parameters]`` as keyword arguments, plus
``device`` (``"cpu"`` or ``"cuda"``) and ``weights_dir`` (the submission folder) when the
constructor accepts them, by name or through ``**kwargs``.

==========================  ==============================================================
protocol                    methods (all take an :class:`~metbench.events.EventBatch`)
==========================  ==============================================================
:class:`Estimator`          ``predict(batch) -> (n, 2)`` MET (px, py) [GeV]; every entry
:class:`CovarianceEstimator`  also ``predict_uncertainty(batch) -> (n, 2, 2)`` [GeV^2]:
                            pulls, coverage and significance are scored
:class:`StudentTEstimator`  also ``predict_dof(batch) -> (n,)``: the error is a bivariate
                            Student t with that covariance and nu > 2 degrees of freedom
                            (heavier tails than a Gaussian); scored by its own regions
:class:`NeutrinoEstimator`  also ``predict_neutrinos(batch) -> (n, 2, 3)`` (px, py, pz) of
                            the two neutrinos of tt -> 2l2nu [GeV]: the kinematic task
:class:`TrainableEstimator`  also ``fit(train, val, settings)`` and ``save(folder)``:
                            ``metbench train``
==========================  ==============================================================

A trainable estimator may also list, in an attribute ``inference_parameters``, the parameters
that do not change its training (a runtime, a chunk size), so that variants differing only in
them are trained once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from metbench.events import EventBatch

if TYPE_CHECKING:
    from metbench.data.source import EventSource
    from metbench.nn.training import TrainSettings, TrainState

__all__ = [
    "CovarianceEstimator",
    "Estimator",
    "NeutrinoEstimator",
    "StudentTEstimator",
    "TrainableEstimator",
    "UncertaintyEstimator",
    "missing_methods",
    "satisfies",
]


@runtime_checkable
class Estimator(Protocol):
    """What every entry is: a MET estimate per event."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        """MET of each event: ``(n, 2)`` float array of (px, py) [GeV]; finite."""
        ...


@runtime_checkable
class CovarianceEstimator(Estimator, Protocol):
    """An estimator that also gives a per-event covariance of its MET."""

    def predict_uncertainty(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 2)`` covariance of the MET estimate [GeV^2], symmetric positive definite."""
        ...


@runtime_checkable
class StudentTEstimator(CovarianceEstimator, Protocol):
    """A covariance estimator whose error model is a bivariate Student t, not a Gaussian: the
    coverage and the pulls are those of its own 68.27 % / 95.45 % regions
    (:func:`metbench.scoring.metrics.gaussian_equivalent_chi2`)."""

    def predict_dof(self, batch: EventBatch) -> np.ndarray:
        """``(n,)`` degrees of freedom nu > 2 of each event's error (``inf``: Gaussian), whose
        covariance is ``predict_uncertainty``'s (the t's scale matrix is ``cov (nu - 2) / nu``)."""
        ...


#: The former name of :class:`CovarianceEstimator`.
UncertaintyEstimator = CovarianceEstimator


@runtime_checkable
class NeutrinoEstimator(Estimator, Protocol):
    """An estimator of the two neutrinos of tt -> (b l+ nu)(b~ l- nu~) (the kinematic task)."""

    def predict_neutrinos(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 3)`` (px, py, pz) of the top's and the antitop's neutrino [GeV]; NaN for an
        event it does not reconstruct."""
        ...


@runtime_checkable
class TrainableEstimator(Estimator, Protocol):
    """An estimator ``metbench train`` can train (resumable, early-stopped: see
    :mod:`metbench.nn.training`)."""

    def fit(self, train: EventSource, val: EventSource, settings: TrainSettings) -> TrainState:
        """Train on ``train``, select on ``val`` (both with the truth attached), resuming from
        ``settings.checkpoint_dir`` unless ``settings.restart``; the final state (history, best
        epoch)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the weights (and their history) where the manifest's ``weights`` list them,
        relative to ``folder``."""
        ...


def missing_methods(estimator: Any, protocol: type) -> list[str]:
    """The methods of ``protocol`` that ``estimator`` lacks (or has but cannot call)."""
    names = [
        name
        for klass in protocol.__mro__
        if klass not in (object, Protocol) and getattr(klass, "_is_protocol", False)
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("_")
    ]
    return [n for n in dict.fromkeys(names) if not callable(getattr(estimator, n, None))]


def satisfies(estimator: Any, protocol: type) -> bool:
    """Whether ``estimator`` has every method of ``protocol``, callable."""
    return not missing_methods(estimator, protocol)
