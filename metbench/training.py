"""What every trainable entry shares: settings, the resumable training state with early stopping,
reading a (capped, per-process) training sample, the training folder and adopting its weights.

The training loop itself belongs to each framework's entry (``fit(train, val, settings)``); this
module keeps the parts that must behave the same for all of them: seeding, when to stop, and where
checkpoints live (``settings.checkpoint_dir``: resumed from unless ``restart``).

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
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

import awkward as ak
import numpy as np

from metbench.data.source import EventSource
from metbench.data.store import atomic_path, atomic_write_bytes, atomic_write_json, sha256_file
from metbench.errors import DatasetError, MetbenchError, first_line, safe_text

if TYPE_CHECKING:
    from metbench.harness import DatasetInfo

__all__ = [
    "RECORD_NAME",
    "Adopted",
    "TrainSettings",
    "TrainState",
    "TrainingPlan",
    "adopt_training",
    "bucketed_batches",
    "check_training_folder",
    "dataset_record",
    "default_training_folder",
    "describe",
    "flat_resample",
    "flat_sampling_weights",
    "load_init_weights",
    "open_training_folder",
    "plan_training",
    "read_sample",
    "read_training_record",
    "train_submission",
    "weights_dataset",
]

#: The record of a training folder: submission, dataset, and per entry its files with their sha256.
RECORD_NAME: Final = "training.json"
#: Its ``format`` field.
RECORD_FORMAT: Final = "metbench-training"
#: Default parent of the training folders, relative to the current directory (git-ignored).
TRAININGS: Final = Path("trainings")


@dataclass(frozen=True)
class TrainSettings:
    """How to train (the command line's options; entries read what applies to them).

    Attributes
    ----------
    checkpoint_dir
        Folder of the resumable state (model, optimizer, :class:`TrainState`).
    epochs
        Maximum number of epochs.
    patience
        Early stopping: epochs without a better validation loss before stopping.
    seed
        Seed of the initialisation, shuffling and augmentation.
    batch_size
        Events per optimiser step.
    learning_rate
        Initial learning rate (``None``: the entry's default).
    train_events_per_process, val_events_per_process
        Cap on the events read per process (``None``: the whole split).
    device
        ``cpu`` or ``cuda``.
    restart
        Ignore an existing checkpoint and start from scratch.
    progress
        Show a progress bar.
    init_weights
        Start a new training from these weights (the entry's own weights format, e.g. the committed
        ones) instead of the entry's initialisation; the optimiser starts afresh. A checkpoint that
        is resumed takes precedence. ``None``: the entry's initialisation.
    dataset
        The training dataset's identity (:func:`dataset_record`), written into the history so that
        the weights say what they were trained on; ``None``: not recorded.
    """

    checkpoint_dir: Path
    epochs: int = 30
    patience: int = 5
    seed: int = 1
    batch_size: int = 64
    learning_rate: float | None = None
    train_events_per_process: int | None = None
    val_events_per_process: int | None = None
    device: str = "cpu"
    restart: bool = False
    progress: bool = True
    init_weights: Path | None = None
    dataset: dict[str, str] | None = None


@dataclass
class TrainState:
    """Progress of a training, saved after every epoch so that an interrupted training resumes.

    Attributes
    ----------
    epoch
        Epochs completed.
    best_val_loss, best_epoch
        The best validation loss so far and the epoch (1-based) that reached it.
    wait
        Epochs since the best one.
    history
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``seconds``, ``learning_rate``.
    segments
        One record per call of the training loop that resumed or started this training (a
        "segment"): ``first_epoch`` (1-based, the first epoch it runs), ``start`` (``scratch``,
        ``checkpoint`` or ``init_weights``), ``settings`` (:func:`describe`) and the wall time it
        began; filled by loops that call :meth:`begin_segment` (the PyTorch one does).
    """

    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)

    FILE = "state.json"

    def record(
        self, train_loss: float, val_loss: float, seconds: float, learning_rate: float
    ) -> bool:
        """Add one finished epoch; True if its validation loss is the best so far."""
        self.epoch += 1
        self.history.append(
            {
                "epoch": self.epoch,
                "train_loss": float(train_loss),
                "val_loss": float(val_loss),
                "seconds": float(seconds),
                "learning_rate": float(learning_rate),
            }
        )
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.wait = float(val_loss), self.epoch, 0
            return True
        self.wait += 1
        return False

    def begin_segment(self, settings: TrainSettings, start: str) -> None:
        """Record that a training segment begins after the epochs done so far.

        Parameters
        ----------
        settings
            The settings of this segment (recorded with :func:`describe`).
        start
            ``scratch``, ``checkpoint`` (resumed) or ``init_weights``.
        """
        import datetime

        self.segments.append(
            {
                "first_epoch": self.epoch + 1,
                "start": start,
                "began": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "settings": describe(settings),
            }
        )

    def finished(self, settings: TrainSettings) -> bool:
        """Early stopping or the epoch budget reached."""
        return self.epoch >= settings.epochs or self.wait >= settings.patience

    def save(self, folder: Path) -> None:
        data = {k: v for k, v in asdict(self).items()}
        if not math.isfinite(data["best_val_loss"]):
            data["best_val_loss"] = None
        atomic_write_bytes(folder / self.FILE, json.dumps(data, indent=1).encode())

    @classmethod
    def load(cls, folder: Path) -> TrainState:
        """The saved state, or a fresh one if there is none."""
        path = folder / cls.FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        if data.get("best_val_loss") is None:
            data["best_val_loss"] = math.inf
        return cls(**data)


def read_sample(
    source: EventSource,
    per_process: int | None = None,
    columns: Sequence[str] | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> ak.Array:
    """Read a split into memory, at most ``per_process`` events of each process.

    Files are taken in their (sorted) order, so the sample is the same on every machine.

    Parameters
    ----------
    source
        The split.
    per_process
        Cap on the events per process (``None``: all).
    columns
        Columns to read (nested ones as ``"pf.pt"``); ``None``: all.
    callback
        Called as ``callback(events_read, events_wanted)`` after every file.
    """
    files = source.manifest["files"]
    by_process: dict[str, list[str]] = {}
    for relpath in source.files:
        by_process.setdefault(files[relpath]["process"], []).append(relpath)
    chosen: list[tuple[str, int]] = []
    for relpaths in by_process.values():
        left = per_process if per_process is not None else math.inf
        for relpath in relpaths:
            if left <= 0:
                break
            n = files[relpath]["n_events"]
            chosen.append((relpath, int(min(n, left))))
            left -= n
    wanted = sum(n for _, n in chosen)
    if not wanted:
        raise DatasetError(f"{source.folder}: split {source.split} has no events to train on")
    parts: list[ak.Array] = []
    read = 0
    for relpath, n in chosen:
        arr = next(iter(source.restrict([relpath]).iter_files(columns)))
        parts.append(arr[:n])
        read += n
        if callback is not None:
            callback(read, wanted)
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def bucketed_batches(
    sizes: np.ndarray, batch_size: int, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Batches of event indices with similar candidate counts (little padding).

    Events are sorted by ``sizes`` (ties broken at random when ``rng`` is given), cut into
    consecutive batches, and the batches shuffled.

    Parameters
    ----------
    sizes
        Candidates per event.
    batch_size
        Events per batch (the last one may be smaller).
    rng
        Shuffles the order of the batches and of equal sizes; ``None`` keeps them sorted.
    """
    sizes = np.asarray(sizes)
    jitter = rng.random(len(sizes)) if rng is not None else np.zeros(len(sizes))
    order = np.lexsort((jitter, sizes))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def flat_sampling_weights(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-event weights that make the distribution of ``values`` flat over ``edges``.

    Each event weighs 1 / (the number of events in its bin); values outside the range are put
    in the first or last bin (as a clipped histogram does), so they share its weight.

    Parameters
    ----------
    values
        One value per event (e.g. the generated MET [GeV]).
    edges
        Increasing bin edges.

    Returns
    -------
    numpy.ndarray
        ``float64`` weights, one per event: every non-empty bin carries the same total weight.
    """
    values = np.asarray(values, np.float64)
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be at least two increasing values, got {edges!r}")
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    return 1.0 / counts[bins]


def flat_resample(
    values: np.ndarray, edges: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Event indices drawn with replacement so that ``values`` come out flat over ``edges``.

    The draw probability of an event is proportional to :func:`flat_sampling_weights`: every
    non-empty bin is drawn equally often on average (a weighted random sampler).

    Parameters
    ----------
    values, edges
        As in :func:`flat_sampling_weights`.
    n
        Number of draws (e.g. the sample size, for one epoch).
    rng
        The generator (seeded per epoch for a reproducible, resumable training).
    """
    weights = flat_sampling_weights(values, edges)
    return rng.choice(len(weights), size=n, replace=True, p=weights / weights.sum())


def describe(settings: TrainSettings) -> dict[str, Any]:
    """Settings as a JSON-ready dict (written beside the weights)."""
    out = asdict(settings)
    out["checkpoint_dir"] = str(settings.checkpoint_dir)
    if settings.init_weights is not None:
        out["init_weights"] = str(settings.init_weights)
        if settings.init_weights.is_file():
            out["init_weights_sha256"] = sha256_file(settings.init_weights)
    return out


def load_init_weights(
    settings: TrainSettings, resumed: bool, load: Callable[[Path], Any], expected: str
) -> None:
    """Start from ``settings.init_weights`` (when given) unless a checkpoint was resumed; every
    entry's training loop calls this after its resume step.

    Parameters
    ----------
    settings
        The training settings.
    resumed
        Whether the loop resumed a checkpoint (which then comes first, and is said so).
    load
        Loads a weights file into the network (raises on a file that does not fit it).
    expected
        What to give instead, for the one-line error (e.g. "the entry's own .pt file").

    Raises
    ------
    MetbenchError
        The file is not weights of this network.
    """
    if settings.init_weights is None:
        return
    if resumed:
        print(f"(--init-weights {settings.init_weights} not used: the checkpoint comes first)")
        return
    try:
        load(settings.init_weights)
    except Exception as exc:  # not a weights file, or one of another architecture
        raise MetbenchError(
            f"--init-weights {settings.init_weights}: not weights of this network "
            f"({first_line(exc)}); give {expected}"
        ) from None
    print(f"started from {settings.init_weights}", flush=True)


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
    """

    submission: Any
    estimators: list[tuple[str, Any]]


def plan_training(
    folder: Path,
    variant: str | None,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    init_weights: Path | None = None,
) -> TrainingPlan:
    """Check a submission can be trained as asked and build its estimators (before any data is
    read or generated, so that a mistake is reported at once).

    Parameters
    ----------
    folder, variant, overrides
        The submission, one variant (``None``: all) and parameter overrides.
    device, init_weights
        As in :class:`TrainSettings`.

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
            estimator = build_estimator(sub, entry, params, device)
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
    return TrainingPlan(sub, todo)


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


def train_submission(
    plan: TrainingPlan, dataset: Path, settings: TrainSettings, folder: Path
) -> list[tuple[str, TrainState]]:
    """Train each estimator of a :func:`plan_training` plan and write its weights into a training
    folder (never into the submission).

    Each estimator's ``fit(train, val, settings)`` trains (resuming from
    ``settings.checkpoint_dir/<entry>``), and ``save`` writes the weights and their history at the
    manifest's paths under ``folder``; the record (:data:`RECORD_NAME`) lists each entry's files and
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
    done = []
    for entry, estimator in plan.estimators:
        train = EventSource(dataset, "train", max_particles=sub.manifest.max_particles)
        val = EventSource(dataset, "val", max_particles=sub.manifest.max_particles)
        entry_settings = replace(settings, checkpoint_dir=settings.checkpoint_dir / entry)
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
