"""Ingestion and scoring: ``predict`` a submission on a dataset split, ``score`` predictions,
``run`` both and skip what is already done.

Work is keyed by the dataset's manifest hash and the submission's content hash (plus its
parameters): predictions and results made with the same keys are reused unless forced.
The submission's child reads an input extract (:mod:`metbench.estimators.inputs`: the observables
under opaque ids, mixed across processes), shared in ``.inputs/`` beside the predictions; it
writes one part per extract file, so an interrupted run resumes from the last finished file, and
the harness maps the parts back to the dataset's events when it merges them. A run's test and
validation (calibration) splits are mixed in one extract that one child predicts, without telling
them apart; their muon-removed copies (the recoil task) are mixed in a second extract, predicted by
a second, fresh child, so that no process sees an event and its copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.data.published import check_published
from metbench.data.store import MANIFEST_NAME, atomic_write_json, load_manifest, sha256_file
from metbench.errors import MetbenchError
from metbench.estimators.inputs import (
    EXTRACT_KEY,
    EXTRACT_LAYOUT,
    SPLIT,
    InputMap,
    Source,
    checked_sources,
    mapping_path,
    prepare_inputs,
    read_mapping,
)
from metbench.estimators.isolation import (
    DEFAULT_LIMITS,
    ChildReport,
    Limits,
    require_sandbox,
    run_isolated,
    weakest_isolation,
)
from metbench.estimators.predictions import (
    read_neutrinos,
    read_prediction_metadata,
    read_predictions,
    read_recoil,
    write_predictions,
)
from metbench.estimators.submission import Submission, SubmissionError
from metbench.estimators.worker import PredictJob, instantiate
from metbench.frameworks import FRAMEWORKS
from metbench.results import (
    SCHEMA_VERSION,
    SELF_REPORTED,
    Results,
    ResultsError,
    load_results,
    now_iso,
    write_results,
)
from metbench.scoring.kinematics import load_chains, score_kinematics
from metbench.scoring.score import (
    CalibrationSample,
    RecoilSample,
    ScoringError,
    Truth,
    align_predictions,
    has_neutrinos,
    load_recoil_truth,
    load_truth,
    score,
)
from metbench.scoring.throughput import ThroughputSettings, hardware_info, versions

__all__ = [
    "TRUST_HINT",
    "DatasetInfo",
    "add_throughput",
    "build_results",
    "dataset_info",
    "entry_lock",
    "predict_entry",
    "remove_abandoned_parts",
    "results_paths",
    "run_entry",
    "score_file",
    "score_predictions",
    "withdraw_met_headline",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset folder and its identity."""

    folder: Path
    name: str
    version: Any
    manifest_sha256: str
    source: dict[str, Any] | None = None  # for a converted real file: what the reader recorded
    pinned: bool | None = None  # the published dataset of its preset and seed (None: not one)

    @property
    def key(self) -> str:
        """Folder name of its results: ``<name>-<first 12 hex digits of the manifest hash>``."""
        return f"{self.name}-{self.manifest_sha256[:12]}"


def dataset_info(folder: Path) -> DatasetInfo:
    """Identity of a dataset folder (its manifest is checked, and a dataset that claims to be a
    published one must have its published hash: :mod:`metbench.data.published`)."""
    manifest = load_manifest(folder)
    digest = sha256_file(Path(folder) / MANIFEST_NAME)
    return DatasetInfo(
        Path(folder).resolve(),
        str(manifest["name"]),
        manifest["version"],
        digest,
        manifest.get("source"),
        check_published(folder, manifest, digest),
    )


def results_paths(
    results_dir: Path, dataset: DatasetInfo, split: str, entry: str
) -> tuple[Path, Path]:
    """(results JSON, predictions parquet) of an entry."""
    folder = Path(results_dir) / dataset.key / split
    safe = entry.replace("/", "_")
    return folder / f"{safe}.json", folder / f"{safe}.predictions.parquet"


def calibration_path(predictions: Path) -> Path:
    """Where the entry's validation-split predictions (for the calibrated figures) go, beside its
    predictions: ``<entry>.val-predictions.parquet``."""
    return predictions.with_name(
        predictions.name.replace(".predictions.parquet", ".val-predictions.parquet")
    )


def has_validation_events(dataset: DatasetInfo) -> bool:
    """Whether the dataset's validation split holds events of a process with neutrinos."""
    manifest = load_manifest(dataset.folder)
    return any(
        entry["kind"] == "events"
        and entry["split"] == "val"
        and entry["n_events"] > 0
        and bool(has_neutrinos(np.asarray([entry["process"]]))[0])
        for entry in manifest["files"].values()
    )


#: Version of what a predictions file holds (2: the muon-removed recoil estimates).
PREDICTION_PROTOCOL = 2

#: A failed run's finished files (``.<predictions>.parts/``) are kept this long for the same
#: command to resume [s]; older ones, and any without an identity, are removed by the next run.
PARTS_KEPT_S = 7 * 24 * 3600


def remove_abandoned_parts(
    folder: Path, keep: Path | None = None, older_than_s: float = PARTS_KEPT_S
) -> list[Path]:
    """Remove the resume folders (``.*.parts``) in a results ``folder`` that no run will take up:
    those not touched for ``older_than_s`` seconds, and those without ``identity.json`` (a run
    killed before it began) after an hour. ``keep`` (the running entry's own) is left alone; a
    run in progress writes its folder at least every file, so it is never this old.

    Returns the removed folders.
    """
    removed = []
    now = time.time()
    for parts in sorted(Path(folder).glob(".*.parts")):
        if not parts.is_dir() or parts.is_symlink() or parts == keep:
            continue
        times = [p.lstat().st_mtime for p in (parts, *parts.iterdir())]
        age = now - max(times)
        has_identity = (parts / "identity.json").is_file()
        if age > older_than_s or (not has_identity and age > 3600):
            shutil.rmtree(parts, ignore_errors=True)
            removed.append(parts)
    return removed


def _wants_recoil(sub: Submission) -> bool:
    """Whether the child predicts the muon-removed recoil input: entries that read candidates and
    have a MET of their own."""
    return sub.manifest.inputs == "candidates" and not sub.manifest.met_source


def _identity(
    sub: Submission, entry: str, params: dict[str, Any], dataset: DatasetInfo, split: str
) -> dict[str, Any]:
    return {
        "protocol": PREDICTION_PROTOCOL,
        "recoil": _wants_recoil(sub),
        "entry": entry,
        "submission": sub.name,
        "category": sub.manifest.category,
        "framework": sub.manifest.framework,
        "content_hash": sub.content_hash,
        "parameters": params,
        "dataset": dataset.name,
        "dataset_manifest_sha256": dataset.manifest_sha256,
        "split": split,
    }


def entry_lock(
    path: Path, what: str, on_wait: Callable[[str], None] | None = None
) -> contextlib.AbstractContextManager[None]:
    """Hold the lock file ``path`` (``fcntl.flock``) for the block: one run of an entry at a time.

    If another process holds it, ``on_wait`` (default: a line on stderr) is told that ``what``
    waits for it (with its pid), and the block runs when it is released.
    """

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                message = f"{what}: waiting for another run of it (pid {holder}) to finish"
                if on_wait is not None:
                    on_wait(message)
                else:
                    print(message, file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    return hold()


def _lock_path(path: Path) -> Path:
    """The lock file of a results or predictions file: ``.<name>.lock`` beside it."""
    stem = path.name.removesuffix(".json").removesuffix(".parquet")
    return path.with_name(f".{stem}.lock")


def predict_entry(
    sub: Submission,
    entry: str,
    params: dict[str, Any],
    dataset: DatasetInfo,
    split: str,
    out: Path,
    device: str = "cpu",
    limits: Limits = DEFAULT_LIMITS,
    throughput: ThroughputSettings | None = None,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
    log_path: Path | None = None,
    scheduler: str | None = None,
    sandbox: bool = True,
    on_wait: Callable[[str], None] | None = None,
    alongside: Sequence[tuple[str, Path]] = (),
) -> ChildReport:
    """Write an entry's predictions of ``split`` to ``out`` (in a sandboxed child process,
    resumable) and return the child's report (events, device, wall time, peak memory, throughput
    when asked, and ``isolation``: how the predictions and the measurement were isolated).

    ``alongside`` are more ``(split, predictions file)`` pairs predicted by the same child: the
    validation split, for the calibration. The child reads one input extract in which the events
    of every split are mixed (:mod:`metbench.estimators.inputs`), so it cannot treat one
    differently from another, not even by their number; their muon-removed copies (the recoil
    task, for entries with a MET of their own) are mixed in a second extract for a second child.
    The parent writes each split's file from the parts. The report's ``n_events`` and
    ``n_truncated`` are those of ``split``.

    Existing predictions with the same identity (all of the files) are kept (``force`` redoes
    them); with ``throughput`` a fresh child then measures throughput on a sample of ``split``
    (log ``<entry>.throughput.log``). With ``scheduler`` (a Dask scheduler's address) the
    extract's files are predicted as independent tasks on its workers and the throughput is
    measured here; the predictions are the same either way. ``sandbox=False`` runs the child
    without a sandbox (``--no-sandbox``). One run at a time writes ``out`` (a lock file beside
    it, and one beside each file ``alongside``; ``on_wait`` hears when this one waits).
    """
    out = Path(out)
    source = dataset.source or {}
    if sub.manifest.inputs == "candidates" and source.get("has_candidates") is False:
        raise SubmissionError(
            f"{source.get('file', dataset.folder)} has no particle-flow candidates; {entry} needs "
            'them (only entries with inputs = "stored", such as submissions/cms-stored, run on it)'
        )
    targets = [(split, out), *((s, Path(o)) for s, o in alongside)]
    if len({s for s, _ in targets}) != len(targets) or len({o for _, o in targets}) != len(targets):
        raise ValueError(f"predict_entry: the splits and files must differ, not {targets}")
    with contextlib.ExitStack() as locks:
        for _, path in targets:
            locks.enter_context(entry_lock(_lock_path(path), entry, on_wait))
        return _predict_locked(
            sub, entry, params, dataset, targets, device, limits, throughput, force,
            on_progress, log_path, scheduler, sandbox,
        )  # fmt: skip


def _predict_locked(
    sub: Submission,
    entry: str,
    params: dict[str, Any],
    dataset: DatasetInfo,
    targets: list[tuple[str, Path]],
    device: str,
    limits: Limits,
    throughput: ThroughputSettings | None,
    force: bool,
    on_progress: Callable[[int], None] | None,
    log_path: Path | None,
    scheduler: str | None,
    sandbox: bool,
) -> ChildReport:
    split, out = targets[0]
    identities = [_identity(sub, entry, params, dataset, s) for s, _ in targets]
    parts = out.with_name(f".{out.name}.parts")  # resume state, hidden
    for stale in out.parent.glob(f".{out.name}.sandbox.*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    remove_abandoned_parts(out.parent, keep=parts)
    # the identity is in each file's footer; the data are validated when they are scored
    footers = [_footer_identity(path) for _, path in targets]
    reuse = not force and all(
        meta == ident for (meta, _), ident in zip(footers, identities, strict=True)
    )
    made_with = weakest_isolation(*(made for _, made in footers))
    if reuse and throughput is None:
        return ChildReport(reused=True, isolation=made_with)
    if sandbox and scheduler is None:
        require_sandbox(entry)  # refused before anything is written (the workers check their own)
    if force:  # nothing of an interrupted run is kept
        shutil.rmtree(parts, ignore_errors=True)
    log = Path(log_path or out.with_name(out.name.replace(".predictions.parquet", "") + ".log"))
    m = sub.manifest
    job = PredictJob(
        label=entry,
        folder=str(sub.folder),
        entry=m.entry,
        framework=m.framework,
        parameters=params,
        device=device,
        dataset="",  # the extract, below
        split=SPLIT,  # the extract's: the dataset's splits are the parent's to know
        batch_size=m.batch_size,
        max_particles=m.max_particles,
        uses_truth=m.uses_truth,
        parts_dir=str(parts),
        log_path=str(log),
        throughput=None,  # measured in a child of its own, below
        predict=True,
        source_dataset=str(dataset.folder),
    )
    if reuse:
        report = ChildReport(reused=True, isolation=made_with)
    else:
        report = _predict_parts(job, sub, dataset, targets, identities, limits, on_progress,
                                scheduler, sandbox)  # fmt: skip
    if throughput is not None:  # a fresh child, on a sample of the split
        sample = shared_extract(
            dataset.folder, split, out, m.uses_truth, sample=max(throughput.batch_sizes)
        )
        measure = replace(
            job, dataset=str(sample), throughput=throughput, predict=False,
            log_path=str(log.with_name(log.name.removesuffix(".log") + ".throughput.log")),
        )  # fmt: skip
        try:
            measured = run_isolated(measure, limits, sandbox=sandbox)
        finally:  # no part is written: nothing to keep
            shutil.rmtree(parts, ignore_errors=True)
        if report.reused or scheduler is None:
            report.add_run(measured)
            report.throughput = measured.throughput
            report.isolation = weakest_isolation(report.isolation, measured.isolation)
        else:  # the workers predicted: what this machine measured describes it
            report = replace(measured, n_events=report.n_events, n_truncated=report.n_truncated,
                             isolation=report.isolation)  # fmt: skip
    report.reused = reuse
    return report


def _predict_parts(
    job: PredictJob,
    sub: Submission,
    dataset: DatasetInfo,
    targets: list[tuple[str, Path]],
    identities: list[dict[str, Any]],
    limits: Limits,
    on_progress: Callable[[int], None] | None,
    scheduler: str | None,
    sandbox: bool,
) -> ChildReport:
    """Predict the events of ``targets``, mixed in one extract, then (entries with a MET of their
    own) their muon-removed copies, mixed in a second one, each by a fresh child (or as Dask
    tasks), resuming from the parts of an interrupted run of the same identities; write each
    target's file. The report, its ``isolation`` the parts' weakest.

    The copies are not mixed with the events: a child that saw an event and its copy could
    recognise the pair (the same candidates but two muons) and answer the recoil task with the
    muons it removed."""
    parts = Path(job.parts_dir)
    if parts.is_dir():
        try:
            previous = json.loads((parts / "identity.json").read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != identities:
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_json(parts / "identity.json", identities)
    for stale in parts.glob("*.sandbox.*"):  # left by a killed recoil run
        shutil.rmtree(stale, ignore_errors=True)
    out = targets[0][1]
    inputs = shared_extract(dataset.folder, [(s, "events") for s, _ in targets], out,
                            job.uses_truth)  # fmt: skip
    runs = [(replace(job, dataset=str(inputs)), on_progress)]
    recoil_inputs = None
    if _wants_recoil(sub):
        recoil_inputs = shared_extract(
            dataset.folder, [(s, "recoil") for s, _ in targets], out, job.uses_truth,
            job.max_particles,
        )  # fmt: skip
        if load_manifest(recoil_inputs)["files"]:  # else no event has a selected dimuon
            log = Path(job.log_path)
            runs.append((replace(
                job, dataset=str(recoil_inputs), parts_dir=str(parts / _RECOIL_PARTS),
                log_path=str(log.with_name(log.name.removesuffix(".log") + ".recoil.log")),
            ), None))  # fmt: skip
    main = read_mapping(inputs)
    if on_progress is not None and len(targets) > 1:  # in events of the first split, as asked
        runs[0] = (runs[0][0], _scaled_progress(on_progress, main, targets[0][0]))
    if scheduler is not None:
        (parts / "isolation.json").unlink(missing_ok=True)  # the workers' isolation is theirs
        reports = [_predict_on_dask(run, scheduler, progress, limits, sandbox)
                   for run, progress in runs]  # fmt: skip
        if all(r.isolation is not None for r in reports):
            isolation = weakest_isolation(*(r.isolation for r in reports))
            _record_isolation(parts, isolation, ran=True, sandbox=sandbox)
        report = reports[0]
    else:
        report = _run_recorded(runs[0][0], parts, limits, runs[0][1], sandbox, ran=True)
        for run, _ in runs[1:]:
            report.add_run(_run_recorded(run, parts, limits, None, sandbox, ran=True))
    report.isolation = _merge_parts(parts, targets, identities, inputs, main, recoil_inputs)
    # the first split's events, and those with candidates beyond the limit, counted here (the
    # child's counts are of everything it read)
    limit = job.max_particles
    cut = main.n_candidates[main.rows_of(targets[0][0])] > limit if limit else np.zeros(0, bool)
    report.n_truncated = int(np.count_nonzero(cut))
    report.n_events = len(main.rows_of(targets[0][0]))
    return report


def _scaled_progress(
    on_progress: Callable[[int], None], mapping: InputMap, split: str
) -> Callable[[int], None]:
    """``on_progress`` told the events done of a mixed extract (its map ``mapping``) as the same
    fraction of ``split``'s events (its progress bar's total)."""
    whole, part = len(mapping.position), len(mapping.rows_of(split))

    def scaled(done: int) -> None:
        on_progress(round(done * part / whole) if whole else 0)

    return scaled


def _run_recorded(
    job: PredictJob,
    state: Path,
    limits: Limits,
    on_progress: Callable[[int], None] | None,
    sandbox: bool,
    ran: bool,
) -> ChildReport:
    """:func:`run_isolated`, keeping how it was isolated in the resume state ``state`` also when
    it fails (it may have written parts)."""
    report: ChildReport | None = None
    try:
        report = run_isolated(job, limits, on_progress, sandbox=sandbox)
    finally:  # the parts made so far, and how: the resume state
        isolation = report.isolation if report is not None else None
        _record_isolation(state, isolation, ran=ran, sandbox=sandbox)
    return report


#: The recoil run's parts in the resume state.
_RECOIL_PARTS = "recoil-parts"
#: Where the input extracts of a results folder's split are kept, beside the predictions.
INPUTS_FOLDER = ".inputs"


def shared_extract(
    dataset: Path,
    sources: str | Sequence[Source],
    out: Path,
    uses_truth: Sequence[str] = (),
    max_particles: int | None = None,
    sample: int | None = None,
) -> Path:
    """The input extract (:func:`~metbench.estimators.inputs.prepare_inputs`) of ``sources``
    (``(split, kind)`` pairs, or a split's name) for the predictions ``out``, shared by every
    entry predicted into the same folder: one per set of sources, declared truth columns,
    candidate cut (recoil) and sample, kept in ``.inputs/`` beside the predictions and written
    once (under a lock) instead of once per entry.

    Sharing reveals nothing: the extract is read-only in the sandbox, holds no truth but what
    the entry declared, and its map stays with the parent; a child sees one extract, of events or
    of their muon-removed copies (never both), and keeps nothing between runs. The folder holds
    the splits' observables; delete it to reclaim the disk (the next run writes it again).
    Extracts of an older layout there, which this version never reads, are removed first.
    """
    listed = checked_sources(sources, max_particles, sample)
    recoil = any(kind == "recoil" for _, kind in listed)
    spec = json.dumps([listed, list(uses_truth), max_particles if recoil else None, sample])
    splits = "+".join(dict.fromkeys(s for s, _ in listed))
    name = f"{splits}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    folder = out.parent / INPUTS_FOLDER / name
    _remove_old_extracts(folder.parent)
    lock = folder.with_name(f".{name}.lock")
    with entry_lock(lock, f"the input extract {name}"):
        return prepare_inputs(dataset, listed, folder, uses_truth, max_particles, sample)


def _remove_old_extracts(inputs: Path) -> None:
    """Remove the extracts (and their maps) of another layout than this version's from the
    folder ``inputs``: this version writes its own (a standard test split's is gigabytes)."""
    if not inputs.is_dir():
        return
    for folder in sorted(inputs.iterdir()):
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            layout = json.loads((folder / MANIFEST_NAME).read_text())[EXTRACT_KEY]["layout"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not an extract, or one being written
        if layout != EXTRACT_LAYOUT:
            with entry_lock(folder.with_name(f".{folder.name}.lock"), f"the old extract {folder}"):
                mapping_path(folder).unlink(missing_ok=True)
                shutil.rmtree(folder, ignore_errors=True)


def _record_isolation(parts: Path, isolation: Any, ran: bool, sandbox: bool) -> None:
    """Keep the weakest isolation of the runs that wrote parts in ``parts/isolation.json``."""
    if not ran or not parts.is_dir():
        return
    if isolation is None:  # failed, maybe after writing parts: as the mode asked for
        from metbench.estimators.sandbox import available_sandbox

        kind = (available_sandbox() or "none") if sandbox else "none"
        isolation = {"sandbox": kind, "sandboxed": kind != "none"}
    try:
        previous = json.loads((parts / "isolation.json").read_text())
    except (OSError, json.JSONDecodeError):
        previous = None
    atomic_write_json(parts / "isolation.json", weakest_isolation(previous, isolation))


#: What a command that runs a submission's code in its own process says to be allowed to.
TRUST_HINT = (
    "this command runs the entry's code in this process, outside any sandbox; pass --trust if "
    "you trust it (your own code), or use `metbench run`, which isolates it"
)


def build_estimator(
    sub: Submission, entry: str, params: dict[str, Any], device: str = "cpu", trusted: bool = False
) -> Any:
    """An entry's estimator constructed in this process exactly as the isolated child constructs
    it (for benchmarks, training and ``metbench bench``; runs go through :func:`predict_entry`).

    Its code then runs unsandboxed with the user's rights: a submission (category
    ``submission``: any folder from outside the repository, and a new one inside it) is refused
    unless ``trusted``; the repository's baselines, references and oracle (only its own folders
    may take those categories) are built as they are.
    """
    if sub.manifest.category == "submission" and not trusted:
        raise SubmissionError(
            f"{sub.folder}: a submission (category 'submission', not one of the repository's "
            f"baselines or references); {TRUST_HINT}"
        )
    job = PredictJob(
        label=entry, folder=str(sub.folder), entry=sub.manifest.entry,
        framework=sub.manifest.framework, parameters=params, device=device, dataset="",
        split="test", batch_size=sub.manifest.batch_size, max_particles=sub.manifest.max_particles,
        uses_truth=sub.manifest.uses_truth, parts_dir="", log_path="",
    )  # fmt: skip
    return instantiate(job)


def _predict_on_dask(
    job: PredictJob,
    scheduler: str,
    on_progress: Callable[[int], None] | None,
    limits: Limits = DEFAULT_LIMITS,
    sandbox: bool = True,
) -> ChildReport:
    """Predict every file of the job's input extract (``job.dataset``) as its own task on a Dask
    cluster; parts already written are skipped.

    Each task runs the submission in a sandboxed child of its worker, as a local run does
    (:func:`~metbench.estimators.isolation.run_isolated`, with ``limits`` per file and
    ``sandbox``); the report's ``isolation`` is the weakest of the tasks'. Paths are made
    absolute here, and the workers are first checked to see the extract (in the resume state,
    beside the results: the workers never read the dataset), the submission and the results
    folders at the same paths.
    """
    from metbench.data.source import EventSource
    from metbench.distributed import run_on_dask
    from metbench.estimators.worker import predict_on_dask_worker

    parts = Path(job.parts_dir).resolve()
    job = replace(
        job,
        folder=str(Path(job.folder).resolve()),
        dataset=str(Path(job.dataset).resolve()),
        source_dataset=str(Path(job.source_dataset).resolve()) if job.source_dataset else "",
        parts_dir=str(parts),
        log_path=str(Path(job.log_path).resolve()),
    )
    parts.mkdir(parents=True, exist_ok=True)
    source = EventSource(job.dataset, job.split, verify=False)
    n_events = source.manifest["files"]
    pending = [
        (i, f) for i, f in enumerate(source.files) if not (parts / f"part_{i:05d}.parquet").exists()
    ]
    tasks = [
        (
            f"predict-{job.label}-{parts.name}-{i:05d}",
            predict_on_dask_worker,
            (
                replace(
                    job, files=(f,), log_path=str(parts / f"part_{i:05d}.log"), throughput=None
                ),
                limits,
                sandbox,
            ),
        )
        for i, f in pending
    ]
    report = ChildReport(n_events=0, n_truncated=0)
    isolation: list[Any] = []
    done = len(source) - sum(n_events[f]["n_events"] for _, f in pending)
    try:
        for _, info in run_on_dask(
            scheduler,
            tasks,
            listed={"submission": Path(job.folder), "input extract": Path(job.dataset)},
            write={"results": parts.parent},
        ):
            part = ChildReport.from_json(info)
            done += part.n_events or 0
            report.n_truncated = (report.n_truncated or 0) + (part.n_truncated or 0)
            report.device = part.device if part.device is not None else report.device
            if part.n_parameters is not None:
                report.n_parameters = part.n_parameters
            isolation.append(part.isolation)
            if on_progress is not None:
                on_progress(done)
    except SubmissionError as exc:
        raise SubmissionError(f"{exc} (on a Dask worker)") from None
    report.n_events = done
    report.isolation = weakest_isolation(*isolation)
    return report


def _merge_parts(
    parts: Path,
    targets: list[tuple[str, Path]],
    identities: list[dict[str, Any]],
    inputs: Path,
    main: InputMap,
    recoil_inputs: Path | None,
) -> dict[str, Any] | None:
    """Merge the checked parts (one per file of the input extract ``inputs``, whose map is
    ``main``, all present; with ``recoil_inputs``, also those of the recoil run) into each
    target's file, in its split's order and under the dataset's event ids (the extracts' maps,
    :func:`~metbench.estimators.inputs.read_mapping`), each with its identity and the weakest
    isolation of the runs that made the parts in its metadata; that isolation (None if unknown,
    e.g. parts made on Dask workers)."""
    met, cov, dof, nu = _gather_parts(parts, inputs, main, identities[0], True)
    copies = read_mapping(recoil_inputs) if recoil_inputs is not None else None
    copy_met = np.zeros((0, 2))
    if recoil_inputs is not None and copies is not None and len(copies.position):
        copy_met, *_ = _gather_parts(
            parts / _RECOIL_PARTS, recoil_inputs, copies, identities[0], False
        )  # fmt: skip
    try:
        isolation = weakest_isolation(json.loads((parts / "isolation.json").read_text()))
    except (OSError, json.JSONDecodeError):
        isolation = None
    for (split, out), identity in zip(targets, identities, strict=True):
        rows = main.rows_of(split)
        if not np.array_equal(main.position[rows], np.arange(len(rows))):  # never
            raise SubmissionError(f"submission {identity['entry']}: the map lost split {split}")
        recoil_of_split = None
        if copies is not None:
            recoil_of_split = np.full((len(rows), 2), np.nan)
            made = copies.rows_of(split, "recoil")
            recoil_of_split[copies.position[made]] = copy_met[made]
        metadata = dict(identity, isolation=isolation) if isolation is not None else identity
        write_predictions(
            out, main.event_id[rows], met[rows], cov[rows] if cov is not None else None,
            metadata, nu[rows] if nu is not None else None, recoil_of_split,
            dof=dof[rows] if dof is not None else None,
        )  # fmt: skip
    shutil.rmtree(parts)
    return isolation


def _gather_parts(
    folder: Path, extract: Path, mapping: InputMap, identity: dict[str, Any], extras: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(met, covariance, dof, neutrinos)`` of every row of an extract's map from the parts in
    ``folder`` (the last three None unless ``extras`` and every part has them)."""
    n = len(mapping.position)
    met = np.zeros((n, 2))
    filled = np.zeros(n, np.int64)
    chunks: dict[str, list[tuple[np.ndarray, np.ndarray | None]]] = {"cov": [], "dof": [], "nu": []}
    for index, path in _part_files(folder, extract, identity):
        pred = read_predictions(path)
        rows = _translate(mapping, index, pred.event_id, path, identity)
        met[rows] = pred.met
        filled[rows] += 1
        if extras:
            chunks["cov"].append((rows, pred.covariance))
            chunks["dof"].append((rows, pred.dof))
            chunks["nu"].append((rows, read_neutrinos(path)))
    if not (filled == 1).all():  # the maps are the parent's: never
        raise SubmissionError(f"submission {identity['entry']}: its parts do not cover the split")

    def gather(listed: list[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray | None:
        if not listed or any(c is None for _, c in listed):
            return None
        first = next(c for _, c in listed if c is not None)
        out = np.zeros((n, *first.shape[1:]))
        for rows, c in listed:
            out[rows] = c
        return out

    return met, gather(chunks["cov"]), gather(chunks["dof"]), gather(chunks["nu"])


def _part_files(folder: Path, extract: Path, identity: dict[str, Any]) -> list[tuple[int, Path]]:
    """``(index, path)`` of the parts of an extract's files in ``folder``; an error naming the
    first file without one."""
    files = sorted(load_manifest(extract)["files"])
    paths = [(i, folder / f"part_{i:05d}.parquet") for i in range(len(files))]
    missing = [files[i] for i, p in paths if not p.is_file()]
    if missing:
        raise SubmissionError(
            f"submission {identity['entry']} reported it was done but wrote no predictions for "
            f"{len(missing)} file(s) of its input, e.g. {missing[0]}; run it again"
        )
    return paths


def _translate(
    mapping: InputMap, index: int, ids: np.ndarray, path: Path, identity: dict[str, Any]
) -> np.ndarray:
    try:
        return mapping.translate(index, ids)
    except MetbenchError:  # checked when the part was taken: never
        raise SubmissionError(
            f"submission {identity['entry']}: {path.name} holds ids that are not those of its "
            "input file; run it again with --force"
        ) from None


def _check_made_on(path: Path, meta: dict[str, Any], dataset: DatasetInfo, split: str) -> None:
    made_on = meta.get("dataset_manifest_sha256")
    if made_on and made_on != dataset.manifest_sha256:
        raise ScoringError(
            f"{path}: predictions were made on dataset {meta.get('dataset')} "
            f"(manifest {made_on[:12]}), not on {dataset.folder} ({dataset.manifest_sha256[:12]})"
        )
    if meta.get("split") and meta["split"] != split:
        raise ScoringError(f"{path}: predictions are for split {meta['split']!r}, not {split!r}")


def _recoil_sample(
    predictions: Path, index: np.ndarray, truth: Truth, dataset: DatasetInfo, split: str
) -> tuple[RecoilSample | None, np.ndarray | None, np.ndarray | None, str | None]:
    """The recoil task's events: ``(sample, estimates, qT, reason if none)``; the estimates are
    the muon-removed predictions of the selected Z -> mu mu events, aligned with ``truth``."""
    recoil = read_recoil(predictions)
    if recoil is None:
        return None, None, None, "the predictions hold no muon-removed (recoil) estimates"
    ids, qt = load_recoil_truth(dataset.folder, split)
    if len(ids) == 0:
        return None, None, None, "no Z -> mu mu event with a selected dimuon"
    order = np.argsort(truth.event_id)
    position = order[np.searchsorted(truth.event_id[order], ids)]
    estimate = recoil[index][position]
    missing = ~np.isfinite(estimate).all(axis=1)
    if missing.any():
        raise ScoringError(
            f"{predictions}: {int(missing.sum())} of {len(ids)} selected Z -> mu mu events have no "
            f"muon-removed estimate (e.g. event_id {ids[missing][0]}); predict again with --force"
        )
    return RecoilSample(position, estimate, qt), estimate, qt, None


def _calibration_sample(path: Path, dataset: DatasetInfo) -> CalibrationSample:
    """Validation-split estimates and truth of the events with neutrinos (and the recoil's)."""
    pred = read_predictions(path)
    event_id, met, meta = pred.event_id, pred.met, pred.metadata
    _check_made_on(path, meta, dataset, "val")
    truth = load_truth(dataset.folder, "val")
    index = align_predictions(event_id, truth, str(path))
    nu = has_neutrinos(truth.process)
    t = np.stack([truth.gen_met_x, truth.gen_met_y], 1)
    _, estimate, qt, _ = _recoil_sample(path, index, truth, dataset, "val")
    return CalibrationSample(
        estimate=met[index][nu], truth=t[nu], recoil_estimate=estimate, recoil_qt=qt
    )


def score_file(
    predictions: Path,
    dataset: DatasetInfo,
    split: str,
    n_boot: int = 200,
    seed: int = 0,
    calibration: Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score a predictions file against a dataset split: ``(scores, prediction metadata)``.

    ``calibration``: the entry's predictions on the validation split, for the calibrated figures.
    """
    pred = read_predictions(predictions)
    event_id, met, cov, meta = pred.event_id, pred.met, pred.covariance, pred.metadata
    _check_made_on(predictions, meta, dataset, split)
    truth = load_truth(dataset.folder, split)
    index = align_predictions(event_id, truth, str(predictions))
    recoil, _, _, recoil_reason = _recoil_sample(predictions, index, truth, dataset, split)
    scores = score(
        met[index],
        truth,
        cov[index] if cov is not None else None,
        dof=pred.dof[index] if pred.dof is not None else None,
        n_boot=n_boot,
        seed=seed,
        recoil=recoil,
        calibration=_calibration_sample(calibration, dataset) if calibration else None,
        recoil_reason=recoil_reason,
    )
    neutrinos = read_neutrinos(predictions)
    if neutrinos is not None:
        chains = load_chains(dataset.folder, split)
        if chains is not None:  # chains come in the truth's event order
            scores["tasks"]["kinematics"] = score_kinematics(
                neutrinos[index],
                chains,
                n_boot=n_boot,
                seed=seed,
                confidence=scores["confidence"],
                event_id=truth.event_id,
            )
    return scores, meta


def score_predictions(
    predictions: Path,
    dataset: DatasetInfo,
    split: str,
    n_boot: int = 200,
    seed: int = 0,
    calibration: Path | None = None,
) -> dict[str, Any]:
    """The results document of a predictions file made outside ``metbench run`` (``metbench
    score``): the entry as the file's metadata records it, else named after the file (content
    hash: the file's sha256), without throughput.

    ``calibration``: the entry's predictions on the validation split (default: the file
    :func:`calibration_path` names, when it exists)."""
    if calibration is None and calibration_path(predictions).is_file():
        calibration = calibration_path(predictions)
    scores, meta = score_file(predictions, dataset, split, n_boot, seed, calibration)
    name = meta.get("entry") or predictions.name.removesuffix(".parquet").removesuffix(
        ".predictions"
    )
    entry = {
        "name": name,
        "submission": meta.get("submission", name),
        "category": meta.get("category", "submission"),
        "framework": meta.get("framework", "unknown"),
        "content_hash": meta.get("content_hash") or sha256_file(predictions),
        "parameters": meta.get("parameters", {}),
    }
    return build_results(entry, dataset, split, predictions, scores)


def build_results(
    entry: dict[str, Any],
    dataset: DatasetInfo,
    split: str,
    predictions: Path,
    scores: dict[str, Any],
    throughput: dict[str, Any] | None = None,
    modules: tuple[str, ...] = (),
    prediction_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A results document (schema ``metbench-results``, :data:`~metbench.results.SCHEMA_VERSION`) from its parts."""
    return {
        "schema": "metbench-results",
        "schema_version": SCHEMA_VERSION,
        "created": now_iso(),
        "entry": entry,
        "dataset": {
            "name": dataset.name,
            "version": dataset.version,
            "manifest_sha256": dataset.manifest_sha256,
            "pinned": dataset.pinned,
            "split": split,
            "n_events": scores["n_events"],
            "path": str(dataset.folder),
        },
        "predictions": {
            "file": predictions.name,
            "sha256": sha256_file(predictions),
            "n_events": scores["n_events"],
            **(prediction_info or {}),
        },
        "scores": scores,
        "throughput": throughput,
        "environment": {"versions": versions(modules), "hardware": hardware_info()},
    }


def _framework_modules(framework: str) -> tuple[str, ...]:
    known = FRAMEWORKS.get(framework)
    return known.modules if known is not None else ()


def withdraw_met_headline(scores: dict[str, Any], met_source: str | None) -> None:
    """Take the headline of an entry whose MET is another entry's (``met_source``) out of the MET
    tables, in place (``run`` and ``verify`` alike)."""
    if met_source:
        scores["headline"].update(
            value=None,
            low=None,
            high=None,
            ranked=False,
            reason=f"its MET is {met_source}'s (met_source): not in the MET tables",
        )


def run_entry(
    sub: Submission,
    entry: str,
    params: dict[str, Any],
    dataset: DatasetInfo,
    split: str,
    results_dir: Path,
    device: str = "cpu",
    limits: Limits = DEFAULT_LIMITS,
    throughput: ThroughputSettings | None = None,
    n_boot: int = 200,
    seed: int = 0,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
    scheduler: str | None = None,
    sandbox: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> tuple[Path, bool]:
    """Predict, measure and score one entry; ``(results path, reused)``.

    A results file with the same submission hash, parameters, dataset hash, split and scoring
    settings is reused unless ``force``. One run of an entry at a time: a second one waits for
    the first (a lock file ``.<entry>.lock`` beside the results; ``on_wait`` hears it), then
    finds its result up to date or redoes it (``force``). ``sandbox=False``: ``--no-sandbox``.
    The results record how the submission was isolated (``isolation``) and the submission folder
    they were made from (``entry.folder``): a result made from another folder is replaced only
    with ``force`` (one made by the same code, e.g. in another checkout, is reused as it is). Throughput and ``n_parameters`` are marked self-reported (``measured_by``).
    """
    result_path, _ = results_paths(results_dir, dataset, split, entry)
    with entry_lock(_lock_path(result_path), entry, on_wait):
        return _run_locked(
            sub, entry, params, dataset, split, results_dir, device, limits, throughput, n_boot,
            seed, force, on_progress, scheduler, sandbox,
        )  # fmt: skip


def _check_same_folder(result_path: Path, sub: Submission, entry: str, force: bool) -> None:
    """Refuse to replace a result made from another submission folder (one whose manifest takes
    the same name) unless ``force``."""
    if force or not result_path.exists():
        return
    try:
        made_from = load_results(result_path).entry.extra.get("folder")
    except ResultsError:
        return  # unreadable: it is redone
    if made_from and Path(made_from) != sub.folder:
        raise SubmissionError(
            f"{result_path}: the result of {entry} was made from {made_from}, not from "
            f"{sub.folder}; two folders name the entry {entry}: rename one (name in "
            "metbench.toml), or replace that result with --force"
        )


def _run_locked(
    sub: Submission,
    entry: str,
    params: dict[str, Any],
    dataset: DatasetInfo,
    split: str,
    results_dir: Path,
    device: str,
    limits: Limits,
    throughput: ThroughputSettings | None,
    n_boot: int,
    seed: int,
    force: bool,
    on_progress: Callable[[int], None] | None,
    scheduler: str | None,
    sandbox: bool,
) -> tuple[Path, bool]:
    result_path, pred_path = results_paths(results_dir, dataset, split, entry)
    identity = _identity(sub, entry, params, dataset, split)
    old = _existing_results(result_path)
    if old is not None and not force:
        same = (
            _made_by(old, sub, params, dataset)
            and old.scores["n_boot"] == n_boot
            and old.scores["seed"] == seed
            and old.extra.get("identity", {}).get("protocol") == PREDICTION_PROTOCOL
            and (throughput is None or old.throughput is not None)
        )
        if same:  # the same code's result, from whichever checkout: nothing is replaced
            return result_path, True
    _check_same_folder(result_path, sub, entry, force)
    calibration = None
    if split != "val" and has_validation_events(dataset) and not sub.manifest.met_source:
        # the validation split, for the calibrated figures: predicted by the same child, mixed
        # with the split's events (no throughput measured there)
        calibration = calibration_path(pred_path)
    report = predict_entry(
        sub, entry, params, dataset, split, pred_path, device, limits, throughput, force,
        on_progress, scheduler=scheduler, sandbox=sandbox,
        alongside=[("val", calibration)] if calibration is not None else (),
    )  # fmt: skip
    isolation = [report.isolation]
    scores, _ = score_file(pred_path, dataset, split, n_boot, seed, calibration)
    withdraw_met_headline(scores, sub.manifest.met_source)
    m = sub.manifest
    n_parameters = report.n_parameters
    entry_info = {
        "name": entry,
        "submission": sub.name,
        "folder": str(sub.folder),
        "category": m.category,
        "framework": m.framework,
        "content_hash": sub.content_hash,
        "parameters": params,
        "paper": m.paper,
        "authors": list(m.authors),
        "description": m.description,
        "uses_truth": list(m.uses_truth),
        "met_source": m.met_source or None,
        "n_parameters": n_parameters,
        **({"n_parameters_measured_by": SELF_REPORTED} if n_parameters is not None else {}),
        "weights_sha256": {w: sha256_file(sub.folder / w) for w in m.weights},
    }
    measured = _measured_throughput(report, device, throughput) if throughput is not None else None
    extra: dict[str, Any] = {
        k: v
        for k, v in report.to_json().items()
        if k in ("n_truncated", "wall_s", "peak_rss_mb", "device")
    }
    results = build_results(
        entry_info,
        dataset,
        split,
        pred_path,
        scores,
        measured,
        _framework_modules(m.framework),
        extra,
    )
    results["identity"] = identity
    # unknown: e.g. predictions made on Dask workers
    results["isolation"] = weakest_isolation(*isolation) or dict(_UNKNOWN_ISOLATION)
    kept = _kept_throughput(old, sub.content_hash, params)
    if kept:  # measured on other devices with this very code: still true
        results[EXTRA_THROUGHPUT] = kept
    write_results(result_path, results)
    return result_path, False


def _measured_throughput(
    report: ChildReport, device: str, throughput: ThroughputSettings
) -> dict[str, Any]:
    """A throughput block of the results: the device, the settings and the child's rows."""
    return {
        "device": report.device or device,
        "measured_by": SELF_REPORTED,
        "settings": {
            "warmup_calls": throughput.warmup_calls,
            "min_duration_s": throughput.min_duration_s,
            "min_calls": throughput.min_calls,
        },
        "batches": report.throughput or [],
    }


#: The results' key of the throughput rows measured after the run, on other devices or machines
#: (:func:`add_throughput`).
EXTRA_THROUGHPUT = "extra_throughput"


#: How a run was isolated when nothing says so.
_UNKNOWN_ISOLATION: Final = {"sandbox": "unknown", "sandboxed": False}


def _existing_results(result_path: Path) -> Results | None:
    """The results at ``result_path``, or None where there are none or they are unreadable (they
    are then redone)."""
    if not result_path.exists():
        return None
    try:
        return load_results(result_path)
    except ResultsError:
        return None


def _made_by(old: Results, sub: Submission, params: dict[str, Any], dataset: DatasetInfo) -> bool:
    """Whether results were made by the submission's code as it is now, with these parameters,
    on this dataset version."""
    return (
        old.entry.content_hash == sub.content_hash
        and old.entry.parameters == params
        and old.dataset.manifest_sha256 == dataset.manifest_sha256
    )


def _footer_identity(predictions: Path) -> tuple[Any, Any]:
    """``(identity, isolation)`` recorded in a predictions file's footer (None, None when it has
    none): the identity to compare with :func:`_identity`, and how they were made."""
    meta = read_prediction_metadata(predictions)
    made_with = meta.pop("isolation", None) if isinstance(meta, dict) else None
    return meta, made_with


def _kept_throughput(
    old: Results | None, content_hash: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The extra throughput rows of the results being replaced that the same code made."""
    if old is None or old.entry.parameters != params:
        return []
    rows = old.extra.get(EXTRA_THROUGHPUT) or []
    return [row for row in rows if row.get("content_hash") == content_hash]


def _same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two throughput rows measured on the same device of the same kind of machine."""
    return a.get("device") == b.get("device") and (a.get("hardware") or {}).get("cpu") == (
        b.get("hardware") or {}
    ).get("cpu")


def add_throughput(
    sub: Submission,
    entry: str,
    params: dict[str, Any],
    dataset: DatasetInfo,
    split: str,
    results_dir: Path,
    device: str,
    throughput: ThroughputSettings,
    limits: Limits = DEFAULT_LIMITS,
    sandbox: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Measure an entry's throughput on ``device`` of this machine and add it to its results as
    a row of ``extra_throughput``; ``(results path, the row)``.

    The results and their predictions must be current: made by the submission's code as it is
    now (content hash), with these parameters, on this dataset version and split. Nothing is
    predicted and the scores are untouched: the child measures throughput only, on a sample of
    the split (the largest batch size; the input extract beside the predictions is reused when
    it is there, so only the dataset's manifest is needed). A row of the same device and CPU
    model replaces the earlier one. The row records the device, the batches, the settings, the
    hardware and versions of this machine, when, the content hash and how the child was isolated.
    """
    result_path, pred_path = results_paths(results_dir, dataset, split, entry)
    rerun = f"metbench run {sub.folder} --dataset {dataset.folder} --results {results_dir}"
    with entry_lock(_lock_path(result_path), entry, on_wait):
        if not result_path.is_file():
            raise SubmissionError(
                f"{result_path}: no results of {entry} to add a throughput measurement to; "
                f"run it first: {rerun}"
            )
        old = load_results(result_path)
        meta, _ = _footer_identity(pred_path)
        if not _made_by(old, sub, params, dataset) or meta != _identity(
            sub, entry, params, dataset, split
        ):
            raise SubmissionError(
                f"{result_path}: the results of {entry} were not made by its code as it is now "
                f"(or with other parameters, another dataset version or missing predictions); "
                f"run it again first: {rerun}"
            )
        report = predict_entry(
            sub, entry, params, dataset, split, pred_path, device, limits, throughput,
            sandbox=sandbox, on_wait=on_wait,
        )  # fmt: skip
        if not report.reused:  # cannot happen: the identity was checked under the lock
            raise MetbenchError(f"{pred_path}: the predictions were redone; report this")
        row = {
            **_measured_throughput(report, device, throughput),
            "sample_events": max(throughput.batch_sizes),
            "measured": now_iso(),
            "content_hash": sub.content_hash,
            "hardware": hardware_info(),
            "versions": versions(_framework_modules(sub.manifest.framework)),
            "isolation": report.isolation or dict(_UNKNOWN_ISOLATION),
        }
        doc = old.to_json()
        rows = [r for r in doc.get(EXTRA_THROUGHPUT) or [] if not _same_machine(r, row)]
        doc[EXTRA_THROUGHPUT] = [*rows, row]
        write_results(result_path, doc)
    return result_path, row
