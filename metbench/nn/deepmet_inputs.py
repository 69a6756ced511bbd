"""DeepMET's per-candidate inputs, prepared as CMSSW's DeepMETProducer prepares them.

From RecoMET/METPUSubtraction/plugins/DeepMETProducer.cc: candidates in collection order, at most
4500; continuous features (dxy, dz, eta, mass, pt/50, puppiWeight, px/50, py/50), values beyond
+-1e6 set to 0; categorical inputs charge (-1, 0, 1 -> 0, 1, 2), signed pdgId (11 classes) and
fromPV (0-3); the network's output times 50 is the MET (px, py) in GeV.

Shared by the official graphs (``submissions/deepmet-cms-official``) and the Keras re-implementation
(``submissions/deepmet-keras``), so both see identical inputs.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from metbench.events import EventBatch

__all__ = ["MAX_CANDIDATES", "NORM", "PDG_CLASSES", "producer_inputs"]

#: DeepMET's momentum normalisation [GeV].
NORM: Final[float] = 50.0
#: Candidates per event the producer feeds (the graphs' fixed input length).
MAX_CANDIDATES: Final[int] = 4500
#: DeepMETProducer's signed pdgId -> class map.
PDG_CLASSES: Final[dict[int, int]] = {
    -211: 0, -13: 1, -11: 2, 0: 3, 1: 4, 2: 5, 11: 6, 13: 7, 22: 8, 130: 9, 211: 10
}  # fmt: skip


def producer_inputs(
    batch: EventBatch, pad_to: int | None = MAX_CANDIDATES
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four inputs of a DeepMET network for a batch.

    Parameters
    ----------
    batch
        Events (candidates ordered as in the batch, hardest first).
    pad_to
        Length of the candidate axis: 4500 as the producer (candidates beyond it dropped, shorter
        events zero-padded), or ``None`` to keep the batch's own length.

    Returns
    -------
    continuous
        ``(n, N, 8)`` float32: dxy [cm], dz [cm], eta, mass [GeV], pt/50, puppiWeight, px/50, py/50;
        zero for padding.
    charge_class, pdg_class, from_pv
        ``(n, N)`` int64 categorical indices (0 for padding).
    """
    size = batch.max_particles if pad_to is None else pad_to
    f = {name: batch.feature(name)[:, :size].astype(np.float64) for name in batch.features}
    mask = batch.mask[:, :size]
    pt, phi = f["pt"], f["phi"]
    cont = np.stack(
        [f["d0"], f["dz"], f["eta"], f["mass"], pt / NORM, f["puppi_weight"],
         pt * np.cos(phi) / NORM, pt * np.sin(phi) / NORM],
        axis=-1,
    )  # fmt: skip
    cont[np.abs(cont) > 1e6] = 0.0
    cont[~mask] = 0.0
    lookup = np.full(512, -1, np.int64)
    for pdg, cls in PDG_CLASSES.items():
        lookup[pdg + 256] = cls
    pdg_cls = lookup[np.clip(f["pdg_id"].astype(np.int64), -256, 255) + 256]
    if (pdg_cls[mask] < 0).any():
        bad = sorted(set(f["pdg_id"][mask & (pdg_cls < 0)].astype(int).tolist()))
        raise ValueError(f"pdgId {bad} is not in DeepMETProducer's map")
    charge_cls = f["charge"].astype(np.int64) + 1
    from_pv = f["from_pv"].astype(np.int64)
    for arr in (pdg_cls, charge_cls, from_pv):
        arr[~mask] = 0
    if mask.shape[1] < size:
        pad = size - mask.shape[1]
        cont = np.pad(cont, ((0, 0), (0, pad), (0, 0)))
        pdg_cls, charge_cls, from_pv = (
            np.pad(a, ((0, 0), (0, pad))) for a in (pdg_cls, charge_cls, from_pv)
        )
    return cont.astype(np.float32), charge_cls, pdg_cls, from_pv
