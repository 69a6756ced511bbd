"""Candidate-sum MET baselines: PF, CHS, track, PUPPI and the truth oracle.

Each is ``MET = -sum_i w_i pT_i`` over the event's particle-flow candidates with a per-candidate
weight ``w_i`` in [0, 1]:

=========  ======================================================================================
PF         every candidate (CMS ``RawMET``)
CHS        candidates with ``from_pv > 0`` (CMS ``ChsMET``: the ``fromPV(0) > 0`` selection; neutral
           candidates pass with ``from_pv = 3``)
track      charged candidates with ``from_pv >= 2`` (MiniAOD's ``TkMET``: charged, associated with
           the PV0); ``min_from_pv=1`` gives UL NanoAOD's recomputed ``TkMET``
           (``fromPV(0) > 0``, tracks in no vertex fit included)
PUPPI      ``w`` = weights recomputed with CMSSW's ``puppiNoLep`` settings, as CMS builds
           ``RawPuppiMET`` (leptons weight 1, photons above 20 GeV weight 1; Run-2 or Phase-2
           tune), or the dataset's stored (jet) PUPPI weight
oracle     candidates not from a pileup interaction, by truth: the limit of pileup removal
           with this detector (it still has resolution and acceptance)
=========  ======================================================================================
"""

from __future__ import annotations

from typing import Final

import numpy as np

from metbench.baselines.kinematics import met_from_weights
from metbench.baselines.puppi import PUPPI_TUNES, PuppiParameters, puppi_weights
from metbench.events import EventBatch

__all__ = ["PUPPI_CHUNK", "ChsMet", "OracleMet", "PfMet", "PuppiMet", "TrackMet"]

#: Events per PUPPI call when :class:`PuppiMet` recomputes weights: bounds the memory of the
#: neighbour pairs (a pu200 event has ~7400 candidates); the weights do not depend on it.
PUPPI_CHUNK: Final[int] = 64


class PfMet:
    """MET from all particle-flow candidates."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), batch.mask)


class ChsMet:
    """MET from candidates with ``from_pv > 0`` (charged pileup removed)."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        keep = batch.mask & (batch.feature("from_pv") > 0)
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), keep)


class TrackMet:
    """MET from charged candidates associated with the primary vertex.

    Parameters
    ----------
    min_from_pv
        Lowest ``from_pv`` kept: 2 (default) keeps the tracks attached to the PV, as MiniAOD's
        track MET (``pvAssociationQuality() >= 4 && vertexRef().key() == 0``); 1 keeps also the
        tracks in no vertex fit, as the track MET that UL NanoAOD recomputes
        (``fromPV(0) > 0``, ``metbench data provenance`` on a NanoAOD file shows it).
    """

    def __init__(self, min_from_pv: int = 2) -> None:
        if min_from_pv not in (1, 2, 3):
            raise ValueError(f"min_from_pv must be 1, 2 or 3, got {min_from_pv!r}")
        self.min_from_pv = int(min_from_pv)

    def predict(self, batch: EventBatch) -> np.ndarray:
        keep = (
            batch.mask
            & (batch.feature("charge") != 0)
            & (batch.feature("from_pv") >= self.min_from_pv)
        )
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), keep)


class PuppiMet:
    """MET from PUPPI-weighted candidates.

    Parameters
    ----------
    weights
        ``"nolep"``: weights recomputed with CMSSW's ``puppiNoLep`` settings, from which CMS builds
        ``RawPuppiMET`` (the ranked ``puppi`` entry); ``"stored"`` (default of the class, used by
        the kinematic entries): the dataset's ``puppi_weight``, the weights of CMS's PUPPI jets
        (``puppi``, with whatever tune the dataset was generated with).
    tune
        PUPPI parameters of the recomputation (``"nolep"`` only): ``"run2"`` (``Puppi_cff.py``)
        or ``"phase2"`` (its ``phase2_common`` modifier); see :mod:`metbench.baselines.puppi`.
        The pu200 dataset's stored weights use ``"phase2"``, and so should its ``nolep`` MET.
    chunk
        Events per PUPPI call (memory bound; the result does not depend on it).
    """

    def __init__(
        self, weights: str = "stored", tune: str = "run2", chunk: int = PUPPI_CHUNK
    ) -> None:
        if weights not in ("stored", "nolep"):
            raise ValueError(f"weights must be 'stored' or 'nolep', got {weights!r}")
        if tune not in PUPPI_TUNES:
            raise ValueError(f"tune must be one of {', '.join(PUPPI_TUNES)}, got {tune!r}")
        if int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk!r}")
        self.weights = weights
        self.tune = tune
        self.chunk = int(chunk)
        self.parameters = PuppiParameters.no_lepton(tune)

    def predict(self, batch: EventBatch) -> np.ndarray:
        if self.weights == "stored":
            w = np.where(batch.mask, batch.feature("puppi_weight"), 0.0)
        else:
            w = np.zeros(batch.mask.shape, dtype=np.float64)
            for start in range(0, len(batch), self.chunk):
                rows = slice(start, start + self.chunk)
                w[rows] = self._recompute(batch.take(rows))
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), w)

    def _recompute(self, batch: EventBatch) -> np.ndarray:
        """``puppiNoLep`` weights of a batch's candidates, ``(n, max_particles)`` (0 where padded)."""
        event, slot = np.nonzero(batch.mask)
        flat = {name: batch.feature(name)[event, slot] for name in batch.features}
        w = np.zeros(batch.mask.shape, dtype=np.float64)
        w[event, slot] = puppi_weights(
            event, len(batch), flat["pt"], flat["eta"], flat["phi"], flat["mass"], flat["charge"],
            flat["pdg_id"], flat["dz"], flat["from_pv"], batch.event["n_pv"], self.parameters,
        )  # fmt: skip
        return w


class OracleMet:
    """MET from the candidates that truth says are not from pileup (needs ``truth_is_pileup``)."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        if "truth_is_pileup" not in batch.truth:
            raise KeyError("the oracle needs truth_is_pileup: declare uses_truth in its manifest")
        keep = batch.mask & ~batch.truth["truth_is_pileup"]
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), keep)
