"""Pythia 8 event generation into flat numpy arrays (no Python loop over particles).

``Pythia.nextBatch(n)`` returns the event records as an awkward array; this module turns them into
:class:`GenParticles` (the visible final state, flat, with per-event offsets) and
:class:`GenTruth` (generator MET, boson qT and the truth objects of the kinematic-reconstruction task).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.generate.processes import COMMON_SETTINGS, Process
from metbench.data.jagged import gather_index, offsets_from_counts
from metbench.errors import MetbenchError

__all__ = [
    "INVISIBLE_PDG_IDS",
    "GenParticles",
    "GenTruth",
    "PythiaGenerator",
    "pythia_version",
]

#: Particles that leave no trace in the detector: neutrinos and the lightest neutralino.
INVISIBLE_PDG_IDS = np.array([12, 14, 16, 1000022], dtype=np.int32)

#: Particles with |eta| beyond this never reach the forward calorimeter (CMS HF ends at 5.2).
_ETA_KEEP = 5.2
#: Particles softer than this are dropped when stored (they fall below every tracking and
#: calorimeter threshold of the detector simulation) [GeV].
_PT_KEEP = 0.05

_MM_TO_CM = 0.1


@dataclass
class GenParticles:
    """Visible final-state particles of a set of events, flattened.

    All arrays have one entry per particle; ``offsets`` (length n_events + 1) delimits the events.
    Momenta in GeV, positions in cm.
    """

    offsets: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pdg_id: np.ndarray
    charge: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take_events(self, events: np.ndarray) -> GenParticles:
        """The particles of the given events (in that order, repetitions allowed)."""
        idx, new_offsets = gather_index(self.offsets, events)
        return GenParticles(
            new_offsets,
            *(getattr(self, name)[idx] for name in _PARTICLE_FIELDS),
        )

    def to_arrow_table(self) -> Any:
        import pyarrow as pa

        counts = self.counts
        event = np.repeat(np.arange(self.n_events, dtype=np.int32), counts)
        columns = {"event": event}
        columns.update({name: getattr(self, name) for name in _PARTICLE_FIELDS})
        return pa.table(columns)

    @classmethod
    def from_arrow_table(cls, table: Any) -> GenParticles:
        event = table.column("event").to_numpy()
        n_events = int(event[-1]) + 1 if len(event) else 0
        offsets = offsets_from_counts(np.bincount(event, minlength=n_events))
        return cls(offsets, *(table.column(name).to_numpy() for name in _PARTICLE_FIELDS))

    @classmethod
    def concatenate(cls, parts: Iterable[GenParticles]) -> GenParticles:
        parts = list(parts)
        counts = np.concatenate([p.counts for p in parts])
        offsets = offsets_from_counts(counts)
        return cls(
            offsets,
            *(np.concatenate([getattr(p, name) for p in parts]) for name in _PARTICLE_FIELDS),
        )


_PARTICLE_FIELDS = ("px", "py", "pz", "e", "pdg_id", "charge", "vx", "vy", "vz")


@dataclass
class GenTruth:
    """Generator-level truth per event (GeV).

    ``neutrinos``, ``leptons`` and ``b_quarks`` are awkward arrays of records
    ``{px, py, pz, e, pdg_id}``: the decay products of the W bosons (and the b quarks of the top
    decays) before final-state radiation, as in the Pythia event record.
    """

    gen_met_x: np.ndarray
    gen_met_y: np.ndarray
    gen_qt_x: np.ndarray
    gen_qt_y: np.ndarray
    neutrinos: ak.Array
    leptons: ak.Array
    b_quarks: ak.Array


def pythia_version() -> str:
    """Version of the installed pythia8mc package."""
    from importlib.metadata import version

    return version("pythia8mc")


class PythiaGenerator:
    """One Pythia instance for one process and seed.

    Parameters
    ----------
    process
        The hard process (or :data:`~metbench.data.generate.processes.MINBIAS`).
    seed
        Pythia ``Random:seed`` (1 … 900 000 000).
    """

    def __init__(self, process: Process, seed: int) -> None:
        try:
            import pythia8mc
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MetbenchError(
                "generation needs Pythia 8: install it with pip install 'metbench[generate]'"
            ) from exc
        if not 1 <= seed <= 900_000_000:
            raise MetbenchError(f"Pythia seed must be in 1..900000000, got {seed}")
        self.process = process
        self.seed = seed
        self._pythia = pythia8mc.Pythia("", False)
        for setting in (*COMMON_SETTINGS, f"Random:seed = {seed}", *process.settings):
            if not self._pythia.readString(setting):
                raise MetbenchError(f"Pythia rejected the setting {setting!r} of {process.name}")
        if not self._pythia.init():
            raise MetbenchError(f"Pythia failed to initialise process {process.name}")
        self._charge = functools.lru_cache(maxsize=None)(self._pythia.particleData.charge)

    def generate(self, n_events: int) -> tuple[GenParticles, GenTruth]:
        """Generate ``n_events`` events: visible final state and truth."""
        batch = self._pythia.nextBatch(n_events)
        if len(batch) != n_events:
            raise MetbenchError(
                f"Pythia returned {len(batch)} of {n_events} events for {self.process.name}"
            )
        prt = batch.prt
        particles = self._visible_final_state(prt)
        truth = self._truth(prt)
        return particles, truth

    def _charges(self, pdg_ids: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(pdg_ids, return_inverse=True)
        table = np.array([self._charge(int(i)) for i in unique], dtype=np.float32)
        return np.rint(table[inverse]).astype(np.int8)

    def _visible_final_state(self, prt: ak.Array) -> GenParticles:
        final = prt[prt.status > 0]
        pdg = ak.to_numpy(ak.flatten(final.id)).astype(np.int32)
        p = final.p
        px = ak.to_numpy(ak.flatten(p.px))
        py = ak.to_numpy(ak.flatten(p.py))
        pz = ak.to_numpy(ak.flatten(p.pz))
        e = ak.to_numpy(ak.flatten(p.e))
        vprod = ak.flatten(final.vProd)
        vx = ak.to_numpy(ak.fill_none(vprod.px, 0.0)) * _MM_TO_CM
        vy = ak.to_numpy(ak.fill_none(vprod.py, 0.0)) * _MM_TO_CM
        vz = ak.to_numpy(ak.fill_none(vprod.pz, 0.0)) * _MM_TO_CM
        counts = ak.to_numpy(ak.num(final.id))
        event = np.repeat(np.arange(len(counts)), counts)

        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.divide(pz, pt, out=np.full_like(pz, np.inf), where=pt > 0))
        keep = (
            ~np.isin(np.abs(pdg), INVISIBLE_PDG_IDS) & (pt > _PT_KEEP) & (np.abs(eta) < _ETA_KEEP)
        )
        event = event[keep]
        offsets = offsets_from_counts(np.bincount(event, minlength=len(counts)))
        pdg = pdg[keep]
        return GenParticles(
            offsets=offsets,
            px=px[keep].astype(np.float64),
            py=py[keep].astype(np.float64),
            pz=pz[keep].astype(np.float64),
            e=e[keep].astype(np.float64),
            pdg_id=pdg,
            charge=self._charges(pdg),
            vx=vx[keep],
            vy=vy[keep],
            vz=vz[keep],
        )

    def _truth(self, prt: ak.Array) -> GenTruth:
        final = prt[prt.status > 0]
        abs_id = abs(final.id)
        is_invisible = functools.reduce(
            lambda acc, pdg: acc | (abs_id == pdg), INVISIBLE_PDG_IDS.tolist(), abs_id < 0
        )
        invisible = final[is_invisible]
        met_x = ak.to_numpy(ak.sum(invisible.p.px, axis=1))
        met_y = ak.to_numpy(ak.sum(invisible.p.py, axis=1))

        n = len(prt)
        qt_x = np.full(n, np.nan)
        qt_y = np.full(n, np.nan)
        boson = self.process.boson_id
        if boson:
            last = _last_copy_index(prt, boson)
            found = last >= 0
            counts = ak.to_numpy(ak.num(prt.id))
            starts = offsets_from_counts(counts)[:-1]
            flat = starts[found] + last[found]
            qt_x[found] = ak.to_numpy(ak.flatten(prt.p.px))[flat]
            qt_y[found] = ak.to_numpy(ak.flatten(prt.p.py))[flat]

        # W decay products (neutrinos, charged leptons) and top-decay b quarks, before FSR.
        daughters_w = _daughters_of_last_copies(prt, 24)
        daughters_t = _daughters_of_last_copies(prt, 6)
        ids = abs(daughters_w.id)
        neutrinos = daughters_w[(ids == 12) | (ids == 14) | (ids == 16)]
        leptons = daughters_w[(ids == 11) | (ids == 13) | (ids == 15)]
        b_quarks = daughters_t[abs(daughters_t.id) == 5]
        return GenTruth(
            met_x,
            met_y,
            qt_x,
            qt_y,
            _objects(neutrinos),
            _objects(leptons),
            _objects(b_quarks),
        )


def _last_copy_index(prt: ak.Array, abs_id: int) -> np.ndarray:
    """Index of the last record entry with ``|id| == abs_id`` per event (-1 if none)."""
    local = ak.local_index(prt.id)
    masked = ak.where(abs(prt.id) == abs_id, local, -1)
    return ak.to_numpy(ak.max(masked, axis=1, initial=-1)).astype(np.int64)


def _daughters_of_last_copies(prt: ak.Array, abs_id: int) -> ak.Array:
    """Daughters of the last copies of every particle with ``|id| == abs_id`` (both signs).

    A particle is the last copy when none of its daughters has the same id (the record's carbon
    copies from recoil or shower steps point to a daughter of the same id).
    """
    ids = prt.id
    d1 = prt.daughter1
    d2 = prt.daughter2
    counts = ak.to_numpy(ak.num(ids))
    offsets = offsets_from_counts(counts)
    flat_id = ak.to_numpy(ak.flatten(ids))
    flat_d1 = ak.to_numpy(ak.flatten(d1)).astype(np.int64)
    flat_d2 = ak.to_numpy(ak.flatten(d2)).astype(np.int64)
    event = np.repeat(np.arange(len(counts)), counts)
    base = offsets[event]

    candidate = np.abs(flat_id) == abs_id
    first = np.where(flat_d1 > 0, flat_d1 + base, -1)
    same_id_child = np.zeros_like(candidate)
    ok = first >= 0
    same_id_child[ok] = flat_id[first[ok]] == flat_id[ok]
    last_copy = candidate & ~same_id_child & (flat_d1 > 0)

    # daughters are the range d1..d2 (d2 >= d1), or d1 alone when d2 == 0
    parents = np.flatnonzero(last_copy)
    lo = flat_d1[parents]
    hi = np.where(flat_d2[parents] >= lo, flat_d2[parents], lo)
    n_children = hi - lo + 1
    child_local = np.repeat(lo, n_children) + (
        np.arange(n_children.sum()) - np.repeat(np.cumsum(n_children) - n_children, n_children)
    )
    child_event = np.repeat(event[parents], n_children)
    child_flat = child_local + offsets[child_event]
    order = np.argsort(child_event, kind="stable")
    child_flat = child_flat[order]
    per_event = np.bincount(child_event, minlength=len(counts))
    flat = ak.flatten(prt)[child_flat]
    return ak.unflatten(flat, per_event)


def _objects(particles: ak.Array) -> ak.Array:
    return ak.zip(
        {
            "px": ak.values_astype(particles.p.px, np.float32),
            "py": ak.values_astype(particles.p.py, np.float32),
            "pz": ak.values_astype(particles.p.pz, np.float32),
            "e": ak.values_astype(particles.p.e, np.float32),
            "pdg_id": ak.values_astype(particles.id, np.int32),
        },
        with_name=None,
    )
