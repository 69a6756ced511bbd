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
    generation_callback,
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


@app.command("holdout")
def holdout_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder (submissions/<name>)")],
    dataset: DatasetOpt = None,
    against: Annotated[
        Path | None,
        typer.Option(help="The reference entry's folder (default: the repository's puppi)"),
    ] = None,
    variant: VariantOpt = None,
    events_per_process: Annotated[
        int | None,
        typer.Option(
            help="Fresh events per process (default: the dataset's own, so that S is over the "
            "same |t| bins; fewer is a quick, approximate look)"
        ),
    ] = None,
    fresh_seed: Annotated[
        int | None,
        typer.Option("--seed", help="The fresh dataset's seed (default: a random unpublished one)"),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Where the fresh dataset goes (default: <data home>/holdout/...)"),
    ] = None,
    results: Annotated[Path, typer.Option(help="Results folder")] = Path("results"),
    workers: Annotated[int, typer.Option(help="Generation workers")] = 2,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples (>= 200)")] = 200,
    time_limit: TimeOpt = 3600.0,
    memory_limit: MemoryOpt = 8.0,
    disk_limit: DiskOpt = 20.0,
    no_sandbox: NoSandboxOpt = False,
) -> None:
    """Check that an entry is as good on fresh events as on the published ones: the same preset
    generated with an unpublished seed, S relative to a reference entry on both test splits.

    Exit status 1 when the entry is relatively better on the published events beyond the 95%
    interval (it may have learned the public events themselves)."""
    from metbench.data.cache import data_home
    from metbench.data.generate.run import generate_dataset
    from metbench.data.store import load_manifest
    from metbench.estimators.submission import repository_submissions
    from metbench.harness import dataset_info, run_entry
    from metbench.holdout import (
        check_seed,
        compare_holdout,
        fresh_folder,
        holdout_spec,
        s_ratio,
    )
    from metbench.holdout import fresh_seed as draw_seed
    from metbench.results import load_results

    if n_boot < 200:
        raise MetbenchError(
            f"--n-boot must be at least 200 for the check's intervals, got {n_boot}"
        )
    if against is None:
        repository = repository_submissions()
        if repository is None:
            raise MetbenchError(
                "no repository submissions/ folder: name the reference with --against"
            )
        against = repository / "puppi"
    limits = limits_from(time_limit, memory_limit, disk_limit)
    _, entries = load_entries(submission, variant, None)
    if len(entries) > 1:
        raise MetbenchError(
            f"{submission} has variants ({', '.join(e for e, _ in entries)}); choose one with "
            "--variant"
        )
    load_entries(against, None, None)  # a mistake is reported before anything is generated
    published = resolve_dataset_with_progress(dataset)
    manifest = load_manifest(published)
    settings = manifest.get("settings") or {}
    published_n = int(settings.get("events_per_process", 0))
    spec = holdout_spec(manifest, events_per_process or published_n or None)
    if spec.events_per_process < published_n:
        say(
            f"warning: {spec.events_per_process} fresh events per process against "
            f"{published_n}: S is over each dataset's own |t| bins (>= 20 events), and the "
            "smaller sample drops the highest, so rho moves with how the entry does there "
            "(perceiver-sum on standard at 2000: 0.978 published, 0.848 fresh); a quick look, "
            "not the check"
        )
    taken = manifest.get("seed")
    if fresh_seed is None:
        fresh_seed = draw_seed(spec.name, taken)
    else:
        check_seed(spec.name, fresh_seed, taken)
    out = data or fresh_folder(data_home(), spec, fresh_seed)
    say(
        f"fresh events: {spec.name}, {spec.events_per_process} per process, seed {fresh_seed} -> {out}"
    )
    with progress_bar(transient=True) as progress:
        generate_dataset(
            spec, out, seed=fresh_seed, workers=workers, on_progress=generation_callback(progress)
        )
    ratios = {}
    names: list[str] = []
    for label, folder in (("published", published), ("fresh", out)):
        info = dataset_info(folder)
        docs = []
        # the entry, then the reference's first entry (its default variant)
        for path_, chosen in ((submission, variant), (against, None)):
            sub, found = load_entries(path_, chosen, None, info.name)
            entry, params = found[0]
            path, reused = run_entry(
                sub, entry, params, info, "test", results, limits=limits, throughput=None,
                n_boot=n_boot, sandbox=not no_sandbox, on_wait=say,
            )  # fmt: skip
            say(f"{entry} on the {label} events: {'up to date' if reused else 'scored'} -> {path}")
            docs.append(load_results(path))
            names.append(entry)
        ratios[label] = s_ratio(docs[0], docs[1])
    result = compare_holdout(ratios["published"], ratios["fresh"])
    entry_name, ref_name = names[0], names[1]
    for label in ("published", "fresh"):
        r = ratios[label]
        console.print(
            f"{label:>9}: S {r.s_entry:.2f} / {r.s_reference:.2f} GeV ({entry_name} / {ref_name}) "
            f"= {r.value:.3f} [{r.low:.3f}, {r.high:.3f}]",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    verdict = (
        f"{entry_name} is better on the published events than on fresh ones, relative to "
        f"{ref_name}, beyond the 95% interval: it may have learned the public events themselves"
        if result.failed
        else "consistent: as good on fresh events as on the published ones"
    )
    console.print(
        f"fresh - published: {result.delta:+.3f} [{result.delta_low:+.3f}, {result.delta_high:+.3f}]: {verdict}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if result.failed:
        raise typer.Exit(1)
