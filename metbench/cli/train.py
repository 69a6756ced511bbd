"""``metbench train`` and ``adopt``: a training in a folder of its own, and making its weights a
submission's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    DeviceOpt,
    ParamOpt,
    TrustOpt,
    VariantOpt,
    app,
    check_device,
    resolve_dataset_with_progress,
    say,
)
from metbench.errors import MetbenchError

__all__ = ["adopt_cmd", "train_cmd", "trainings_cmd"]


@app.command("train")
def train_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder (submissions/<name>)")],
    dataset: Annotated[
        str, typer.Option(help="Dataset folder or preset whose train/val splits are used")
    ] = "standard",
    variant: VariantOpt = None,
    param: ParamOpt = None,
    device: DeviceOpt = "cpu",
    epochs: Annotated[
        int,
        typer.Option(
            min=1,
            help="Maximum epochs (a variant that names a budget, the manifest's reserved "
            "parameter training_epochs, is trained for at most its own)",
        ),
    ] = 30,
    patience: Annotated[
        int, typer.Option(min=1, help="Early stopping: epochs without improvement")
    ] = 5,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of initialisation and shuffling (a variant that names its seed, the "
            "manifest's reserved parameter seed, is trained with its own)"
        ),
    ] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per step")] = 64,
    learning_rate: Annotated[
        float | None, typer.Option(help="Initial learning rate (default: the entry's)")
    ] = None,
    train_events: Annotated[
        int | None, typer.Option(min=1, help="At most this many training events per process")
    ] = None,
    val_events: Annotated[
        int | None, typer.Option(min=1, help="At most this many validation events per process")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Training folder: weights, history, checkpoints; the same folder resumes "
            "(default: trainings/<submission>/<dataset>/ in the current directory)"
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Checkpoint folder (default: the training folder's checkpoints/)"),
    ] = None,
    restart: Annotated[bool, typer.Option(help="Ignore existing checkpoints")] = False,
    init_weights: Annotated[
        Path | None,
        typer.Option(
            help="Start a new training from these weights (e.g. the submission's committed "
            "ones) instead of the entry's initialisation; a checkpoint to resume comes first"
        ),
    ] = None,
    trust: TrustOpt = False,
) -> None:
    """Train a submission's weights on a dataset's train split (early stopping on val), in a
    training folder of its own: the submission's weights are not touched.

    Resumes from the last finished epoch unless --restart; --init-weights fine-tunes given weights
    (checkpoints are local to a machine, the committed weights travel). The weights and their
    history go to the training folder at the manifest's paths; `metbench adopt` (the command is
    printed) makes them the submission's."""
    import shlex

    from metbench.estimators.submission import parse_parameter
    from metbench.harness import dataset_info
    from metbench.training import (
        TrainSettings,
        adopt_training,
        check_training_folder,
        dataset_record,
        default_training_folder,
        open_training_folder,
        plan_training,
        train_submission,
    )

    check_device(device)
    if init_weights is not None and not init_weights.is_file():
        raise MetbenchError(
            f"--init-weights {init_weights}: no such file; give a weights file of the entry "
            "(e.g. one listed under weights in its metbench.toml)"
        )
    overrides = dict(parse_parameter(p) for p in param or [])
    plan = plan_training(submission, variant, overrides, device, init_weights, trust)
    name = plan.submission.manifest.name
    if out is not None:  # a mistake is reported before a preset is generated
        check_training_folder(out, submission, name)
    folder = resolve_dataset_with_progress(dataset)
    info = dataset_info(folder)
    record = dataset_record(info)
    out = out if out is not None else default_training_folder(name, info.key)
    open_training_folder(out, submission, name, record)
    settings = TrainSettings(
        checkpoint_dir=checkpoints if checkpoints is not None else out / "checkpoints",
        epochs=epochs,
        patience=patience,
        seed=seed,
        batch_size=batch_size,
        learning_rate=learning_rate,
        train_events_per_process=train_events,
        val_events_per_process=val_events,
        device=device,
        restart=restart,
        init_weights=init_weights.resolve() if init_weights is not None else None,
        dataset=record,
    )
    for entry, state in train_submission(plan, folder, settings, out):
        say(
            f"{entry}: {state.epoch} epochs, best val loss {state.best_val_loss:.5g} at epoch "
            f"{state.best_epoch}; weights written in {out} ({submission} unchanged)"
        )
    say(
        "to make them the submission's weights: metbench adopt "
        f"{shlex.quote(str(submission))} {shlex.quote(str(out))}"
    )
    try:  # what adopt will say, said now: a dry run, nothing is copied
        adopt_training(submission, out, dry_run=True)
    except MetbenchError as exc:
        say(f"note: adopt will refuse it: {exc}")


@app.command("adopt")
def adopt_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder (submissions/<name>)")],
    training: Annotated[Path, typer.Argument(help="Training folder that metbench train printed")],
    change_dataset: Annotated[
        bool,
        typer.Option(
            help="Replace weights trained on another dataset (or on an unrecorded one), e.g. "
            "after the standard dataset was regenerated"
        ),
    ] = False,
) -> None:
    """Make a training's weights the submission's: copy its weights, exports and history over the
    submission's (each file checked against the sha256 the training recorded).

    Refused when the training's dataset differs from the one recorded with the current weights,
    unless --change-dataset."""
    from metbench.training import adopt_training, read_training_record

    key = read_training_record(training)["dataset"]["key"]
    for done in adopt_training(submission, training, change_dataset):
        was = ""
        if done.replaced:
            was = (
                f"; replaced weights trained on {done.previous_dataset or 'an unrecorded dataset'}"
            )
        say(
            f"{done.entry}: {', '.join(done.files)} adopted into {submission} (trained on "
            f"{key}{was})"
        )


@app.command("trainings")
def trainings_cmd(
    submissions: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Submission folders, or training folders that metbench train wrote (default: "
            "every trainable submission in submissions/)"
        ),
    ] = None,
) -> None:
    """The trainings behind the committed weights, from their histories: dataset, seed, budget,
    epochs, the best epoch and its validation loss, why it stopped, and its time (the sum of
    its epochs' wall-clock times, and their median)."""
    import math

    import pandas as pd

    from metbench.cli.common import print_frame
    from metbench.estimators.submission import MANIFEST_FILE, load_submission
    from metbench.training import training_summaries

    notes = []
    folders = list(submissions or [])
    if not folders:  # every trainable one; an invalid folder is named, not fatal
        for p in sorted(Path("submissions").glob(f"*/{MANIFEST_FILE}")):
            try:
                if load_submission(p.parent, require_weights=False).manifest.trainable:
                    folders.append(p.parent)
            except MetbenchError as exc:
                notes.append(f"left out: {exc}")
    rows = []
    for folder in folders:
        for t in training_summaries(folder):
            rows.append(
                {
                    "entry": " / ".join(t.entries),
                    "dataset": t.dataset or "not recorded",
                    "seed": "—" if t.seed is None else t.seed,
                    "budget": "—" if t.budget is None else t.budget,
                    "epochs": t.epochs,
                    "best": t.best_epoch,
                    "val loss": f"{t.best_val_loss:.5g}",
                    "stopped": t.stopped,
                    "time [h]": f"{t.seconds / 3600:.2f}",
                    "median epoch [s]": "—"
                    if math.isnan(t.median_epoch_seconds)
                    else f"{t.median_epoch_seconds:.{0 if t.median_epoch_seconds >= 10 else 1}f}",
                    "segments": "—" if t.segments is None else t.segments,
                    "device": t.device or "—",
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["notes"] = [
        *notes,
        "time: the sum of the epochs' wall-clock times on the machine that trained (a pause "
        "inside an epoch counts; the median epoch is the steadier figure); stopped: patience = "
        "early stopping, budget = the variant's fixed budget of epochs (training_epochs), "
        "not finished = the best epoch so far of a training that goes on",
    ]
    print_frame(frame, "trainings (behind the committed weights, or of the training folders given)")
