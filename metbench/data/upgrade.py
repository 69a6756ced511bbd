"""Converting a dataset folder of format 1 (truth and observables in the same files) to format 2
in place, without regenerating anything.

Each events file is verified against the old manifest, split into its observable file and its
truth file (:func:`metbench.data.store.split_records`, the same function generation uses, so the
bytes equal those of a fresh format-2 generation), and the new manifest lists both with their
checksums. The new files are staged in ``.upgrade/`` beside the data and moved into place only
when all are written, the manifest last: an interrupted upgrade resumes with the same command,
and a reader never sees a manifest that does not describe the files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from metbench.data.store import (
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    atomic_write_json,
    read_manifest_json,
    sha256_file,
    split_records,
    truth_relpath,
    verify_file,
    write_parquet_atomic,
)
from metbench.errors import DatasetError

__all__ = ["STAGING", "upgrade_dataset"]

#: Staging folder of an upgrade in progress (inside the dataset folder).
STAGING: Final = ".upgrade"


def _read_raw_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{folder}: no {MANIFEST_NAME}; not a metbench dataset")
    return read_manifest_json(path)


def _commit(folder: Path, staging: Path) -> None:
    """Move every staged file into place, then the staged manifest, then drop the staging."""
    for path in sorted(staging.rglob("*.parquet")):
        target = folder / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    (staging / MANIFEST_NAME).replace(folder / MANIFEST_NAME)
    shutil.rmtree(staging)


def upgrade_dataset(
    folder: Path, on_progress: Callable[[int, int], None] | None = None
) -> tuple[dict[str, Any], bool]:
    """Convert ``folder`` to the current format in place: ``(manifest, converted)``;
    ``converted`` is False when it already had the current format."""
    folder = Path(folder)
    staging = folder / STAGING
    if (staging / MANIFEST_NAME).is_file():  # interrupted while moving files into place
        _commit(folder, staging)
        return _read_raw_manifest(folder), True
    manifest = _read_raw_manifest(folder)
    version = manifest.get("format_version")
    if version == DATASET_FORMAT_VERSION:
        shutil.rmtree(staging, ignore_errors=True)
        return manifest, False
    if version != 1:
        raise DatasetError(
            f"{folder / MANIFEST_NAME}: format version {version} cannot be upgraded (this metbench "
            f"reads {DATASET_FORMAT_VERSION} and converts 1)"
        )
    import awkward as ak

    files: dict[str, Any] = {}
    events = sorted(r for r, e in manifest["files"].items() if e["kind"] == "events")
    for done, relpath in enumerate(events):
        entry = manifest["files"][relpath]
        outputs = {
            relpath: staging / relpath,
            truth_relpath(relpath): staging / truth_relpath(relpath),
        }
        if not all(p.is_file() for p in outputs.values()):  # staged files are written atomically
            records = ak.from_parquet(verify_file(folder, relpath, manifest))
            observable, truth = split_records(records)
            write_parquet_atomic(outputs[truth_relpath(relpath)], truth)
            write_parquet_atomic(outputs[relpath], observable)
        for (rel, path), kind in zip(outputs.items(), ("events", "truth"), strict=True):
            files[rel] = {
                **entry,
                "kind": kind,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
        if on_progress is not None:
            on_progress(done + 1, len(events))
    for relpath, entry in manifest["files"].items():
        if entry["kind"] != "events":
            verify_file(folder, relpath, manifest)
            files[relpath] = entry
    upgraded = {
        **manifest,
        "format_version": DATASET_FORMAT_VERSION,
        "files": dict(sorted(files.items())),
    }
    atomic_write_json(staging / MANIFEST_NAME, upgraded)
    _commit(folder, staging)
    return upgraded, True
