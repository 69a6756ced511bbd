"""``metbench data``: generate, inspect, validate, upgrade and trace datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    console,
    data_app,
    err_console,
    escape_text,
    generation_callback,
    progress_bar,
)
from metbench.errors import MetbenchError

__all__ = [
    "data_generate",
    "data_info",
    "data_provenance",
    "data_speed",
    "data_upgrade",
    "data_validate",
]


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
    process: Annotated[
        list[str] | None,
        typer.Option(
            "--process",
            help="Only this process's files (repeat for more), checked against the published "
            "manifest (a published preset and seed); a later run without it adds the rest",
        ),
    ] = None,
) -> None:
    """Generate a dataset: Pythia 8 hard processes, premixed pileup, detector, PUPPI.

    Re-run with the same --out: an interrupted generation resumes; a complete dataset is verified
    file by file against its manifest and its damaged or missing shards are regenerated. With
    --process (for a training on some processes only), the files of those processes alone, in a
    folder with the whole published manifest."""
    from metbench.data.generate.presets import get_preset
    from metbench.data.generate.run import generate_dataset
    from metbench.data.report import missing_files

    process = process or None  # typer gives [] for an option not given
    spec = get_preset(preset)
    if events_per_process is not None:
        spec = spec.scaled(events_per_process)
    with progress_bar() as progress:
        manifest = generate_dataset(
            spec,
            out,
            seed,
            workers=workers,
            on_progress=generation_callback(progress),
            scheduler=scheduler,
            on_message=lambda line: err_console.print(
                line, highlight=False, markup=False, soft_wrap=True
            ),
            processes=process,
        )
    wanted = list(manifest["processes"] if process is None else dict.fromkeys(process))
    n = sum(sum(manifest["processes"][p]["events"].values()) for p in wanted)
    line = f"dataset {manifest['name']} v{manifest['version']} (seed {seed}): {n} events"
    if process is not None:
        line += f" of {', '.join(wanted)}"
    line += f" in {out}"
    missing = set(missing_files(out, manifest).values())
    rest = [p for p in manifest["processes"] if p in missing]
    if rest:
        line += (
            f" (the files of {', '.join(rest)} are missing: the same command without --process "
            "adds them)"
        )
    console.print(line, highlight=False, markup=False)


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

    with progress_bar(transient=True) as progress:
        task = progress.add_task("upgrading", total=None)
        manifest, converted = upgrade_dataset(
            folder, lambda done, total: progress.update(task, completed=done, total=total)
        )
    digest = sha256_file(folder / MANIFEST_NAME)
    state = "converted to" if converted else "already has"
    console.print(
        f"{escape_text(folder)}: {state} dataset format {manifest['format_version']}; "
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
