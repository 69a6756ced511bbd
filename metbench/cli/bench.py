"""``metbench bench``: the speed of the harness itself (the figures asv tracks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    DatasetOpt,
    SplitOpt,
    TrustOpt,
    VariantOpt,
    bench_app,
    console,
    load_entries,
    print_frame,
    resolve_dataset_with_progress,
)
from metbench.errors import MetbenchError

__all__ = ["bench_baseline", "bench_loading", "bench_robustness", "bench_scaling", "bench_scoring"]


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

    info = dataset_info(resolve_dataset_with_progress(dataset))
    pred = read_predictions(predictions)
    truth = load_truth(info.folder, split)
    index = align_predictions(pred.event_id, truth, str(predictions))
    name = pred.entry or predictions.name
    print_frame(
        robustness_table(pred.met[index], truth),
        f"{name} on {info.name} ({info.key}), split {split}: the headline under tricks",
    )


@bench_app.command("baseline")
def bench_baseline(
    submission: Annotated[Path, typer.Argument(help="Submission folder")] = Path("submissions/pf"),
    dataset: DatasetOpt = None,
    batch_size: Annotated[int, typer.Option(help="Events per call")] = 1024,
    duration: Annotated[float, typer.Option(help="Seconds of measurement, at least")] = 3.0,
    trust: TrustOpt = False,
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
    estimator = build_estimator(sub, entry, params, trusted=trust)
    folder = resolve_dataset_with_progress(dataset)
    batch = next(iter(EventSource(folder, "test", batch_size, sub.manifest.max_particles)))
    batch = replace(batch, truth={k: batch.truth[k] for k in sub.manifest.uses_truth})
    r = versus_numpy_sum(estimator, batch, duration)
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
    folder = resolve_dataset_with_progress(dataset)
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
    trust: TrustOpt = False,
) -> None:
    """Per-event latency at batch 1 against the number of candidates N: the busiest event of the
    test split, cut to its N hardest candidates (does the cost grow linearly in N?)."""
    import pandas as pd

    from metbench.harness import build_estimator
    from metbench.speed import busiest_event, default_sizes, latency_scaling

    sub, entries = load_entries(submission, variant, None)
    entry, params = entries[0]
    estimator = build_estimator(sub, entry, params, trusted=trust)
    folder = resolve_dataset_with_progress(dataset)
    busiest = busiest_event(folder, "test", sub.manifest.max_particles)
    if busiest is None:
        raise MetbenchError(f"{folder}: the test split has no events to time")
    n_max = int(busiest.mask.sum())
    try:
        chosen = [int(x) for x in sizes.split(",")] if sizes else default_sizes(n_max)
    except ValueError:
        raise MetbenchError(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    if min(chosen) < 1:
        raise MetbenchError(f"--sizes must be positive candidate counts, got {sizes!r}")
    try:
        fit = latency_scaling(estimator, busiest, chosen, duration)
    except ValueError as exc:
        raise MetbenchError(f"{entry}: {exc}") from None
    frame = pd.DataFrame(fit.rows).set_index("n_candidates")
    print_frame(
        frame.round(3), f"{entry}: latency at batch 1 on {folder.name} ({n_max} candidates at most)"
    )
    console.print(
        f"linear fit: {fit.intercept_ms:.2f} ms + {1e3 * fit.slope_ms:.2f} us x N; "
        f"latency ratio largest/smallest N {fit.latency_ratio:.2f} for an N ratio of "
        f"{fit.size_ratio:.1f}",
        highlight=False,
    )
