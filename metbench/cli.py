"""The ``metbench`` command."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

import metbench
from metbench.errors import MetbenchError

__all__ = ["app", "main"]

app = typer.Typer(
    name="metbench",
    help="Benchmark suite and leaderboard for missing-transverse-momentum reconstruction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Generate, inspect and validate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
bench_app = typer.Typer(
    help="Speed of the harness itself (the figures asv tracks).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
leaderboard_app = typer.Typer(help="The static leaderboard website.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")

console = Console(width=None if sys.stdout.isatty() else 250)
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"metbench {metbench.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """metbench: compare MET estimators on the same events with the same scoring."""


@data_app.command("generate")
def data_generate(
    preset: Annotated[str, typer.Option(help="mini, standard or pu200")] = "mini",
    out: Annotated[
        Path, typer.Option(help="Dataset folder to write (resumes if interrupted)")
    ] = Path("data/mini"),
    seed: Annotated[int, typer.Option(help="Dataset seed; every shard's seeds derive from it")] = 1,
    workers: Annotated[int, typer.Option(help="Local worker processes")] = 1,
    events_per_process: Annotated[
        int | None,
        typer.Option(help="Override the preset's events per process (quick checks only)"),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="A running Dask scheduler (tcp://host:port) whose workers see --out; "
            "default: local processes"
        ),
    ] = None,
) -> None:
    """Generate a dataset: Pythia 8 hard processes, premixed pileup, detector, PUPPI.

    Re-run with the same --out: an interrupted generation resumes; a complete dataset is verified
    file by file against its manifest and its damaged or missing shards are regenerated."""
    from metbench.data.generate.presets import get_preset
    from metbench.data.generate.run import generate_dataset

    spec = get_preset(preset)
    if events_per_process is not None:
        if events_per_process < 1:
            raise MetbenchError(f"--events-per-process must be >= 1, got {events_per_process}")
        spec = spec.scaled(events_per_process)
    with _progress() as progress:
        manifest = generate_dataset(
            spec,
            out,
            seed,
            workers=workers,
            on_progress=_generation_callback(progress),
            scheduler=scheduler,
            on_message=lambda line: err_console.print(
                line, highlight=False, markup=False, soft_wrap=True
            ),
        )
    n = sum(sum(p["events"].values()) for p in manifest["processes"].values())
    console.print(
        f"dataset {manifest['name']} v{manifest['version']} (seed {seed}): {n} events in {out}"
    )


@data_app.command("info")
def data_info(
    folder: Annotated[
        Path, typer.Argument(help="Dataset folder, or a ROOT file (converted on first use)")
    ],
) -> None:
    """Counts per process and split, pileup and multiplicity summaries, speed and disk size (for
    a real file: what it was read from, its stored METs and the columns it lacks)."""
    from metbench.data.report import dataset_info

    if folder.suffix.lower() == ".root":
        from metbench.data.cache import converted_file

        folder = converted_file(folder)
    console.print(dataset_info(folder))


@data_app.command("validate")
def data_validate(
    folder: Annotated[Path, typer.Argument(help="Dataset folder")],
    plots: Annotated[
        Path | None, typer.Option(help="Folder for the mplhep plots (default: FOLDER/validation)")
    ] = None,
    pfnano: Annotated[
        Path | None,
        typer.Option(
            help="CMS PFNano file for the reference figures (default: ../shared/data/pfnano.root)"
        ),
    ] = None,
) -> None:
    """Verify checksums and print the physics sanity figures with their expectations."""
    from metbench.data.report import validate_dataset

    console.print(validate_dataset(folder, plots or folder / "validation", pfnano))


@data_app.command("upgrade")
def data_upgrade(
    folder: Annotated[Path, typer.Argument(help="Dataset folder of an older format")],
) -> None:
    """Convert a dataset folder to the current format in place (format 1 -> 2: truth moves into
    files of its own; nothing is regenerated, every file is verified first; an interrupted
    upgrade resumes with the same command)."""
    from metbench.data.store import MANIFEST_NAME, sha256_file
    from metbench.data.upgrade import upgrade_dataset

    with _progress(transient=True) as progress:
        task = progress.add_task("upgrading", total=None)
        manifest, converted = upgrade_dataset(
            folder, lambda done, total: progress.update(task, completed=done, total=total)
        )
    digest = sha256_file(folder / MANIFEST_NAME)
    state = "converted to" if converted else "already has"
    console.print(
        f"{_escape(folder)}: {state} dataset format {manifest['format_version']}; "
        f"manifest sha256 {digest[:12]}…"
    )


@data_app.command("speed")
def data_speed(
    mu: Annotated[float, typer.Option(help="Mean pileup")] = 50.0,
    events: Annotated[int, typer.Option(help="Events per measurement")] = 100,
    process: Annotated[str, typer.Option(help="Hard process")] = "ttbar_2l2nu",
    pool_size: Annotated[int, typer.Option(help="Minimum-bias pool size for premixing")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed")] = 1,
) -> None:
    """Measure, in one run on one core, generation with premixed pileup against pileup generated
    per event (both including detector simulation and PUPPI)."""
    from metbench.data.report import measure_generation_speed

    console.print(measure_generation_speed(mu, events, process, pool_size, seed))


@data_app.command("provenance")
def data_provenance(
    file: Annotated[Path, typer.Argument(help="CMS NanoAOD / PFNano ROOT file")],
    module: Annotated[
        list[str] | None,
        typer.Option(
            help="Module label to trace (repeatable); default: the stored METs' producers"
        ),
    ] = None,
    depth: Annotated[int, typer.Option(help="How many input levels to follow")] = 2,
) -> None:
    """How the file's stored estimators were made, read from the CMSSW configuration it carries:
    the processes and releases, then each producer with its parameters and inputs."""
    from metbench.data.readers.provenance import (
        STORED_MET_PRODUCERS,
        describe_lineage,
        read_provenance,
    )

    if depth < 0:
        raise MetbenchError(f"--depth must be >= 0, got {depth}")
    processes = read_provenance(file)
    console.print("processes (oldest first):", highlight=False)
    for process in processes:
        console.print(
            f"  {process.name:<10} {process.release:<24} {len(process.modules)} modules",
            highlight=False,
        )
    known = {m for p in processes for m in p.modules}
    wanted = module or [m for m in STORED_MET_PRODUCERS.values() if m in known]
    missing = [m for m in wanted if m not in known]
    if missing:
        raise MetbenchError(f"{file}: no module labelled {', '.join(missing)} in any process")
    names = {label: branch for branch, label in STORED_MET_PRODUCERS.items()}
    for label in wanted:
        title = f"{names[label]} <- {label}" if label in names and not module else label
        console.print(f"\n{title}", highlight=False, markup=False)
        console.print(describe_lineage(processes, label, depth), highlight=False, markup=False)


# ---------------------------------------------------------------- harness commands


_TEXT_COLUMNS = {"entry", "category", "submission", "framework", "variants", "description"}


def _escape(text: object) -> str:
    """Text from users and submissions (entry names such as ``puppi[weights=nolep]``, paths,
    messages) shown as it is, not read as rich markup, with any control character (a terminal
    escape sequence, a carriage return) written as a visible escape (:func:`safe_text`)."""
    from rich.markup import escape

    from metbench.errors import safe_text

    return escape(safe_text(text, None))


def _print_frame(frame: Any, title: str) -> None:
    from rich.table import Table

    from metbench.errors import safe_text

    if frame.empty:
        console.print(f"{title}: nothing to show", markup=False)
        return
    table = Table(title=_escape(title), title_justify="left")
    labelled = not _plain_index(frame)  # a meaningful index (entry names) becomes the first column
    if labelled:
        table.add_column(str(frame.index.name or ""), style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="left" if col in _TEXT_COLUMNS else "right")
    for idx, row in frame.astype(object).iterrows():
        # names such as "perceiver-torch[chunk=1]" are text, not rich markup
        cells = [_escape(v) for v in row.tolist()]
        table.add_row(*([_escape(idx), *cells] if labelled else cells))
    console.print(table)
    for note in frame.attrs.get("notes", []):
        console.print(f"  {safe_text(note, None)}", highlight=False, markup=False)


def _plain_index(frame: Any) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)


def _limits(time_limit: float, memory_limit: float, disk_limit: float) -> Any:
    import math

    from metbench.estimators.isolation import Limits

    values = (time_limit, memory_limit, disk_limit)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise MetbenchError("--time-limit, --memory-limit and --disk-limit must be positive")
    return Limits(time_s=time_limit, memory_gb=memory_limit, disk_gb=disk_limit)


def _progress(transient: bool = False) -> Any:
    """The progress bar of every long command (on stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    )


def _generation_callback(progress: Any, prefix: str = "") -> Callable[[str, int, int], None]:
    """``on_progress`` for dataset generation: one bar per stage (pileup pool, event shards)."""
    tasks: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            label = {"pool": "pileup pool shards", "verify": "files verified"}.get(
                stage, "event shards"
            )
            tasks[stage] = progress.add_task(prefix + label, total=total)
        progress.update(tasks[stage], completed=done)

    return on_progress


def _resolve_dataset_with_progress(dataset: str | None) -> Path:
    from metbench.data.cache import resolve_dataset

    with _progress(transient=True) as progress:
        callback = _generation_callback(progress, f"generating {dataset or 'mini'}: ")
        return resolve_dataset(dataset, on_progress=callback)


def _entries(
    submission: Path, variant: str | None, params: list[str] | None, dataset: str | None = None
) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """The submission and its entries; ``dataset`` (a dataset's name) applies the manifest's
    ``[datasets.<name>]`` parameters."""
    from metbench.estimators.submission import load_submission, parse_parameter

    sub = load_submission(submission)
    overrides = dict(parse_parameter(p) for p in params or [])
    return sub, sub.entries(variant, overrides, dataset)


def _throughput_settings(enabled: bool, duration: float, batch_sizes: str) -> Any:
    from metbench.scoring.throughput import ThroughputSettings

    if not enabled:
        return None
    try:
        sizes = tuple(int(x) for x in batch_sizes.split(",") if x.strip())
    except ValueError:
        raise MetbenchError(
            f"--batch-sizes {batch_sizes!r} must be integers separated by commas"
        ) from None
    if not sizes or min(sizes) < 1 or duration <= 0:
        raise MetbenchError(
            "--batch-sizes must be positive integers and --throughput-duration positive"
        )
    return ThroughputSettings(batch_sizes=sizes, min_duration_s=duration)


DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Dataset folder or preset (mini, standard, pu200); default: mini, generated on first "
        "use into $METBENCH_DATA (default ~/.cache/metbench)",
    ),
]
SplitOpt = Annotated[str, typer.Option(help="Split: train, val or test")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda")]
VariantOpt = Annotated[str | None, typer.Option(help="Run one variant of the submission only")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="Override a parameter: key=value (repeatable)")
]
TimeOpt = Annotated[float, typer.Option(help="Time limit of the submission's process [s]")]
MemoryOpt = Annotated[float, typer.Option(help="Memory limit of the submission's process [GiB]")]
DiskOpt = Annotated[
    float,
    typer.Option(
        help="Disk limit of what the submission's process writes in its private folder [GiB]"
    ),
]
NoSandboxOpt = Annotated[
    bool,
    typer.Option(
        "--no-sandbox",
        help="Run the submission's process without a sandbox (only for code you trust: it then "
        "sees and may change everything you may)",
    ),
]


def _say(line: str) -> None:
    """A line for the user on stderr, printed as it is (above any progress bar), control
    characters escaped."""
    from metbench.errors import safe_text

    err_console.print(safe_text(line, None), highlight=False, markup=False, soft_wrap=True)


def _check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise MetbenchError(f"--device must be cpu or cuda, got {device!r}")


@app.command("run")
def run_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder (submissions/<name>)")],
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
    device: DeviceOpt = "cpu",
    force: Annotated[
        bool, typer.Option(help="Redo predictions and scores even if up to date")
    ] = False,
    results: Annotated[Path, typer.Option(help="Results folder")] = Path("results"),
    variant: VariantOpt = None,
    param: ParamOpt = None,
    time_limit: TimeOpt = 3600.0,
    memory_limit: MemoryOpt = 8.0,
    disk_limit: DiskOpt = 20.0,
    throughput: Annotated[bool, typer.Option(help="Measure throughput")] = True,
    throughput_duration: Annotated[
        float, typer.Option(help="Seconds per batch size, at least")
    ] = 2.0,
    batch_sizes: Annotated[str, typer.Option(help="Throughput batch sizes")] = "1,64,1024",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples (>= 200, or 0)")] = 200,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="A running Dask scheduler (tcp://host:port): predict the files on its workers "
            "(they must see the dataset and --results); default: a local child process"
        ),
    ] = None,
    no_sandbox: NoSandboxOpt = False,
) -> None:
    """Predict, measure and score a submission (each variant), then print the headline table."""
    from rich.progress import TaskID

    from metbench.harness import dataset_info, run_entry
    from metbench.results import read_results
    from metbench.scoring.table import headline_table, kinematics_table

    _check_device(device)
    limits = _limits(time_limit, memory_limit, disk_limit)
    tp = _throughput_settings(throughput, throughput_duration, batch_sizes)
    _entries(submission, variant, param)  # a mistake is reported before the dataset is made
    folder = _resolve_dataset_with_progress(dataset)
    info = dataset_info(folder)
    sub, entries = _entries(submission, variant, param, info.name)
    paths = []
    failures: list[str] = []
    for entry, params in entries:
        with _progress(transient=True) as progress:
            from metbench.data.source import EventSource

            total = len(EventSource(folder, split, verify=False))
            task = progress.add_task(f"{entry}: predicting", total=total)

            def on_progress(done: int, task: TaskID = task) -> None:
                progress.update(task, completed=done)

            try:
                path, reused = run_entry(
                    sub, entry, params, info, split, results, device, limits, tp, n_boot, seed,
                    force, on_progress=on_progress, scheduler=scheduler, sandbox=not no_sandbox,
                    on_wait=_say,
                )  # fmt: skip
            except MetbenchError as exc:
                if len(entries) == 1:
                    raise
                failures.append(entry)  # the other variants still run
                err_console.print(
                    f"[bold red]error:[/] {_escape(exc)}", highlight=False, soft_wrap=True
                )
                continue
        err_console.print(
            f"{entry}: {'up to date' if reused else 'scored'} -> {path}",
            highlight=False,
            markup=False,
        )
        paths.append(path)
    if paths:
        documents = [read_results(p) for p in paths]
        _print_frame(headline_table(documents), f"{info.name} ({info.key}), split {split}")
        kinematics = kinematics_table(documents)
        if len(kinematics):
            _print_frame(
                kinematics, f"{info.name}, split {split}: tt -> 2l2nu neutrino reconstruction"
            )
    if failures:
        raise MetbenchError(
            f"{len(failures)} of {len(entries)} entries failed: {', '.join(failures)}"
        )


@app.command("train")
def train_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder (submissions/<name>)")],
    dataset: Annotated[
        str, typer.Option(help="Dataset folder or preset whose train/val splits are used")
    ] = "standard",
    variant: VariantOpt = None,
    param: ParamOpt = None,
    device: DeviceOpt = "cpu",
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs")] = 30,
    patience: Annotated[
        int, typer.Option(min=1, help="Early stopping: epochs without improvement")
    ] = 5,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and shuffling")] = 1,
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

    _check_device(device)
    if init_weights is not None and not init_weights.is_file():
        raise MetbenchError(
            f"--init-weights {init_weights}: no such file; give a weights file of the entry "
            "(e.g. one listed under weights in its metbench.toml)"
        )
    overrides = dict(parse_parameter(p) for p in param or [])
    plan = plan_training(submission, variant, overrides, device, init_weights)
    name = plan.submission.manifest.name
    if out is not None:  # a mistake is reported before a preset is generated
        check_training_folder(out, submission, name)
    folder = _resolve_dataset_with_progress(dataset)
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
        _say(
            f"{entry}: {state.epoch} epochs, best val loss {state.best_val_loss:.5g} at epoch "
            f"{state.best_epoch}; weights written in {out} ({submission} unchanged)"
        )
    _say(
        "to make them the submission's weights: metbench adopt "
        f"{shlex.quote(str(submission))} {shlex.quote(str(out))}"
    )
    try:  # what adopt will say, said now: a dry run, nothing is copied
        adopt_training(submission, out, dry_run=True)
    except MetbenchError as exc:
        _say(f"note: adopt will refuse it: {exc}")


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
        _say(
            f"{done.entry}: {', '.join(done.files)} adopted into {submission} (trained on "
            f"{key}{was})"
        )


@app.command("predict")
def predict_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder")],
    out: Annotated[Path, typer.Option(help="Predictions file to write (parquet)")],
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
    device: DeviceOpt = "cpu",
    force: Annotated[bool, typer.Option(help="Redo the predictions even if up to date")] = False,
    variant: VariantOpt = None,
    param: ParamOpt = None,
    time_limit: TimeOpt = 3600.0,
    memory_limit: MemoryOpt = 8.0,
    disk_limit: DiskOpt = 20.0,
    no_sandbox: NoSandboxOpt = False,
) -> None:
    """Write a submission's predictions: one row per event (event_id, met_x, met_y in GeV)."""
    from metbench.harness import dataset_info, predict_entry

    _check_device(device)
    if not out.name.endswith(".parquet"):
        raise MetbenchError(f"--out {out}: the predictions file must end in .parquet")
    sub, entries = _entries(submission, variant, param)
    if len(entries) > 1:
        names = ", ".join(sorted(sub.manifest.variants))
        raise MetbenchError(f"{submission} has variants ({names}); choose one with --variant")
    info = dataset_info(_resolve_dataset_with_progress(dataset))
    sub, entries = _entries(submission, variant, param, info.name)
    entry, params = entries[0]
    report = predict_entry(
        sub, entry, params, info, split, out, device, _limits(time_limit, memory_limit, disk_limit),
        None, force,
        log_path=out.with_name(out.stem + ".log"), sandbox=not no_sandbox, on_wait=_say,
    )  # fmt: skip
    state = "up to date" if report.get("reused") else f"{report['n_events']} events"
    console.print(f"{entry}: {state} -> {out}", highlight=False, markup=False)


@app.command("score")
def score_cmd(
    predictions: Annotated[Path, typer.Argument(help="Predictions file (parquet)")],
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
    out: Annotated[
        Path | None, typer.Option(help="Results file (default: beside the predictions)")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples (>= 200, or 0)")] = 200,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="The same entry's predictions on the validation split, for the calibrated "
            "figures (default: <entry>.val-predictions.parquet beside the predictions, if any)"
        ),
    ] = None,
) -> None:
    """Score predictions against a dataset split and write a results file."""
    from metbench.data.store import sha256_file
    from metbench.harness import build_results, calibration_path, dataset_info, score_file
    from metbench.results import write_results
    from metbench.scoring.table import headline_table

    info = dataset_info(_resolve_dataset_with_progress(dataset))
    if calibration is None and calibration_path(predictions).is_file():
        calibration = calibration_path(predictions)
    scores, meta = score_file(predictions, info, split, n_boot, seed, calibration)
    name = meta.get("entry") or predictions.name.removesuffix(".parquet").removesuffix(
        ".predictions"
    )
    entry = {
        "name": name,
        "submission": meta.get("submission", name),
        "category": meta.get("category", "submission"),
        "framework": meta.get("framework", "unknown"),
        "content_hash": meta.get("content_hash", sha256_file(predictions)),
        "parameters": meta.get("parameters", {}),
    }
    result = build_results(entry, info, split, predictions, scores)
    target = out or predictions.with_name(f"{name}.json")
    write_results(target, result)
    _print_frame(headline_table([result]), f"{info.name} ({info.key}), split {split}")
    err_console.print(f"results -> {target}", highlight=False, markup=False)


def _load_all(paths: list[Path]) -> list[dict[str, Any]]:
    from metbench.results import find_results, read_results

    return [read_results(p) for p in find_results(paths)]


def _show_tables(results: list[dict[str, Any]], task: str, bins: str | None) -> None:
    from metbench.scoring.table import bins_table, headline_table, kinematics_table

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        d = r["dataset"]
        groups.setdefault((d["name"], d["manifest_sha256"][:12], d["split"]), []).append(r)
    for (name, digest, split), rs in sorted(groups.items()):
        title = f"{name} ({name}-{digest}), split {split}, task {task}"
        if task == "kinematics":
            _print_frame(kinematics_table(rs), title)
            continue
        _print_frame(headline_table(rs, task), title)
        if bins:
            what = "RMS per component of e/R_k - t" if bins == "truth" else "S"
            _print_frame(
                bins_table(rs, bins, task=task), f"{title}: {what} [GeV] in bins of {bins}"
            )


@app.command("show")
def show_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Results files or folders")],
    task: Annotated[
        str,
        typer.Option(
            help="met (against generator MET), recoil (Z -> mu mu) or kinematics (tt -> 2l2nu neutrinos)"
        ),
    ] = "met",
    bins: Annotated[
        str | None,
        typer.Option(help="Also print the headline figure in bins: truth, n_pu, n_pv, process"),
    ] = None,
) -> None:
    """Print the headline table of results files (ranked; overlapping intervals are ties)."""
    if task not in ("met", "recoil", "kinematics"):
        raise MetbenchError(f"--task must be met, recoil or kinematics, got {task!r}")
    results = _load_all(paths)
    if not results:
        raise MetbenchError(f"no results files in {', '.join(map(str, paths))}")
    _show_tables(results, task, bins)


@app.command("new")
def new_cmd(
    name: Annotated[str, typer.Argument(help="The entry's name (e.g. my-met)")],
    framework: Annotated[str, typer.Option(help="numpy, torch, keras or onnx")] = "numpy",
    into: Annotated[Path, typer.Option(help="Where the folder goes")] = Path("submissions"),
) -> None:
    """Write a submission folder that runs as it is: manifest, class, README and a test."""
    from metbench.estimators.template import new_submission

    folder = new_submission(name, framework, into)
    _say(
        f"wrote {folder}/ (metbench.toml, README.md, the class, a test); try: "
        f"metbench run {folder} --dataset mini"
    )


@app.command("list")
def list_cmd(
    results: Annotated[Path, typer.Option(help="Results folder")] = Path("results"),
    submissions: Annotated[Path, typer.Option(help="Submissions folder")] = Path("submissions"),
) -> None:
    """List the submissions and print the headline table of every result."""
    import pandas as pd

    from metbench.estimators.submission import MANIFEST_FILE, load_submission

    rows = []
    if submissions.is_dir():
        for folder in sorted(p.parent for p in submissions.glob(f"*/{MANIFEST_FILE}")):
            try:
                sub = load_submission(folder)
            except MetbenchError as exc:
                with contextlib.suppress(MetbenchError):  # valid, but its weights are to come
                    untrained = load_submission(folder, require_weights=False)
                    if untrained.manifest.trainable:
                        m = untrained.manifest
                        rows.append(
                            {
                                "submission": m.name,
                                "category": f"{m.category} (untrained)",
                                "framework": m.framework,
                                "variants": ", ".join(m.variants) or "—",
                                "description": f"{m.description}; no weights yet: metbench "
                                f"train {folder}, then metbench adopt the training",
                            }
                        )
                        continue
                rows.append(
                    {
                        "submission": folder.name,
                        "category": "INVALID",
                        "framework": "",
                        "variants": "",
                        "description": str(exc),
                    }
                )
                continue
            m = sub.manifest
            rows.append(
                {
                    "submission": m.name,
                    "category": m.category,
                    "framework": m.framework,
                    "variants": ", ".join(m.variants) or "—",
                    "description": m.description,
                }
            )
    _print_frame(pd.DataFrame(rows), f"submissions in {submissions}")
    if results.is_dir():
        found = _load_all([results])
        if found:
            _show_tables(found, "met", None)
            return
    console.print(f"no results in {results} yet: try `metbench run submissions/puppi`")


@bench_app.command("scoring")
def bench_scoring(
    events: Annotated[int, typer.Option(help="Events scored")] = 1_000_000,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples")] = 200,
) -> None:
    """Time the scoring: every figure and task (MET, fake MET, recoil) and the calibrated variant,
    with shared bootstrap resamples."""
    from metbench.speed import time_scoring

    if events < 10:
        raise MetbenchError("--events must be >= 10")
    if n_boot and n_boot < 200:
        raise MetbenchError(f"--n-boot must be 0 or at least 200, got {n_boot}")
    r = time_scoring(events, n_boot)
    console.print(
        f"scoring {r['n_events']:,} events with {r['n_boot']} bootstrap resamples (every figure, "
        f"the recoil and fake-MET tasks, the calibrated variant): {r['seconds']:.2f} s "
        f"({r['n_events'] / r['seconds']:,.0f} events/s)"
    )


@bench_app.command("robustness")
def bench_robustness(
    predictions: Annotated[Path, typer.Argument(help="Predictions file (parquet)")],
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
) -> None:
    """S and CMS's quantile figure of some predictions when they are gamed: zeroed below a
    threshold, shrunk where small, scaled, flipped (metbench.scoring.robustness)."""
    from metbench.estimators.predictions import read_predictions
    from metbench.harness import dataset_info
    from metbench.scoring.robustness import robustness_table
    from metbench.scoring.score import align_predictions, load_truth

    info = dataset_info(_resolve_dataset_with_progress(dataset))
    event_id, met, _, meta = read_predictions(predictions)
    truth = load_truth(info.folder, split)
    index = align_predictions(event_id, truth, str(predictions))
    name = meta.get("entry", predictions.name)
    _print_frame(
        robustness_table(met[index], truth),
        f"{name} on {info.name} ({info.key}), split {split}: the headline under tricks",
    )


@bench_app.command("baseline")
def bench_baseline(
    submission: Annotated[Path, typer.Argument(help="Submission folder")] = Path("submissions/pf"),
    dataset: DatasetOpt = None,
    batch_size: Annotated[int, typer.Option(help="Events per call")] = 1024,
    duration: Annotated[float, typer.Option(help="Seconds of measurement, at least")] = 3.0,
) -> None:
    """An estimator's throughput against a bare NumPy sum over the same padded arrays, measured
    alternately in one process (the harness's overhead floor)."""
    from dataclasses import replace

    from metbench.data.source import EventSource
    from metbench.estimators.submission import load_submission
    from metbench.harness import build_estimator
    from metbench.speed import versus_numpy_sum

    sub = load_submission(submission)
    (entry, params), *_ = sub.entries()
    folder = _resolve_dataset_with_progress(dataset)
    batch = next(iter(EventSource(folder, "test", batch_size, sub.manifest.max_particles)))
    batch = replace(batch, truth={k: batch.truth[k] for k in sub.manifest.uses_truth})
    r = versus_numpy_sum(build_estimator(sub, entry, params), batch, duration)
    console.print(
        f"{entry} on {r['batch_size']} events of {folder.name}: {r['estimator_events_per_s']:,.0f} events/s; "
        f"bare numpy sum {r['numpy_sum_events_per_s']:,.0f} events/s; time ratio {r['time_ratio']:.2f}"
    )


@bench_app.command("loading")
def bench_loading(
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
    batch_size: Annotated[int, typer.Option(help="Events per batch")] = 1024,
) -> None:
    """The loader's throughput (padded batches with their jagged view) against a plain pyarrow
    read of the same files, best of three each, alternately in one process."""
    from metbench.speed import loading_versus_pyarrow

    if batch_size < 1:
        raise MetbenchError(f"--batch-size must be >= 1, got {batch_size}")
    folder = _resolve_dataset_with_progress(dataset)
    r = loading_versus_pyarrow(folder, split, batch_size)
    console.print(
        f"loading {r['n_events']:,} events of {folder.name} ({split}): metbench's loader "
        f"{r['source_events_per_s']:,.0f} events/s, plain pyarrow read "
        f"{r['pyarrow_events_per_s']:,.0f} events/s: {r['ratio']:.2f}x of the bare read"
    )


@bench_app.command("scaling")
def bench_scaling(
    submission: Annotated[Path, typer.Argument(help="Submission folder")],
    dataset: DatasetOpt = None,
    variant: VariantOpt = None,
    sizes: Annotated[
        str, typer.Option(help="Candidate counts (default: 1/8, 1/4, 1/2 and all of the event's)")
    ] = "",
    duration: Annotated[float, typer.Option(help="Seconds per size, at least")] = 1.0,
) -> None:
    """Per-event latency at batch 1 against the number of candidates N: the busiest event of the
    test split, cut to its N hardest candidates (does the cost grow linearly in N?)."""
    import numpy as np
    import pandas as pd

    from metbench.data.source import EventSource
    from metbench.harness import build_estimator
    from metbench.speed import latency_by_candidates

    sub, entries = _entries(submission, variant, None)
    entry, params = entries[0]
    folder = _resolve_dataset_with_progress(dataset)
    source = EventSource(folder, "test", batch_size=256, max_particles=sub.manifest.max_particles)
    busiest = None
    for batch in source:
        i = int(np.argmax(batch.mask.sum(1)))
        if busiest is None or batch.mask[i].sum() > busiest.mask.sum():
            busiest = batch.take(slice(i, i + 1)).for_estimator()
    if busiest is None:
        raise MetbenchError(f"{folder}: the test split has no events to time")
    n_max = int(busiest.mask.sum())
    try:
        chosen = (
            [int(x) for x in sizes.split(",")]
            if sizes
            else sorted({max(n_max // k, 1) for k in (8, 4, 2, 1)})
        )
    except ValueError:
        raise MetbenchError(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    if min(chosen) < 1:
        raise MetbenchError(f"--sizes must be positive candidate counts, got {sizes!r}")
    try:
        rows = latency_by_candidates(build_estimator(sub, entry, params), busiest, chosen, duration)
    except ValueError as exc:
        raise MetbenchError(f"{entry}: {exc}") from None
    frame = pd.DataFrame(rows).set_index("n_candidates")
    slope, intercept = np.polyfit(frame.index.to_numpy(float), frame["median_ms"].to_numpy(), 1)
    _print_frame(
        frame.round(3), f"{entry}: latency at batch 1 on {folder.name} ({n_max} candidates at most)"
    )
    console.print(
        f"linear fit: {intercept:.2f} ms + {1e3 * slope:.2f} us x N; "
        f"latency ratio largest/smallest N {frame['median_ms'].iloc[-1] / frame['median_ms'].iloc[0]:.2f} "
        f"for an N ratio of {frame.index[-1] / frame.index[0]:.1f}",
        highlight=False,
    )


@app.command("verify")
def verify_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Results files or folders")],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Dataset folder (or name under $METBENCH_DATA) to re-score against (default: "
            "the recorded path, else $METBENCH_DATA/<name>)",
        ),
    ] = None,
    rescore: Annotated[
        bool,
        typer.Option(help="Re-score the predictions (--no-rescore: check their sha256 only)"),
    ] = True,
) -> None:
    """Check results files against their predictions: the predictions' sha256, then the scores
    recomputed from them on the recorded dataset with the recorded settings. One line per file;
    exit status 1 if any fails."""
    from metbench.results import find_results
    from metbench.verify import verify_results

    files = find_results(paths)
    if not files:
        raise MetbenchError(f"no results files in {', '.join(map(str, paths))}")
    failed = 0
    for path in files:
        check = verify_results(path, dataset, rescore)
        failed += not check.ok
        console.print(check.line(), highlight=False, markup=False, soft_wrap=True)
    err_console.print(
        f"{len(files)} results: {len(files) - failed} ok, {failed} failed",
        highlight=False,
        markup=False,
    )
    if failed:
        raise typer.Exit(1)


@leaderboard_app.command("build")
def leaderboard_build(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Results files or folders (default: leaderboard/results)"),
    ] = None,
    out: Annotated[Path, typer.Option(help="Site folder to write")] = Path("leaderboard/site"),
    submissions: Annotated[
        Path, typer.Option(help="Submissions folder (for the entries' READMEs)")
    ] = Path("submissions"),
    rescore: Annotated[
        bool,
        typer.Option(
            help="Re-score each result whose dataset is on this machine (--no-rescore: check the "
            "predictions' sha256 only; faster, no result is marked verified)"
        ),
    ] = True,
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail (and write nothing) if a result fails verification, instead of leaving it "
            "out with a warning"
        ),
    ] = False,
    speed: Annotated[
        Path,
        typer.Option(help="asv results across commits (benchmarks/history.py) for speed.html"),
    ] = Path("leaderboard/speed"),
) -> None:
    """Build the static site (open OUT/index.html from the folder or serve it; nothing is loaded
    from the network). Every result is verified first (`metbench verify`): one that fails is left
    out; those re-scored here are marked verified."""
    from metbench.leaderboard import build_site
    from metbench.leaderboard.build import verify_for_site

    paths = paths or [Path("leaderboard/results")]
    if rescore:
        err_console.print("verifying: re-scoring each result whose dataset is here…", markup=False)
    results, marks, failures = verify_for_site(paths, rescore=rescore)
    for check in failures:
        err_console.print(
            f"warning: left out: {check.line().removeprefix('FAILED').strip()}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if failures and strict:
        raise MetbenchError(
            f"{len(failures)} results failed verification (first: {failures[0].path}); fix or "
            "remove them, or build without --strict to leave them out"
        )
    if not results:
        raise MetbenchError(f"no verifiable results files in {', '.join(map(str, paths))}")
    index = build_site(results, out, submissions, verification=marks, speed=speed)
    verified = sum(m["status"] == "verified" for m in marks)
    err_console.print(
        f"{len(results)} results ({verified} re-scored and verified, {len(results) - verified} "
        f"predictions checked only, {len(failures)} left out) -> {index}",
        highlight=False,
        markup=False,
    )


@app.command("compare")
def compare_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder")],
    stored: Annotated[
        str,
        typer.Option(help="Stored estimator to compare with (e.g. RawMET, DeepMETResolutionTune)"),
    ],
    dataset: DatasetOpt = None,
    variant: VariantOpt = None,
    param: ParamOpt = None,
    tolerance: Annotated[
        float, typer.Option(help="Relative |MET| agreement counted as a match")
    ] = 0.01,
    resample: Annotated[
        int,
        typer.Option(
            help="Also rerun the entry N times with what PFNano does not store (d0, dz, fromPV of "
            "soft charged candidates) drawn anew, and print the spread this leaves"
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of --resample")] = 1,
) -> None:
    """Per event, an entry's MET against a MET stored in a real file (|MET| ratio and delta phi):
    how well a reimplementation reproduces what the experiment's software computed."""
    import tempfile

    import numpy as np
    import pandas as pd

    from metbench.data.source import EventSource
    from metbench.estimators.predictions import read_predictions
    from metbench.harness import dataset_info, predict_entry

    sub, entries = _entries(submission, variant, param)
    if len(entries) > 1:
        raise MetbenchError(
            f"{submission} has variants ({', '.join(sub.manifest.variants)}); choose one with --variant"
        )
    entry, params = entries[0]
    if resample < 0:
        raise MetbenchError(f"--resample must be >= 0, got {resample}")
    info = dataset_info(_resolve_dataset_with_progress(dataset))
    columns = [f"stored_{stored}_x", f"stored_{stored}_y"]
    source = EventSource(info.folder, "test", verify=True)
    import awkward as ak

    try:
        parts = list(source.iter_files(["event_id", *columns]))
        arr = ak.concatenate(parts) if len(parts) > 1 else parts[0]
        ref = np.stack([ak.to_numpy(arr[c]).astype(np.float64) for c in columns], 1)
    except Exception:
        raise MetbenchError(f"{info.folder}: the dataset stores no {stored}") from None
    spread = _resampled_ratios(sub, entry, params, info.folder, resample, seed) if resample else {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.predictions.parquet"
        predict_entry(sub, entry, params, info, "test", out)
        event_id, met, _, _ = read_predictions(out)
    order = np.argsort(event_id)
    pos = order[np.searchsorted(event_id[order], ak.to_numpy(arr["event_id"]))]
    met = met[pos]
    ratio = np.hypot(met[:, 0], met[:, 1]) / np.hypot(ref[:, 0], ref[:, 1])
    dphi = np.angle(
        np.exp(1j * (np.arctan2(met[:, 1], met[:, 0]) - np.arctan2(ref[:, 1], ref[:, 0])))
    )
    frame = pd.DataFrame(
        {
            "event_id": ak.to_numpy(arr["event_id"]),
            f"{stored} [GeV]": np.round(np.hypot(ref[:, 0], ref[:, 1]), 2),
            f"{entry} [GeV]": np.round(np.hypot(met[:, 0], met[:, 1]), 2),
            "ratio - 1": np.round(ratio - 1, 4),
            "Δφ [rad]": np.round(dphi, 4),
        }
    )
    if resample:
        ids = ak.to_numpy(arr["event_id"])
        rows = np.stack([spread[int(e)] for e in ids]) / np.hypot(ref[:, 0], ref[:, 1])[:, None] - 1
        low, mid, high = np.percentile(rows, [0, 50, 100], axis=1)
        frame["resampled min"], frame["median"], frame["max"] = (
            np.round(low, 4),
            np.round(mid, 4),
            np.round(high, 4),
        )
    _print_frame(frame, f"{entry} against {stored} on {info.name}")
    within = int(np.sum(np.abs(ratio - 1) < tolerance))
    console.print(
        f"{within} of {len(frame)} events within {tolerance:.1%} in |MET|; median |ratio - 1| "
        f"{np.median(np.abs(ratio - 1)):.2%}; max |Δφ| {np.max(np.abs(dphi)):.3f} rad"
    )
    if resample:
        wide = int(np.sum(high - low > tolerance))
        inside = int(np.sum((low <= 0) & (high >= 0)))
        console.print(
            f"with the unstored inputs drawn {resample} times: |MET| moves by more than "
            f"{tolerance:.1%} in {wide} of {len(frame)} events; the stored value lies inside the "
            f"resampled range in {inside} of {len(frame)}"
        )


def _resampled_ratios(
    sub: Any, entry: str, params: dict[str, Any], folder: Path, n: int, seed: int
) -> dict[int, Any]:
    """event_id -> the entry's |MET| [GeV] on ``n`` batches with the unstored inputs redrawn."""
    import numpy as np

    from metbench.data.readers.cms import resample_unstored
    from metbench.data.source import EventSource
    from metbench.harness import build_estimator

    estimator = build_estimator(sub, entry, params)
    rng = np.random.default_rng(seed)
    out: dict[int, Any] = {}
    source = EventSource(folder, "test", batch_size=sub.manifest.batch_size, verify=False)
    redrawn = 0
    for batch in source:
        seen = batch.for_estimator()
        draws = [resample_unstored(seen, rng) for _ in range(n)]
        redrawn += int(np.sum(draws[0].particles != seen.particles))
        met = np.stack([np.hypot(*estimator.predict(draw).T) for draw in draws], 1)
        out.update(zip(batch.event["event_id"].astype(int).tolist(), met, strict=True))
    if redrawn == 0:
        raise MetbenchError(
            f"{folder}: no charged candidate without track details (d0 = dz = -1), so there is "
            "nothing to redraw; --resample applies to datasets read from PFNano files"
        )
    return out


#: What every command prints on Ctrl-C (exit status 130): its work so far is kept.
_INTERRUPTED = "interrupted; the same command resumes"


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        status = app(standalone_mode=False)
    except MetbenchError as exc:
        err_console.print(f"[bold red]error:[/] {_escape(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(_INTERRUPTED, highlight=False, markup=False)
        sys.exit(130)
    except typer.Abort:
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    # typer turns Ctrl-C into Exit(130), which click returns outside standalone mode
    if status == 130:
        err_console.print(_INTERRUPTED, highlight=False, markup=False)
        sys.exit(130)
    if isinstance(status, int) and status:
        sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
