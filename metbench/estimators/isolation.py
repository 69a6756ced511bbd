"""Running a submission in a child process with a time and a memory limit.

The child is a fresh interpreter (multiprocessing ``spawn``). The harness watches it: past the
time limit, or with more resident memory (the child and its own children together, sampled every
50 ms) than the memory limit, it is killed. A crash (a signal, ``os._exit``), a hang or a blow-up
of the submission becomes one :class:`~metbench.estimators.submission.SubmissionError` that says
what happened and where the child's log is; the harness itself carries on.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from metbench.estimators.submission import SubmissionError
from metbench.estimators.worker import PredictJob, child_main

__all__ = ["DEFAULT_LIMITS", "Limits", "run_isolated"]

_POLL_S: Final = 0.05


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission run.

    Attributes
    ----------
    time_s
        Wall-clock limit of the whole child (import, prediction, throughput) [s].
    memory_gb
        Resident-memory limit of the child and its children [GiB].
    """

    time_s: float = 3600.0
    memory_gb: float = 8.0


DEFAULT_LIMITS: Final = Limits()


def _rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return int(total)
    except psutil.Error:
        return 0


def _log_tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    tail = [t.strip() for t in text[-lines:] if t.strip()]
    return " | ".join(tail)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def run_isolated(
    job: PredictJob,
    limits: Limits = DEFAULT_LIMITS,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run a prediction job in a child process and return its ``done`` payload (with the
    ``throughput`` list when measured).

    Raises
    ------
    SubmissionError
        The submission failed, crashed, hung past ``limits.time_s`` or used more than
        ``limits.memory_gb``; the message names the submission and the log file.
    """
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    log = Path(job.log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    proc = ctx.Process(
        target=child_main, args=(send, job), name=f"metbench-{job.label}", daemon=True
    )
    start = time.monotonic()
    proc.start()
    send.close()
    limit_bytes = limits.memory_gb * 2**30
    done: dict[str, Any] | None = None
    error: str | None = None
    killed: str | None = None
    throughput = None
    peak = 0

    def handle(message: tuple[Any, ...]) -> None:
        nonlocal done, error, throughput
        kind = message[0]
        if kind == "progress" and on_progress is not None:
            on_progress(int(message[1]))
        elif kind == "error":
            error = str(message[1])
        elif kind == "throughput":
            throughput = message[1]
        elif kind == "done":
            done = dict(message[1])

    try:
        while True:
            try:
                if receive.poll(_POLL_S):
                    handle(receive.recv())
                    continue
            except (EOFError, OSError):
                proc.join(timeout=5)
            if not proc.is_alive():
                break
            rss = _rss(proc.pid) if proc.pid is not None else 0
            peak = max(peak, rss)
            if rss > limit_bytes:
                killed = (
                    f"exceeded its memory limit of {limits.memory_gb:g} GiB "
                    f"(resident {rss / 2**30:.2f} GiB); raise it with --memory-limit"
                )
            elif time.monotonic() - start > limits.time_s:
                killed = (
                    f"exceeded its time limit of {limits.time_s:g} s; raise it with --time-limit"
                )
            if killed:
                proc.kill()
                proc.join(timeout=10)
                break
        while receive.poll(0):  # messages sent just before exiting
            try:
                handle(receive.recv())
            except (EOFError, OSError):
                break
    except BaseException:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
        raise
    finally:
        receive.close()
    proc.join(timeout=10)
    prefix = f"submission {job.label}"
    where = f"; log: {log}"
    if killed:
        raise SubmissionError(f"{prefix} {killed}{where}")
    if error is not None:
        raise SubmissionError(f"{prefix}: {error}{where}")
    code = proc.exitcode
    if code is not None and code < 0:
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        tail = _log_tail(log)
        raise SubmissionError(
            f"{prefix} crashed: killed by {_signal_name(-code)}{hint}"
            f"{'; last log line: ' + tail if tail else ''}{where}"
        )
    if done is None:
        tail = _log_tail(log)
        raise SubmissionError(
            f"{prefix} exited with status {code} before finishing"
            f"{'; last log line: ' + tail if tail else ''}{where}"
        )
    done["peak_rss_mb"] = peak / 2**20
    done["wall_s"] = time.monotonic() - start
    if throughput is not None:
        done["throughput"] = throughput
    return done
