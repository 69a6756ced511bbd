"""Running a training: the plan (one estimator per distinct training), the training folder and
adopting its weights.

The training loop itself belongs to each framework's entry (``fit(train, val, settings)``); what
all loops share (settings, the resumable state, samples) is :mod:`metbench.nn.training`, kept apart
so that entries never import this module and the harness behind it.

A training never writes into the submission: :func:`train_submission` writes the weights, their
history and a record (:data:`RECORD_NAME`: submission, dataset, files and their sha256) into a
training folder of its own (:func:`open_training_folder`), and :func:`adopt_training` copies them
over the submission's weights, refusing weights of another dataset than the current ones'
(:func:`weights_dataset`) unless asked to change it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from metbench.data.source import EventSource
from metbench.data.store import atomic_path, atomic_write_json, sha256_file
from metbench.errors import MetbenchError, first_line, safe_text
from metbench.estimators.submission import TRAINING_EPOCHS, TRAINING_SEED
from metbench.nn.training import TrainSettings, TrainState

if TYPE_CHECKING:
    from metbench.harness import DatasetInfo

__all__ = [
    "RECORD_NAME",
    "Adopted",
    "TrainingPlan",
    "TrainingSummary",
    "adopt_training",
    "check_checkpoint_dataset",
    "check_training_folder",
    "dataset_record",
    "default_training_folder",
    "history_file",
    "open_training_folder",
    "plan_training",
    "read_training_record",
    "train_submission",
    "training_summaries",
    "weights_dataset",
]

#: The record of a training folder: submission, dataset, and per entry its files with their sha256.
RECORD_NAME: Final = "training.json"
#: Its ``format`` field.
RECORD_FORMAT: Final = "metbench-training"
#: Default parent of the training folders, relative to the current directory (git-ignored).
TRAININGS: Final = Path("trainings")


@dataclass
class TrainingPlan:
    """What ``metbench train`` will train: the submission and one estimator per distinct training.

    Attributes
    ----------
    submission
        The loaded submission.
    estimators
        ``(entry name, estimator)`` per training; variants that differ only in inference
        parameters (e.g. ``runtime``) share the first one's training.
    seeds
        Entry name -> the training seed its variant names (the reserved parameter ``seed``,
        :data:`~metbench.estimators.submission.TRAINING_SEED`), which replaces ``--seed``.
    budgets
        Entry name -> the fixed budget of epochs its variant names (the reserved parameter
        ``training_epochs``, :data:`~metbench.estimators.submission.TRAINING_EPOCHS`), which
        replaces ``--epochs``.
    """

    submission: Any
    estimators: list[tuple[str, Any]]
    seeds: dict[str, int] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)


def plan_training(
    folder: Path,
    variant: str | None,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    init_weights: Path | None = None,
    trusted: bool = False,
) -> TrainingPlan:
    """Check a submission can be trained as asked and build its estimators (before any data is
    read or generated, so that a mistake is reported at once).

    Parameters
    ----------
    folder, variant, overrides
        The submission, one variant (``None``: all) and parameter overrides.
    device, init_weights
        As in :class:`TrainSettings`.
    trusted
        The training runs the entry's code in this process, unsandboxed: a folder from outside the
        repository is refused unless ``trusted`` (:func:`metbench.harness.build_estimator`).

    Raises
    ------
    SubmissionError
        Not trainable, an estimator that cannot be built, or ``init_weights`` given for more than
        one training.
    """
    from metbench.estimators.protocol import TrainableEstimator, missing_methods, satisfies
    from metbench.estimators.submission import SubmissionError, load_submission
    from metbench.estimators.worker import UserError
    from metbench.harness import build_estimator

    sub = load_submission(folder, require_weights=False)
    if not sub.manifest.trainable:
        raise SubmissionError(f"{folder}: the manifest says trainable = false; nothing to train")
    todo = []
    trained: set[str] = set()
    for entry, params in sub.entries(variant, overrides):
        try:
            estimator = build_estimator(sub, entry, params, device, trusted)
        except UserError as exc:
            raise SubmissionError(f"{entry}: {exc}") from None
        if not satisfies(estimator, TrainableEstimator):
            missing = " and ".join(missing_methods(estimator, TrainableEstimator))
            print(f"{entry}: no {missing} (TrainableEstimator; not trained)", flush=True)
            continue
        inference_only = set(getattr(estimator, "inference_parameters", ()))
        key = json.dumps(
            {k: v for k, v in params.items() if k not in inference_only}, sort_keys=True
        )
        if key in trained:  # e.g. the same network run by torch and by onnxruntime
            print(f"{entry}: same training as an entry above", flush=True)
            continue
        trained.add(key)
        todo.append((entry, estimator))
    if init_weights is not None and len(todo) > 1:
        names = ", ".join(entry for entry, _ in todo)
        raise SubmissionError(
            f"{folder}: --init-weights gives one starting point but {names} are trained "
            "separately; choose one with --variant"
        )
    trained_entries = {name for name, _ in todo}
    reserved = {
        key: {
            entry: int(params[key])
            for entry, params in sub.entries(variant, overrides)
            if key in params and entry in trained_entries
        }
        for key in (TRAINING_SEED, TRAINING_EPOCHS)
    }
    return TrainingPlan(sub, todo, reserved[TRAINING_SEED], reserved[TRAINING_EPOCHS])


def dataset_record(info: DatasetInfo) -> dict[str, str]:
    """What a training records of its dataset: ``name``, ``key`` (``<name>-<12 hex digits>``, as
    results are filed) and the manifest's full ``manifest_sha256``."""
    return {"name": info.name, "key": info.key, "manifest_sha256": info.manifest_sha256}


def default_training_folder(submission_name: str, dataset_key: str) -> Path:
    """``trainings/<submission>/<dataset key>`` under the current directory: one folder per
    submission and dataset, so that the same command finds (and resumes) its checkpoints."""
    return TRAININGS / submission_name / dataset_key


def read_training_record(folder: Path) -> dict[str, Any]:
    """The record (:data:`RECORD_NAME`) of a training folder.

    Raises
    ------
    MetbenchError
        No record, or not one that metbench wrote.
    """
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        raise MetbenchError(
            f"{folder}: not a training folder (no {RECORD_NAME}); give the folder that "
            "metbench train printed"
        )
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetbenchError(f"{path}: not readable ({first_line(exc)})") from None
    if (
        not isinstance(record, dict)
        or record.get("format") != RECORD_FORMAT
        or not isinstance(record.get("submission"), str)
        or not isinstance(record.get("dataset"), dict)
        or not isinstance(record["dataset"].get("key"), str)
        or not isinstance(record.get("entries"), dict)
    ):
        raise MetbenchError(f"{path}: not a record of metbench train")
    return record


def check_training_folder(
    folder: Path, submission: Path, submission_name: str
) -> dict[str, Any] | None:
    """Check that a training folder may be written (before the dataset is known): not in the
    submission, and new, empty or a training folder of this submission.

    Returns
    -------
    dict or None
        The folder's record, if it has one.

    Raises
    ------
    MetbenchError
        The folder is in the submission, holds other files, or another submission's training.
    """
    folder = Path(folder)
    resolved, sub = folder.resolve(), Path(submission).resolve()
    if resolved == sub or sub in resolved.parents:
        raise MetbenchError(
            f"the training folder {folder} is inside the submission folder {submission}; give "
            "--out a folder elsewhere (metbench adopt copies the weights into the submission)"
        )
    if (folder / RECORD_NAME).is_file():
        record = read_training_record(folder)
        if record["submission"] != submission_name:
            raise MetbenchError(
                f"{folder} holds a training of {safe_text(record['submission'], 100)}, not of "
                f"{submission_name}; give another --out"
            )
        return record
    if folder.is_dir() and any(folder.iterdir()):
        raise MetbenchError(
            f"{folder} is not empty and not a training folder; give --out a new or empty folder"
        )
    return None


def open_training_folder(
    folder: Path, submission: Path, submission_name: str, dataset: dict[str, str]
) -> dict[str, Any]:
    """Make (or reopen, to resume) the training folder of a submission on a dataset.

    Parameters
    ----------
    folder
        The training folder: new, empty, or one of this submission on this dataset.
    submission
        The submission folder (the training folder may not be in it).
    submission_name
        Its manifest's name.
    dataset
        :func:`dataset_record` of the training dataset.

    Returns
    -------
    dict
        The folder's record (written at once, so that an interrupted training's folder is known).

    Raises
    ------
    MetbenchError
        As :func:`check_training_folder`, or the folder holds a training on another dataset (its
        checkpoints and cached features belong to that one).
    """
    folder = Path(folder)
    record = check_training_folder(folder, submission, submission_name)
    if record is not None:
        if record["dataset"]["key"] != dataset["key"]:
            raise MetbenchError(
                f"{folder} holds the training of {submission_name} on "
                f"{safe_text(record['dataset']['key'], 100)}, not on {dataset['key']}; give "
                "another --out"
            )
        return record
    record = {
        "format": RECORD_FORMAT,
        "submission": submission_name,
        "dataset": dataset,
        "entries": {},
    }
    atomic_write_json(folder / RECORD_NAME, record)
    return record


def _move_into(staging: Path, folder: Path) -> dict[str, str]:
    """Move every file under ``staging`` to the same relative path under ``folder`` (each by an
    atomic rename); their relative paths and sha256."""
    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = path.relative_to(staging).as_posix()
        files[rel] = sha256_file(path)
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    shutil.rmtree(staging)
    return files


def check_checkpoint_dataset(checkpoint_dir: Path, entry: str, dataset: dict[str, str]) -> None:
    """Refuse to resume an entry's checkpoint on another dataset than the one its last epochs were
    trained on (the training would go on silently with other events).

    Parameters
    ----------
    checkpoint_dir
        The folder of the entries' checkpoint folders (``--checkpoints``).
    entry
        The entry, whose checkpoint is ``checkpoint_dir/<entry>`` (its ``state.json`` files, of
        every stage of a training in stages, record each segment's dataset).
    dataset
        :func:`dataset_record` of this training's dataset.

    Raises
    ------
    MetbenchError
        A ``state.json`` whose last segment with a recorded dataset names another dataset. A
        checkpoint written before datasets were recorded, or unreadable (the entry's own loading
        says so), passes.
    """
    folder = Path(checkpoint_dir) / entry
    for state_file in sorted(folder.rglob("state.json")) if folder.is_dir() else []:
        try:
            state = json.loads(state_file.read_text())
            segments = state.get("segments") or []
            keys = [((s.get("settings") or {}).get("dataset") or {}).get("key") for s in segments]
        except (OSError, ValueError, AttributeError):
            continue
        keys = [k for k in keys if isinstance(k, str)]
        if keys and keys[-1] != dataset["key"]:
            raise MetbenchError(
                f"{state_file.parent}: the checkpoint of {entry} ({state.get('epoch')} epochs) "
                f"was trained on {safe_text(keys[-1], 100)}, not on {dataset['key']}; resume it "
                "with the same --dataset, or start afresh with --restart or another --checkpoints"
            )


def train_submission(
    plan: TrainingPlan, dataset: Path, settings: TrainSettings, folder: Path
) -> list[tuple[str, TrainState]]:
    """Train each estimator of a :func:`plan_training` plan and write its weights into a training
    folder (never into the submission).

    Each estimator's ``fit(train, val, settings)`` trains (resuming from
    ``settings.checkpoint_dir/<entry>``), and ``save`` writes the weights and their history at the
    manifest's paths under ``folder``; a checkpoint of another dataset is refused first
    (:func:`check_checkpoint_dataset`); the record (:data:`RECORD_NAME`) lists each entry's files and
    their sha256, for :func:`adopt_training`.

    Parameters
    ----------
    plan
        What to train.
    dataset
        The dataset folder (train and val splits).
    settings
        How to train.
    folder
        A training folder opened with :func:`open_training_folder`.

    Returns
    -------
    list
        ``(entry name, final state)`` per variant trained.
    """
    from dataclasses import replace

    sub = plan.submission
    if settings.dataset is not None and not settings.restart:
        for entry, _ in plan.estimators:  # before any entry trains
            check_checkpoint_dataset(settings.checkpoint_dir, entry, settings.dataset)
    done = []
    for entry, estimator in plan.estimators:
        train = EventSource(dataset, "train", max_particles=sub.manifest.max_particles)
        val = EventSource(dataset, "val", max_particles=sub.manifest.max_particles)
        entry_settings = replace(
            settings,
            checkpoint_dir=settings.checkpoint_dir / entry,
            seed=plan.seeds.get(entry, settings.seed),
            epochs=plan.budgets.get(entry, settings.epochs),
        )
        state = estimator.fit(train, val, entry_settings)
        staging = folder / f".saving-{entry}"
        shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted save
        estimator.save(staging)
        files = _move_into(staging, folder)
        record = read_training_record(folder)
        record["entries"][entry] = {
            "files": files,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "best_val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
        }
        atomic_write_json(folder / RECORD_NAME, record)
        done.append((entry, state))
    return done


#: The checkpoint folder of the trainings before datasets were recorded in the history:
#: ``<cache>/training/<dataset key>/<entry>``.
_LEGACY_KEY = re.compile(r"^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*-[0-9a-f]{12}$")


def weights_dataset(history: dict[str, Any]) -> str | None:
    """The key of the dataset a history's weights were trained on.

    ``settings.dataset.key`` where recorded; a history written before it was takes the key from its
    checkpoint folder when that is the then default, ``<cache>/training/<key>/<entry>``;
    otherwise ``None`` (unknown).
    """
    settings = history.get("settings")
    if not isinstance(settings, dict):
        return None
    recorded = settings.get("dataset")
    if isinstance(recorded, dict):
        key = recorded.get("key")
        return key if isinstance(key, str) else None
    checkpoints = settings.get("checkpoint_dir")
    if isinstance(checkpoints, str):
        parent = PurePosixPath(checkpoints).parent
        if parent.parent.name == "training" and _LEGACY_KEY.match(parent.name):
            return parent.name
    return None


def _checked_relpath(rel: str, record: Path) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts or rel != path.as_posix():
        raise MetbenchError(f"{record}: {safe_text(rel, 200)} is not a path inside a submission")
    return path


def _current_dataset(submission: Path, files: Sequence[str]) -> tuple[bool, str | None]:
    """``(has weights, dataset key)`` of the submission's current files among ``files``."""
    present = [rel for rel in files if (submission / rel).is_file()]
    for rel in present:
        if rel.endswith(".history.json"):
            try:
                history = json.loads((submission / rel).read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return True, None
            return True, weights_dataset(history) if isinstance(history, dict) else None
    return bool(present), None


@dataclass(frozen=True)
class Adopted:
    """One entry's weights adopted by :func:`adopt_training`.

    Attributes
    ----------
    entry
        The entry's name.
    files
        The files copied, relative to the submission folder.
    replaced
        Whether the submission had weights of the entry before.
    previous_dataset
        The key of the dataset of the weights replaced (``None``: none, or not recorded).
    """

    entry: str
    files: tuple[str, ...]
    replaced: bool
    previous_dataset: str | None


def adopt_training(
    submission: Path, training: Path, change_dataset: bool = False, dry_run: bool = False
) -> list[Adopted]:
    """Make a training folder's weights the submission's: copy every file the training wrote
    (weights, exports, history) over the submission's.

    Parameters
    ----------
    submission
        The submission folder.
    training
        A folder written by :func:`train_submission` for this submission.
    change_dataset
        Accept weights trained on another dataset than the current weights' (or replacing weights
        whose dataset is unknown).
    dry_run
        Check everything, copy nothing.

    Returns
    -------
    list of Adopted
        Per entry of the training.

    Raises
    ------
    MetbenchError
        Not a training of this submission, files changed since the training, or (without
        ``change_dataset``) a dataset other than the current weights' or an unknown one.
    """
    from metbench.estimators.submission import load_submission

    submission, training = Path(submission), Path(training)
    sub = load_submission(submission, require_weights=False)
    record = read_training_record(training)
    name, key = record["submission"], record["dataset"]["key"]
    if name != sub.manifest.name:
        raise MetbenchError(
            f"{training} is a training of {safe_text(name, 100)}, not of {sub.manifest.name}"
        )
    if not record["entries"]:
        raise MetbenchError(
            f"{training}: no training has finished there yet; run metbench train to its end"
        )
    plan: list[tuple[dict[str, str], Adopted]] = []
    for entry, done in sorted(record["entries"].items()):
        files = done.get("files") if isinstance(done, dict) else None
        if not isinstance(files, dict) or not files:
            raise MetbenchError(f"{training / RECORD_NAME}: {entry} lists no files")
        for rel, digest in files.items():
            _checked_relpath(rel, training / RECORD_NAME)
            source = training / rel
            if not source.is_file() or sha256_file(source) != digest:
                raise MetbenchError(
                    f"{source} is missing or changed since metbench train wrote it; train again"
                )
        present, current = _current_dataset(sub.folder, list(files))
        if present and current != key and not change_dataset:
            said = f"were trained on {current}" if current else "do not record their dataset"
            raise MetbenchError(
                f"{submission}: the current weights of {entry} {said}, this training used {key}; "
                "add --change-dataset to replace them with weights of another dataset"
            )
        plan.append((files, Adopted(entry, tuple(sorted(files)), present, current)))
    if dry_run:
        return [adopted for _, adopted in plan]
    # every file is copied beside its target before any is renamed onto it (atomic_path): a
    # failure leaves the current weights as they were
    with ExitStack() as stack:
        for files, _ in plan:
            for rel, digest in files.items():
                tmp = stack.enter_context(atomic_path(sub.folder / rel))
                shutil.copyfile(training / rel, tmp)
                if sha256_file(tmp) != digest:
                    raise MetbenchError(
                        f"{training / rel} changed while it was copied; adopt again"
                    )
    return [adopted for _, adopted in plan]


@dataclass(frozen=True)
class TrainingSummary:
    """What the committed history of one training of a submission says about it.

    Attributes
    ----------
    entries
        The entries whose weights it is (variants that differ only in inference parameters, e.g.
        the runtime, share one training).
    history
        The history file, relative to the submission folder.
    dataset
        The key of the dataset it was trained on (``None``: not recorded).
    seed, budget
        The training seed, and the variant's fixed budget of epochs (``None``: none).
    epochs, best_epoch, best_val_loss
        Epochs run, the best one (whose weights are the submission's) and its validation loss.
    stopped
        Why it ended: ``"patience"`` (early stopping), ``"budget"``, ``"epoch limit"`` or
        ``"not finished"`` (weights of its best epoch so far).
    seconds, median_epoch_seconds
        The sum of its epochs' wall-clock times [s] (a pause inside an epoch counts) and their
        median [s].
    segments
        The runs of the resumable loop it took (``None``: not recorded).
    device
        ``"cpu"`` or the accelerator it trained on.
    """

    entries: tuple[str, ...]
    history: str
    dataset: str | None
    seed: int | None
    budget: int | None
    epochs: int
    best_epoch: int
    best_val_loss: float
    stopped: str
    seconds: float
    median_epoch_seconds: float
    segments: int | None
    device: str | None

    def describe(self) -> str:
        """The training in one line (the site's entry pages)."""
        budget = f" (a budget of {self.budget})" if self.budget is not None else ""
        why = {
            "patience": "ended by early stopping",
            "budget": "its budget",
            "epoch limit": "ended at its epoch limit",
        }.get(self.stopped, "not finished: its best epoch so far")
        median = (
            "" if math.isnan(self.median_epoch_seconds)
            else f", median {self.median_epoch_seconds:.0f} s per epoch"
        )  # fmt: skip
        return (
            f"{self.epochs} epochs{budget}, {why}; best epoch {self.best_epoch}, validation loss "
            f"{self.best_val_loss:.5g}; seed {'—' if self.seed is None else self.seed}; "
            f"{self.seconds / 3600:.2f} h of epoch time{median}, on {self.device or '?'}; "
            f"dataset {self.dataset or 'not recorded'}"
        )


def history_file(weights_file: str) -> PurePosixPath:
    """The history beside a weights file: ``<name up to its first dot>.history.json``
    (``weights/perceiver.pt`` → ``weights/perceiver.history.json``, ``weights/6ep/seed2/
    resolution.weights.h5`` → ``weights/6ep/seed2/resolution.history.json``)."""
    path = PurePosixPath(weights_file)
    return path.with_name(path.name.split(".", 1)[0] + ".history.json")


def _stopped(state: dict[str, Any], settings: dict[str, Any], budget: int | None) -> str:
    epochs, patience = int(state["epoch"]), settings.get("patience")
    if isinstance(patience, int) and int(state.get("wait", 0)) >= patience:
        return "patience"
    if budget is not None and epochs >= budget:
        return "budget"
    limit = settings.get("epochs")
    if isinstance(limit, int) and epochs >= limit:
        return "epoch limit"
    return "not finished"


def training_summaries(folder: Path) -> list[TrainingSummary]:
    """The trainings behind a submission's committed weights, read from their histories; or,
    for a training folder (one that ``metbench train`` wrote: it holds :data:`RECORD_NAME`), the
    trainings it holds.

    One per distinct ``weights_file`` among the entries; entries without one, or whose weights
    have no history, are left out.

    Raises
    ------
    MetbenchError
        The folder is not a valid submission or training folder, or a history is not a
        training history.
    """
    from metbench.estimators.submission import load_submission

    if (Path(folder) / RECORD_NAME).is_file():
        return _training_folder_summaries(Path(folder))
    sub = load_submission(folder, require_weights=False)
    by_history: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for entry, params in sub.entries():
        weights = params.get("weights_file")
        if isinstance(weights, str):
            by_history.setdefault(str(history_file(weights)), []).append((entry, params))
    out = []
    for rel, entries in by_history.items():
        path = sub.folder / _checked_relpath(rel, sub.folder / "metbench.toml")
        if path.is_file():
            budget = entries[0][1].get(TRAINING_EPOCHS)
            out.append(_summary(path, rel, tuple(entry for entry, _ in entries), budget))
    return out


def _training_folder_summaries(folder: Path) -> list[TrainingSummary]:
    """The trainings of a training folder, from its record's history files."""
    record = read_training_record(folder)
    out = []
    for entry, info in record["entries"].items():
        files = info.get("files") if isinstance(info, dict) else None
        for rel in sorted(files or {}):
            if rel.endswith(".history.json"):
                path = folder / _checked_relpath(rel, folder / RECORD_NAME)
                out.append(_summary(path, rel, (entry,), None))
    return out


def _summary(path: Path, rel: str, entries: tuple[str, ...], budget: int | None) -> TrainingSummary:
    """One training's summary from its history file ``path`` (``rel`` as reported)."""
    try:
        state = json.loads(path.read_text())
        settings = state["settings"]
        epochs = [float(e["seconds"]) for e in state["history"]]
        return TrainingSummary(
            entries=entries,
            history=rel,
            dataset=weights_dataset(state),
            seed=settings.get("seed"),
            budget=budget,
            epochs=int(state["epoch"]),
            best_epoch=int(state["best_epoch"]),
            best_val_loss=float(state["best_val_loss"]),
            stopped=_stopped(state, settings, budget),
            seconds=math.fsum(epochs),
            median_epoch_seconds=statistics.median(epochs) if epochs else math.nan,
            segments=len(state["segments"]) if state.get("segments") else None,
            device=settings.get("device"),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetbenchError(f"{path}: unreadable ({first_line(exc)})") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MetbenchError(
            f"{path}: not a training history (epoch, best_epoch, best_val_loss, settings and "
            "one record per epoch with its seconds); write it with metbench train"
        ) from None
