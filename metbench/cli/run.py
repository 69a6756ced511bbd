"""``metbench run``, ``predict`` and ``score``: a submission's predictions and their results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from metbench.cli.common import (
    DatasetOpt,
    DeviceOpt,
    DiskOpt,
    MemoryOpt,
    NoSandboxOpt,
    ParamOpt,
    SplitOpt,
    TimeOpt,
    VariantOpt,
    app,
    check_device,
    console,
    err_console,
    escape_text,
    limits_from,
    load_entries,
    print_frame,
    progress_bar,
    resolve_dataset_with_progress,
    say,
    throughput_settings,
)
from metbench.errors import MetbenchError

__all__ = ["predict_cmd", "run_cmd", "score_cmd"]


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
    throughput_only: Annotated[
        bool,
        typer.Option(
            help="Measure the throughput again on --device of this machine and add it to the "
            "existing, current results as a row of its own (a GPU's, another machine's); "
            "nothing is predicted or scored"
        ),
    ] = False,
) -> None:
    """Predict, measure and score a submission (each variant), then print the headline table."""
    from rich.progress import TaskID

    from metbench.harness import dataset_info, run_entry
    from metbench.results import load_results
    from metbench.scoring.table import headline_table, kinematics_table

    check_device(device)
    limits = limits_from(time_limit, memory_limit, disk_limit)
    tp = throughput_settings(throughput, throughput_duration, batch_sizes)
    if throughput_only and tp is None:
        raise MetbenchError("--throughput-only measures throughput: drop --no-throughput")
    load_entries(submission, variant, param)  # a mistake is reported before the dataset is made
    folder = resolve_dataset_with_progress(dataset)
    info = dataset_info(folder)
    sub, entries = load_entries(submission, variant, param, info.name)
    if throughput_only:
        _add_throughput(sub, entries, info, split, results, device, limits, tp, not no_sandbox)
        return
    paths = []
    failures: list[str] = []
    for entry, params in entries:
        with progress_bar(transient=True) as progress:
            from metbench.data.source import EventSource

            total = len(EventSource(folder, split, verify=False))
            task = progress.add_task(f"{escape_text(entry)}: predicting", total=total)

            def on_progress(done: int, task: TaskID = task) -> None:
                progress.update(task, completed=done)

            try:
                path, reused = run_entry(
                    sub, entry, params, info, split, results, device, limits, tp, n_boot, seed,
                    force, on_progress=on_progress, scheduler=scheduler, sandbox=not no_sandbox,
                    on_wait=say,
                )  # fmt: skip
            except MetbenchError as exc:
                if len(entries) == 1:
                    raise
                failures.append(entry)  # the other variants still run
                err_console.print(
                    f"[bold red]error:[/] {escape_text(exc)}", highlight=False, soft_wrap=True
                )
                continue
        err_console.print(
            f"{entry}: {'up to date' if reused else 'scored'} -> {path}",
            highlight=False,
            markup=False,
        )
        paths.append(path)
    if paths:
        documents = [load_results(p) for p in paths]
        print_frame(headline_table(documents), f"{info.name} ({info.key}), split {split}")
        kinematics = kinematics_table(documents)
        if len(kinematics):
            print_frame(
                kinematics, f"{info.name}, split {split}: tt -> 2l2nu neutrino reconstruction"
            )
    if failures:
        raise MetbenchError(
            f"{len(failures)} of {len(entries)} entries failed: {', '.join(failures)}"
        )


def _add_throughput(
    sub: Any, entries: list[tuple[str, dict[str, Any]]], info: Any, split: str, results: Path,
    device: str, limits: Any, tp: Any, sandbox: bool,
) -> None:  # fmt: skip
    """``run --throughput-only``: a throughput row per entry, added to its results."""
    from metbench.harness import add_throughput

    for entry, params in entries:
        path, row = add_throughput(
            sub, entry, params, info, split, results, device, tp, limits, sandbox, say
        )
        rates = ", ".join(
            f"batch {b['batch_size']}: {b['events_per_s']:,.0f} events/s"
            for b in row["batches"]
            if "events_per_s" in b
        )
        err_console.print(
            f"{entry}: throughput on {row['device']} ({rates}) added to {path}",
            highlight=False,
            markup=False,
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

    check_device(device)
    if not out.name.endswith(".parquet"):
        raise MetbenchError(f"--out {out}: the predictions file must end in .parquet")
    sub, entries = load_entries(submission, variant, param)
    if len(entries) > 1:
        names = ", ".join(sorted(sub.manifest.variants))
        raise MetbenchError(f"{submission} has variants ({names}); choose one with --variant")
    info = dataset_info(resolve_dataset_with_progress(dataset))
    sub, entries = load_entries(submission, variant, param, info.name)
    entry, params = entries[0]
    report = predict_entry(
        sub, entry, params, info, split, out, device, limits_from(time_limit, memory_limit, disk_limit),
        None, force,
        log_path=out.with_name(out.stem + ".log"), sandbox=not no_sandbox, on_wait=say,
    )  # fmt: skip
    state = "up to date" if report.reused else f"{report.n_events} events"
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
    from metbench.harness import dataset_info, score_predictions
    from metbench.results import write_results
    from metbench.scoring.table import headline_table

    info = dataset_info(resolve_dataset_with_progress(dataset))
    result = score_predictions(predictions, info, split, n_boot, seed, calibration)
    name = result["entry"]["name"]
    target = out or predictions.with_name(f"{name}.json")
    write_results(target, result)
    print_frame(headline_table([result]), f"{info.name} ({info.key}), split {split}")
    err_console.print(f"results -> {target}", highlight=False, markup=False)
