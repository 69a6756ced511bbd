"""The hadronic recoil as CMS measures it: the Z -> mu mu selection and the muon-removed input.

CMS measures MET performance in data on Z -> mu mu events: the dimuon gives the boson's transverse
momentum qT, and the MET algorithm is run on the event *without* the two muons, so that what it
returns is minus the hadronic recoil, ``u = -e'``. metbench does the same:

================================  ==============================================================
selection                         two opposite-sign reconstructed muons (``|pdg_id| = 13``):
                                  the two highest-pT muons with pT > 20 GeV and ``|eta| < 2.4``,
                                  the leading one above 25 GeV, ``80 < m(mu mu) < 100`` GeV
``qT``                            the dimuon's transverse momentum [GeV]
input                             the event with those two candidates removed (the others keep
                                  their order); nothing the estimator is given marks it
estimate                          ``e'`` = the estimator's MET on that input; ``u = -e'``
================================  ==============================================================

The selection uses reconstructed candidates only. The harness applies it to every event of the
split and writes the muon-removed copies as an input extract of their own (opaque ids, shuffled:
:func:`metbench.estimators.inputs.write_input_extract`), which a second, fresh child predicts, so
no child sees both an event and its muon-removed copy; the scoring, which alone reads the truth,
applies the same function to the Z -> mu mu events it scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from metbench.events import EventBatch

__all__ = [
    "MASS_WINDOW",
    "MUON_ETA_MAX",
    "MUON_PT_LEADING",
    "MUON_PT_MIN",
    "DimuonSelection",
    "remove_candidates",
    "select_dimuons",
    "select_dimuons_in_batch",
]

#: Both muons: pT above this [GeV] ...
MUON_PT_MIN: Final[float] = 20.0
#: ... the leading one above this [GeV] ...
MUON_PT_LEADING: Final[float] = 25.0
#: ... and |eta| below this.
MUON_ETA_MAX: Final[float] = 2.4
#: The dimuon mass window [GeV].
MASS_WINDOW: Final[tuple[float, float]] = (80.0, 100.0)


@dataclass(frozen=True)
class DimuonSelection:
    """The selected dimuon of each event.

    Attributes
    ----------
    selected
        ``(n,)`` bool.
    first, second
        ``(n,)`` flat candidate index of the leading and subleading muon (-1 where not selected).
    qt
        ``(n, 2)`` dimuon transverse momentum (px, py) [GeV]; NaN where not selected.
    mass
        ``(n,)`` dimuon mass [GeV] of the two leading muons (NaN where fewer than two).
    """

    selected: np.ndarray
    first: np.ndarray
    second: np.ndarray
    qt: np.ndarray
    mass: np.ndarray


def select_dimuons(
    event: np.ndarray,
    n_events: int,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    mass: np.ndarray,
    charge: np.ndarray,
    pdg_id: np.ndarray,
) -> DimuonSelection:
    """Apply the recoil selection to flat candidate arrays.

    Parameters
    ----------
    event
        ``(m,)`` event index of each candidate (``0 <= event < n_events``).
    n_events
        Number of events.
    pt, eta, phi, mass, charge, pdg_id
        ``(m,)`` candidate columns (GeV, radians); computed in float64 whatever their dtype.
    """
    event = np.asarray(event, np.int64)
    pt64 = np.asarray(pt, np.float64)
    muon = (
        (np.abs(np.asarray(pdg_id)) == 13)
        & (pt64 > MUON_PT_MIN)
        & (np.abs(np.asarray(eta, np.float64)) < MUON_ETA_MAX)
    )
    idx = np.flatnonzero(muon)
    idx = idx[np.lexsort((-pt64[idx], event[idx]))]  # by event, then by decreasing pT
    ev = event[idx]
    start = np.r_[True, ev[1:] != ev[:-1]] if len(ev) else np.zeros(0, bool)
    rank = np.arange(len(ev)) - np.maximum.accumulate(np.where(start, np.arange(len(ev)), 0))
    first = np.full(n_events, -1, np.int64)
    second = np.full(n_events, -1, np.int64)
    first[ev[rank == 0]] = idx[rank == 0]
    second[ev[rank == 1]] = idx[rank == 1]
    has_two = second >= 0
    i1, i2 = first[has_two], second[has_two]

    def four(i: np.ndarray) -> tuple[np.ndarray, ...]:
        p = pt64[i]
        e_ = np.asarray(eta, np.float64)[i]
        f = np.asarray(phi, np.float64)[i]
        m = np.asarray(mass, np.float64)[i]
        px, py, pz = p * np.cos(f), p * np.sin(f), p * np.sinh(e_)
        return px, py, pz, np.sqrt(px * px + py * py + pz * pz + m * m)

    a, b = four(i1), four(i2)
    sx, sy, sz, se = (a[j] + b[j] for j in range(4))
    m2 = se * se - sx * sx - sy * sy - sz * sz
    dimuon_mass = np.full(n_events, np.nan)
    dimuon_mass[has_two] = np.sqrt(np.maximum(m2, 0.0))
    q = np.asarray(charge)
    ok = np.zeros(n_events, bool)
    ok[has_two] = (
        (pt64[i1] > MUON_PT_LEADING)
        & (q[i1] * q[i2] < 0)
        & (dimuon_mass[has_two] > MASS_WINDOW[0])
        & (dimuon_mass[has_two] < MASS_WINDOW[1])
    )
    qt = np.full((n_events, 2), np.nan)
    qt[has_two, 0], qt[has_two, 1] = sx, sy
    qt[~ok] = np.nan
    return DimuonSelection(
        selected=ok,
        first=np.where(ok, first, -1),
        second=np.where(ok, second, -1),
        qt=qt,
        mass=dimuon_mass,
    )


def select_dimuons_in_batch(batch: EventBatch) -> tuple[DimuonSelection, np.ndarray, np.ndarray]:
    """:func:`select_dimuons` on a padded batch: ``(selection, event, slot)`` where ``event`` and
    ``slot`` map the flat candidate indices of the selection back to the batch's arrays."""
    event, slot = np.nonzero(batch.mask)
    cols = {
        name: batch.feature(name)[event, slot]
        for name in ("pt", "eta", "phi", "mass", "charge", "pdg_id")
    }
    selection = select_dimuons(event, len(batch), **cols)
    return selection, event, slot


def remove_candidates(batch: EventBatch, rows: np.ndarray, slots: np.ndarray) -> EventBatch:
    """The events ``rows`` of ``batch`` with the candidates ``slots[i]`` (``(len(rows), k)``, -1
    for none) removed; the remaining candidates keep their order and the padding stays at the
    end. Per-candidate truth columns are removed alike."""
    sub = batch.take(np.asarray(rows))
    slots = np.asarray(slots, np.int64).reshape(len(sub), -1)
    drop = np.zeros(sub.mask.shape, bool)
    r, c = np.nonzero(slots >= 0)
    drop[r, slots[r, c]] = True
    keep = sub.mask & ~drop
    order = np.argsort(~keep, axis=1, kind="stable")  # kept candidates first, in their order
    particles = np.take_along_axis(sub.particles, order[:, :, None], axis=1)
    mask = np.take_along_axis(keep, order, axis=1)
    particles = np.where(mask[:, :, None], particles, 0).astype(sub.particles.dtype)
    truth = {
        k: np.where(mask, np.take_along_axis(v, order, axis=1), 0).astype(v.dtype)
        if v.ndim == 2 and v.shape == sub.mask.shape
        else v
        for k, v in sub.truth.items()
    }
    return sub.with_padded(particles, mask, truth)
