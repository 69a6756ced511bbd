"""What every reader returns, and how it becomes a metbench dataset folder.

A ROOT file is converted once into a dataset folder of the usual layout (one ``test`` split, one
process, ``manifest.json`` with checksums), so that prediction, scoring, reuse by hash and the
leaderboard treat real files and generated datasets alike. The manifest's ``source`` records the
file, its sha256, the reader, every column the reader could not fill and why, whether the file has a
truth MET, and the stored MET estimators it carries (event columns ``stored_<name>_x/_y``, GeV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import awkward as ak
import numpy as np

from metbench.data.store import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    atomic_write_json,
    sha256_file,
    write_event_files,
)
from metbench.events import EVENT_DTYPES, PARTICLE_COLUMNS, PARTICLE_DTYPES, TRUTH_OBJECTS

__all__ = ["STORED_PREFIX", "FileEvents", "write_file_dataset"]

#: Prefix of the event columns that hold MET estimators stored in a file.
STORED_PREFIX: Final = "stored_"


@dataclass
class FileEvents:
    """Events read from a file, in the event model's names and units (GeV, cm, rad).

    Attributes
    ----------
    reader
        Which reader produced them (``cms-pfnano``, ``cms-nanoaod``, ``atlas-physlite``, ``delphes``).
    process
        Process name for the ``process`` column (the file's stem unless the reader knows better).
    event
        Event columns (``event_id``, ``mu``, ``n_pu``, ``n_pv``, ``gen_met_x``, ``gen_met_y``,
        ``gen_qt_x``, ``gen_qt_y``), each ``(n,)``.
    candidates
        Jagged records with the fields of :data:`metbench.events.PARTICLE_COLUMNS`, or None when
        the file has no candidates (then every event has an empty list).
    stored_met
        Stored MET estimators: name -> ``(n, 2)`` (px, py) [GeV].
    missing
        Column -> why the reader could not fill it from the file (filled with a neutral value).
    has_truth_met
        False when the file has no truth MET: predictions can be made but not scored.
    """

    reader: str
    process: str
    event: dict[str, np.ndarray]
    candidates: ak.Array | None
    stored_met: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    has_truth_met: bool = True

    def __len__(self) -> int:
        return len(self.event["event_id"])


def _empty_objects(n: int) -> ak.Array:
    record = ak.zip(
        {k: np.zeros(0, np.float32) for k in ("px", "py", "pz", "e")}
        | {"pdg_id": np.zeros(0, np.int32)}
    )
    return ak.unflatten(record, np.zeros(n, np.int64))


def _records(events: FileEvents) -> ak.Array:
    n = len(events)
    fields: dict[str, Any] = {"event_id": events.event["event_id"].astype(np.int64)}
    fields["process"] = np.full(n, events.process, dtype=object).astype(str)
    for name in ("mu", "n_pu", "n_pv", "gen_met_x", "gen_met_y", "gen_qt_x", "gen_qt_y"):
        fields[name] = np.asarray(events.event[name]).astype(EVENT_DTYPES[name])
    if events.candidates is None:
        flat = {c: np.zeros(0, PARTICLE_DTYPES[c]) for c in PARTICLE_COLUMNS}
        counts = np.zeros(n, np.int64)
    else:
        counts = ak.to_numpy(ak.num(events.candidates, axis=1))
        flat = {
            c: ak.to_numpy(ak.flatten(events.candidates[c])).astype(PARTICLE_DTYPES[c])
            for c in PARTICLE_COLUMNS
        }
    fields["pf"] = ak.unflatten(ak.zip(flat), counts)
    for name in TRUTH_OBJECTS:
        fields[name] = _empty_objects(n)
    for name, vec in sorted(events.stored_met.items()):
        fields[f"{STORED_PREFIX}{name}_x"] = vec[:, 0].astype(np.float32)
        fields[f"{STORED_PREFIX}{name}_y"] = vec[:, 1].astype(np.float32)
    return ak.zip(fields, depth_limit=1)


def write_file_dataset(events: FileEvents, source: Path, out: Path) -> dict[str, Any]:
    """Write ``events`` as a dataset folder ``out`` (one test split) and return its manifest."""
    if len(events) == 0:
        from metbench.errors import DatasetError

        raise DatasetError(f"{source}: the file holds no events")
    if len(np.unique(events.event["event_id"])) != len(events):
        events.event["event_id"] = np.arange(len(events), dtype=np.int64)
        events.missing["event_id"] = "event numbers repeat in the file: entry indices are used"
    relpath = f"events/test/{events.process}_0000.parquet"
    files = write_event_files(out, relpath, _records(events), split="test", process=events.process)
    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "name": Path(source).stem,
        "version": "file",
        "seed": None,
        "splits": {
            "fractions": {"test": 1.0},
            "method": "every event of a file is in the test split",
        },
        "processes": {events.process: {"events": {"test": len(events), "train": 0, "val": 0}}},
        "source": {
            "file": str(Path(source).resolve()),
            "sha256": sha256_file(Path(source)),
            "reader": events.reader,
            "missing_columns": dict(sorted(events.missing.items())),
            "has_truth_met": events.has_truth_met,
            "has_candidates": events.candidates is not None,
            "stored_met": sorted(events.stored_met),
        },
        "files": files,
    }
    atomic_write_json(out / MANIFEST_NAME, manifest)
    return manifest
