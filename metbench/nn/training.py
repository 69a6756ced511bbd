"""What an entry's own training loop uses: the settings, the resumable state with early stopping,
reading a (capped, per-process) training sample, batches of similar sizes, flat sampling, and
starting from given weights.

This module is part of every trainable entry's content hash; the orchestration of a training (the
training folder, adopting its weights, running it in a child) is :mod:`metbench.training`, which an
entry never imports, so that a change in the harness does not make trained entries' results stale.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.source import EventSource
from metbench.data.store import atomic_write_bytes, sha256_file
from metbench.errors import DatasetError, MetbenchError, first_line

__all__ = [
    "TrainSettings",
    "TrainState",
    "bucketed_batches",
    "describe",
    "flat_resample",
    "flat_sampling_weights",
    "load_init_weights",
    "read_sample",
]


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
