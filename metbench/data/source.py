"""Reading a dataset: checksum-verified, streamed :class:`~metbench.events.EventBatch` es.

Observables and truth are separate files (:mod:`metbench.data.store`); a source joins them event by
event, and attaches only the truth columns it is asked for. A submission's child process builds
its source with ``truth=`` its declared ``uses_truth`` (usually nothing), and in the sandbox the
truth folder is not even visible: what it declared comes from a parent-made extract
(:func:`write_truth_extract`, ``truth_folder=``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import awkward as ak
import numpy as np

from metbench.data.jagged import offsets_from_counts
from metbench.data.splits import SPLITS
from metbench.data.store import (
    load_manifest,
    truth_relpath,
    verify_file,
    write_parquet_atomic,
)
from metbench.errors import DatasetError
from metbench.events import (
    DEFAULT_MAX_PARTICLES,
    EVENT_DTYPES,
    OBSERVABLE_EVENT_COLUMNS,
    PARTICLE_FEATURES,
    TRUTH_EVENT_COLUMNS,
    TRUTH_OBJECTS,
    TRUTH_PARTICLE_COLUMNS,
    EventBatch,
    JaggedParticles,
    pad_jagged,
)

__all__ = [
    "TRUTH_COLUMNS",
    "EventSource",
    "pad_particles",
    "read_events",
    "truth_chains",
    "write_truth_extract",
]

#: Every column of a truth file a source can attach (the event columns, the truth objects and the
#: per-candidate ``truth_is_pileup``, which joins ``pf``).
TRUTH_COLUMNS: Final[tuple[str, ...]] = TRUTH_EVENT_COLUMNS + TRUTH_OBJECTS + TRUTH_PARTICLE_COLUMNS


def pad_particles(
    pf: ak.Array, max_particles: int, features: Sequence[str], extra: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    """Pad jagged candidates to ``(n, max_particles, len(features))`` float32, pt-ordered.

    The width is the entry's ``max_particles`` whatever the batch holds: an estimate must not
    depend on which events share its batch (the input extract shuffles events into batches, and
    NumPy's pairwise sums change in the last bit with the padded length). An entry that wants
    less padding calls :meth:`~metbench.events.EventBatch.trimmed` or reads the jagged view.

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
    particles, mask, extras, n_truncated, _ = _pad(pf, max_particles, features, extra)
    assert particles is not None and mask is not None
    return particles, mask, extras, n_truncated


def _pad(
    pf: ak.Array,
    max_particles: int,
    features: Sequence[str],
    extra: Sequence[str] = (),
    padded: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray], int, JaggedParticles]:
    """:func:`pad_particles` and the same candidates as a :class:`JaggedParticles` (views of
    the stored arrays where they are already hardest first and nothing is cut); ``padded=False``:
    no padded particles and mask (None), the ``extra`` columns padded all the same."""
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    counts = ak.to_numpy(ak.num(pf, axis=1)).astype(np.int64)
    flat = {
        name: ak.to_numpy(ak.flatten(pf[name])) for name in dict.fromkeys([*features, *extra, "pt"])
    }
    return _arrange(counts, flat, max_particles, features, extra, padded)


def _arrange(
    counts: np.ndarray,
    flat: dict[str, np.ndarray],
    max_particles: int,
    features: Sequence[str],
    extra: Sequence[str] = (),
    padded: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray], int, JaggedParticles]:
    """:func:`_pad` from the candidates' counts per event and their flat columns (``pt`` among
    them), whichever reader made them."""
    n = len(counts)
    pt = flat["pt"]
    width = max_particles
    offsets = offsets_from_counts(counts)
    n_truncated = int(np.count_nonzero(counts > width))
    kept_counts = np.minimum(counts, width)
    kept_offsets = offsets_from_counts(kept_counts)
    # stored candidates are hardest first (checked in O(n), sorted only if not): a rise of pt
    # counts only inside an event
    rises = pt[1:] > pt[:-1]
    starts = offsets[1:-1]
    rises[starts[(starts > 0) & (starts < len(pt))] - 1] = False
    wanted = [name for name in flat if name in features or name in extra]
    if not rises.any():
        if n_truncated:  # the softest candidates of the busiest events go: a boolean mask
            keep = np.ones(len(pt), dtype=bool)
            for i in np.nonzero(counts > width)[0]:
                keep[offsets[i] + width : offsets[i + 1]] = False
            gathered = {name: flat[name][keep] for name in wanted}
        else:  # the usual case: the stored columns themselves
            gathered = {name: flat[name] for name in wanted}
    else:
        event = np.repeat(np.arange(n), counts)
        order = np.lexsort((-pt, event))
        local = np.arange(len(pt)) - offsets[:-1][event]
        order = order[local < width]
        gathered = {name: flat[name][order] for name in wanted}
    jagged = JaggedParticles(kept_offsets, {name: gathered[name] for name in features})
    particles = mask = None
    extras: dict[str, np.ndarray] = {}
    if not padded and not extra:
        return particles, mask, extras, n_truncated, jagged
    rows = np.repeat(np.arange(n), kept_counts)
    cols = np.arange(len(rows)) - kept_offsets[:-1][rows]
    if padded:  # the same padding as a lazy batch's
        particles = pad_jagged(jagged, width, features)
        mask = np.arange(width) < kept_counts[:, None]
    for name in extra:
        out = np.zeros((n, width), dtype=gathered[name].dtype)
        out[rows, cols] = gathered[name]
        extras[name] = out
    return particles, mask, extras, n_truncated, jagged


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
    truth
        The truth columns (:data:`TRUTH_COLUMNS`) joined to the records and put in
        ``EventBatch.truth``: None for all of them (scoring, training, reports), ``()`` for none
        (what a submission gets unless it declares ``uses_truth``).
    truth_folder
        Read the truth files from this folder (laid out as a dataset: ``truth/<split>/…``, as
        :func:`write_truth_extract` writes it) instead of the dataset, without checksums.

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
        truth: Sequence[str] | None = None,
        truth_folder: Path | str | None = None,
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
        if truth is not None and set(truth) - set(TRUTH_COLUMNS):
            raise DatasetError(
                f"unknown truth column(s) {sorted(set(truth) - set(TRUTH_COLUMNS))}; "
                f"truth columns are {', '.join(TRUTH_COLUMNS)}"
            )
        self.truth: tuple[str, ...] = TRUTH_COLUMNS if truth is None else tuple(truth)
        self.truth_folder = Path(truth_folder) if truth_folder is not None else None
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

    def _truth_path(self, relpath: str) -> Path:
        """The truth file of an events file (verified when read from the dataset)."""
        rel = truth_relpath(relpath)
        if self.truth_folder is not None:
            path = self.truth_folder / rel
            if not path.is_file():
                raise DatasetError(f"{path}: missing truth extract")
            return path
        self._verify(rel)
        return self.folder / rel

    def _columns(self, columns: Sequence[str] | None) -> tuple[list[str] | None, list[str]]:
        """Split requested columns (``None``: all) into (events-file columns or None for all,
        truth-file columns); truth columns not attached by this source are an error."""
        if columns is None:
            truth = list(self.truth)
            return None, truth
        events: list[str] = []
        truth = []
        for column in columns:
            top = column.split(".", 1)[0]
            if column == "pf.truth_is_pileup" or top in TRUTH_EVENT_COLUMNS + TRUTH_OBJECTS:
                name = "truth_is_pileup" if column == "pf.truth_is_pileup" else column
                if top not in self.truth and name.split(".", 1)[0] not in self.truth:
                    raise DatasetError(f"truth column {column!r} is not attached by this source")
                truth.append(name)
            else:
                events.append(column)
                if column == "pf" and "truth_is_pileup" in self.truth:
                    truth.append("truth_is_pileup")
        if "event_id" not in events:  # the join key (and something to read for truth alone)
            events.insert(0, "event_id")
        return events, truth

    def _read(self, path: Path, columns: list[str] | None) -> Any:
        import pyarrow as pa

        try:
            return _open_parquet(path).read(columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{path}: cannot be read ({exc}); regenerate the dataset") from None

    def _open(self, relpath: str) -> Any:
        self._verify(relpath)
        return _open_parquet(self.folder / relpath)

    def iter_files(self, columns: Sequence[str] | None = None) -> Iterator[ak.Array]:
        """The stored records file by file (verified), optionally only some (nested) columns,
        such as ``["n_pu", "pf.pt"]``; truth columns are joined from the truth files."""
        import pyarrow as pa

        events_columns, truth_columns = self._columns(columns)
        for relpath in self.files:
            self._verify(relpath)
            path = self.folder / relpath
            try:
                observable = ak.from_parquet(path, columns=events_columns)
                truth = (
                    ak.from_parquet(self._truth_path(relpath), columns=["event_id", *truth_columns])
                    if truth_columns
                    else None
                )
            except (OSError, pa.ArrowException) as exc:
                raise DatasetError(
                    f"{path}: cannot be read ({exc}); regenerate the dataset"
                ) from None
            yield _join(observable, truth, path)

    def iter_arrays(self, columns: Sequence[str] | None = None) -> Iterator[ak.Array]:
        """Stream the raw stored records (awkward arrays of ``batch_size`` events), with the
        attached truth columns joined."""
        import pyarrow as pa

        events_columns, truth_columns = self._columns(columns)
        buffer: list[ak.Array] = []
        buffered = 0
        for relpath in self.files:
            parquet = self._open(relpath)
            truth_batches: Iterator[Any] | None = None
            if truth_columns:
                truth_path = self._truth_path(relpath)
                truth_batches = _open_parquet(truth_path).iter_batches(
                    batch_size=self.batch_size, columns=["event_id", *truth_columns]
                )
            try:
                for record_batch in parquet.iter_batches(
                    batch_size=self.batch_size, columns=events_columns
                ):
                    truth = None
                    if truth_batches is not None:
                        truth = ak.from_arrow(next(truth_batches, None) or _too_short(relpath))
                    arr = _join(ak.from_arrow(record_batch), truth, self.folder / relpath)
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
        batches = (
            (_batch_from_table(t, self.max_particles, self.features) for t in self._iter_tables())
            if not self.truth
            else (to_event_batch(a, self.max_particles, self.features) for a in self.iter_arrays())
        )
        for batch in batches:
            self.n_truncated += batch.n_truncated
            yield batch

    def _iter_tables(self) -> Iterator[Any]:
        """The observable records as pyarrow tables of ``batch_size`` events, each file read
        whole (pyarrow decodes its columns in parallel); no truth, no awkward array."""
        import pyarrow as pa

        buffer: list[Any] = []
        buffered = 0
        for relpath in self.files:
            self._verify(relpath)
            table = self._read(self.folder / relpath, None)
            buffer.append(table)
            buffered += table.num_rows
            while buffered >= self.batch_size:
                whole = pa.concat_tables(buffer) if len(buffer) > 1 else buffer[0]
                yield whole.slice(0, self.batch_size)
                rest = whole.slice(self.batch_size)
                buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
        if buffered:
            yield pa.concat_tables(buffer) if len(buffer) > 1 else buffer[0]


def _open_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(
            f"{path}: unreadable parquet file ({exc}); regenerate the dataset"
        ) from None


def _too_short(relpath: str) -> Any:
    raise DatasetError(f"{relpath}: its truth file holds fewer events; regenerate the dataset")


def _join(observable: ak.Array, truth: ak.Array | None, where: Path) -> ak.Array:
    """Observable records with the truth records of the same events joined (``truth_is_pileup``
    goes into ``pf``)."""
    if truth is None:
        return observable
    if len(truth) != len(observable) or not np.array_equal(
        ak.to_numpy(truth["event_id"]), ak.to_numpy(observable["event_id"])
    ):
        raise DatasetError(
            f"{where}: its truth file does not hold the same events in the same order; "
            "regenerate the dataset"
        )
    fields = {name: observable[name] for name in observable.fields}
    for name in truth.fields:
        if name == "event_id":
            continue
        if name in TRUTH_PARTICLE_COLUMNS:
            pf = fields.get("pf")
            fields["pf"] = (
                ak.zip({name: truth[name]}) if pf is None else ak.with_field(pf, truth[name], name)
            )
        else:
            fields[name] = truth[name]
    return ak.zip(fields, depth_limit=1)


def to_event_batch(
    arr: ak.Array,
    max_particles: int = DEFAULT_MAX_PARTICLES,
    features: Sequence[str] = PARTICLE_FEATURES,
) -> EventBatch:
    """Turn stored records into an :class:`EventBatch` (the truth fields they hold go into
    ``batch.truth``)."""
    pf_fields = set(arr.pf.fields)
    _, _, extras, n_truncated, jagged = _pad(
        arr.pf,
        max_particles,
        features,
        extra=[c for c in TRUTH_PARTICLE_COLUMNS if c in pf_fields],
        padded=False,
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
        if name in arr.fields
    }
    truth.update(extras)
    truth.update(truth_chains(arr))
    return EventBatch.from_jagged(jagged, max_particles, features, event, truth, n_truncated)


def _batch_from_table(
    table: Any, max_particles: int, features: Sequence[str] = PARTICLE_FEATURES
) -> EventBatch:
    """:func:`to_event_batch` of observable records read as a pyarrow table (the path of a
    source without truth: what a submission's process reads), without awkward: the candidates'
    flat columns are the table's own buffers where they need no reordering."""
    unexpected = set(table.column_names) - {"pf", *OBSERVABLE_EVENT_COLUMNS}
    if any(not name.startswith("stored_") for name in unexpected):
        # not a format-2 observables file: the general path
        return to_event_batch(ak.from_arrow(table), max_particles, features)
    pf = table.column("pf")
    pf = pf.chunk(0) if pf.num_chunks == 1 else pf.combine_chunks()
    counts = pf.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    values = pf.flatten()  # the struct of the candidates, the slice's offset applied
    children = dict(zip([f.name for f in values.type], values.flatten(), strict=True))
    flat = {
        name: children[name].to_numpy(zero_copy_only=False)
        for name in dict.fromkeys([*features, "pt"])
    }
    _, _, _, n_truncated, jagged = _arrange(counts, flat, max_particles, features, padded=False)
    event = {
        name: table.column(name).to_numpy().astype(EVENT_DTYPES[name])
        for name in OBSERVABLE_EVENT_COLUMNS
    }
    for name in (n for n in table.column_names if n in unexpected):  # MET stored in a real file
        event[name] = table.column(name).to_numpy().astype(np.float32)
    return EventBatch.from_jagged(jagged, max_particles, features, event, {}, n_truncated)


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


def write_truth_extract(
    folder: Path | str,
    split: str,
    columns: Sequence[str],
    out: Path | str,
    files: Sequence[str] | None = None,
) -> None:
    """Write only ``columns`` of a split's truth files (checksum-verified) into ``out``, laid out
    as the dataset (``truth/<split>/<stem>.parquet``, with ``event_id``): what a submission that
    declares ``uses_truth`` is given, read through ``EventSource(truth_folder=out)``."""
    source = EventSource(folder, split, truth=columns)
    if not columns:
        return
    for relpath in files if files is not None else source.files:
        rel = truth_relpath(relpath)
        path = source._truth_path(relpath)
        table = source._read(path, ["event_id", *columns])
        write_parquet_atomic(Path(out) / rel, ak.from_arrow(table))
