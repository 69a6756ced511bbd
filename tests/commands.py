"""What the tests that run ``metbench`` as a user does share: the command in a real subprocess,
the options of a quick run, and the shape of a user error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["assert_error", "assert_one_line_error", "cli", "fast", "popen_cli"]


def cli(
    *args: object,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m metbench.cli ARGS`` in a subprocess (``env`` added to this one's)."""
    return subprocess.run(
        [sys.executable, "-m", "metbench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_cli(*args: object, new_session: bool = False) -> subprocess.Popen[str]:
    """The same, started and not waited for, as a terminal's foreground command: SIGINT at its
    default, whatever this process inherited (a shell without job control starts its ``&``
    commands, a CI script's test run among them, with SIGINT ignored, and an ignored signal stays
    ignored across ``exec``: Python then installs no KeyboardInterrupt handler and Ctrl-C tests
    would wait forever). ``new_session``: in a session of its own, so that the test can signal
    its whole process group as a terminal's Ctrl-C does."""
    return subprocess.Popen(
        [sys.executable, "-m", "metbench.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        preexec_fn=_sigint_as_in_a_terminal,
    )


def fast(results: Path | str) -> list[object]:
    """Options of a quick ``metbench run``: no throughput, no bootstrap."""
    return ["--results", results, "--no-throughput", "--n-boot", "0"]


def assert_error(r: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 2, no traceback, stderr starting with ``error:`` and holding ``fragments``
    (a long line may wrap)."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    text = " ".join(line for line in r.stderr.strip().splitlines() if line.strip())
    assert text.startswith("error:"), r.stderr
    for fragment in fragments:
        assert fragment in text, r.stderr


def assert_one_line_error(r: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """:func:`assert_error` on exactly one line of stderr."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], r.stderr
