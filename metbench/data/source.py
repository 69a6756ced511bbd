"""Reading a dataset: checksum-verified, streamed :class:`~metbench.events.EventBatch` es."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.jagged import offsets_from_counts
from metbench.data.splits import SPLITS
from metbench.data.store import load_manifest, verify_file
from metbench.errors import DatasetError
from metbench.events import (
    DEFAULT_MAX_PARTICLES,
    EVENT_DTYPES,
    OBSERVABLE_EVENT_COLUMNS,
    PARTICLE_FEATURES,
    TRUTH_EVENT_COLUMNS,
    EventBatch,
)

__all__ = ["EventSource", "pad_particles", "read_events", "truth_chains"]


def pad_particles(
    pf: ak.Array, max_particles: int, features: Sequence[str], extra: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    """Pad jagged candidates to ``(n, max_particles, len(features))`` float32, pt-ordered.

    Parameters
    ----------
    pf
        Jagged records of candidates (one list per event).
    max_particles
        Length of the candidate axis; the softest candidates of larger events are dropped.
    features
        Fields stacked on the last axis.
    extra
        Fields returned separately as ``(n, max_particles)`` arrays of their own dtype.

    Returns
    -------
    particles, mask, extras, n_truncated
    """
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    counts = ak.to_numpy(ak.num(pf, axis=1)).astype(np.int64)
    n = len(counts)
    event = np.repeat(np.arange(n), counts)
    pt = ak.to_numpy(ak.flatten(pf["pt"]))
    order = np.lexsort((-pt, event))
    starts = offsets_from_counts(counts)[:-1]
    local = np.arange(len(pt)) - starts[event]
    keep = local < max_particles
    rows, cols, src = event[keep], local[keep], order[keep]
    particles = np.zeros((n, max_particles, len(features)), dtype=np.float32)
    for k, name in enumerate(features):
        particles[rows, cols, k] = ak.to_numpy(ak.flatten(pf[name]))[src]
    mask = np.zeros((n, max_particles), dtype=bool)
    mask[rows, cols] = True
    extras = {}
    for name in extra:
        values = ak.to_numpy(ak.flatten(pf[name]))
        out = np.zeros((n, max_particles), dtype=values.dtype)
        out[rows, cols] = values[src]
        extras[name] = out
    return particles, mask, extras, int(np.count_nonzero(counts > max_particles))


class EventSource:
    """Stream a dataset split as :class:`EventBatch` es without loading it into memory.

    Parameters
    ----------
    folder
        Dataset folder (with ``manifest.json``).
    split
        ``train``, ``val`` or ``test``.
    batch_size
        Events per batch (the last batch may be smaller).
    max_particles
        Candidates per event kept, hardest first (CMS DeepMET: 4500).
    features
        Candidate features on the last axis of ``EventBatch.particles``.
    processes
        Restrict to these processes (default: all).
    verify
        Check every file's size and sha256 against the manifest before reading it.

    Attributes
    ----------
    n_truncated
        Events with more than ``max_particles`` candidates seen so far.
    """

    def __init__(
        self,
        folder: Path | str,
        split: str = "test",
        batch_size: int = 256,
        max_particles: int = DEFAULT_MAX_PARTICLES,
        features: Sequence[str] = PARTICLE_FEATURES,
        processes: Sequence[str] | None = None,
        verify: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.manifest = load_manifest(self.folder)
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        if batch_size < 1:
            raise DatasetError(f"batch size must be >= 1, got {batch_size}")
        unknown = set(features) - set(PARTICLE_FEATURES)
        if unknown:
            raise DatasetError(
                f"unknown candidate feature(s) {sorted(unknown)}; available: {', '.join(PARTICLE_FEATURES)}"
            )
        known = set(self.manifest["processes"])
        if processes is not None and set(processes) - known:
            raise DatasetError(
                f"{self.folder}: no process {sorted(set(processes) - known)}; it has {', '.join(sorted(known))}"
            )
        self.split = split
        self.batch_size = batch_size
        self.max_particles = max_particles
        self.features = tuple(features)
        self.verify = verify
        self.files = sorted(
            relpath
            for relpath, entry in self.manifest["files"].items()
            if entry["kind"] == "events"
            and entry["split"] == split
            and (processes is None or entry["process"] in processes)
        )
        self.n_events = sum(self.manifest["files"][f]["n_events"] for f in self.files)
        self.n_truncated = 0
        self._verified: set[str] = set()

    def __len__(self) -> int:
        return self.n_events

    def restrict(self, files: Sequence[str]) -> EventSource:
        """The same source over some of its files only (in the given order)."""
        unknown = set(files) - set(self.files)
        if unknown:
            raise DatasetError(
                f"{self.folder}: {sorted(unknown)} are not files of split {self.split}"
            )
        sub = copy.copy(self)
        sub.files = list(files)
        sub.n_events = sum(self.manifest["files"][f]["n_events"] for f in sub.files)
        sub._verified = self._verified
        return sub

    def _verify(self, relpath: str) -> None:
        if self.verify and relpath not in self._verified:
            verify_file(self.folder, relpath, self.manifest)
            self._verified.add(relpath)

    def _open(self, relpath: str) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._verify(relpath)
        path = self.folder / relpath
        try:
            return pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(
                f"{path}: unreadable parquet file ({exc}); regenerate the dataset"
            ) from None

    def iter_files(self, columns: Sequence[str] | None = None) -> Iterator[ak.Array]:
        """The stored records file by file (verified), optionally only some (nested) columns,
        such as ``["n_pu", "pf.pt"]``."""
        import pyarrow as pa

        for relpath in self.files:
            self._verify(relpath)
            path = self.folder / relpath
            try:
                yield ak.from_parquet(path, columns=list(columns) if columns else None)
            except (OSError, pa.ArrowException) as exc:
                raise DatasetError(
                    f"{path}: cannot be read ({exc}); regenerate the dataset"
                ) from None

    def iter_arrays(self, columns: Sequence[str] | None = None) -> Iterator[ak.Array]:
        """Stream the raw stored records (awkward arrays of ``batch_size`` events)."""
        import pyarrow as pa

        buffer: list[ak.Array] = []
        buffered = 0
        for relpath in self.files:
            parquet = self._open(relpath)
            try:
                for record_batch in parquet.iter_batches(
                    batch_size=self.batch_size, columns=list(columns) if columns else None
                ):
                    arr = ak.from_arrow(record_batch)
                    buffer.append(arr)
                    buffered += len(arr)
                    while buffered >= self.batch_size:
                        whole = ak.concatenate(buffer) if len(buffer) > 1 else buffer[0]
                        yield whole[: self.batch_size]
                        rest = whole[self.batch_size :]
                        buffer, buffered = ([rest], len(rest)) if len(rest) else ([], 0)
            except (OSError, pa.ArrowException) as exc:
                raise DatasetError(
                    f"{self.folder / relpath}: cannot be read ({exc}); regenerate the dataset"
                ) from None
        if buffered:
            yield ak.concatenate(buffer) if len(buffer) > 1 else buffer[0]

    def __iter__(self) -> Iterator[EventBatch]:
        self.n_truncated = 0
        for arr in self.iter_arrays():
            batch = to_event_batch(arr, self.max_particles, self.features)
            self.n_truncated += batch.n_truncated
            yield batch


def to_event_batch(
    arr: ak.Array,
    max_particles: int = DEFAULT_MAX_PARTICLES,
    features: Sequence[str] = PARTICLE_FEATURES,
) -> EventBatch:
    """Turn stored records into an :class:`EventBatch` (truth kept in ``batch.truth``)."""
    particles, mask, extras, n_truncated = pad_particles(
        arr.pf, max_particles, features, extra=("truth_is_pileup",)
    )
    event = {
        name: ak.to_numpy(arr[name]).astype(EVENT_DTYPES[name]) for name in OBSERVABLE_EVENT_COLUMNS
    }
    for name in arr.fields:  # MET estimators stored in a real file (reconstructed, observable)
        if name.startswith("stored_"):
            event[name] = ak.to_numpy(arr[name]).astype(np.float32)
    truth: dict[str, np.ndarray] = {
        name: (
            ak.to_numpy(arr[name]).astype(str)
            if name == "process"
            else ak.to_numpy(arr[name]).astype(EVENT_DTYPES[name])
        )
        for name in TRUTH_EVENT_COLUMNS
    }
    truth.update(extras)
    truth.update(truth_chains(arr))
    return EventBatch(particles, mask, tuple(features), event, truth, n_truncated)


def truth_chains(arr: ak.Array) -> dict[str, np.ndarray]:
    """The truth objects of the tt -> (b l+ nu)(b~ l- nu~) chains as ``(n, 2, 4)`` arrays of
    (px, py, pz, E) [GeV]: index 0 the top's chain (b, l+, nu), index 1 the antitop's (b~, l-,
    nu~), ordered by the sign of pdg_id; NaN where an event does not have exactly one of each.

    Keys ``truth_b_quarks``, ``truth_leptons``, ``truth_neutrinos`` (those stored in ``arr``).
    """
    out: dict[str, np.ndarray] = {}
    # the top's member has pdg_id > 0 for b (5) and nu (12, 14, 16), < 0 for l+ (-11, -13)
    top_sign = {"truth_b_quarks": 1, "truth_leptons": -1, "truth_neutrinos": 1}
    for name, sign in top_sign.items():
        if name not in arr.fields:
            continue
        objects = arr[name]
        chains = np.full((len(arr), 2, 4), np.nan, dtype=np.float64)
        pdg = objects["pdg_id"]
        for chain, wanted in ((0, sign), (1, -sign)):
            picked = objects[np.sign(pdg) == wanted]
            one = ak.to_numpy(ak.num(picked, axis=1)) == 1
            first = ak.firsts(picked[one])
            for k, c in enumerate(("px", "py", "pz", "e")):
                chains[one, chain, k] = ak.to_numpy(first[c]).astype(np.float64)
        out[name] = chains
    return out


def read_events(
    folder: Path | str,
    split: str | None = None,
    columns: Sequence[str] | None = None,
    verify: bool = True,
) -> ak.Array:
    """Read a split (or every split, with ``split=None``) into one awkward array.

    For reports on selected columns (``columns`` such as ``["n_pu", "pf.pt"]``); use
    :class:`EventSource` to stream large splits.
    """
    parts: list[ak.Array] = []
    for name in [split] if split else SPLITS:
        parts.extend(EventSource(folder, name, verify=verify).iter_files(columns))
    if not parts:
        raise DatasetError(f"{folder}: no events in split {split or 'any'}")
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]
