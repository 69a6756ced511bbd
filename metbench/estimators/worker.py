"""The child-process side of a run: import the entry, predict file by file, measure throughput.

Runs in a fresh interpreter (``python -m metbench.estimators.child JOB FD``, in the sandbox of
:mod:`metbench.estimators.sandbox`) started by :mod:`metbench.estimators.isolation`; the job comes
as a JSON file (:func:`job_to_json`), and the child talks to the harness only through a pipe of
newline-delimited JSON messages (never pickle: the parent must not run what the child sends):

* ``["progress", events_done]``
* ``["error", message]``: a user-level problem (import, construction, bad output, exception)
* ``["throughput", [...]]``, ``["done", info]``

The child reads an *input extract* (:mod:`metbench.estimators.inputs`), never the dataset: the
split's observables under opaque ids, mixed across processes, in files of opaque names. Parts
(``part_XXXXX.parquet``, one per file of the extract, in its opaque ids) are written into
``job.parts_dir``: in a run the child's private ``out/`` folder, which the parent checks and copies
from; the parent alone maps them back to the dataset's events.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from metbench.estimators.loader import MissingEntryClass, import_entry
from metbench.estimators.protocol import (
    CovarianceEstimator,
    Estimator,
    NeutrinoEstimator,
    StudentTEstimator,
    satisfies,
)
from metbench.estimators.submission import RESERVED_PARAMETERS
from metbench.frameworks import DeviceUnavailable, framework

__all__ = [
    "PredictJob",
    "child_main",
    "count_parameters",
    "instantiate",
    "job_from_json",
    "job_to_json",
    "predict_on_dask_worker",
]


@dataclass(frozen=True)
class PredictJob:
    """Everything the child needs (plain data: it travels as JSON, :func:`job_to_json`)."""

    label: str
    folder: str
    entry: str
    framework: str
    parameters: dict[str, Any]
    device: str
    dataset: str  # the input extract the child reads (metbench.estimators.inputs)
    split: str
    batch_size: int
    max_particles: int
    uses_truth: tuple[str, ...]
    parts_dir: str
    log_path: str
    throughput: Any = None  # ThroughputSettings or None
    predict: bool = True  # False: predictions exist, measure throughput only
    files: tuple[str, ...] | None = None  # predict only these files of the extract (Dask tasks)
    truth_folder: str | None = None  # where the extract's uses_truth columns are (the child's view)
    done_files: tuple[str, ...] = ()  # files whose parts the parent already holds (resume)
    source_dataset: str = ""  # parent side only: the dataset the extract came from (never shown)


_TUPLES = ("uses_truth", "files", "done_files")


def job_to_json(job: PredictJob) -> str:
    """The job as JSON (the file the child reads)."""
    return json.dumps(asdict(job), sort_keys=True)


def job_from_json(text: str) -> PredictJob:
    """The job a :func:`job_to_json` text describes."""
    from metbench.scoring.throughput import ThroughputSettings

    raw = json.loads(text)
    values = {f.name: raw[f.name] for f in fields(PredictJob) if f.name in raw}
    for name in _TUPLES:
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    if values.get("throughput") is not None:
        settings = dict(values["throughput"])
        settings["batch_sizes"] = tuple(settings["batch_sizes"])
        values["throughput"] = ThroughputSettings(**settings)
    return PredictJob(**values)


def _event_source(job: PredictJob, batch_size: int) -> Any:
    """The job's events (the input extract), with the truth it declared only."""
    from metbench.data.source import EventSource

    if not job.uses_truth:
        return EventSource(job.dataset, job.split, batch_size, job.max_particles, truth=())
    return EventSource(
        job.dataset, job.split, batch_size, job.max_particles,
        truth=job.uses_truth, truth_folder=job.truth_folder,
    )  # fmt: skip


class UserError(Exception):
    """A problem of the submission, reported as one line."""


def _where_in(folder: str, tb: Any) -> str:
    frames = traceback.extract_tb(tb)
    inside = [f for f in frames if f.filename.startswith(folder)] or frames
    if not inside:
        return ""
    f = inside[-1]
    return f" (at {Path(f.filename).name}:{f.lineno})"


def instantiate(job: PredictJob) -> Any:
    """Import ``module:Class`` from the submission folder (as its own package,
    :mod:`metbench.estimators.loader`; nothing goes on ``sys.path``) and construct it."""
    module_name, class_name = job.entry.split(":")
    try:
        cls = import_entry(job.folder, job.entry)
    except MissingEntryClass:
        raise UserError(
            f"entry {job.entry!r}: module {module_name!r} has no {class_name!r}"
        ) from None
    except Exception as exc:
        raise UserError(
            f"entry {job.entry!r} does not import: {type(exc).__name__}: {exc}"
            f"{_where_in(job.folder, exc.__traceback__)}"
        ) from exc
    params = dict(job.parameters)
    for reserved in RESERVED_PARAMETERS:  # how the weights were trained: the harness's
        params.pop(reserved, None)
    try:
        accepted: Any = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in dict(accepted).values())
    if "device" in accepted or any_keyword:
        params["device"] = job.device
    if "weights_dir" in accepted or any_keyword:
        params["weights_dir"] = job.folder
    try:
        estimator = cls(**params)
    except Exception as exc:
        raise UserError(
            f"{class_name}(**parameters) failed: {type(exc).__name__}: {exc}"
            f"{_where_in(job.folder, exc.__traceback__)}"
        ) from exc
    if not satisfies(estimator, Estimator):
        raise UserError(
            f"{class_name} has no predict(batch) method (the Estimator protocol, "
            "metbench.estimators.protocol)"
        )
    return estimator


def count_parameters(estimator: Any) -> int | None:
    """Trainable-model parameters of an estimator: the sum over its attributes that are PyTorch
    modules or Keras models (None if it has neither, e.g. a baseline)."""
    total, found = 0, False
    for value in vars(estimator).values():
        if hasattr(value, "state_dict") and callable(getattr(value, "parameters", None)):
            total += sum(int(p.numel()) for p in value.parameters())  # torch.nn.Module
            found = True
        elif callable(getattr(value, "count_params", None)):  # keras.Model
            total += int(value.count_params())
            found = True
    return total if found else None


def _check_device(job: PredictJob) -> str:
    """The device actually used (:mod:`metbench.frameworks`); an error if CUDA is asked for and
    absent."""
    try:
        return framework(job.framework).device(job.device)
    except DeviceUnavailable as exc:
        raise UserError(str(exc)) from None


def _gpu_memory_hooks(job: PredictJob) -> tuple[Any, Any]:
    return framework(job.framework).memory_hooks(job.device)


def _predict_files(job: PredictJob, estimator: Any, send: Any) -> dict[str, Any]:
    from metbench.estimators.predictions import (
        check_covariance,
        check_dof,
        check_met,
        check_neutrinos,
        write_predictions,
    )

    source = _event_source(job, job.batch_size)
    parts = Path(job.parts_dir)
    has_cov = satisfies(estimator, CovarianceEstimator)
    has_dof = has_cov and satisfies(estimator, StudentTEstimator)
    has_nu = satisfies(estimator, NeutrinoEstimator)
    done = 0
    n_truncated = 0
    batch_index = 0
    for file_index, relpath in enumerate(source.files):
        part = parts / f"part_{file_index:05d}.parquet"
        n_file = source.manifest["files"][relpath]["n_events"]
        if job.files is not None and relpath not in job.files:  # another task's file
            batch_index += -(-n_file // job.batch_size)
            continue
        if relpath in job.done_files or part.exists():
            done += n_file
            batch_index += -(-n_file // job.batch_size)
            send(["progress", done])
            continue
        ids, mets, covs, dofs, nus = [], [], [], [], []
        for batch in source.restrict([relpath]):
            where = f"batch {batch_index} ({relpath})"
            visible = replace(
                batch, truth={k: batch.truth[k] for k in job.uses_truth if k in batch.truth}
            )
            try:
                raw = estimator.predict(visible)
                raw_cov = estimator.predict_uncertainty(visible) if has_cov else None
                raw_dof = estimator.predict_dof(visible) if has_dof else None
                raw_nu = estimator.predict_neutrinos(visible) if has_nu else None
            except Exception as exc:
                raise UserError(
                    f"predict raised {type(exc).__name__}: {exc}{_where_in(job.folder, exc.__traceback__)} in batch {batch_index}"
                ) from exc
            try:
                mets.append(check_met(raw, len(batch), where))
                if raw_cov is not None:
                    covs.append(check_covariance(raw_cov, len(batch), where))
                if raw_dof is not None:
                    dofs.append(check_dof(raw_dof, len(batch), where))
                if raw_nu is not None:
                    nus.append(check_neutrinos(raw_nu, len(batch), where))
            except Exception as exc:
                raise UserError(str(exc)) from exc
            ids.append(batch.event["event_id"])
            n_truncated += batch.n_truncated
            done += len(batch)
            batch_index += 1
            send(["progress", done])
        write_predictions(
            part,
            np.concatenate(ids),
            np.concatenate(mets),
            np.concatenate(covs) if covs else None,
            None,  # no identity: the child is not told which run it is (the harness stamps it)
            np.concatenate(nus) if nus else None,
            dof=np.concatenate(dofs) if dofs else None,
        )
    return {"n_events": done, "n_truncated": n_truncated, "has_covariance": has_cov}


def predict_on_dask_worker(
    job: PredictJob, limits: Any = None, sandbox: bool = True
) -> dict[str, Any]:
    """A Dask task (its result: :meth:`ChildReport.to_json`, plain data): predict ``job.files`` (files of the input extract, ``job.dataset``, which
    the client wrote on the shared filesystem) into their parts in a sandboxed child of the worker,
    exactly as a local run does (:func:`metbench.estimators.isolation.run_isolated`, with
    ``limits``, default its defaults, and ``sandbox``), so the worker's machine isolates the
    submission too. A failure of the submission raises its one-line
    :class:`~metbench.estimators.submission.SubmissionError`."""
    from metbench.estimators.isolation import DEFAULT_LIMITS, run_isolated

    limits = DEFAULT_LIMITS if limits is None else limits
    return run_isolated(job, limits, sandbox=sandbox).to_json()


def _instantiate_and_predict(job: PredictJob, send: Any) -> tuple[Any, dict[str, Any]]:
    """Check the device, build the estimator, predict (if ``job.predict``): ``(estimator, info)``."""
    device = _check_device(job)
    estimator = instantiate(job)
    info: dict[str, Any] = _predict_files(job, estimator, send) if job.predict else {}
    info["device"] = device
    info["n_parameters"] = count_parameters(estimator)
    return estimator, info


def _throughput(job: PredictJob, estimator: Any) -> list[dict[str, Any]]:
    from metbench.events import EventBatch, concatenate_batches
    from metbench.scoring.throughput import measure_throughput

    largest = max(job.throughput.batch_sizes)
    source = _event_source(job, min(largest, 1024))
    collected: list[EventBatch] = []
    n = 0
    for batch in source:
        collected.append(replace(batch, truth={k: batch.truth[k] for k in job.uses_truth}))
        n += len(batch)
        if n >= largest:
            break
    sample = concatenate_batches(collected)

    def make_batch(size: int) -> EventBatch:  # padded as when predicting
        return sample.take(np.arange(size) % len(sample))

    peak, reset = _gpu_memory_hooks(job)
    return measure_throughput(estimator.predict, make_batch, job.throughput, peak, reset)


def child_main(send: Callable[[list[Any]], None], job: PredictJob) -> None:
    """Run ``job`` in this process (the child), reporting through ``send``: ``["error", text]`` for
    a failure of the submission, else ``["throughput", ...]`` (when asked) and ``["done", info]``.

    Its output and tracebacks go to standard output and error (the parent keeps them in the log).
    """
    try:
        estimator, info = _instantiate_and_predict(job, send)
        if job.throughput is not None:
            send(["throughput", _throughput(job, estimator)])
        send(["done", info])
    except UserError as exc:
        traceback.print_exc()
        send(["error", str(exc)])
    except MemoryError:
        traceback.print_exc()
        send(["error", "ran out of memory (MemoryError)"])
    except Exception as exc:
        traceback.print_exc()
        from metbench.errors import MetbenchError

        text = str(exc) if isinstance(exc, MetbenchError) else f"{type(exc).__name__}: {exc}"
        send(["error", text])
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
