"""What every ``metbench`` command shares: the typer applications, the consoles, the options, and
printing tables and progress. The commands themselves are in the sibling modules, one per group;
they parse and print, and leave the work to the library."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

import metbench
from metbench.errors import MetbenchError

if TYPE_CHECKING:
    from metbench.results import Results

__all__ = [
    "INTERRUPTED",
    "DatasetOpt",
    "DeviceOpt",
    "DiskOpt",
    "MemoryOpt",
    "NoSandboxOpt",
    "ParamOpt",
    "SplitOpt",
    "TimeOpt",
    "TrustOpt",
    "VariantOpt",
    "app",
    "bench_app",
    "check_device",
    "console",
    "data_app",
    "err_console",
    "escape_text",
    "generation_callback",
    "leaderboard_app",
    "limits_from",
    "load_all",
    "load_entries",
    "print_frame",
    "progress_bar",
    "resolve_dataset_with_progress",
    "say",
    "show_tables",
    "throughput_settings",
]


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


_TEXT_COLUMNS = {"entry", "category", "submission", "framework", "variants", "description"}


def escape_text(text: object) -> str:
    """Text from users and submissions (entry names such as ``puppi[weights=nolep]``, paths,
    messages) shown as it is, not read as rich markup, with any control character (a terminal
    escape sequence, a carriage return) written as a visible escape (:func:`safe_text`)."""
    from rich.markup import escape

    from metbench.errors import safe_text

    return escape(safe_text(text, None))


def print_frame(frame: Any, title: str) -> None:
    from rich.table import Table

    from metbench.errors import safe_text

    if frame.empty:
        console.print(f"{title}: nothing to show", markup=False)
        return
    table = Table(title=escape_text(title), title_justify="left")
    labelled = not _plain_index(frame)  # a meaningful index (entry names) becomes the first column
    if labelled:
        table.add_column(str(frame.index.name or ""), style="bold")
    for col in frame.columns:
        table.add_column(escape_text(col), justify="left" if col in _TEXT_COLUMNS else "right")
    for idx, row in frame.astype(object).iterrows():
        # names such as "perceiver-torch[chunk=1]" are text, not rich markup
        cells = [escape_text(v) for v in row.tolist()]
        table.add_row(*([escape_text(idx), *cells] if labelled else cells))
    console.print(table)
    for note in frame.attrs.get("notes", []):
        console.print(f"  {safe_text(note, None)}", highlight=False, markup=False)


def _plain_index(frame: Any) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)


def limits_from(time_limit: float, memory_limit: float, disk_limit: float) -> Any:
    import math

    from metbench.estimators.isolation import Limits

    values = (time_limit, memory_limit, disk_limit)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise MetbenchError("--time-limit, --memory-limit and --disk-limit must be positive")
    return Limits(time_s=time_limit, memory_gb=memory_limit, disk_gb=disk_limit)


def progress_bar(transient: bool = False) -> Any:
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


def generation_callback(progress: Any, prefix: str = "") -> Callable[[str, int, int], None]:
    """``on_progress`` for dataset generation: one bar per stage (pileup pool, event shards)."""
    tasks: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            label = {"pool": "pileup pool shards", "verify": "files verified"}.get(
                stage, "event shards"
            )
            tasks[stage] = progress.add_task(escape_text(prefix) + label, total=total)
        progress.update(tasks[stage], completed=done)

    return on_progress


def resolve_dataset_with_progress(dataset: str | None) -> Path:
    from metbench.data.cache import resolve_dataset

    with progress_bar(transient=True) as progress:
        callback = generation_callback(progress, f"generating {dataset or 'mini'}: ")
        return resolve_dataset(dataset, on_progress=callback)


def load_entries(
    submission: Path, variant: str | None, params: list[str] | None, dataset: str | None = None
) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """The submission and its entries; ``dataset`` (a dataset's name) applies the manifest's
    ``[datasets.<name>]`` parameters."""
    from metbench.estimators.submission import load_submission, parse_parameter

    sub = load_submission(submission)
    overrides = dict(parse_parameter(p) for p in params or [])
    return sub, sub.entries(variant, overrides, dataset)


def throughput_settings(enabled: bool, duration: float, batch_sizes: str) -> Any:
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

TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Run a submission (category 'submission') in this process, outside any sandbox "
        "(only for code you trust, e.g. your own)",
    ),
]


def say(line: str) -> None:
    """A line for the user on stderr, printed as it is (above any progress bar), control
    characters escaped."""
    from metbench.errors import safe_text

    err_console.print(safe_text(line, None), highlight=False, markup=False, soft_wrap=True)


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise MetbenchError(f"--device must be cpu or cuda, got {device!r}")


def load_all(paths: list[Path]) -> list[Results]:
    from metbench.results import find_results, load_results

    return [load_results(p) for p in find_results(paths)]


def show_tables(results: list[Results], task: str, bins: str | None) -> None:
    from metbench.scoring.table import bins_table, headline_table, kinematics_table

    groups: dict[tuple[str, str], list[Results]] = {}
    for r in results:
        groups.setdefault((r.dataset.key, r.dataset.split), []).append(r)
    for (key, split), rs in sorted(groups.items()):
        title = f"{rs[0].dataset.name} ({key}), split {split}, task {task}"
        if task == "kinematics":
            print_frame(kinematics_table(rs), title)
            continue
        print_frame(headline_table(rs, task), title)
        if bins:
            what = "RMS per component of e/R_k - t" if bins == "truth" else "S"
            print_frame(bins_table(rs, bins, task=task), f"{title}: {what} [GeV] in bins of {bins}")


#: What every command prints on Ctrl-C (exit status 130): its work so far is kept.
INTERRUPTED = "interrupted; the same command resumes"
