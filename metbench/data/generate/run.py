"""Generate a dataset: pileup pool, then hard-scatter shards, then the manifest.

Work is cut into shards (one process, one seed-derived random stream, a few thousand events), so a
run parallelises over local processes and resumes after an interruption: a shard whose files are in
place with the checksums of its record is not generated again. The result depends on the preset and
the seed only, never on the number of workers.

Run again over a complete dataset, it verifies every file against the manifest (size, then sha256)
and regenerates exactly the shards whose files are damaged or missing: their seeds give the same
bytes, so the manifest stays as it is. A ``manifest.json`` that is not valid JSON (the last step of a
generation, cut short, or a damaged copy) is treated as an interrupted generation: the dataset is
generated again in place and the manifest rewritten. Temporary files left by a killed run are
removed. Local worker processes run in their own process group and die with the run (SIGKILL
included), so no worker outlives an interrupted generation.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

import metbench
from metbench.data.generate.detector import DetectorConfig, simulate_detector
from metbench.data.generate.pileup import premix
from metbench.data.generate.presets import PRESETS, DatasetSpec
from metbench.data.generate.processes import MINBIAS, PROCESSES
from metbench.data.generate.pythia import GenParticles, PythiaGenerator, pythia_version
from metbench.data.splits import SPLITS, assign_splits
from metbench.data.store import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    TIMING_NAME,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    load_manifest,
    round_mantissa,
    sha256_file,
    verify_file,
    write_event_files,
)
from metbench.distributed import check_workers_on, run_on_dask
from metbench.errors import DatasetError, MetbenchError, first_line
from metbench.events import PARTICLE_COLUMNS, PARTICLE_DTYPES
from metbench.physics.puppi import PuppiParameters, puppi_weights

__all__ = ["STORED_PRECISION", "build_events", "generate_dataset", "pythia_seed", "shard_rng"]

_PROGRESS = ".progress"
#: Mantissa bits kept on disk per float column (NanoAOD-style lossy compression; the relative
#: rounding error 2**-(bits+1) is far below every detector resolution).
STORED_PRECISION: dict[str, int] = {
    "pt": 12,
    "eta": 10,
    "phi": 10,
    "mass": 10,
    "d0": 8,
    "dz": 8,
    "puppi_weight": 10,
}


def pythia_seed(seed: int, kind: str, code: int, shard: int) -> int:
    """Pythia ``Random:seed`` (1 … 900 000 000) of one shard, derived from the dataset seed."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{code}:{shard}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % 899_999_999


def shard_rng(seed: int, code: int, shard: int) -> np.random.Generator:
    """The numpy random stream (premixing, detector) of one shard."""
    return np.random.default_rng(np.random.SeedSequence([seed, code, shard, 0x6D6574]))


# ---------------------------------------------------------------------------------------------
# shard workers (run in child processes)
# ---------------------------------------------------------------------------------------------
_POOL_CACHE: dict[tuple[str, ...], GenParticles] = {}


def _file_entry(path: Path, **fields: Any) -> dict[str, Any]:
    """The manifest entry of a written file: its sha256 and size, plus ``fields``."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, **fields}


def _pool_relpath(k: int) -> str:
    return f"pileup_pool/pool_{k:03d}.parquet"


def _run_pool_shard(out: str, seed: int, k: int, n: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    gen = PythiaGenerator(MINBIAS, pythia_seed(seed, "pool", MINBIAS.code, k))
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    particles, _ = gen.generate(n)
    t_gen = time.perf_counter() - t0
    table = particles.to_arrow_table()
    table = pa.table(
        {
            name: (col.cast(pa.float32()) if pa.types.is_floating(col.type) else col)
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    relpath = _pool_relpath(k)
    path = Path(out) / relpath
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=9)
    return {
        "files": {relpath: _file_entry(path, n_events=n, kind="pileup_pool")},
        "timing": {"n_events": n, "init_s": t_init, "generate_s": t_gen},
    }


def load_pool(folder: Path, relpaths: list[str]) -> GenParticles:
    """Load the minimum-bias pool (cached per process)."""
    import pyarrow.parquet as pq

    key = (str(folder), *relpaths)
    if key not in _POOL_CACHE:
        _POOL_CACHE.clear()
        parts = [GenParticles.from_arrow_table(pq.read_table(Path(folder) / p)) for p in relpaths]
        pool = GenParticles.concatenate(parts)
        for name in ("px", "py", "pz", "e", "vx", "vy", "vz"):
            setattr(pool, name, getattr(pool, name).astype(np.float64))
        _POOL_CACHE[key] = pool
    return _POOL_CACHE[key]


def build_events(
    spec: DatasetSpec,
    seed: int,
    process_name: str,
    shard: int,
    n: int,
    pool: GenParticles,
    detector: DetectorConfig | None = None,
) -> tuple[ak.Array, dict[str, float]]:
    """Generate, premix, simulate and reconstruct the events of one shard.

    Returns the events (an awkward array in the stored layout of :mod:`metbench.events`) and the
    wall-clock time of each stage [s].
    """
    process = PROCESSES[process_name]
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    generator = PythiaGenerator(process, pythia_seed(seed, "hard", process.code, shard))
    timing["pythia_init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hard, truth = generator.generate(n)
    timing["pythia_s"] = time.perf_counter() - t0

    rng = shard_rng(seed, process.code, shard)
    t0 = time.perf_counter()
    mu = spec.sample_mu(rng, n)
    n_pu = rng.poisson(mu)
    mixed = premix(hard, n_pu, pool, rng, spec.sigma_z)
    timing["premix_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    reco = simulate_detector(mixed, rng, detector)
    timing["detector_s"] = time.perf_counter() - t0

    cols = {
        name: (
            round_mantissa(values, STORED_PRECISION[name]) if name in STORED_PRECISION else values
        )
        for name, values in reco.columns.items()
    }
    t0 = time.perf_counter()
    weights = puppi_weights(
        reco.event, n, cols["pt"], cols["eta"], cols["phi"], cols["mass"], cols["charge"],
        cols["pdg_id"], cols["dz"], cols["from_pv"], reco.n_pv,
        PuppiParameters.for_tune(spec.puppi_tune),
    )  # fmt: skip
    timing["puppi_s"] = time.perf_counter() - t0
    cols["puppi_weight"] = round_mantissa(weights, STORED_PRECISION["puppi_weight"])
    timing["n_candidates"] = float(len(reco.event))
    timing["n_pu_sum"] = float(n_pu.sum())

    counts = np.bincount(reco.event, minlength=n)
    pf = ak.unflatten(
        ak.zip(
            {name: cols[name].astype(PARTICLE_DTYPES[name]) for name in PARTICLE_COLUMNS},
            depth_limit=1,
        ),
        counts,
    )
    event_id = process.code * 10**12 + shard * 10**6 + np.arange(n, dtype=np.int64)
    events = ak.zip(
        {
            "event_id": event_id,
            "process": np.full(n, process.name),
            "mu": mu.astype(np.float32),
            "n_pu": n_pu.astype(np.int32),
            "n_pv": reco.n_pv.astype(np.int32),
            "gen_met_x": truth.gen_met_x.astype(np.float32),
            "gen_met_y": truth.gen_met_y.astype(np.float32),
            "gen_qt_x": truth.gen_qt_x.astype(np.float32),
            "gen_qt_y": truth.gen_qt_y.astype(np.float32),
            "pf": pf,
            "truth_neutrinos": truth.neutrinos,
            "truth_leptons": truth.leptons,
            "truth_b_quarks": truth.b_quarks,
        },
        depth_limit=1,
    )
    return events, timing


def _events_relpath(split: str, process: str, shard: int) -> str:
    return f"events/{split}/{process}_{shard:04d}.parquet"


def _run_event_shard(
    out: str, spec_dict: dict[str, Any], seed: int, process: str, shard: int, n: int,
    pool_relpaths: list[str],
) -> dict[str, Any]:  # fmt: skip
    spec = DatasetSpec.from_dict(spec_dict)
    t_start = time.perf_counter()
    pool = load_pool(Path(out), pool_relpaths)
    t_pool = time.perf_counter() - t_start
    events, timing = build_events(spec, seed, process, shard, n, pool)
    t0 = time.perf_counter()
    split = assign_splits(ak.to_numpy(events.event_id), spec.split_fractions)
    files = {}
    for code, name in enumerate(SPLITS):
        sel = split == code
        if not sel.any():
            continue
        files.update(
            write_event_files(
                Path(out), _events_relpath(name, process, shard), events[sel],
                split=name, process=process,
            )
        )  # fmt: skip
    timing["write_s"] = time.perf_counter() - t0
    timing["pool_load_s"] = t_pool
    timing["n_events"] = float(n)
    timing["total_s"] = time.perf_counter() - t_start - t_pool
    return {"files": files, "timing": timing}


# ---------------------------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------------------------
def _record_ok(out: Path, record: dict[str, Any]) -> bool:
    """Whether a shard's files are in place with the sizes and checksums of its record."""
    try:
        for relpath in record["files"]:
            verify_file(out, relpath, record)
    except (DatasetError, KeyError, TypeError, AttributeError):  # a damaged record: run again
        return False
    return True


_Task = tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]
#: The name of a temporary file of :func:`metbench.data.store.atomic_path` (``.<name>.tmp<pid>``).
_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)$")
#: Folders that only a dataset has (a folder with one of them is taken for a dataset).
_DATASET_FOLDERS = ("pileup_pool", "events", "truth", _PROGRESS)


def _pool_tasks(spec: DatasetSpec, seed: int, out: Path) -> list[_Task]:
    """The shard tasks of the pileup pool, keyed ``pool_<k>`` (the stem of the file each writes)."""
    return [
        (f"pool_{k:03d}", _run_pool_shard, (str(out), seed, k, n)) for k, n in spec.pool_shards()
    ]


def _event_tasks(spec: DatasetSpec, seed: int, out: Path, pool_relpaths: list[str]) -> list[_Task]:
    """The event shard tasks, keyed ``<process>_<shard>`` (the stem of every file each writes)."""
    spec_dict = spec.to_dict()
    return [
        (
            f"{process}_{shard:04d}",
            _run_event_shard,
            (str(out), spec_dict, seed, process, shard, n, pool_relpaths),
        )
        for process, shard, n in spec.shards()
    ]


def _read_json(path: Path) -> Any:
    """The JSON document in ``path`` (None when it is not valid JSON)."""
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        return None


def _identity_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must agree for a dataset to be the one asked for: settings, seed, metbench version."""
    versions = manifest.get("versions")
    return {
        "spec": manifest.get("settings"),
        "seed": manifest.get("seed"),
        "metbench": versions.get("metbench") if isinstance(versions, dict) else None,
    }


def _read_existing_manifest(out: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(manifest, None)`` for a metbench manifest in ``out``, ``(None, why)`` for one that is not
    valid JSON in a folder that holds a dataset's sub-folders (taken for an interrupted
    generation); any other manifest is a :class:`MetbenchError`."""
    path = out / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetbenchError(
            f"{path}: cannot be read ({exc.strerror}); check its permissions or delete it"
        ) from None
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:
        if not any((out / name).is_dir() for name in _DATASET_FOLDERS):
            raise MetbenchError(
                f"{path}: not valid JSON and {out} holds no dataset files; choose another --out "
                "or delete it"
            ) from None
        why = "empty" if not data.strip() else f"not valid JSON ({first_line(exc)})"
        return None, why
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise MetbenchError(
            f"{path}: not a metbench dataset manifest; choose another --out or delete {out}"
        )
    return manifest, None


def _damaged_files(
    out: Path,
    files: dict[str, Any],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, str]:
    """The files of ``files`` (manifest entries by path) that are missing, of another size or
    another sha256, with what is wrong with each."""
    damaged: dict[str, str] = {}
    for done, (relpath, entry) in enumerate(files.items(), 1):
        if not isinstance(entry, dict) or not {"bytes", "sha256"} <= entry.keys():
            raise MetbenchError(
                f"{out / MANIFEST_NAME}: the entry of {relpath} has no size or sha256; delete "
                f"{out} and generate the dataset again"
            )
        path = out / relpath
        if not path.is_file():
            damaged[relpath] = "missing"
        elif (size := path.stat().st_size) != entry["bytes"]:
            damaged[relpath] = f"{size} bytes instead of {entry['bytes']}"
        elif sha256_file(path) != entry["sha256"]:
            damaged[relpath] = "sha256 differs"
        if on_progress:
            on_progress("verify", done, len(files))
    return damaged


def _remove_stale_temporaries(out: Path, say: Callable[[str], None]) -> None:
    """Remove the temporary files (``.<name>.tmp<pid>``) that a killed run left in ``out``: those
    of a process that no longer runs (or of this one: nothing here is being written yet)."""
    import psutil

    if not out.is_dir():
        return
    removed = []
    for path in out.rglob(".*.tmp*"):
        match = _TEMPORARY.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not psutil.pid_exists(pid):
            path.unlink(missing_ok=True)
            removed.append(path.relative_to(out).as_posix())
    if removed:
        say(
            f"{out}: removed {len(removed)} temporary file(s) of an interrupted run ({_few(removed)})"
        )


def _few(items: list[str], n: int = 4) -> str:
    """The first ``n`` items, comma-separated, and how many more."""
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _repair(
    spec: DatasetSpec,
    seed: int,
    out: Path,
    manifest: dict[str, Any],
    workers: int,
    on_progress: Callable[[str, int, int], None] | None,
    scheduler: str | None,
    say: Callable[[str], None],
    processes: Collection[str] | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """Verify every file of the complete dataset in ``out`` against its manifest and regenerate the
    shards of the damaged or missing ones (any kind: events, truth or pool); the manifest is kept.

    A shard's files are named after its key (``<process>_<shard>``, ``pool_<k>``), so a damaged
    file names the shard to run again; the regenerated files must match the manifest's entries
    (they do, with the seeds, unless the libraries changed since the dataset was made). With
    ``processes``, only the files of those processes and the pileup pool are looked at;
    ``fresh``: the manifest was just written into an empty folder (nothing to call damaged).
    """
    _remove_stale_temporaries(out, say)
    files = {
        relpath: entry
        for relpath, entry in manifest["files"].items()
        if processes is None
        or not isinstance(entry, dict)
        or entry.get("kind") == "pileup_pool"
        or entry.get("process") in processes
    }
    damaged = _damaged_files(out, files, on_progress)
    if not damaged:
        return manifest
    pool_relpaths = sorted(
        relpath
        for relpath, entry in manifest["files"].items()
        if entry.get("kind") == "pileup_pool"
    )
    stages = (
        ("pool", _pool_tasks(spec, seed, out)),
        ("events", _event_tasks(spec, seed, out, pool_relpaths)),
    )
    keys = {Path(relpath).stem for relpath in damaged}
    stray = sorted(
        r for r in damaged if Path(r).stem not in {k for _, t in stages for k, _, _ in t}
    )
    if stray:
        raise MetbenchError(
            f"{out}: {_few(stray)} ({damaged[stray[0]]}) belongs to no shard of {spec.name} with "
            f"seed {seed}; delete {out} and generate the dataset again"
        )
    which = "" if processes is None else f" of {', '.join(processes)} and the pileup pool"
    if fresh:
        say(f"{out}: generating the {len(keys)} shard(s){which} of the published manifest")
    else:
        say(
            f"{out}: {len(damaged)} of {len(files)} files{which} damaged or missing: "
            + _few([f"{r} ({why})" for r, why in sorted(damaged.items())])
            + f"; regenerating {len(keys)} shard(s)"
        )
    if scheduler is not None:
        check_workers_on(scheduler, write={"dataset": out})
    progress_dir = out / _PROGRESS
    shutil.rmtree(progress_dir, ignore_errors=True)  # records of an interrupted repair: redone
    records: dict[str, dict[str, Any]] = {}
    for stage, tasks in stages:  # the pool first: event shards read it
        todo = [task for task in tasks if task[0] in keys]
        if todo:
            records.update(_run_stage(out, stage, todo, workers, on_progress, scheduler))
    for record in records.values():
        for relpath, entry in record["files"].items():
            if manifest["files"].get(relpath) != entry:
                differ = {
                    k: f"{v} here, {manifest.get('versions', {}).get(k)} in the dataset"
                    for k, v in _versions().items()
                    if v != manifest.get("versions", {}).get(k)
                }
                raise MetbenchError(
                    f"{out / relpath}: regenerated, but it does not match the manifest "
                    f"({'; '.join(f'{k} {v}' for k, v in differ.items()) or 'same library versions'})"
                    f"; delete {out} and generate the dataset again"
                )
    left = _damaged_files(out, {r: manifest["files"][r] for r in damaged})
    if left:
        raise MetbenchError(
            f"{out}: {_few(sorted(left))} still damaged after regeneration; delete {out} and "
            "generate the dataset again"
        )
    shutil.rmtree(progress_dir, ignore_errors=True)
    checked = f"every file{which}"
    if fresh:
        say(f"{out}: {len(damaged)} files written; {checked} matches the published manifest")
    else:
        say(f"{out}: repaired {_few(sorted(damaged), 20)}; {checked} matches the manifest")
    return manifest


def generate_dataset(
    spec: DatasetSpec,
    out: Path,
    seed: int,
    workers: int = 1,
    on_progress: Callable[[str, int, int], None] | None = None,
    scheduler: str | None = None,
    on_message: Callable[[str], None] | None = None,
    processes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Generate (or resume, or verify and repair) a dataset in ``out``.

    Over a complete dataset of the same preset and seed, every file is verified against the
    manifest and the shards of damaged or missing files are generated again (the same bytes; the
    manifest is not rewritten). A ``manifest.json`` that is not valid JSON, in a folder with the
    dataset's sub-folders, is taken for an interrupted generation: the dataset is generated again
    in place.

    Parameters
    ----------
    spec
        The preset (possibly scaled).
    out
        Dataset folder.
    seed
        Dataset seed (>= 0); every shard's seeds derive from it.
    workers
        Local processes (without ``scheduler``).
    on_progress
        Called as ``on_progress(stage, done, total)`` with stage ``"pool"``, ``"events"`` or
        ``"verify"`` (files of a complete dataset checked).
    scheduler
        Address of a running Dask distributed scheduler (``tcp://host:port``): shards run on its
        workers, which must see ``out`` (a shared file system). Every shard derives its seeds from
        ``seed`` and its key and is written atomically, so the dataset is bit-identical to a local
        one, and a shard whose worker dies is simply run again.
    on_message
        Called with one line per notable event (damaged files found and repaired, stale temporary
        files removed, an unreadable manifest); default: silent.
    processes
        Generate the files of these processes only (and the pileup pool they are mixed from), each
        checked against the published manifest, which is written first: for a published preset
        and seed whose manifest ships with metbench
        (:func:`metbench.data.published.published_manifest_bytes`). The files of the other
        processes stay missing: a later call without ``processes`` adds them (and the dataset is
        then complete, the published one). For a training on some processes only (the
        Perceivers' tt̄).

    Returns
    -------
    dict
        The manifest.
    """
    if seed < 0:
        raise MetbenchError(f"--seed must be >= 0, got {seed}")
    if workers < 1:
        raise MetbenchError(f"--workers must be >= 1, got {workers}")
    out = Path(out).resolve()  # the same folder for Dask workers started elsewhere
    identity = {"spec": spec.to_dict(), "seed": seed, "metbench": metbench.__version__}
    manifest_path = out / MANIFEST_NAME
    say = on_message or (lambda _: None)
    unreadable = None
    fresh = False
    if processes is not None:
        processes, fresh = _start_partial(spec, seed, out, list(processes))
    if manifest_path.exists():
        manifest, unreadable = _read_existing_manifest(out)
        if manifest is not None:
            if _identity_of(manifest) != identity:
                raise MetbenchError(
                    f"{out} already holds a different dataset ({manifest.get('name')}, seed "
                    f"{manifest.get('seed')}); choose another --out or delete it"
                )
            load_manifest(out)  # an older format: its own one-line message (upgrade it)
            return _repair(
                spec, seed, out, manifest, workers, on_progress, scheduler, say, processes, fresh
            )
    if (
        unreadable is None
        and out.exists()
        and any(out.iterdir())
        and not (out / _PROGRESS).is_dir()
    ):
        raise MetbenchError(f"{out} exists and is not empty; choose another --out or delete it")
    if unreadable is not None:
        say(f"{manifest_path}: {unreadable}; generating the dataset again in place")
    _remove_stale_temporaries(out, say)
    progress_dir = out / _PROGRESS
    progress_dir.mkdir(parents=True, exist_ok=True)
    identity_path = progress_dir / "identity.json"
    if identity_path.exists() and _read_json(identity_path) is None:
        # what the interrupted run generated is unknown: its records cannot be trusted
        say(f"{identity_path}: unreadable; the interrupted generation starts over")
        shutil.rmtree(progress_dir, ignore_errors=True)
        progress_dir.mkdir(parents=True, exist_ok=True)
    if identity_path.exists():
        if _read_json(identity_path) != identity:
            raise MetbenchError(
                f"{out} holds an interrupted generation with other settings or seed; "
                "choose another --out or delete it"
            )
    else:
        atomic_write_json(identity_path, identity)
    if scheduler is not None:  # the workers write the shards: they must see out as we do
        check_workers_on(scheduler, write={"dataset": out})

    t_run = time.perf_counter()
    pool_records = _run_stage(
        out, "pool", _pool_tasks(spec, seed, out), workers, on_progress, scheduler
    )
    pool_relpaths = sorted(p for r in pool_records.values() for p in r["files"])
    event_records = _run_stage(
        out,
        "events",
        _event_tasks(spec, seed, out, pool_relpaths),
        workers,
        on_progress,
        scheduler,
    )
    wall = time.perf_counter() - t_run

    files: dict[str, Any] = {}
    for record in (*pool_records.values(), *event_records.values()):
        files.update(record["files"])
    counts: dict[str, dict[str, int]] = {p: dict.fromkeys(SPLITS, 0) for p in spec.processes}
    for entry in files.values():
        if entry["kind"] == "events":
            counts[entry["process"]][entry["split"]] += entry["n_events"]
    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "name": spec.name,
        "version": spec.version,
        "seed": seed,
        "settings": spec.to_dict(),
        "detector": DetectorConfig().__dict__,
        "stored_precision_bits": STORED_PRECISION,
        "versions": _versions(),
        "splits": {"fractions": spec.split_fractions, "method": "splitmix64(event_id) / 2**64"},
        "processes": {
            name: {
                "code": PROCESSES[name].code,
                "description": PROCESSES[name].description,
                "pythia_settings": list(PROCESSES[name].settings),
                "events": counts[name],
            }
            for name in spec.processes
        },
        "pileup_pool": {
            "process": MINBIAS.description,
            "pythia_settings": list(MINBIAS.settings),
            "events": spec.pool_size,
        },
        "files": dict(sorted(files.items())),
    }
    atomic_write_json(
        out / TIMING_NAME, _timing_summary(pool_records, event_records, wall, workers)
    )
    atomic_write_json(manifest_path, manifest)
    shutil.rmtree(progress_dir, ignore_errors=True)
    return manifest


def _start_partial(
    spec: DatasetSpec, seed: int, out: Path, processes: list[str]
) -> tuple[list[str], bool]:
    """Check a request for some processes' files only and, into an empty or new ``out``, write
    the published manifest they are checked against; the processes, without repeats, and whether
    the manifest was written now."""
    from metbench.data.published import published_manifest_bytes, shipped_manifests

    processes = list(dict.fromkeys(processes))  # without repeats
    if not processes:
        raise MetbenchError("--process: name at least one process")
    unknown = sorted(set(processes) - set(spec.processes))
    if unknown:
        raise MetbenchError(
            f"--process {', '.join(unknown)}: not a process of {spec.name}; its processes are "
            f"{', '.join(spec.processes)}"
        )
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists():
        if _read_existing_manifest(out)[0] is None:
            raise MetbenchError(
                f"{out} holds an interrupted generation of the whole dataset; finish it with the "
                "same command without --process, or choose another --out"
            )
        return processes, False
    if out.exists() and any(out.iterdir()):
        raise MetbenchError(f"{out} exists and is not empty; choose another --out or delete it")
    published = PRESETS.get(spec.name) == spec
    data = published_manifest_bytes(spec.name, seed) if published else None
    if data is None:
        shipped = ", ".join(f"{name} with seed {s}" for name, s in shipped_manifests())
        raise MetbenchError(
            f"--process needs the published manifest of the dataset, to check each file against; "
            f"metbench ships those of {shipped}, not of {spec.name} with seed {seed}"
            f"{'' if published else ' and other settings'}: generate the whole dataset "
            "(without --process)"
        )
    atomic_write_bytes(manifest_path, data)
    return processes, True


def _versions() -> dict[str, str]:
    import awkward
    import pyarrow

    return {
        "metbench": metbench.__version__,
        "pythia8mc": pythia_version(),
        "numpy": np.__version__,
        "awkward": awkward.__version__,
        "pyarrow": pyarrow.__version__,
    }


def _run_stage(
    out: Path,
    stage: str,
    tasks: list[tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]],
    workers: int,
    on_progress: Callable[[str, int, int], None] | None,
    scheduler: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the shard tasks of one stage, skipping those already done, recording each (locally,
    or on the Dask cluster at ``scheduler``)."""
    progress_dir = out / _PROGRESS
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for key, fn, args in tasks:
        path = progress_dir / f"{key}.json"
        if path.exists():
            record = _read_json(path)
            if isinstance(record, dict) and _record_ok(out, record):
                records[key] = record
                continue
        todo.append((key, fn, args))
    total = len(tasks)
    if on_progress:
        on_progress(stage, len(records), total)

    def finish(key: str, record: dict[str, Any]) -> None:
        atomic_write_json(progress_dir / f"{key}.json", record)
        records[key] = record
        if on_progress:
            on_progress(stage, len(records), total)

    if scheduler is not None and todo:
        for key, record in run_on_dask(scheduler, [(f"{stage}-{k}", fn, a) for k, fn, a in todo]):
            finish(key.removeprefix(f"{stage}-"), record)
    else:
        _run_local(todo, workers, finish)
    return records


#: ``prctl`` option: the signal a process gets when the thread that created it exits (Linux).
_PR_SET_PDEATHSIG = 1
#: How often a worker checks that the run that started it is still there [s].
_WATCH_PARENT_S = 1.0


def _run_local(
    todo: list[_Task], workers: int, finish: Callable[[str, dict[str, Any]], None]
) -> None:
    """Run shard tasks here (one worker) or on a pool of spawned worker processes, calling
    ``finish(key, record)`` as each completes.

    The workers leave the run's process group and die with it: SIGKILL of the run included
    (``PR_SET_PDEATHSIG``, and a thread watching the parent's pid). On any exception here, Ctrl-C
    included, the workers' groups are killed at once rather than awaited (an unfinished shard is
    simply run again on resume).
    """
    if workers == 1 or len(todo) <= 1:
        for key, fn, args in todo:
            finish(key, fn(*args))
        return
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    completed = False
    try:
        with _sigint_blocked():  # the workers start with Ctrl-C blocked until they leave our group
            futures: dict[Future[dict[str, Any]], str] = {
                pool.submit(fn, *args): key for key, fn, args in todo
            }
        for future in as_completed(futures):
            finish(futures[future], future.result())
        completed = True
    finally:
        if not completed:
            _kill_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread (processes started meanwhile inherit the mask); a Ctrl-C that
    arrives meanwhile is handled when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _init_worker(parent: int) -> None:
    """Pool initializer: leave the run's process group (a terminal's Ctrl-C reaches the run, which
    stops its workers), ignore SIGINT, and die with the run.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that spawned the worker exits; the pool is created
    and awaited in the same thread, which outlives the workers, and a watchdog thread also exits
    the worker as soon as its parent's pid changes (any platform, any spawning thread).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent,), name="metbench-watch-parent", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as the process that started it is gone."""
    while os.getppid() == parent:
        time.sleep(_WATCH_PARENT_S)
    os._exit(1)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's workers with their process groups (never this process's group)."""
    own = os.getpgrp()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        pid = process.pid
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid != own:
                os.killpg(pid, signal.SIGKILL)
            else:  # not yet in its own group
                os.kill(pid, signal.SIGKILL)


def _timing_summary(
    pool_records: dict[str, dict[str, Any]],
    event_records: dict[str, dict[str, Any]],
    wall: float,
    workers: int,
) -> dict[str, Any]:
    import os
    import platform

    def total(records: dict[str, dict[str, Any]], key: str) -> float:
        return float(sum(r["timing"].get(key, 0.0) for r in records.values()))

    n_pool = total(pool_records, "n_events")
    n_events = total(event_records, "n_events")
    stages = ["pythia_s", "premix_s", "detector_s", "puppi_s", "write_s"]
    per_event_ms = {
        s.removesuffix("_s"): 1e3 * total(event_records, s) / max(n_events, 1) for s in stages
    }
    busy = total(event_records, "total_s")
    pool_ms = 1e3 * total(pool_records, "generate_s") / max(n_pool, 1)
    mean_n_pu = total(event_records, "n_pu_sum") / max(n_events, 1)
    return {
        "note": "wall-clock figures of the run that wrote this dataset; not part of its checksums",
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "workers": workers},
        "wall_s": wall,
        "events": n_events,
        "events_per_s_per_core": n_events / busy if busy else None,
        "ms_per_event": per_event_ms,
        "mean_n_pu": mean_n_pu,
        "pool_events": n_pool,
        "pool_ms_per_event": pool_ms,
        "candidates_per_event": total(event_records, "n_candidates") / max(n_events, 1),
    }
