"""``metbench leaderboard build``: the static website."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    err_console,
    leaderboard_app,
)
from metbench.errors import MetbenchError

__all__ = ["leaderboard_build"]


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
