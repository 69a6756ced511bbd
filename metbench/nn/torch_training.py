"""A seeded, resumable PyTorch training loop with early stopping (METNet, METNetSig, Perceiver)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from metbench.data.store import atomic_write_bytes
from metbench.nn.training import TrainSettings, TrainState, load_init_weights

__all__ = ["fit_torch", "save_torch", "save_weights_and_history"]

#: ``loss_fn(model, x, y)`` -> scalar tensor; ``x`` is a tensor or a tuple of tensors.
LossFn = Callable[[Any, Any, Any], Any]


def save_torch(obj: Any, path: Any) -> None:
    """``torch.save`` through a temporary file (never half-written)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_weights_and_history(
    network: Any,
    target: Any,
    history: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """A trained network's ``state_dict`` (on CPU) at ``target`` and, if any, the training
    history beside it (``<stem>.history.json``), both atomically.

    ``extra`` (e.g. the network's configuration): the file then holds ``{**extra,
    "state_dict": ...}`` instead of the bare state dict."""
    import json

    weights = {k: v.cpu() for k, v in network.state_dict().items()}
    save_torch(weights if extra is None else {**extra, "state_dict": weights}, target)
    if history is not None:
        atomic_write_bytes(
            target.with_suffix(".history.json"),
            json.dumps(history, indent=1, default=str).encode(),
        )


def fit_torch(
    model: Any,
    loss_fn: LossFn,
    train_batches: Callable[[int], Iterable[tuple[Any, Any]]],
    val_batches: Callable[[], Iterable[tuple[Any, Any]]],
    settings: TrainSettings,
    default_lr: float = 1e-3,
    optimizer_class: str = "Adam",
    epoch_log: Callable[[Any], dict[str, float]] | None = None,
    *,
    parameter_groups: list[dict[str, Any]] | None = None,
    grad_clip: float | None = None,
    reduce_lr_on_plateau: bool = True,
    epoch_schedule: Callable[[Any], Any] | None = None,
) -> TrainState:
    """Train ``model`` with one checkpoint per epoch.

    Parameters
    ----------
    model
        A ``torch.nn.Module``.
    loss_fn
        ``loss_fn(model, x, y)``: the mean loss of a batch.
    train_batches
        ``train_batches(epoch)`` yields the ``(x, y)`` of one epoch (shuffled from a generator
        seeded with ``settings.seed`` and the epoch, so that a resumed training sees the same
        batches as an uninterrupted one).
    val_batches
        ``val_batches()`` yields the validation ``(x, y)``.
    settings
        Epochs, patience, learning rate, checkpoint folder, restart.
    optimizer_class
        ``Adam`` or ``AdamW``.
    epoch_log
        ``epoch_log(model)``: extra figures recorded in each epoch's history entry (e.g. learned
        parameters), after the epoch's validation.
    parameter_groups
        The optimizer's parameter groups (e.g. weight decay on some parameters only);
        ``None``: ``model.parameters()`` with the optimizer's defaults.
    grad_clip
        Clip the total gradient norm of every step to this value
        (``torch.nn.utils.clip_grad_norm_``); ``None``: no clipping.
    reduce_lr_on_plateau
        Halve the learning rate after 3 epochs without improvement (``ReduceLROnPlateau``,
        patience 2: it acts on the third bad epoch); ``False``: a constant learning rate.
    epoch_schedule
        ``epoch_schedule(optimizer)``: a ``torch.optim.lr_scheduler`` stepped after every epoch
        (e.g. a polynomial decay over the epochs), in place of the plateau halving; its state
        travels with the checkpoint.

    Resumes from ``settings.checkpoint_dir`` (model, optimizer, scheduler, :class:`TrainState`)
    unless ``settings.restart``; otherwise starts from ``settings.init_weights`` (a state dict,
    or a dict holding one under ``state_dict``) when given; records each such start as a segment
    (:meth:`TrainState.begin_segment`); stops after ``settings.patience`` epochs without
    improvement; leaves the best epoch's weights in ``model``.
    """
    import torch

    ckpt = settings.checkpoint_dir
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    optimizer = getattr(torch.optim, optimizer_class)(
        parameter_groups if parameter_groups is not None else model.parameters(),
        lr=settings.learning_rate or default_lr,
    )
    if epoch_schedule is not None:
        scheduler = epoch_schedule(optimizer)
    elif reduce_lr_on_plateau:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    else:
        scheduler = None
    state = TrainState()
    resumed = not settings.restart and (ckpt / "last.pt").is_file()
    if resumed:
        saved = torch.load(ckpt / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        state = TrainState.load(ckpt)
        print(f"resumed after epoch {state.epoch} from {ckpt}", flush=True)

    def load_weights(path: Any) -> None:
        weights = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(weights.get("state_dict", weights))

    load_init_weights(
        settings,
        resumed,
        load_weights,
        "the entry's own .pt file, trained with the same parameters",
    )
    if not state.finished(settings):
        origin = "checkpoint" if resumed else "scratch"
        if settings.init_weights is not None and not resumed:
            origin = "init_weights"
        state.begin_segment(settings, origin)
    while not state.finished(settings):
        start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for step, (x, y) in enumerate(train_batches(state.epoch), 1):
            optimizer.zero_grad()
            loss = loss_fn(model, x, y)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
            if settings.progress and step % 50 == 0:
                print(
                    f"epoch {state.epoch + 1}: {count} events, loss {total / count:.5f}, "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
        model.eval()
        val_total, val_count = 0.0, 0
        with torch.no_grad():
            for x, y in val_batches():
                val_total += float(loss_fn(model, x, y)) * len(y)
                val_count += len(y)
        val_loss = val_total / val_count
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
        if epoch_schedule is not None:
            scheduler.step()
        elif scheduler is not None:
            scheduler.step(val_loss)
        improved = state.record(total / count, val_loss, time.perf_counter() - start, lr)
        if epoch_log is not None:
            state.history[-1].update(epoch_log(model))
        if improved:
            save_torch(model.state_dict(), ckpt / "best.pt")
        save_torch(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
            },
            ckpt / "last.pt",
        )
        state.save(ckpt)
        if settings.progress:
            h = state.history[-1]
            print(
                f"epoch {state.epoch}: train {h['train_loss']:.5f}, val {h['val_loss']:.5f}"
                f"{' (best)' if improved else ''}, {h['seconds']:.1f} s",
                flush=True,
            )
    model.load_state_dict(torch.load(ckpt / "best.pt", map_location="cpu", weights_only=True))
    return state
