"""The ``metbench`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

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

console = Console(width=None if sys.stdout.isatty() else 140)
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
) -> None:
    """Generate a dataset: Pythia 8 hard processes, premixed pileup, detector, PUPPI."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

    from metbench.data.generate.presets import get_preset
    from metbench.data.generate.run import generate_dataset

    spec = get_preset(preset)
    if events_per_process is not None:
        if events_per_process < 1:
            raise MetbenchError(f"--events-per-process must be >= 1, got {events_per_process}")
        spec = spec.scaled(events_per_process)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "pileup pool shards" if stage == "pool" else "event shards"
                tasks[stage] = progress.add_task(label, total=total)
            progress.update(tasks[stage], completed=done)

        manifest = generate_dataset(spec, out, seed, workers=workers, on_progress=on_progress)
    n = sum(sum(p["events"].values()) for p in manifest["processes"].values())
    console.print(
        f"dataset {manifest['name']} v{manifest['version']} (seed {seed}): {n} events in {out}"
    )


@data_app.command("info")
def data_info(
    folder: Annotated[Path, typer.Argument(help="Dataset folder")],
) -> None:
    """Counts per process and split, pileup and multiplicity summaries, speed and disk size."""
    from metbench.data.report import dataset_info

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


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        app(standalone_mode=False)
    except MetbenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
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


if __name__ == "__main__":  # pragma: no cover
    main()
