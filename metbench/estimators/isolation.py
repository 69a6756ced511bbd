"""Running a submission in a sandboxed child process with a time and a memory limit.

The child is a fresh interpreter, ``python -m metbench.estimators.child``, run in the sandbox of
:mod:`metbench.estimators.sandbox` (bubblewrap, else unshare; none only when asked) as the leader
of its own session and process group. It gets its job as a JSON file and talks back through a pipe
of newline-delimited JSON messages, each at most :data:`MESSAGE_CAP` bytes: nothing it sends is
unpickled or executed. Its standard output and error go to its log through the parent, which keeps
the first and the last :data:`LOG_CAP` bytes and a line saying how many were dropped in between.

The harness watches it: past the time limit, with more resident memory (the child and all its
descendants, sampled every 50 ms) than the memory limit, or when interrupted, the whole process
group and every descendant seen are killed; :data:`GRACE_S` after the child reported that it is
done, whatever is still running (a thread that never ends, a forgotten subprocess) is killed too,
and the run counts. A crash (a signal, ``os._exit``), a hang or a blow-up of the submission becomes
one :class:`~metbench.estimators.submission.SubmissionError` that says what happened and where the
log is; the harness itself carries on. The child dies with the harness (``--die-with-parent`` in
bubblewrap, ``PR_SET_PDEATHSIG`` otherwise).

The child writes its parts (``part_XXXXX.parquet``) in its private ``out/`` folder only. When it
has ended, however it ended, the parent takes each part that is a regular file of a sane size,
reads it (:func:`~metbench.estimators.predictions.read_predictions`), checks that its identity
metadata is the job's and its event ids exactly those of its dataset file, and moves it into
``job.parts_dir`` (the resume state); anything else is rejected. Then the private folder goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.errors import MetbenchError
from metbench.estimators.sandbox import (
    SANDBOX_ROOT,
    Bind,
    available_sandbox,
    child_environment,
    python_binds,
    sandbox_command,
)
from metbench.estimators.submission import SubmissionError
from metbench.estimators.worker import PredictJob, job_to_json

__all__ = [
    "DEFAULT_LIMITS",
    "GRACE_S",
    "LOG_CAP",
    "MESSAGE_CAP",
    "Limits",
    "run_isolated",
    "weakest_isolation",
]

_POLL_S: Final = 0.05
#: Seconds the child may take to exit after it reported that it is done.
GRACE_S: Final = 5.0
#: Bytes of the child's output kept at the start and at the end of its log.
LOG_CAP: Final = 2**20
#: Longest message (one JSON line) the child may send [bytes].
MESSAGE_CAP: Final = 2**20
_PART: Final = re.compile(r"^part_(\d{5})\.parquet$")
_PR_SET_PDEATHSIG: Final = 1


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

_STRENGTH: Final = ("none", "unshare", "bubblewrap")


def weakest_isolation(*records: Any) -> dict[str, Any] | None:
    """The weakest of some ``isolation`` records (``{"sandbox": ..., "sandboxed": ...}``, as
    :func:`run_isolated` reports them): what a result made of several runs can claim. None if
    none is known."""
    known = [r for r in records if isinstance(r, dict) and r.get("sandbox") in _STRENGTH]
    if not known:
        return None
    weakest = min(known, key=lambda r: _STRENGTH.index(r["sandbox"]))
    return {"sandbox": weakest["sandbox"], "sandboxed": weakest["sandbox"] != "none"}


class _CappedLog:
    """The child's output: the first and the last ``cap`` bytes, and how many were dropped."""

    def __init__(self, path: Path, cap: int = LOG_CAP) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("wb")
        self.head_left = cap
        self.cap = cap
        self.tail = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.head_left > 0:
            head = data[: self.head_left]
            self.file.write(head)
            self.file.flush()
            self.head_left -= len(head)
            data = data[len(head) :]
        if data:
            self.tail += data
            excess = len(self.tail) - self.cap
            if excess > 0:
                self.dropped += excess
                del self.tail[:excess]

    def close(self, note: str = "") -> None:
        if self.dropped:
            self.file.write(
                f"\n[metbench: {self.dropped} bytes of output dropped here; the log keeps the "
                f"first and the last {self.cap} bytes]\n".encode()
            )
        self.file.write(bytes(self.tail))
        if note:
            self.file.write(f"\n[metbench: {note}]\n".encode())
        self.file.close()


def _log_tail(path: Path, lines: int = 1) -> str:
    try:
        with Path(path).open("rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            text = f.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    tail = [t.strip() for t in text[-lines:] if t.strip()]
    return " | ".join(tail)[:300]


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


_LIBC: Any = None


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGKILL when the harness dies, and no core file."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = _LIBC.prctl

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the harness died before that
            os._exit(1)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return setup


class _Tree:
    """The child's process tree: its resident memory, and killing all of it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        import psutil

        self.proc = proc
        self.known: dict[int, Any] = {}
        try:
            self.root: Any = psutil.Process(proc.pid)
        except psutil.Error:
            self.root = None

    def rss(self) -> int:
        import psutil

        if self.root is None:
            return 0
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            members = list(self.known.values())
        total = 0
        for p in members:
            self.known.setdefault(p.pid, p)
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def kill(self) -> None:
        """SIGKILL the process group and every descendant ever seen (still the same process)."""
        import psutil

        self.rss()  # a last look at the descendants
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in self.known.values():
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def _remove(path: Path) -> None:
    """Remove a folder the child wrote into, whatever permissions it left."""

    def retry(function: Any, name: str, _: Any) -> None:
        with contextlib.suppress(OSError):
            Path(name).parent.chmod(0o700)
            if Path(name).is_dir() and not Path(name).is_symlink():
                Path(name).chmod(0o700)
            function(name)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=retry)


def _event_ids(dataset: str, relpath: str) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.read_table(Path(dataset) / relpath, columns=["event_id"])
    return np.asarray(table["event_id"].to_numpy(), dtype=np.int64)


def _take_part(
    path: Path, index: int, files: list[str], job: PredictJob, n_events: dict[str, int]
) -> str | None:
    """Check one part the child wrote and move it into the parts folder; the reason if not."""
    from metbench.estimators.predictions import read_neutrinos, read_predictions, read_recoil

    if index >= len(files):
        return f"{path.name}: the split has {len(files)} files"
    relpath = files[index]
    if job.files is not None and relpath not in job.files:
        return f"{path.name}: {relpath} was not this job's"
    cap = 2**20 + 1024 * n_events[relpath]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return f"{path.name}: cannot be opened ({exc.strerror})"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return f"{path.name}: not a regular file"
        if info.st_size > cap:
            return f"{path.name}: {info.st_size} bytes, more than the {cap} allowed"
        data = f.read(cap + 1)
    if len(data) > cap:
        return f"{path.name}: more than the {cap} bytes allowed"
    parts = Path(job.parts_dir)
    incoming = parts / f".{path.name}.incoming"
    incoming.write_bytes(data)
    try:
        event_id, _, _, meta = read_predictions(incoming)
        read_neutrinos(incoming)
        read_recoil(incoming)
        if meta != json.loads(json.dumps(job.metadata)):
            return f"{path.name}: its identity metadata is not this run's"
        if not np.array_equal(event_id, _event_ids(job.dataset, relpath)):
            return f"{path.name}: its event ids are not those of {relpath}"
        incoming.replace(parts / path.name)
        return None
    except MetbenchError as exc:
        return f"{path.name}: {str(exc).replace(str(incoming), 'the part')}"
    except Exception as exc:  # a hostile file must not crash the harness
        return f"{path.name}: unreadable ({type(exc).__name__})"
    finally:
        incoming.unlink(missing_ok=True)


def _collect_parts(out: Path, job: PredictJob) -> list[str]:
    """Move the acceptable parts of ``out`` into ``job.parts_dir``; the rejections."""
    from metbench.data.source import EventSource

    try:
        names = sorted(p.name for p in out.iterdir())
    except OSError:
        return []
    if not names:
        return []
    source = EventSource(job.dataset, job.split, verify=False)
    n_events = {f: int(source.manifest["files"][f]["n_events"]) for f in source.files}
    rejected = []
    for name in names:
        match = _PART.match(name)
        if match is None:
            if not name.startswith(".part_"):  # a temporary of a part being written
                rejected.append(f"{name}: not a part file (part_XXXXX.parquet)")
            continue
        reason = _take_part(out / name, int(match[1]), source.files, job, n_events)
        if reason is not None:
            rejected.append(reason)
    return rejected


def _weight_targets(folder: Path) -> list[Bind]:
    """Read-only binds of what the submission's symbolic links (listed weights) point to, at the
    paths they name, so they resolve in the sandbox as here."""
    binds = []
    for link in folder.rglob("*"):
        if link.is_symlink() and link.exists():
            target = link.resolve()
            named = Path(os.path.normpath(link.parent / link.readlink()))
            for where in {named, target}:
                binds.append(Bind(str(target), str(where), "ro"))
    return binds


def _no_sandbox_message(label: str) -> str:
    return (
        f"submission {label}: no sandbox works here (neither bubblewrap nor unshare with user "
        "namespaces); install bubblewrap (apt-get install bubblewrap), or run with --no-sandbox "
        "if you trust the submission (it then sees and may change everything you may)"
    )


def run_isolated(
    job: PredictJob,
    limits: Limits = DEFAULT_LIMITS,
    on_progress: Callable[[int], None] | None = None,
    *,
    sandbox: bool = True,
) -> dict[str, Any]:
    """Run a prediction job in a sandboxed child process and return its ``done`` payload (with
    the ``throughput`` list when measured, ``peak_rss_mb``, ``wall_s`` and ``isolation``:
    ``{"sandbox": "bubblewrap" | "unshare" | "none", "sandboxed": bool}``).

    The checked parts are in ``job.parts_dir`` afterwards, also when the run failed (resume).
    ``sandbox=False`` runs the child without a sandbox (``--no-sandbox``); with ``sandbox=True``
    and no working sandbox tool the run is refused.

    Raises
    ------
    SubmissionError
        The submission failed, crashed, hung past ``limits.time_s``, used more than
        ``limits.memory_gb``, sent something malformed or wrote an unacceptable part; the message
        names the submission and the log file. Also when no sandbox works (see above).
    """
    kind = available_sandbox() if sandbox else "none"
    if kind is None:
        raise SubmissionError(_no_sandbox_message(job.label))
    parts = Path(job.parts_dir).resolve()
    parts.mkdir(parents=True, exist_ok=True)
    job = replace(job, parts_dir=str(parts))
    log_path = Path(job.log_path)
    base = parts.name.removesuffix(".parts")
    private = Path(tempfile.mkdtemp(prefix=f"{base}.sandbox.", dir=parts.parent))
    truth = Path(f"{private}.truth")
    try:
        return _run(job, limits, on_progress, kind, private, truth, log_path)
    finally:
        _remove(private)
        _remove(truth)


def _child_job(
    job: PredictJob, kind: str, private: Path, truth: Path
) -> tuple[PredictJob, list[Bind]]:
    """The job as the child sees it, and the binds of the sandbox (none without one)."""
    from metbench.data.source import EventSource

    source = EventSource(job.dataset, job.split, verify=False)
    done = tuple(
        f for i, f in enumerate(source.files)
        if job.predict and (Path(job.parts_dir) / f"part_{i:05d}.parquet").is_file()
    )  # fmt: skip
    truth_folder = None
    if job.uses_truth:
        from metbench.data.source import write_truth_extract

        pending = [f for f in (job.files or source.files) if f not in done]
        write_truth_extract(
            job.dataset, job.split, job.uses_truth, truth,
            files=None if job.throughput is not None else pending,
        )  # fmt: skip
        truth.mkdir(exist_ok=True)
        truth_folder = str(truth)
    for name in ("out", "tmp", "home"):
        (private / name).mkdir()
    if kind == "none":
        child = replace(job, parts_dir=str(private / "out"), log_path="", done_files=done,
                        truth_folder=truth_folder)  # fmt: skip
        return child, []
    inside = f"{SANDBOX_ROOT}/truth" if truth_folder else None
    child = replace(job, parts_dir=f"{SANDBOX_ROOT}/out", log_path="", done_files=done,
                    truth_folder=inside)  # fmt: skip
    dataset = Path(job.dataset).resolve()
    folder = Path(job.folder).resolve()
    results = Path(job.parts_dir).parent
    binds = [
        Bind(str(private / "tmp"), "/tmp", "rw"),
        *python_binds([dataset, results, private, truth, folder]),
        Bind(str(folder), str(folder), "ro"),
        *_weight_targets(folder),
        Bind("", str(dataset), "empty"),  # holding only what is bound into it:
        Bind(str(dataset / "manifest.json"), str(dataset / "manifest.json"), "ro"),
        Bind(str(dataset / "events"), str(dataset / "events"), "ro"),
        Bind(str(private / "out"), f"{SANDBOX_ROOT}/out", "rw"),
        Bind(str(private / "home"), f"{SANDBOX_ROOT}/home", "rw"),
        Bind(str(private / "job.json"), f"{SANDBOX_ROOT}/job.json", "ro"),
    ]  # fmt: skip
    if truth_folder:
        binds.append(Bind(str(truth), f"{SANDBOX_ROOT}/truth", "ro"))
    return child, binds


def _run(
    job: PredictJob,
    limits: Limits,
    on_progress: Callable[[int], None] | None,
    kind: str,
    private: Path,
    truth: Path,
    log_path: Path,
) -> dict[str, Any]:
    child_job, binds = _child_job(job, kind, private, truth)
    (private / "job.json").write_text(job_to_json(child_job))
    receive, send = os.pipe()
    argv = [sys.executable, "-s", "-m", "metbench.estimators.child"]
    if kind == "none":
        argv += [str(private / "job.json"), str(send)]
        env = dict(os.environ, TMPDIR=str(private / "tmp"))
        command = argv
    else:
        argv += [f"{SANDBOX_ROOT}/job.json", str(send)]
        env = child_environment(f"{SANDBOX_ROOT}/home", "/tmp")
        command = sandbox_command(kind, argv, binds, env, "/tmp", job.device, private)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # bwrap's/unshare's own
    log = _CappedLog(log_path)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(send,), start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
            env=env, cwd=private,
        )  # fmt: skip
    except OSError as exc:
        os.close(send)
        os.close(receive)
        log.close()
        raise SubmissionError(
            f"submission {job.label}: the child process could not start ({exc.strerror})"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.close(send)
    tree = _Tree(proc)
    state = _Watch(job.label, on_progress)
    note = ""
    try:
        note = _watch(proc, tree, receive, log, state, limits, start)
    except BaseException:
        tree.kill()
        _finish(job, private, log, note="interrupted")
        raise
    finally:
        os.close(receive)
    rejected = _finish(job, private, log, note)
    return _outcome(job, kind, proc, state, rejected, log_path, start)


@dataclass
class _Watch:
    """What the child said, and what the watcher decided."""

    label: str
    on_progress: Callable[[int], None] | None
    done: dict[str, Any] | None = None
    done_at: float | None = None
    error: str | None = None
    throughput: Any = None
    killed: str | None = None
    peak: int = 0

    def handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            kind, payload = message
        except (ValueError, TypeError):
            raise _Malformed from None
        if kind == "progress" and isinstance(payload, int):
            if self.on_progress is not None:
                self.on_progress(payload)
        elif kind == "error" and isinstance(payload, str):
            self.error = payload[:2000]
        elif kind == "throughput" and isinstance(payload, list):
            self.throughput = payload
        elif kind == "done" and isinstance(payload, dict):
            self.done = payload
            self.done_at = time.monotonic()
        else:
            raise _Malformed


class _Malformed(Exception):
    """A message of the child that is not one of the protocol's."""


def _watch(
    proc: subprocess.Popen[bytes],
    tree: _Tree,
    receive: int,
    log: _CappedLog,
    state: _Watch,
    limits: Limits,
    start: float,
) -> str:
    """Follow the child until it ends or is killed; a note for the log."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout.fileno(), selectors.EVENT_READ, "log")
    selector.register(receive, selectors.EVENT_READ, "messages")
    buffer = bytearray()
    limit_bytes = limits.memory_gb * 2**30
    note = ""

    def read(deadline: float | None) -> None:
        for key, _ in selector.select(_POLL_S if deadline is None else max(deadline, 0)):
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fd)
            elif key.data == "log":
                log.write(data)
            else:
                buffer.extend(data)
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if len(line) > MESSAGE_CAP:
                        raise _Malformed
                    state.handle(line)
                if len(buffer) > MESSAGE_CAP:
                    raise _Malformed

    try:
        while proc.poll() is None:
            read(None)
            rss = tree.rss()
            state.peak = max(state.peak, rss)
            if rss > limit_bytes:
                state.killed = (
                    f"exceeded its memory limit of {limits.memory_gb:g} GiB "
                    f"(resident {rss / 2**30:.2f} GiB); raise it with --memory-limit"
                )
            elif time.monotonic() - start > limits.time_s:
                state.killed = (
                    f"exceeded its time limit of {limits.time_s:g} s; raise it with --time-limit"
                )
            elif state.done_at is not None and time.monotonic() - state.done_at > GRACE_S:
                note = f"still running {GRACE_S:g} s after it was done: killed"
                break
            if state.killed:
                break
        tree.kill()
        drain_until = time.monotonic() + 2.0
        while selector.get_map() and time.monotonic() < drain_until:
            read(drain_until - time.monotonic())
    except _Malformed:
        tree.kill()
        state.killed = (
            f"sent a malformed message to the harness (not one of its JSON lines, or longer than "
            f"{MESSAGE_CAP} bytes)"
        )
    finally:
        selector.close()
    return note


def _finish(job: PredictJob, private: Path, log: _CappedLog, note: str) -> list[str]:
    """Take the child's parts (whatever happened) and close the log; the rejected parts."""
    rejected = _collect_parts(private / "out", job) if job.predict else []
    notes = [note] if note else []
    notes += [f"rejected part {r}" for r in rejected]
    log.close("; ".join(notes))
    return rejected


def _outcome(
    job: PredictJob,
    kind: str,
    proc: subprocess.Popen[bytes],
    state: _Watch,
    rejected: list[str],
    log: Path,
    start: float,
) -> dict[str, Any]:
    prefix = f"submission {job.label}"
    where = f"; log: {log}"
    if state.killed:
        raise SubmissionError(f"{prefix} {state.killed}{where}")
    if state.error is not None:
        raise SubmissionError(f"{prefix}: {state.error}{where}")
    if rejected:
        raise SubmissionError(f"{prefix} wrote a part the harness refuses: {rejected[0]}{where}")
    code = proc.returncode
    if state.done is None:
        signalled = -code if code is not None and code < 0 else None
        if kind != "none" and code is not None and 128 < code < 128 + 65:
            signalled = code - 128  # the sandbox's exit status for a child killed by a signal
        tail = _log_tail(log)
        last = f"; last log line: {tail}" if tail else ""
        if signalled is not None:
            hint = " (out of memory?)" if signalled == signal.SIGKILL else ""
            raise SubmissionError(
                f"{prefix} crashed: killed by {_signal_name(signalled)}{hint}{last}{where}"
            )
        raise SubmissionError(f"{prefix} exited with status {code} before finishing{last}{where}")
    done = dict(state.done)
    done["peak_rss_mb"] = state.peak / 2**20
    done["wall_s"] = time.monotonic() - start
    if state.throughput is not None:
        done["throughput"] = state.throughput
    done["isolation"] = {"sandbox": kind, "sandboxed": kind != "none"}
    return done
