"""The on-disk dataset: parquet shards, ``manifest.json`` and sha256 checksums.

Layout of a dataset folder (format 2)::

    manifest.json                       name, version, settings, seeds, versions, counts, checksums
    events/<split>/<process>_<shard>.parquet   what an estimator may see: event_id, mu, n_pv, the
                                         candidates ``pf`` (reconstructed fields only), stored MET
    truth/<split>/<process>_<shard>.parquet    the truth of the same events, in the same order:
                                         event_id, process, n_pu, gen_met_*, gen_qt_*, the truth
                                         objects, and ``truth_is_pileup`` (a list per event,
                                         aligned with ``pf``)
    pileup_pool/pool_<shard>.parquet     the minimum-bias pool used for premixing
    timing.json                          wall-clock figures of the run that wrote it (not checksummed:
                                         it is the only file that differs between identical runs)

Truth and observables live in separate files so that a submission's sandbox can be given the
``events`` folder alone (format 1 kept both in one file; ``metbench data upgrade`` converts such a
folder in place, see :mod:`metbench.data.upgrade`).

Every file is written to a temporary name and renamed into place, so an interrupted run never leaves
a half-written file under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.errors import DatasetError

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "MANIFEST_NAME",
    "TIMING_NAME",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "load_manifest",
    "read_manifest_json",
    "round_mantissa",
    "sha256_file",
    "split_records",
    "truth_relpath",
    "verify_file",
    "write_event_files",
    "write_parquet_atomic",
]

DATASET_FORMAT: Final = "metbench-dataset"
DATASET_FORMAT_VERSION: Final = 2
MANIFEST_NAME: Final = "manifest.json"
TIMING_NAME: Final = "timing.json"
_PARQUET_OPTIONS: Final[dict[str, Any]] = {"compression": "zstd", "compression_level": 9}


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds (removed if not).

    Every writer of a dataset file goes through this, so a half-written file never carries a final
    name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically (deterministic bytes)."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())


def write_parquet_atomic(path: Path, array: Any, row_group_size: int = 512) -> None:
    """Write an awkward array to parquet atomically, with settings that give identical bytes for
    identical input (zstd level 9, byte-stream-split floats, fixed row groups, no timestamps)."""
    import awkward as ak

    with atomic_path(path) as tmp:
        ak.to_parquet(
            array,
            tmp,
            compression=_PARQUET_OPTIONS["compression"],
            compression_level=_PARQUET_OPTIONS["compression_level"],
            row_group_size=row_group_size,
            parquet_byte_stream_split=True,
            extensionarray=False,
        )


def truth_relpath(events_relpath: str) -> str:
    """The truth file of an events file: ``events/<split>/<stem>.parquet`` ->
    ``truth/<split>/<stem>.parquet``."""
    head, _, rest = events_relpath.partition("/")
    if head != "events" or not rest:
        raise ValueError(f"{events_relpath!r} is not an events file path")
    return f"truth/{rest}"


def split_records(records: Any) -> tuple[Any, Any]:
    """Split stored event records into ``(observable, truth)`` arrays of the same events.

    ``observable`` keeps every field but the truth ones, with the candidates ``pf`` stripped of
    their truth fields; ``truth`` has ``event_id`` (the join key), the truth event columns and
    objects, and each truth candidate column (``truth_is_pileup``) as a list per event aligned
    with ``pf``. Both come out of the same records whether they are in memory (generation) or
    read back from a format-1 file (upgrade), so both paths write the same bytes.
    """
    import awkward as ak

    from metbench.events import TRUTH_EVENT_COLUMNS, TRUTH_OBJECTS, TRUTH_PARTICLE_COLUMNS

    truth_names = set(TRUTH_EVENT_COLUMNS) | set(TRUTH_OBJECTS)
    observable: dict[str, Any] = {}
    truth: dict[str, Any] = {"event_id": records["event_id"]}
    for name in records.fields:
        if name in truth_names:
            truth[name] = records[name]
        elif name == "pf":
            pf = records["pf"]
            keep = [f for f in pf.fields if f not in TRUTH_PARTICLE_COLUMNS]
            observable["pf"] = pf[keep]
            for f in TRUTH_PARTICLE_COLUMNS:
                if f in pf.fields:
                    truth[f] = pf[f]
        else:
            observable[name] = records[name]
    return ak.zip(observable, depth_limit=1), ak.zip(truth, depth_limit=1)


def write_event_files(
    folder: Path, relpath: str, records: Any, **fields: Any
) -> dict[str, dict[str, Any]]:
    """Write a shard of events as its observable file ``relpath`` and its truth file (atomically)
    and return their manifest entries (kinds ``events`` and ``truth``, plus ``fields``)."""
    observable, truth = split_records(records)
    out: dict[str, dict[str, Any]] = {}
    for kind, rel, array in (
        ("events", relpath, observable),
        ("truth", truth_relpath(relpath), truth),
    ):
        path = Path(folder) / rel
        write_parquet_atomic(path, array)
        out[rel] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "n_events": len(array),
            **fields,
            "kind": kind,
        }
    return out


def round_mantissa(values: np.ndarray, bits: int) -> np.ndarray:
    """Round float32 values to ``bits`` explicit mantissa bits (as NanoAOD's ``precision``).

    The relative rounding error is below 2**-(bits+1); zeros, signs and non-finite values are kept.
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    if bits >= 23:
        return x
    drop = 23 - bits
    u = x.view(np.uint32)
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    rounded = ((u + half) & mask).view(np.float32)
    return np.where(np.isfinite(x), rounded, x)


def read_manifest_json(path: Path) -> dict[str, Any]:
    """A ``manifest.json`` parsed, of any format version (one :class:`DatasetError` if it is not
    JSON or not a metbench dataset manifest)."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); regenerate the dataset") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{path}: not a metbench dataset manifest")
    return manifest


def load_manifest(folder: Path) -> dict[str, Any]:
    """Read and check a dataset's ``manifest.json``; every problem is one :class:`DatasetError`."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: no such dataset folder; generate one with 'metbench data generate'"
        )
    if not path.is_file():
        raise DatasetError(
            f"{folder}: no {MANIFEST_NAME}; the folder is not a metbench dataset or its generation "
            "did not finish (re-run 'metbench data generate' with the same --out to resume)"
        )
    manifest = read_manifest_json(path)
    if manifest.get("format_version") == 1:
        raise DatasetError(
            f"{path}: dataset format 1 keeps truth and observables in the same files; convert it "
            f"in place with 'metbench data upgrade {folder}' (no regeneration)"
        )
    if manifest.get("format_version") != DATASET_FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format version {manifest.get('format_version')} is not supported "
            f"(this metbench reads version {DATASET_FORMAT_VERSION}); regenerate the dataset"
        )
    for key in ("name", "version", "files", "splits", "processes"):
        if key not in manifest:
            raise DatasetError(f"{path}: manifest lacks the key {key!r}; regenerate the dataset")
    return manifest


def verify_file(folder: Path, relpath: str, manifest: dict[str, Any]) -> Path:
    """Check one file of a dataset against its manifest entry (size, then sha256)."""
    entry = manifest["files"].get(relpath)
    path = Path(folder) / relpath
    if entry is None:
        raise DatasetError(f"{path}: not listed in the dataset manifest")
    if not path.is_file():
        raise DatasetError(
            f"{path}: file listed in the manifest is missing; regenerate the dataset"
        )
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DatasetError(
            f"{path}: {size} bytes but the manifest says {entry['bytes']} (truncated or replaced "
            "file); regenerate the dataset"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise DatasetError(
            f"{path}: sha256 {digest[:12]}… does not match the manifest ({entry['sha256'][:12]}…): "
            "the file was modified or corrupted; regenerate the dataset"
        )
    return path
