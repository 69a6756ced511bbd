"""The metbench event model: column names, units, dtypes and :class:`EventBatch`.

Units are GeV for momenta and masses, cm for lengths and radians for angles, throughout.

Per particle-flow candidate (jagged per event, stored as the list column ``pf``):

========================  =========  ==================================================================
column                    dtype      meaning
========================  =========  ==================================================================
``pt``                    float32    transverse momentum [GeV]
``eta``                   float32    pseudorapidity
``phi``                   float32    azimuth [rad], in (-pi, pi]
``mass``                  float32    candidate mass hypothesis [GeV] (CMS PF: pion mass for charged
                                     hadrons, 0 for photons and neutral hadrons)
``charge``                int8       -1, 0, +1
``pdg_id``                int32      CMS PF convention: +-211 charged hadron, +-11, +-13, 22 photon,
                                     130 neutral hadron, 1 / 2 forward-calorimeter hadron / EM
``d0``                    float32    transverse impact parameter [cm]; 0 for neutral candidates
``dz``                    float32    longitudinal impact parameter w.r.t. the primary vertex [cm];
                                     0 for neutral candidates
``from_pv``               int8       CMS ``PackedCandidate::fromPV()``: 0 NoPV, 1 PVLoose, 2 PVTight,
                                     3 PVUsedInFit (neutrals: 3, as CMS stores them)
``puppi_weight``          float32    PUPPI weight in [0, 1] (CMSSW algorithm)
``truth_is_pileup``       bool       truth: the candidate comes from a pileup interaction
========================  =========  ==================================================================

Per event: ``event_id`` (int64), ``process`` (string), ``mu`` (mean pileup), ``n_pu`` (true number of
pileup interactions), ``n_pv`` (reconstructed vertices), ``gen_met_x``, ``gen_met_y`` (the sum of the
invisible particles' transverse momenta, GeV), ``gen_qt_x``, ``gen_qt_y`` (the boson's transverse
momentum, GeV; NaN where no boson is defined), and the truth objects ``truth_neutrinos``,
``truth_leptons`` (the W decay products, before final-state radiation) and ``truth_b_quarks`` (the b
quarks of top decays; one fewer in the rare t -> W s, W d decays), jagged records of
``px, py, pz, e`` [GeV] and ``pdg_id``.

Floats are stored at reduced precision (NanoAOD-style mantissa rounding, see
``metbench.data.generate.run.STORED_PRECISION``): pt 12 bits, eta and phi 10, d0 and dz 8 bits.

Truth columns are kept for scoring only and are never handed to an estimator's ``predict``:
the particle column ``truth_is_pileup`` and every event column in :data:`TRUTH_EVENT_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

__all__ = [
    "DEFAULT_MAX_PARTICLES",
    "EVENT_COLUMNS",
    "OBSERVABLE_EVENT_COLUMNS",
    "PARTICLE_COLUMNS",
    "PARTICLE_DTYPES",
    "PARTICLE_FEATURES",
    "TRUTH_EVENT_COLUMNS",
    "TRUTH_MATCHED_INPUTS",
    "TRUTH_OBJECTS",
    "TRUTH_PARTICLE_COLUMNS",
    "EventBatch",
    "JaggedParticles",
    "concatenate_batches",
    "pad_jagged",
]

#: Reconstructed per-candidate columns, in the order of the padded feature axis.
PARTICLE_FEATURES: Final[tuple[str, ...]] = (
    "pt",
    "eta",
    "phi",
    "mass",
    "charge",
    "pdg_id",
    "d0",
    "dz",
    "from_pv",
    "puppi_weight",
)
#: Truth-only per-candidate columns (never given to an estimator).
TRUTH_PARTICLE_COLUMNS: Final[tuple[str, ...]] = ("truth_is_pileup",)
PARTICLE_COLUMNS: Final[tuple[str, ...]] = PARTICLE_FEATURES + TRUTH_PARTICLE_COLUMNS

PARTICLE_DTYPES: Final[dict[str, np.dtype]] = {
    "pt": np.dtype(np.float32),
    "eta": np.dtype(np.float32),
    "phi": np.dtype(np.float32),
    "mass": np.dtype(np.float32),
    "charge": np.dtype(np.int8),
    "pdg_id": np.dtype(np.int32),
    "d0": np.dtype(np.float32),
    "dz": np.dtype(np.float32),
    "from_pv": np.dtype(np.int8),
    "puppi_weight": np.dtype(np.float32),
    "truth_is_pileup": np.dtype(np.bool_),
}

#: Event columns an estimator may see (mu is known from the luminosity, n_pv is reconstructed).
OBSERVABLE_EVENT_COLUMNS: Final[tuple[str, ...]] = ("event_id", "mu", "n_pv")
#: Event columns kept for scoring only.
TRUTH_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "process",
    "n_pu",
    "gen_met_x",
    "gen_met_y",
    "gen_qt_x",
    "gen_qt_y",
)
EVENT_COLUMNS: Final[tuple[str, ...]] = OBSERVABLE_EVENT_COLUMNS + TRUTH_EVENT_COLUMNS
EVENT_DTYPES: Final[dict[str, np.dtype]] = {
    "event_id": np.dtype(np.int64),
    "mu": np.dtype(np.float32),
    "n_pv": np.dtype(np.int32),
    "n_pu": np.dtype(np.int32),
    "gen_met_x": np.dtype(np.float32),
    "gen_met_y": np.dtype(np.float32),
    "gen_qt_x": np.dtype(np.float32),
    "gen_qt_y": np.dtype(np.float32),
}
#: Jagged truth objects per event (records of px, py, pz, e in GeV and pdg_id).
TRUTH_OBJECTS: Final[tuple[str, ...]] = ("truth_neutrinos", "truth_leptons", "truth_b_quarks")
#: Truth objects an entry may take as truth-matched inputs (``uses_truth``; kinematic
#: reconstruction), as ``(n, 2, 4)`` (px, py, pz, E) chains: see ``metbench.data.source.truth_chains``.
TRUTH_MATCHED_INPUTS: Final[tuple[str, ...]] = ("truth_leptons", "truth_b_quarks")

#: CMS DeepMET reads at most 4500 candidates per event.
DEFAULT_MAX_PARTICLES: Final[int] = 4500


@dataclass(frozen=True)
class JaggedParticles:
    """The candidates of a batch without padding: the candidates of event ``i`` are rows
    ``offsets[i]:offsets[i + 1]`` of the flat arrays, hardest first (the same candidates, in the
    same order, as the padded view of the :class:`EventBatch` that carries it).

    Read from the stored files without a copy where nothing has to be cut or reordered (stored
    candidates are ordered by decreasing ``pt``).

    Attributes
    ----------
    offsets
        ``(n + 1,)`` int64, ``offsets[0] == 0``.
    values
        One flat array per feature (the dtypes of :data:`PARTICLE_DTYPES`, not float32).
    """

    offsets: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def counts(self) -> np.ndarray:
        """``(n,)`` candidates per event."""
        return np.diff(self.offsets)

    @property
    def event_index(self) -> np.ndarray:
        """The event of each candidate, ``(n_candidates,)`` (for ``np.add.at``/``bincount``)."""
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def take(self, rows: slice | np.ndarray) -> JaggedParticles:
        """The candidates of some events (a contiguous slice is a view)."""
        index = np.arange(len(self.offsets) - 1)[rows]
        if isinstance(rows, slice) and (rows.step in (None, 1)):
            if len(index) == 0:
                return JaggedParticles(
                    np.zeros(1, np.int64), {k: v[:0] for k, v in self.values.items()}
                )
            lo, hi = self.offsets[index[0]], self.offsets[index[-1] + 1]
            return JaggedParticles(
                self.offsets[index[0] : index[-1] + 2] - lo,
                {k: v[lo:hi] for k, v in self.values.items()},
            )
        counts = self.counts[index]
        offsets = np.zeros(len(index) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)
        source = np.repeat(self.offsets[index], counts) + within
        return JaggedParticles(offsets, {k: v[source] for k, v in self.values.items()})

    def hardest(self, n: int) -> JaggedParticles:
        """At most the ``n`` hardest candidates of each event."""
        counts = self.counts
        if counts.max(initial=0) <= n:
            return self
        kept = np.minimum(counts, n)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(kept, out=offsets[1:])
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], kept)
        source = np.repeat(self.offsets[:-1], kept) + within
        return JaggedParticles(offsets, {k: v[source] for k, v in self.values.items()})


class _Candidates:
    """The candidates of an :class:`EventBatch`, padded and/or jagged, each view made on first
    use and then kept (shared by the batches that ``dataclasses.replace`` makes of it)."""

    __slots__ = ("_jagged", "_mask", "_particles", "features", "width")

    def __init__(
        self,
        features: tuple[str, ...],
        width: int,
        jagged: JaggedParticles | None = None,
        particles: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        if jagged is None and (particles is None or mask is None):
            raise ValueError("candidates need a jagged view or padded particles and mask")
        self.features, self.width = features, int(width)
        self._jagged, self._particles, self._mask = jagged, particles, mask

    def __len__(self) -> int:
        if self._jagged is not None:
            return len(self._jagged.offsets) - 1
        assert self._mask is not None
        return int(self._mask.shape[0])

    def counts(self) -> np.ndarray:
        return self._jagged.counts if self._jagged is not None else self.mask().sum(axis=1)

    def particles(self) -> np.ndarray:
        if self._particles is None:
            assert self._jagged is not None
            self._particles = pad_jagged(self._jagged, self.width, self.features)
        return self._particles

    def mask(self) -> np.ndarray:
        if self._mask is None:
            assert self._jagged is not None
            self._mask = np.arange(self.width) < self._jagged.counts[:, None]
        return self._mask

    def jagged(self) -> JaggedParticles:
        if self._jagged is None:
            mask, particles = self.mask(), self.particles()
            event, slot = np.nonzero(mask)
            offsets = np.zeros(len(mask) + 1, np.int64)
            np.cumsum(mask.sum(axis=1), out=offsets[1:])
            values = {
                name: particles[event, slot, k].astype(PARTICLE_DTYPES.get(name, np.float32))
                for k, name in enumerate(self.features)
            }
            self._jagged = JaggedParticles(offsets, values)
        return self._jagged

    def take(self, rows: slice | np.ndarray) -> _Candidates:
        return _Candidates(
            self.features,
            self.width,
            None if self._jagged is None else self._jagged.take(rows),
            None if self._particles is None else self._particles[rows],
            None if self._mask is None else self._mask[rows],
        )

    def hardest(self, n: int) -> _Candidates:
        return _Candidates(
            self.features,
            min(int(n), self.width),
            None if self._jagged is None else self._jagged.hardest(n),
            None if self._particles is None else self._particles[:, :n],
            None if self._mask is None else self._mask[:, :n],
        )


@dataclass(frozen=True, init=False, eq=False)
class EventBatch:
    """A batch of events: its candidates as padded numpy arrays and as flat (jagged) arrays.

    The two views hold the same candidates, hardest first. A batch read from a dataset carries the
    jagged view and pads on first use of :attr:`particles`, :attr:`mask` or :meth:`feature`, so
    an entry that works on flat arrays (``batch.jagged``) never pays for the padding; a batch
    built from padded arrays derives its jagged view on first use of :attr:`jagged`.

    The padded candidate axis is the entry's ``max_particles`` long (:attr:`max_particles`),
    whatever the batch holds, so that an estimate never depends on which events share its batch
    (the input extract shuffles them; NumPy's pairwise sums change in the last bit with the padded
    length). An entry that wants less padding uses :meth:`trimmed` (as ``deepmet-keras`` does) or
    the jagged view.

    Construct with ``EventBatch(particles, mask, features, event, truth, n_truncated)`` or
    :meth:`from_jagged`. ``dataclasses.replace(batch, truth={})`` keeps the batch as it is (lazy
    or not); replacing ``particles`` or ``mask`` makes the padded arrays the reference and the
    jagged view is derived from them again.

    Attributes
    ----------
    particles
        ``(n, N, len(features))`` float32, candidates ordered by decreasing ``pt``, zero-padded;
        ``N`` the entry's ``max_particles`` (less after :meth:`hardest` or :meth:`trimmed`).
    mask
        ``(n, N)`` bool, True for real candidates.
    features
        Names of the last axis of ``particles``.
    event
        Observable event columns (``event_id``, ``mu``, ``n_pv``), each shape ``(n,)``.
    truth
        Truth columns: event-level ones of shape ``(n,)`` and ``truth_is_pileup`` of shape
        ``(n, N)``. Empty in the batch an estimator receives.
    n_truncated
        Events in this batch that had more than ``max_particles`` candidates (their softest
        candidates were dropped).
    jagged
        The same candidates without padding (:class:`JaggedParticles`: offsets and one flat
        array per feature), for entries that work on flat arrays.
    """

    _candidates: _Candidates
    features: tuple[str, ...]
    event: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    n_truncated: int

    def __init__(
        self,
        particles: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        features: Sequence[str] = (),
        event: dict[str, np.ndarray] | None = None,
        truth: dict[str, np.ndarray] | None = None,
        n_truncated: int = 0,
        jagged: JaggedParticles | None = None,
        *,
        _candidates: _Candidates | None = None,
    ) -> None:
        features = tuple(features)
        if particles is not None or mask is not None:
            # padded arrays given (a constructor call, or ``replace`` of particles or mask): they
            # are the reference; what was not given comes from the previous state
            if particles is None and _candidates is not None:
                particles = _candidates.particles()
            if mask is None and _candidates is not None:
                mask = _candidates.mask()
            if particles is None or mask is None:
                raise ValueError("an EventBatch needs both particles and mask")
            _candidates = _Candidates(features, int(particles.shape[1]), jagged, particles, mask)
        elif jagged is not None:
            if _candidates is None:
                raise ValueError("a jagged EventBatch needs its width: use EventBatch.from_jagged")
            _candidates = _Candidates(features, _candidates.width, jagged)
        elif _candidates is None:
            raise ValueError("an EventBatch needs padded particles and mask, or a jagged view")
        set_ = object.__setattr__
        set_(self, "_candidates", _candidates)
        set_(self, "features", features)
        set_(self, "event", {} if event is None else event)
        set_(self, "truth", {} if truth is None else truth)
        set_(self, "n_truncated", int(n_truncated))

    @classmethod
    def from_jagged(
        cls,
        jagged: JaggedParticles,
        max_particles: int,
        features: Sequence[str],
        event: dict[str, np.ndarray],
        truth: dict[str, np.ndarray] | None = None,
        n_truncated: int = 0,
    ) -> EventBatch:
        """A batch of flat candidates (at most ``max_particles`` per event, hardest first),
        padded to ``max_particles`` only when the padded view is first used."""
        if int(jagged.counts.max(initial=0)) > max_particles:
            raise ValueError(f"an event has more than max_particles={max_particles} candidates")
        candidates = _Candidates(tuple(features), int(max_particles), jagged)
        return cls(features=features, event=event, truth=truth, n_truncated=n_truncated,
                   _candidates=candidates)  # fmt: skip

    @property
    def particles(self) -> np.ndarray:
        """``(n, max_particles, len(features))`` float32 (padded on first use)."""
        return self._candidates.particles()

    @property
    def mask(self) -> np.ndarray:
        """``(n, max_particles)`` bool, True for real candidates."""
        return self._candidates.mask()

    @property
    def jagged(self) -> JaggedParticles:
        """The candidates as offsets and flat arrays (views of the stored columns where a batch
        was read from a dataset; derived from the padded arrays otherwise)."""
        return self._candidates.jagged()

    def __len__(self) -> int:
        return len(self._candidates)

    @property
    def max_particles(self) -> int:
        """Length of the padded candidate axis."""
        return self._candidates.width

    def feature(self, name: str) -> np.ndarray:
        """The ``(n, max_particles)`` array of one candidate feature (zeros where padded)."""
        try:
            index = self.features.index(name)
        except ValueError:
            raise KeyError(
                f"feature {name!r} is not in this batch; it has {', '.join(self.features)}"
            ) from None
        return self.particles[:, :, index]

    def take(self, rows: slice | np.ndarray) -> EventBatch:
        """Some events of the batch (every per-event array, truth included, indexed by ``rows``).

        ``n_truncated`` is kept as the whole batch's count."""
        return EventBatch(
            features=self.features,
            event={k: v[rows] for k, v in self.event.items()},
            truth={k: v[rows] for k, v in self.truth.items()},
            n_truncated=self.n_truncated,
            _candidates=self._candidates.take(rows),
        )

    def hardest(self, n: int) -> EventBatch:
        """The batch with its candidate axis cut to the ``n`` hardest candidates (candidates are
        ordered by decreasing ``pt``); per-candidate truth columns are cut alike."""
        return EventBatch(
            features=self.features,
            event=self.event,
            truth={k: v[:, :n] if v.ndim == 2 else v for k, v in self.truth.items()},
            n_truncated=self.n_truncated,
            _candidates=self._candidates.hardest(n),
        )

    def trimmed(self) -> EventBatch:
        """The batch with its candidate axis cut to its busiest event (at least 1)."""
        busiest = int(self._candidates.counts().max(initial=0))
        return self if busiest >= self.max_particles else self.hardest(max(busiest, 1))

    def with_padded(
        self,
        particles: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        truth: dict[str, np.ndarray] | None = None,
    ) -> EventBatch:
        """The batch with new padded candidates (and/or mask, truth): they become the reference,
        the jagged view is derived from them (what ``replace(batch, particles=...)`` does)."""
        return EventBatch(
            self.particles if particles is None else particles,
            self.mask if mask is None else mask,
            self.features,
            self.event,
            self.truth if truth is None else truth,
            self.n_truncated,
        )

    def for_estimator(self) -> EventBatch:
        """The same batch without any truth column: what ``Estimator.predict`` receives."""
        return replace(self, truth={})


def pad_jagged(jagged: JaggedParticles, width: int, features: Sequence[str]) -> np.ndarray:
    """``(n, width, len(features))`` float32 of flat candidates, zero-padded."""
    counts = jagged.counts
    n = len(counts)
    event = np.repeat(np.arange(n), counts)
    slot = np.arange(len(event)) - np.repeat(jagged.offsets[:-1], counts)
    out = np.zeros((n, width, len(features)), dtype=np.float32)
    for k, name in enumerate(features):
        out[event, slot, k] = jagged.values[name]
    return out


def concatenate_batches(batches: Sequence[EventBatch]) -> EventBatch:
    """One batch of the events of several (their candidate axes padded to the widest; padded
    arrays are made only when the result's padded view is used)."""
    width = max(b.max_particles for b in batches)

    def pad(a: np.ndarray) -> np.ndarray:
        extra = width - a.shape[1]
        return a if extra == 0 else np.pad(a, [(0, 0), (0, extra)] + [(0, 0)] * (a.ndim - 2))

    first = batches[0]
    parts = [b.jagged for b in batches]
    counts = np.concatenate([p.counts for p in parts])
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    jagged = JaggedParticles(
        offsets, {k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values}
    )
    return EventBatch.from_jagged(
        jagged,
        width,
        first.features,
        {k: np.concatenate([b.event[k] for b in batches]) for k in first.event},
        {
            k: np.concatenate(
                [pad(b.truth[k]) if b.truth[k].ndim == 2 else b.truth[k] for b in batches]
            )
            for k in first.truth
        },
        sum(b.n_truncated for b in batches),
    )
