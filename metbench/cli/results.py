"""``metbench show`` and ``verify``: tables of results files, and checking them against their
predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    app,
    console,
    err_console,
    load_all,
    print_frame,
    show_tables,
)
from metbench.errors import MetbenchError

__all__ = ["show_cmd", "verify_cmd"]


@app.command("show")
def show_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Results files or folders")],
    task: Annotated[
        str,
        typer.Option(
            help="met (against generator MET), recoil (Z -> mu mu), kinematics (tt -> 2l2nu "
            "neutrinos) or covariance (the per-event covariance's pulls and coverage)"
        ),
    ] = "met",
    bins: Annotated[
        str | None,
        typer.Option(
            help="Also print the headline figure in bins: truth, n_pu, n_pv, process; for "
            "--task covariance: sigma (deciles of the predicted resolution), process or truth "
            "(bins of the true |MET|), "
            "computed from the predictions and the dataset"
        ),
    ] = None,
) -> None:
    """Print the headline table of results files: ranked by S, A ahead of B only where the 95%
    interval of the paired bootstrap difference S(B) - S(A) lies above 0, else tied."""
    if task not in ("met", "recoil", "kinematics", "covariance"):
        raise MetbenchError(f"--task must be met, recoil, kinematics or covariance, got {task!r}")
    if task == "covariance":
        show_covariance(paths, bins)
        return
    results = load_all(paths)
    if not results:
        raise MetbenchError(f"no results files in {', '.join(map(str, paths))}")
    show_tables(results, task, bins)


def show_covariance(paths: list[Path], bins: str | None) -> None:
    """The covariance figures of every results file whose entry gives one, and with ``bins``
    their calibration per bin (:mod:`metbench.scoring.pulls`)."""
    from metbench.results import Results, find_results, read_results
    from metbench.scoring.pulls import PULL_BINNINGS, pulls_of_results
    from metbench.scoring.table import covariance_table

    if bins is not None and bins not in PULL_BINNINGS:
        raise MetbenchError(
            f"--bins with --task covariance: {', '.join(PULL_BINNINGS)}, not {bins!r}"
        )
    files = find_results(paths)
    documents = [read_results(f) for f in files]  # each file read once
    results = [Results.from_json(d, str(f)) for d, f in zip(documents, files, strict=True)]
    table = covariance_table(results)
    if table.empty:
        raise MetbenchError(
            f"no results with a covariance in {', '.join(map(str, paths))} (an entry gives one "
            "with predict_uncertainty)"
        )
    print_frame(table, "the per-event covariance: pulls and coverage (1, 1, 0.683, 0.954 if right)")
    if bins is None:
        return
    for path, r, document in zip(files, results, documents, strict=True):
        binned = pulls_of_results(path, by=bins, document=document)
        if binned is not None:
            print_frame(
                binned.round(3),
                f"{r.name} on {r.dataset.name} ({r.dataset.split}) in bins of {bins}; "
                "sigma = det(cov)^(1/4) [GeV]; kurtosis 3 if Gaussian; error_parallel = "
                "median (e - t) along t [GeV]",
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
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Where predictions and dataset check out and the scores differ by rounding only "
            "(the scoring code's arithmetic changed), rewrite them with the recomputed ones",
        ),
    ] = False,
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
        check = verify_results(path, dataset, rescore, update=update)
        failed += not check.ok
        console.print(check.line(), highlight=False, markup=False, soft_wrap=True)
    err_console.print(
        f"{len(files)} results: {len(files) - failed} ok, {failed} failed",
        highlight=False,
        markup=False,
    )
    if failed:
        raise typer.Exit(1)
