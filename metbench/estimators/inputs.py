"""The input extract: what a submission's child reads instead of the dataset.

The dataset tells who is who: an ``event_id`` is ``code * 10**12 + index`` (the process code in
it), a file is named after its process and holds that process only, and the manifest lists each
file's process. So the child never sees the dataset. For each run the parent (never the child)
writes an *input extract*, a minimal dataset folder that :class:`~metbench.data.source.EventSource`
reads as any other:

* the observable records of the events of its *sources* (everything of the ``events/`` files,
  nothing of ``truth/``), with ``event_id`` replaced by opaque random ids (63 bits from
  :func:`os.urandom`, unique);
* a source is a split's events, or their muon-removed copies (``recoil``, below); an extract
  mixes its sources: a run's test and validation (calibration) splits go into one extract,
  predicted by one child, and their recoil copies into a second, predicted by a second child;
* the events of all sources and processes **mixed**: each event goes to a random part (an exact
  balance for the events, so the parts hold about a source file's worth each; the recoil copies
  at random), and within a part the order is a random permutation; memory stays bounded (one
  source row group, then one part at a time: the events travel through compressed Arrow IPC
  buckets on disk);
* opaque file names, ``events/test/part_00000.parquet``, …, and a manifest that lists only
  them (process ``events``, split ``test`` whatever the sources, no dataset name, no truth files);
* the truth columns an entry declares (``uses_truth``) in ``truth/<split>/part_XXXXX.parquet``
  under the same opaque ids, read through ``EventSource(truth_folder=...)``.

Nothing in an extract says what it was made of: its split is always named :data:`SPLIT`, its
manifest carries no source, and the child's job carries neither the split nor the run's identity
(:func:`metbench.estimators.isolation.run_isolated`). As the splits are mixed in one extract, the
number of events does not tell the scored split from the calibration's either. What stays
visible is what the events are: a recoil extract's have no selected dimuon (so its child may
know it predicts copies, never of which events), and a child may recognise a published event it
was shipped a table of (``metbench holdout`` is the check for that).

The map from opaque id to real ``event_id``, to the event's source and to its position in the
source's split (file by file in the dataset's order) is ``<extract>.ids.parquet`` beside the
extract, which the sandbox never shows. :func:`InputMap.translate` turns a part's opaque ids back
into rows of the map.

A **recoil** source holds, for each event of its split with a selected dimuon
(:func:`metbench.recoil.select_dimuons` on the stored candidates, as the scoring selects them),
the event with its two muons removed. Its candidates are those the child would see of the whole
event (the ``max_particles`` hardest, in the same order) less the two muons, so the estimates
equal those the child would make of its own copy of the event. Copies are never mixed with
events: the harness has them predicted by a second, fresh child, so no process ever sees an
event and its copy (which it could pair by their candidates, and answer with the muons).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.data.store import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    atomic_path,
    atomic_write_json,
    load_manifest,
    sha256_file,
    truth_relpath,
    verify_file,
)
from metbench.errors import DatasetError

__all__ = [
    "EXTRACT_KEY",
    "EXTRACT_LAYOUT",
    "PROCESS",
    "SPLIT",
    "InputMap",
    "Source",
    "checked_sources",
    "is_input_extract",
    "mapping_path",
    "prepare_inputs",
    "read_mapping",
    "write_input_extract",
]

#: The manifest key that marks an input extract (its value: ``{"layout": EXTRACT_LAYOUT}``, the
#: same for every kind: the kind and split are in the parent's map only).
EXTRACT_KEY: Final = "input_extract"
#: The process name every file of an extract carries.
PROCESS: Final = "events"
#: The split name of every extract, whichever splits of the dataset it was made of (one of the
#: dataset's split names, which :class:`~metbench.data.source.EventSource` alone reads).
SPLIT: Final = "test"
#: Version of the extract's layout (2: the neutral split name and manifest; 3: several sources
#: mixed in one extract); an extract of another layout is written again.
EXTRACT_LAYOUT: Final = 3
#: What a source of an extract is: ``(split, kind)``, kind ``events`` or ``recoil``.
Source = tuple[str, str]
_KINDS: Final = ("events", "recoil")
_ROW_GROUP: Final = 512
_CANDIDATE_COLUMNS: Final = ("pt", "eta", "phi", "mass", "charge", "pdg_id")


def mapping_path(extract: Path | str) -> Path:
    """The parent's map of an extract: ``<extract>.ids.parquet`` beside it (never bound in the
    sandbox)."""
    extract = Path(extract)
    return extract.with_name(f"{extract.name}.ids.parquet")


def is_input_extract(folder: Path | str) -> bool:
    """Whether ``folder`` is a complete input extract (its manifest, written last, is there)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and isinstance(manifest.get(EXTRACT_KEY), dict)


@dataclass(frozen=True)
class InputMap:
    """The parent's map of an extract, in the extract's order (part by part, row by row).

    Attributes
    ----------
    part
        ``(n,)`` index of the part (``events/<split>/part_XXXXX.parquet``) of each row.
    opaque_id
        ``(n,)`` the id the child sees.
    event_id
        ``(n,)`` the dataset's ``event_id``.
    position
        ``(n,)`` the event's row in its source's split (the dataset's files in their order, then
        their rows).
    source
        ``(n,)`` index of the event's source in :attr:`sources`.
    n_candidates
        ``(n,)`` the number of candidates of the event as the extract holds it (counted by the
        parent: how many events a candidate limit cuts, whatever the child says).
    spec
        What the extract was made of (sources, truth columns, dataset hash, ...).
    """

    part: np.ndarray
    opaque_id: np.ndarray
    event_id: np.ndarray
    position: np.ndarray
    source: np.ndarray
    n_candidates: np.ndarray
    spec: dict[str, Any]

    @property
    def sources(self) -> list[Source]:
        """The extract's sources, ``(split, kind)``, in the order :attr:`source` indexes."""
        return [(str(split), str(kind)) for split, kind in self.spec.get("sources", [])]

    def rows_of(self, split: str, kind: str = "events") -> np.ndarray:
        """The rows of the map from source ``(split, kind)``, in the order of their position in
        the split (empty if the extract has no such source)."""
        try:
            index = self.sources.index((split, kind))
        except ValueError:
            return np.zeros(0, np.int64)
        rows = np.flatnonzero(self.source == index)
        return rows[np.argsort(self.position[rows], kind="stable")]

    def translate(self, part: int, opaque_id: np.ndarray) -> np.ndarray:
        """The rows (indices into this map) of ``opaque_id``, ids of the part ``part``; a
        :class:`~metbench.errors.DatasetError` if one is not an id of that part."""
        rows = np.flatnonzero(self.part == part)
        ids = self.opaque_id[rows]
        order = np.argsort(ids)
        where = np.searchsorted(ids[order], opaque_id)
        where = np.minimum(where, max(len(ids) - 1, 0))
        if len(ids) == 0 or not np.array_equal(ids[order][where], opaque_id):
            raise DatasetError(f"part {part:05d}: ids that are not those of its input file")
        return rows[order][where]


def read_mapping(extract: Path | str) -> InputMap:
    """The map of an extract (:func:`mapping_path`)."""
    import pyarrow.parquet as pq

    path = mapping_path(extract)
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(b"metbench", b"{}")
    column = {name: table[name].to_numpy() for name in table.column_names}
    n = len(table)
    return InputMap(
        part=column["part"].astype(np.int64),
        opaque_id=column["opaque_id"].astype(np.int64),
        event_id=column["event_id"].astype(np.int64),
        position=column["position"].astype(np.int64),
        source=column.get("source", np.zeros(n)).astype(np.int64),
        n_candidates=column.get("n_candidates", np.zeros(n)).astype(np.int64),
        spec=json.loads(meta),
    )


def prepare_inputs(
    dataset: Path | str,
    sources: str | Sequence[Source],
    extract: Path | str,
    uses_truth: Sequence[str] = (),
    max_particles: int | None = None,
    sample: int | None = None,
) -> Path:
    """The extract ``extract`` of ``sources``, written unless a complete one of the same making
    is there (resume); its path.

    Parameters
    ----------
    dataset
        The dataset folder.
    sources
        ``(split, kind)`` pairs, all of one kind: ``events`` (the split's events) or ``recoil``
        (their muon-removed copies, which need ``max_particles``), mixed in the one extract; a
        bare split name is ``[(split, "events")]``.
    extract
        The extract's folder (its map goes beside it, :func:`mapping_path`).
    uses_truth
        The truth columns the entry declared.
    max_particles
        The entry's candidate limit (a recoil source's candidates are the hardest this many).
    sample
        Only a random sample of this many events of a single ``events`` source, in one part (a
        throughput measurement).
    """
    extract = Path(extract)
    sources = checked_sources(sources, max_particles, sample)
    spec = _spec(dataset, sources, uses_truth, max_particles, sample)
    if is_input_extract(extract) and mapping_path(extract).is_file():
        try:
            if read_mapping(extract).spec == spec:
                return extract
        except (OSError, ValueError, KeyError):
            pass
    write_input_extract(dataset, sources, extract, uses_truth, max_particles, sample)
    return extract


def checked_sources(
    sources: str | Sequence[Source], max_particles: int | None = None, sample: int | None = None
) -> list[Source]:
    """``sources`` (:func:`prepare_inputs`) as a checked list of ``(split, kind)`` pairs, a bare
    split name as ``[(split, "events")]``; a ``ValueError`` for what the harness never asks."""
    listed: list[Source] = (
        [(sources, "events")] if isinstance(sources, str) else [(s, k) for s, k in sources]
    )
    if not listed or len(set(listed)) != len(listed):
        raise ValueError(f"an extract needs distinct sources, not {listed!r}")
    for _split, kind in listed:
        if kind not in _KINDS:
            raise ValueError(f"unknown extract kind {kind!r}")
        if kind == "recoil" and max_particles is None:
            raise ValueError("a recoil source needs max_particles")
    if len({kind for _, kind in listed}) > 1:  # a child could pair an event with its copy
        raise ValueError(f"an extract holds events or their recoil copies, not both: {listed!r}")
    if sample is not None and (len(listed) != 1 or listed[0][1] != "events"):
        raise ValueError("a sample is of a single events source")
    return listed


def _spec(
    dataset: Path | str,
    sources: Sequence[Source],
    uses_truth: Sequence[str],
    max_particles: int | None,
    sample: int | None,
) -> dict[str, Any]:
    recoil = any(kind == "recoil" for _, kind in sources)
    return {
        "layout": EXTRACT_LAYOUT,
        "sources": [list(s) for s in sources],
        "uses_truth": list(uses_truth),
        "max_particles": max_particles if recoil else None,
        "sample": sample,
        "dataset_manifest_sha256": sha256_file(Path(dataset) / MANIFEST_NAME),
    }


@dataclass(frozen=True)
class _Stream:
    """One source as :func:`_write_extract` streams it: its split's files, and ``route``, which
    says for a row group (file index, first row's position in the split, table) which part each
    event goes to (-1: none) and what to write of it."""

    kind: str
    files: list[str]
    route: Callable[[int, int, Any], tuple[np.ndarray, Any]]


def write_input_extract(
    dataset: Path | str,
    sources: Sequence[Source],
    extract: Path | str,
    uses_truth: Sequence[str] = (),
    max_particles: int | None = None,
    sample: int | None = None,
) -> None:
    """Write the input extract of ``sources`` (the module's docstring says what it holds).

    Parameters
    ----------
    dataset
        The dataset folder (every file read is checked against its manifest).
    sources
        ``(split, kind)`` pairs (:func:`prepare_inputs`), mixed in the one extract.
    extract
        The extract's folder, replaced if it exists; its map goes beside it.
    uses_truth
        Truth columns written into the extract's truth files (a recoil copy's
        ``truth_is_pileup`` loses the two muons too).
    max_particles
        The entry's candidate limit: a recoil copy keeps the hardest ``max_particles`` (those
        its child sees of the whole event) less the two muons.
    sample
        Only a random sample of this many events of a single events source, in one part (for a
        throughput measurement).
    """
    sources = checked_sources(sources, max_particles, sample)
    rng = np.random.default_rng(secrets.randbits(128))
    listed = [(split, kind, *_split_files(dataset, split)) for split, kind in sources]
    events = [(files, counts) for _, kind, files, counts in listed if kind == "events"]
    total = int(sum(int(counts.sum()) for _, counts in events))
    if sample is not None:
        dest = np.full(total, -1, np.int64)
        dest[rng.choice(total, size=min(sample, total), replace=False)] = 0
        n_parts = 1
    else:  # about a source file's worth of events in each part
        n_files = sum(len(files) for files, _ in events) or max(len(f) for _, _, f, _ in listed)
        n_parts = max(1, n_files)  # an empty part is not written
        sizes = np.full(n_parts, total // n_parts, np.int64)
        sizes[: total - int(sizes.sum())] += 1
        dest = rng.permutation(np.repeat(np.arange(n_parts), sizes))
    streams: list[_Stream] = []
    offset = 0
    for _split, kind, files, counts in listed:
        if kind == "events":
            mine = dest[offset : offset + int(counts.sum())]
            offset += int(counts.sum())
            streams.append(_Stream(kind, files, _events_route(mine)))
        else:
            assert max_particles is not None  # checked_sources checked it
            streams.append(_Stream(kind, files, _recoil_route(max_particles, n_parts, rng)))
    spec = _spec(dataset, sources, uses_truth, max_particles, sample)
    _write_extract(dataset, extract, sources, streams, uses_truth, n_parts, rng, spec)


def _events_route(dest: np.ndarray) -> Callable[[int, int, Any], tuple[np.ndarray, Any]]:
    """The route of an events source whose events go to the parts ``dest`` (in split order)."""

    def route(_file: int, start: int, table: Any) -> tuple[np.ndarray, Any]:
        return dest[start : start + len(table)], table

    return route


def _recoil_route(
    max_particles: int, n_parts: int, rng: np.random.Generator
) -> Callable[[int, int, Any], tuple[np.ndarray, Any]]:
    """The route of a recoil source: each event with a selected dimuon to a random part."""

    def route(_file: int, _start: int, table: Any) -> tuple[np.ndarray, Any]:
        keep, rows = _without_dimuons(table, max_particles)
        dest = np.full(len(table), -1, np.int64)
        dest[rows] = rng.integers(0, n_parts, len(rows))
        return dest, (table, keep)

    return route


def _split_files(dataset: Path | str, split: str) -> tuple[list[str], np.ndarray]:
    manifest = load_manifest(Path(dataset))
    files = sorted(
        relpath
        for relpath, entry in manifest["files"].items()
        if entry["kind"] == "events" and entry["split"] == split
    )
    counts = np.array([manifest["files"][f]["n_events"] for f in files], np.int64)
    return files, counts


def _list_column(table: Any, name: str) -> Any:
    """One list column of a table as a single (unsliced-safe) ``LargeListArray``."""
    import pyarrow as pa

    column = table.column(name)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array


def _without_dimuons(table: Any, max_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """For the events of ``table`` (observable records): ``(keep, rows)``, where ``rows`` are the
    events with a selected dimuon and ``keep`` marks, over the flat candidates of the table, those
    their muon-removed copy holds (the ``max_particles`` hardest but the two muons)."""
    from metbench.recoil import select_dimuons

    pf = _list_column(table, "pf")
    counts = pf.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pf.flatten()
    cols = {c: flat.field(c).to_numpy(zero_copy_only=False) for c in _CANDIDATE_COLUMNS}
    n = len(counts)
    event = np.repeat(np.arange(n), counts)
    selection = select_dimuons(event, n, **cols)
    rows = np.flatnonzero(selection.selected)
    # the candidates the child's padding keeps (pad_particles: hardest first, stable)
    order = np.lexsort((-cols["pt"], event))
    starts = np.r_[0, np.cumsum(counts)[:-1]] if n else np.zeros(0, np.int64)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - starts[event[order]]
    keep = rank < max_particles
    keep[selection.first[rows]] = False
    keep[selection.second[rows]] = False
    return keep, rows


def _recoil_rows(table: Any, keep: np.ndarray, rows: np.ndarray, truth: Any) -> tuple[Any, Any]:
    """The events ``rows`` of ``table`` (and of ``truth``, or None) with only the candidates
    ``keep`` (flat over the table's candidates)."""
    import pyarrow as pa

    def trim(t: Any, name: str) -> Any:
        lists = _list_column(t, name)
        counts = lists.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        values = lists.flatten()
        event = np.repeat(np.arange(len(counts)), counts)
        chosen = np.zeros(len(counts), bool)
        chosen[rows] = True
        mask = keep & chosen[event]
        new_counts = np.bincount(event[mask], minlength=len(counts))[rows]
        offsets = np.r_[0, np.cumsum(new_counts)].astype(np.int64)
        array = pa.LargeListArray.from_arrays(
            pa.array(offsets, pa.int64()), values.filter(pa.array(mask)), type=lists.type
        )
        out = t.take(pa.array(rows))
        return out.set_column(out.schema.get_field_index(name), out.schema.field(name), array)

    events = trim(table, "pf")
    if truth is None:
        return events, None
    if "truth_is_pileup" in truth.column_names:
        return events, trim(truth, "truth_is_pileup")
    return events, truth.take(pa.array(rows))


def _opaque_ids(n: int, taken: set[int]) -> np.ndarray:
    """``n`` random non-negative int64 ids (63 bits of :func:`os.urandom`), none in ``taken``
    (which they join)."""
    out = np.empty(n, np.int64)
    filled = 0
    while filled < n:
        draw = np.frombuffer(os.urandom(8 * (n - filled)), np.uint64) >> np.uint64(1)
        for value in draw.astype(np.int64).tolist():
            if value not in taken:
                taken.add(value)
                out[filled] = value
                filled += 1
    return out


def _write_extract(
    dataset: Path | str,
    extract: Path | str,
    sources: Sequence[Source],
    streams: Sequence[_Stream],
    uses_truth: Sequence[str],
    n_parts: int,
    rng: np.random.Generator,
    spec: dict[str, Any],
) -> None:
    """Stream each source's files row group by row group; its ``route`` says which part (-1:
    none) each event goes to (and may change the records); each part is then shuffled, given
    opaque ids and written, and the map last but one, the manifest last."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    dataset, extract = Path(dataset), Path(extract)
    manifest = load_manifest(dataset)
    work = extract.with_name(f"{extract.name}.buckets")
    for stale in (extract, work):
        shutil.rmtree(stale, ignore_errors=True)
    mapping_path(extract).unlink(missing_ok=True)
    work.mkdir(parents=True)
    writers: dict[tuple[str, int], Any] = {}
    # per part: (source index, positions in the source's split, candidates) of its events, in
    # bucket order
    positions: list[list[tuple[int, np.ndarray, np.ndarray]]] = [[] for _ in range(n_parts)]
    options = ipc.IpcWriteOptions(compression="zstd")
    schemas: dict[str, Any] = {}

    def write(which: str, part: int, table: Any) -> None:
        schema = schemas.setdefault(which, table.schema)
        if not table.schema.equals(schema, check_metadata=False):
            try:
                table = table.select(schema.names).cast(schema)
            except (KeyError, ValueError, pa.ArrowException):
                raise DatasetError(
                    f"{dataset}: the files of {sorted({s for s, _ in sources})} do not share "
                    "one schema"
                ) from None
        table = table.replace_schema_metadata(schema.metadata)
        key = (which, part)
        if key not in writers:
            writers[key] = ipc.new_file(
                str(work / f"{which}_{part:05d}.arrow"), schema, options=options
            )
        writers[key].write_table(table)

    try:
        for number, stream in enumerate(streams):
            offset = 0
            for index, relpath in enumerate(stream.files):
                verify_file(dataset, relpath, manifest)
                events_file = pq.ParquetFile(dataset / relpath)
                truth_table = None
                if uses_truth:
                    rel = truth_relpath(relpath)
                    verify_file(dataset, rel, manifest)
                    truth_table = pq.read_table(dataset / rel, columns=["event_id", *uses_truth])
                start = 0
                for group in range(events_file.num_row_groups):
                    table = events_file.read_row_group(group)
                    dest, routed = stream.route(index, offset + start, table)
                    truth = None
                    if truth_table is not None:
                        truth = truth_table.slice(start, len(table))
                        if not np.array_equal(
                            truth["event_id"].to_numpy(), table["event_id"].to_numpy()
                        ):
                            raise DatasetError(
                                f"{dataset / relpath}: its truth file does not hold the same "
                                "events in the same order; regenerate the dataset"
                            )
                    for part in np.unique(dest[dest >= 0]).tolist():
                        rows = np.flatnonzero(dest == part)
                        if stream.kind == "recoil":
                            table_r, keep = routed
                            events, truth_rows = _recoil_rows(table_r, keep, rows, truth)
                        else:
                            events = table.take(pa.array(rows))
                            truth_rows = truth.take(pa.array(rows)) if truth is not None else None
                        write("events", part, events)
                        if truth_rows is not None:
                            write("truth", part, truth_rows)
                        counts = _list_column(events, "pf").value_lengths()
                        positions[part].append((
                            number, offset + start + rows,
                            counts.to_numpy(zero_copy_only=False).astype(np.int64),
                        ))  # fmt: skip
                    start += len(table)
                offset += start
        for writer in writers.values():
            writer.close()
        writers.clear()
        _write_parts(extract, work, positions, bool(uses_truth), rng, spec)
    finally:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(work, ignore_errors=True)


def _write_parts(
    extract: Path,
    work: Path,
    positions: list[list[tuple[int, np.ndarray, np.ndarray]]],
    with_truth: bool,
    rng: np.random.Generator,
    spec: dict[str, Any],
) -> None:
    """Shuffle each bucket, give it opaque ids, write it as a part; then the map (which alone
    records ``spec``: the sources, ...) and the manifest, the same whatever the sources."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    taken: set[int] = set()
    files: dict[str, dict[str, Any]] = {}
    part_col, opaque_col, id_col, pos_col, source_col, count_col = [], [], [], [], [], []
    number = 0
    for bucket, chunks in enumerate(positions):
        if not chunks:
            continue
        position = np.concatenate([rows for _, rows, _ in chunks])
        source = np.concatenate([np.full(len(rows), s, np.int64) for s, rows, _ in chunks])
        candidates = np.concatenate([counts for _, _, counts in chunks])
        events = _read_ipc(work / f"events_{bucket:05d}.arrow")
        perm = rng.permutation(len(events))
        events = events.take(pa.array(perm))
        opaque = _opaque_ids(len(events), taken)
        real = events["event_id"].to_numpy()
        index = events.schema.get_field_index("event_id")
        events = events.set_column(
            index, events.schema.field("event_id"), pa.array(opaque, pa.int64())
        )
        relpath = f"events/{SPLIT}/part_{number:05d}.parquet"
        _write_parquet(extract / relpath, events)
        if with_truth:
            truth = _read_ipc(work / f"truth_{bucket:05d}.arrow").take(pa.array(perm))
            if not np.array_equal(truth["event_id"].to_numpy(), real):
                raise DatasetError(f"{extract}: the truth extract lost its order")  # never
            truth = truth.set_column(
                0, truth.schema.field("event_id"), pa.array(opaque, pa.int64())
            )
            _write_parquet(extract / truth_relpath(relpath), truth)
        path = extract / relpath
        files[relpath] = {
            "bytes": path.stat().st_size,
            "kind": "events",
            "n_events": len(events),
            "process": PROCESS,
            "sha256": sha256_file(path),
            "split": SPLIT,
        }
        part_col.append(np.full(len(events), number, np.int64))
        opaque_col.append(opaque)
        id_col.append(real.astype(np.int64))
        pos_col.append(position[perm])
        source_col.append(source[perm])
        count_col.append(candidates[perm])
        del events
        number += 1

    def joined(chunks: list[np.ndarray]) -> Any:
        return pa.array(np.concatenate(chunks) if chunks else np.zeros(0, np.int64), pa.int64())

    table = pa.table(
        {
            "part": joined(part_col),
            "opaque_id": joined(opaque_col),
            "event_id": joined(id_col),
            "position": joined(pos_col),
            "source": joined(source_col),
            "n_candidates": joined(count_col),
        }
    ).replace_schema_metadata({b"metbench": json.dumps(spec, sort_keys=True).encode()})
    extract.mkdir(parents=True, exist_ok=True)
    with atomic_path(mapping_path(extract)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    atomic_write_json(
        extract / MANIFEST_NAME,
        {
            "format": DATASET_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "name": "input",
            "version": 1,
            EXTRACT_KEY: {"layout": EXTRACT_LAYOUT},
            "splits": {SPLIT: int(sum(f["n_events"] for f in files.values()))},
            "processes": {PROCESS: {}},
            "files": files,
        },
    )


def _read_ipc(path: Path) -> Any:
    import pyarrow.ipc as ipc

    with ipc.open_file(str(path)) as reader:
        return reader.read_all()


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(
            table, tmp, compression="zstd", compression_level=1, row_group_size=_ROW_GROUP
        )
