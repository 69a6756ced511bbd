"""The ``metbench`` command: one module per command group (:mod:`metbench.cli.data`,
:mod:`~metbench.cli.run`, :mod:`~metbench.cli.train`, :mod:`~metbench.cli.results`,
:mod:`~metbench.cli.submissions`, :mod:`~metbench.cli.bench`, :mod:`~metbench.cli.leaderboard`,
:mod:`~metbench.cli.compare`), each registering its commands on :data:`app`."""

from __future__ import annotations

import importlib
import sys

import typer

from metbench.cli.common import INTERRUPTED, app, err_console, escape_text
from metbench.errors import MetbenchError

__all__ = ["app", "main"]

#: The command modules, in the order ``metbench --help`` lists their commands.
COMMAND_MODULES = (
    "run",
    "train",
    "results",
    "submissions",
    "compare",
    "data",
    "bench",
    "leaderboard",
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"metbench.cli.{_name}")


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The classes of command-line usage errors: click's, and those of the copy of click that
    typer 0.29 and later carries inside itself (``typer._click``), which are not click's."""
    types: list[type[Exception]] = []
    try:
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    try:
        from typer._click.exceptions import ClickException  # typer >= 0.29
    except ImportError:
        pass
    else:
        types.append(ClickException)
    return tuple(types)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        status = app(standalone_mode=False)
    except MetbenchError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape_text(exc)}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(INTERRUPTED, highlight=False, markup=False)
        sys.exit(130)
    except typer.Abort:
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors (unknown option, bad value)
        if isinstance(exc, _usage_error_types()):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
    # typer turns Ctrl-C into Exit(130), which click returns outside standalone mode
    if status == 130:
        err_console.print(INTERRUPTED, highlight=False, markup=False)
        sys.exit(130)
    if isinstance(status, int) and status:
        sys.exit(status)
