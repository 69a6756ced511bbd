"""Generate a dataset: pileup pool, then hard-scatter shards, then the manifest.

Work is cut into shards (one process, one seed-derived random stream, a few thousand events), so a
run parallelises over local processes and resumes after an interruption: a shard whose files are in
place with the checksums of its record is not generated again. The result depends on the preset and
the seed only, never on the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

import metbench
from metbench.baselines.puppi import PuppiParameters, puppi_weights
from metbench.data.generate.detector import DetectorConfig, simulate_detector
from metbench.data.generate.pileup import premix
from metbench.data.generate.presets import DatasetSpec
from metbench.data.generate.processes import MINBIAS, PROCESSES
from metbench.data.generate.pythia import GenParticles, PythiaGenerator, pythia_version
from metbench.data.splits import SPLITS, assign_splits
from metbench.data.store import (
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    MANIFEST_NAME,
    TIMING_NAME,
    atomic_path,
    atomic_write_json,
    round_mantissa,
    sha256_file,
    verify_file,
    write_parquet_atomic,
)
from metbench.distributed import run_on_dask
from metbench.errors import DatasetError, MetbenchError
from metbench.events import PARTICLE_COLUMNS, PARTICLE_DTYPES

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
    spec = DatasetSpec(**{**spec_dict, "processes": tuple(spec_dict["processes"])})
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
        relpath = _events_relpath(name, process, shard)
        path = Path(out) / relpath
        write_parquet_atomic(path, events[sel])
        files[relpath] = _file_entry(
            path, n_events=int(sel.sum()), kind="events", split=name, process=process
        )
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
    except DatasetError:
        return False
    return True


def generate_dataset(
    spec: DatasetSpec,
    out: Path,
    seed: int,
    workers: int = 1,
    on_progress: Callable[[str, int, int], None] | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Generate (or resume, or recognise as complete) a dataset in ``out``.

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
        Called as ``on_progress(stage, done, total)`` with stage ``"pool"`` or ``"events"``.
    scheduler
        Address of a running Dask distributed scheduler (``tcp://host:port``): shards run on its
        workers, which must see ``out`` (a shared file system). Every shard derives its seeds from
        ``seed`` and its key and is written atomically, so the dataset is bit-identical to a local
        one, and a shard whose worker dies is simply run again.

    Returns
    -------
    dict
        The manifest.
    """
    if seed < 0:
        raise MetbenchError(f"--seed must be >= 0, got {seed}")
    if workers < 1:
        raise MetbenchError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    identity = {"spec": spec.to_dict(), "seed": seed, "metbench": metbench.__version__}
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if {"spec": manifest.get("settings"), "seed": manifest.get("seed"),
                "metbench": manifest.get("versions", {}).get("metbench")} == identity:  # fmt: skip
            return manifest
        raise MetbenchError(
            f"{out} already holds a different dataset ({manifest.get('name')}, seed "
            f"{manifest.get('seed')}); choose another --out or delete it"
        )
    if out.exists() and any(out.iterdir()) and not (out / _PROGRESS).is_dir():
        raise MetbenchError(f"{out} exists and is not empty; choose another --out or delete it")
    progress_dir = out / _PROGRESS
    progress_dir.mkdir(parents=True, exist_ok=True)
    identity_path = progress_dir / "identity.json"
    if identity_path.exists():
        if json.loads(identity_path.read_text()) != identity:
            raise MetbenchError(
                f"{out} holds an interrupted generation with other settings or seed; "
                "choose another --out or delete it"
            )
    else:
        atomic_write_json(identity_path, identity)

    t_run = time.perf_counter()
    pool_records = _run_stage(
        out,
        "pool",
        [(f"pool_{k:03d}", _run_pool_shard, (str(out), seed, k, n)) for k, n in spec.pool_shards()],
        workers,
        on_progress,
        scheduler,
    )
    pool_relpaths = sorted(p for r in pool_records.values() for p in r["files"])
    spec_dict = spec.to_dict()
    event_records = _run_stage(
        out,
        "events",
        [
            (
                f"{process}_{shard:04d}",
                _run_event_shard,
                (str(out), spec_dict, seed, process, shard, n, pool_relpaths),
            )
            for process, shard, n in spec.shards()
        ],
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
            record = json.loads(path.read_text())
            if _record_ok(out, record):
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
    elif workers == 1 or len(todo) <= 1:
        for key, fn, args in todo:
            finish(key, fn(*args))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures: dict[Future[dict[str, Any]], str] = {
                pool.submit(fn, *args): key for key, fn, args in todo
            }
            for future in as_completed(futures):
                finish(futures[future], future.result())
    return records


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
