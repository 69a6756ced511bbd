"""The on-disk dataset: parquet shards, ``manifest.json`` and sha256 checksums.

Layout of a dataset folder::

    manifest.json                       name, version, settings, seeds, versions, counts, checksums
    events/<split>/<process>_<shard>.parquet
    pileup_pool/pool_<shard>.parquet     the minimum-bias pool used for premixing
    timing.json                          wall-clock figures of the run that wrote it (not checksummed:
                                         it is the only file that differs between identical runs)

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
    "round_mantissa",
    "sha256_file",
    "verify_file",
    "write_parquet_atomic",
]

DATASET_FORMAT: Final = "metbench-dataset"
DATASET_FORMAT_VERSION: Final = 1
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
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); regenerate the dataset") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{path}: not a metbench dataset manifest")
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
