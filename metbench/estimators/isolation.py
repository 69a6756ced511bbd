"""Running a submission in a sandboxed child process with a time and a memory limit.

The child is a fresh interpreter, ``python -m metbench.estimators.child``, run in the sandbox of
:mod:`metbench.estimators.sandbox` (bubblewrap, else unshare; none only when asked) as the leader
of its own session and process group. It gets its job as a JSON file and talks back through a pipe
of newline-delimited JSON messages, each at most :data:`MESSAGE_CAP` bytes: nothing it sends is
unpickled or executed. Its standard output and error go to its log through the parent, which keeps
the first and the last :data:`LOG_CAP` bytes and a line saying how many were dropped in between.

The harness watches it: past the time limit, with more resident memory (the child and all its
descendants, sampled every 50 ms) than the memory limit, with more on disk in its private folder
(summed every second, the files it removed but holds open included; ``RLIMIT_FSIZE`` bounds each
file) than the disk limit, after a message that
is not one of the protocol's or whose fields are out of their ranges, or when interrupted, the
whole process
group and every descendant seen are killed; :data:`GRACE_S` after the child reported that it is
done, whatever is still running (a thread that never ends, a forgotten subprocess) is killed too,
and the run counts. A crash (a signal, ``os._exit``), a hang or a blow-up of the submission becomes
one :class:`~metbench.estimators.submission.SubmissionError` that says what happened and where the
log is; the harness itself carries on. The child dies with the harness (``--die-with-parent`` in
bubblewrap, ``PR_SET_PDEATHSIG`` otherwise).

The child writes its parts (``part_XXXXX.parquet``) in its private ``out/`` folder only. When it
has ended, however it ended, the parent takes each part that is a regular file of a sane size
whose parquet footer shows exactly the prediction columns, rows and bounded uncompressed sizes
(no decompression bomb), reads it (:func:`~metbench.estimators.predictions.read_predictions`),
checks that it carries no metadata (the child is not told the run's identity: the harness writes
it when it merges the parts) and that its event ids are exactly those of its input file, and
moves it into ``job.parts_dir`` (the resume state); anything else is rejected. Then the private
folder goes.

The child never sees the dataset: ``job.dataset`` is an input extract
(:mod:`metbench.estimators.inputs`: the split's observables under opaque ids, mixed across
processes, in files of opaque names), shown read-only at ``SANDBOX_ROOT/input``; its parts hold
those opaque ids, and only the harness maps them back to the dataset's events when it merges them.
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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.errors import MetbenchError, safe_text
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
    "DONE_FIELDS",
    "GRACE_S",
    "LOG_CAP",
    "MAX_PRIVATE_FILES",
    "MESSAGE_CAP",
    "ChildReport",
    "Limits",
    "require_sandbox",
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
#: Files (and folders) the child may leave in its private folder; more ends the run.
MAX_PRIVATE_FILES: Final = 100_000
#: Seconds between two sums of the private folder's size.
_DISK_POLL_S: Final = 1.0
#: The folders of the private folder the child may write (the rest is the parent's).
_WRITABLE: Final = ("out", "tmp", "home")
#: The fields of the child's ``done`` message (anything else ends the run).
DONE_FIELDS: Final[frozenset[str]] = frozenset(
    {"n_events", "n_truncated", "has_covariance", "device", "n_parameters"}
)
_MAX_PARAMETERS: Final = 10**13
_DEVICE: Final = re.compile(r"^cuda(:[A-Za-z0-9][A-Za-z0-9 ._()/+-]{0,63})?$")
_THROUGHPUT_FIELDS: Final = frozenset(
    {"batch_size", "calls", "events_per_s", "latency_ms", "peak_rss_mb", "peak_gpu_mb", "threads"}
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission run.

    Attributes
    ----------
    time_s
        Wall-clock limit of the whole child (import, prediction, throughput) [s].
    memory_gb
        Resident-memory limit of the child and its children [GiB]; the sandbox's ``/dev/shm``
        holds at most a quarter of it (:attr:`shm_bytes`).
    disk_gb
        Limit of what the child keeps in its private folder (``out/``, ``tmp/``, ``home/``) on
        disk [GiB], summed every second (and no single file larger: ``RLIMIT_FSIZE``).
    """

    time_s: float = 3600.0
    memory_gb: float = 8.0
    disk_gb: float = 20.0

    @property
    def shm_bytes(self) -> int:
        """Size of the sandbox's ``/dev/shm`` tmpfs: a quarter of the memory limit, at least
        64 MiB [bytes]."""
        return max(int(self.memory_gb * 2**30 / 4), 64 * 2**20)

    @property
    def disk_bytes(self) -> int:
        """:attr:`disk_gb` in bytes."""
        return max(int(self.disk_gb * 2**30), 1)


DEFAULT_LIMITS: Final = Limits()


@dataclass
class ChildReport:
    """What a prediction child reported (checked field by field, :data:`DONE_FIELDS`) and what
    the parent measured of it.

    Attributes
    ----------
    n_events, n_truncated
        Events predicted, and of them those cut to the entry's ``max_particles`` (``None``: this
        child did not predict, e.g. it only measured throughput or the predictions were reused).
    has_covariance
        Whether the entry gave a covariance.
    device
        Where it ran (``cpu``, ``cuda:<name>``), as the child reported it.
    n_parameters
        Trainable parameters, as the child reported them (``None``: not an ML entry).
    peak_rss_mb, wall_s
        Peak resident memory of the child and its descendants [MiB] and its wall time [s], as the
        parent measured them.
    throughput
        The throughput rows per batch size, when measured.
    isolation
        ``{"sandbox": "bubblewrap" | "unshare" | "none", "sandboxed": bool}``.
    reused
        Set by the harness: the predictions were up to date and not made again.
    """

    n_events: int | None = None
    n_truncated: int | None = None
    has_covariance: bool | None = None
    device: str | None = None
    n_parameters: int | None = None
    peak_rss_mb: float | None = None
    wall_s: float | None = None
    throughput: list[dict[str, Any]] | None = None
    isolation: dict[str, Any] | None = None
    reused: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ChildReport:
        """From :meth:`to_json`'s mapping (e.g. across a Dask worker); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise SubmissionError(
                f"a child's report has unknown field(s) {safe_text(unknown, 200)} (a worker with "
                "another metbench version?)"
            )
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        """The fields that are set (``None`` left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def add_run(self, other: ChildReport) -> None:
        """Account for another child of the same run (the recoil copies', the throughput
        measurement's): wall times add up, the peak memory is the larger."""
        self.wall_s = (self.wall_s or 0.0) + (other.wall_s or 0.0)
        self.peak_rss_mb = max(self.peak_rss_mb or 0.0, other.peak_rss_mb or 0.0)


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
    return safe_text(" | ".join(tail), 300)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


_LIBC: Any = None


def _die_with_parent(parent: int, max_file_bytes: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn``: SIGKILL when the harness dies, no core file, and no file written larger
    than ``max_file_bytes`` (``RLIMIT_FSIZE``; Python ignores ``SIGXFSZ``, so a write past it
    fails with ``EFBIG``)."""
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
        if max_file_bytes is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

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

    def unlinked_bytes(self, device: int) -> int:
        """Bytes on disk of the regular files on ``device`` that the tree holds open after
        removing them from every folder (a folder scan does not see them; each is counted once,
        whoever holds it)."""
        seen: set[int] = set()
        total = 0
        for pid in list(self.known):
            try:
                entries = os.scandir(f"/proc/{pid}/fd")
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        info = entry.stat()  # follows the link: the open file itself, linked or not
                    except OSError:
                        continue
                    if (
                        info.st_nlink == 0
                        and info.st_dev == device
                        and stat.S_ISREG(info.st_mode)
                        and info.st_ino not in seen
                    ):
                        seen.add(info.st_ino)
                        total += info.st_blocks * 512
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


def _read_at_most(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = os.read(fd, min(left, 2**20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _part_columns() -> dict[str, str]:
    """The columns a part may hold, with their parquet physical types."""
    from metbench.estimators.predictions import (
        COVARIANCE_COLUMNS,
        DOF_COLUMN,
        NEUTRINO_COLUMNS,
        PREDICTION_COLUMNS,
        RECOIL_COLUMNS,
    )

    columns = dict.fromkeys(PREDICTION_COLUMNS, "DOUBLE")
    columns["event_id"] = "INT64"
    for group in (COVARIANCE_COLUMNS, NEUTRINO_COLUMNS, RECOIL_COLUMNS, (DOF_COLUMN,)):
        columns.update(dict.fromkeys(group, "DOUBLE"))
    return columns


#: Bytes a column chunk may take uncompressed: 16 per row (a 64-bit value is 8) and this much.
_CHUNK_SLACK: Final = 2**16
#: Row groups a part may have.
_MAX_ROW_GROUPS: Final = 64


def _check_layout(path: Path, n_rows: int) -> str | None:
    """Why the parquet file ``path`` (a part, already known to be small) is not laid out as a
    part must be, from its footer alone (nothing is decompressed): exactly the prediction
    columns (whole groups: covariance, neutrinos, recoil), flat, of their physical and Arrow
    types, ``n_rows`` rows in at most :data:`_MAX_ROW_GROUPS` row groups, and no column chunk
    larger uncompressed than 16 bytes a row and :data:`_CHUNK_SLACK` (a decompression bomb would
    make the harness allocate gigabytes before any value is checked). None if it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from metbench.estimators.predictions import (
        COVARIANCE_COLUMNS,
        DOF_COLUMN,
        NEUTRINO_COLUMNS,
        PREDICTION_COLUMNS,
        RECOIL_COLUMNS,
    )

    try:
        meta = pq.read_metadata(path)
        arrow = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        return f"not a readable parquet file ({type(exc).__name__})"
    allowed = _part_columns()
    schema = meta.schema
    names = [schema.column(i).path for i in range(meta.num_columns)]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        return f"column {safe_text(unknown[0], 80)!r} is not one of the predictions' columns"
    if len(set(names)) != len(names) or arrow.names != names:
        return "its columns are repeated or nested"
    missing = [c for c in PREDICTION_COLUMNS if c not in names]
    if missing:
        return f"missing column(s) {missing}"
    for group in (COVARIANCE_COLUMNS, NEUTRINO_COLUMNS, RECOIL_COLUMNS):
        if 0 < sum(c in names for c in group) < len(group):
            return f"holds only some of the columns {', '.join(group)}"
    if DOF_COLUMN in names and COVARIANCE_COLUMNS[0] not in names:
        return f"column {DOF_COLUMN} without the covariance it belongs to"
    expected = {"INT64": pa.int64(), "DOUBLE": pa.float64()}
    for i, name in enumerate(names):
        column = schema.column(i)
        if column.physical_type != allowed[name] or column.max_repetition_level != 0:
            return f"column {name} is {column.physical_type}, not {allowed[name]}"
        if arrow.field(name).type != expected[allowed[name]]:
            return f"column {name} is {arrow.field(name).type}, not {expected[allowed[name]]}"
    if meta.num_rows != n_rows:
        return f"{meta.num_rows} rows; its dataset file has {n_rows} events"
    if meta.num_row_groups > _MAX_ROW_GROUPS:
        return f"{meta.num_row_groups} row groups, more than the {_MAX_ROW_GROUPS} allowed"
    rows = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        rows += group.num_rows
        if group.num_rows < 0:
            return f"row group {g} has {group.num_rows} rows"
        for i in range(group.num_columns):
            chunk = group.column(i)
            cap = 16 * group.num_rows + _CHUNK_SLACK
            if chunk.total_uncompressed_size > cap or chunk.total_uncompressed_size < 0:
                return (
                    f"column {names[i]} of row group {g} is {chunk.total_uncompressed_size} bytes "
                    f"uncompressed, more than the {cap} its {group.num_rows} rows may take"
                )
    if rows != n_rows:
        return f"its row groups hold {rows} rows, not {n_rows}"
    return None


def _take_part(
    path: Path, index: int, files: list[str], job: PredictJob, n_events: dict[str, int]
) -> str | None:
    """Check one part the child wrote and move it into the parts folder; the reason if not.

    Only a regular file (opened without following a link, ``fstat`` before anything is read) of
    a sane size is read, its layout is checked from its footer (:func:`_check_layout`) before
    its values, then its identity and event ids."""
    from metbench.estimators.predictions import read_neutrinos, read_predictions, read_recoil

    if index >= len(files):
        return f"{path.name}: the split has {len(files)} files"
    relpath = files[index]
    if job.files is not None and relpath not in job.files:
        return f"{path.name}: {relpath} was not this job's"
    cap = 2**20 + 1024 * n_events[relpath]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return f"{path.name}: cannot be opened ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"{path.name}: not a regular file"
        if info.st_size > cap:
            return f"{path.name}: {info.st_size} bytes, more than the {cap} allowed"
        data = _read_at_most(fd, cap + 1)
    except OSError as exc:
        return f"{path.name}: cannot be read ({exc.strerror})"
    finally:
        os.close(fd)
    if len(data) > cap:
        return f"{path.name}: more than the {cap} bytes allowed"
    parts = Path(job.parts_dir)
    incoming = parts / f".{path.name}.incoming"
    try:
        incoming.write_bytes(data)
        problem = _check_layout(incoming, n_events[relpath])
        if problem is not None:
            return f"{path.name}: {problem}"
        pred = read_predictions(incoming)
        read_neutrinos(incoming)
        read_recoil(incoming)
        if pred.metadata:
            return f"{path.name}: a part carries no metadata (the harness writes the identity)"
        if not np.array_equal(pred.event_id, _event_ids(job.dataset, relpath)):
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
    """Move the acceptable parts of ``out`` into ``job.parts_dir``; the rejections (text safe to
    print: the names are the child's)."""
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
                rejected.append(f"{safe_text(name, 100)}: not a part file (part_XXXXX.parquet)")
            continue
        try:
            reason = _take_part(out / name, int(match[1]), source.files, job, n_events)
        except OSError as exc:  # e.g. the parts folder itself: one line, the next part goes on
            reason = f"{name}: {safe_text(exc.strerror or type(exc).__name__, 200)}"
        if reason is not None:
            rejected.append(safe_text(reason, 500))
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


def _hidden_caches(folder: Path) -> list[Bind]:
    """An empty read-only folder over each ``__pycache__`` of the submission: the child compiles
    the sources it is shown (and hashed), never bytecode shipped beside them (an
    ``unchecked-hash`` ``.pyc`` runs whatever it holds, whatever the ``.py`` says)."""
    return [
        Bind("", str(d), "empty")
        for d in sorted(folder.rglob("__pycache__"))
        if d.is_dir() and not d.is_symlink()
    ]


def require_sandbox(label: str) -> str:
    """The sandbox a child of submission ``label`` will run in here (``bubblewrap`` or
    ``unshare``); :class:`SubmissionError` (what to install, or ``--no-sandbox``) if none works.
    Called before any work so that a refused run leaves nothing behind."""
    kind = available_sandbox()
    if kind is None:
        raise SubmissionError(_no_sandbox_message(label))
    return kind


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
) -> ChildReport:
    """Run a prediction job in a sandboxed child process and return its :class:`ChildReport`
    (the ``done`` payload, the throughput rows when measured, the peak memory, the wall time and
    how it was isolated).

    What the child reports is checked field by field (:data:`DONE_FIELDS`: integers in their
    ranges, a device this job may use; throughput rows for the requested batch sizes with finite
    positive figures) and its text made printable (:func:`~metbench.errors.safe_text`); anything
    else ends the run. The checks bound it, they cannot verify it: ``device``, ``n_parameters``
    and ``throughput`` are measured in the submission's own interpreter (self-reported), while
    ``peak_rss_mb``, ``wall_s`` and the parts are the parent's.

    A job that predicts and measures throughput runs as two fresh children, one after the other:
    the first predicts, told nothing of a measurement to follow (which would set the scored run
    apart from the others: the validation split's, the recoil's), the second measures (its log:
    ``<log>.throughput.log`` beside the job's); the report has the first's counts and device,
    the sum of their wall times, the larger peak memory and the weaker isolation.

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
    job = _with_inputs(job, parts)
    if job.predict and job.throughput is not None:
        report = run_isolated(replace(job, throughput=None), limits, on_progress, sandbox=sandbox)
        log = Path(job.log_path)
        separate = log.with_name(log.name.removesuffix(".log") + ".throughput.log")
        measured = run_isolated(
            replace(job, predict=False, log_path=str(separate) if job.log_path else ""),
            limits,
            sandbox=sandbox,
        )
        report.add_run(measured)
        report.throughput = measured.throughput
        report.isolation = weakest_isolation(report.isolation, measured.isolation)
        return report
    log_path = Path(job.log_path)
    base = parts.name.removesuffix(".parts")
    private = Path(tempfile.mkdtemp(prefix=f"{base}.sandbox.", dir=parts.parent))
    try:
        return _run(job, limits, on_progress, kind, private, log_path)
    finally:
        _remove(private)


def _with_inputs(job: PredictJob, parts: Path) -> PredictJob:
    """The job on an input extract (:mod:`metbench.estimators.inputs`): as it is when
    ``job.dataset`` is one (the harness makes them), else on one written now into ``parts``
    (``input/``), the dataset becoming ``job.source_dataset`` (never shown to the child)."""
    from metbench.estimators.inputs import SPLIT, is_input_extract, prepare_inputs

    if is_input_extract(job.dataset):
        return replace(job, dataset=str(Path(job.dataset).resolve()), split=SPLIT)
    sample = None
    if not job.predict and job.throughput is not None:
        sample = max(job.throughput.batch_sizes)
    extract = prepare_inputs(
        job.dataset, job.split, parts / "input", job.uses_truth, sample=sample
    )  # fmt: skip
    return replace(
        job, dataset=str(extract), split=SPLIT, source_dataset=str(Path(job.dataset).resolve())
    )


def _child_job(job: PredictJob, kind: str, private: Path) -> tuple[PredictJob, list[Bind]]:
    """The job as the child sees it, and the binds of the sandbox (none without one).

    The child reads the input extract ``job.dataset`` (shown read-only at
    ``SANDBOX_ROOT/input``, its declared truth columns in it too), never the dataset.
    """
    from metbench.data.source import EventSource

    source = EventSource(job.dataset, job.split, verify=False)
    done = tuple(
        f for i, f in enumerate(source.files)
        if job.predict and (Path(job.parts_dir) / f"part_{i:05d}.parquet").is_file()
    )  # fmt: skip
    for name in ("out", "tmp", "home"):
        (private / name).mkdir()
    if kind == "none":
        child = replace(job, parts_dir=str(private / "out"), log_path="", done_files=done,
                        truth_folder=job.dataset if job.uses_truth else None,
                        source_dataset="")  # fmt: skip
        return child, []
    inside = f"{SANDBOX_ROOT}/input"
    child = replace(job, dataset=inside, parts_dir=f"{SANDBOX_ROOT}/out", log_path="",
                    done_files=done, truth_folder=inside if job.uses_truth else None,
                    source_dataset="")  # fmt: skip
    inputs = Path(job.dataset).resolve()
    hidden = [Path(job.source_dataset).resolve()] if job.source_dataset else []
    folder = Path(job.folder).resolve()
    results = Path(job.parts_dir).parent
    binds = [
        Bind(str(private / "tmp"), "/tmp", "rw"),
        *python_binds([*hidden, inputs, results, private, folder]),
        Bind(str(folder), str(folder), "ro"),
        *_hidden_caches(folder),
        *_weight_targets(folder),
        Bind(str(inputs), inside, "ro"),
        Bind(str(private / "out"), f"{SANDBOX_ROOT}/out", "rw"),
        Bind(str(private / "home"), f"{SANDBOX_ROOT}/home", "rw"),
        Bind(str(private / "job.json"), f"{SANDBOX_ROOT}/job.json", "ro"),
    ]  # fmt: skip
    return child, binds


def _run(
    job: PredictJob,
    limits: Limits,
    on_progress: Callable[[int], None] | None,
    kind: str,
    private: Path,
    log_path: Path,
) -> ChildReport:
    child_job, binds = _child_job(job, kind, private)
    (private / "job.json").write_text(job_to_json(child_job))
    receive, send = os.pipe()
    argv = [sys.executable, "-s", "-B", "-m", "metbench.estimators.child"]
    if kind == "none":
        argv += [str(private / "job.json"), str(send)]
        env = dict(os.environ, TMPDIR=str(private / "tmp"))
        command = argv
    else:
        argv += [f"{SANDBOX_ROOT}/job.json", str(send)]
        env = child_environment(f"{SANDBOX_ROOT}/home", "/tmp")
        command = sandbox_command(
            kind, argv, binds, env, "/tmp", job.device, private, limits.shm_bytes
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # bwrap's/unshare's own
    log = _CappedLog(log_path)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(send,), start_new_session=True, env=env, cwd=private,
            preexec_fn=_die_with_parent(os.getpid(), limits.disk_bytes),
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
    state = _Watch(job.label, on_progress, job, _events_of(job), start)
    note = ""
    try:
        note = _watch(proc, tree, receive, log, state, limits, start, private)
    except BaseException:
        tree.kill()
        _finish(job, private, log, note="interrupted")
        raise
    finally:
        os.close(receive)
    rejected = _finish(job, private, log, note)
    return _outcome(job, kind, proc, state, rejected, log_path, start)


def _events_of(job: PredictJob) -> int:
    """Events of the files the job predicts (all of its split's unless it names some)."""
    from metbench.data.source import EventSource

    source = EventSource(job.dataset, job.split, verify=False)
    files = source.files if job.files is None else [f for f in source.files if f in job.files]
    return sum(int(source.manifest["files"][f]["n_events"]) for f in files)


class _Malformed(Exception):
    """A message of the child that is not one of the protocol's; the text says how."""


def _show(value: Any) -> str:
    """A short, printable rendering of a value the child sent."""
    try:
        text = json.dumps(value)
    except ValueError:  # an integer of thousands of digits
        text = f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return safe_text(text, 60)


def _integer(value: Any, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:  # bool is not an int here
        raise _Malformed(f"{what} must be an integer in [{low}, {high}], got {_show(value)}")
    return value


def _number(value: Any, low: float, high: float, what: str, above: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``above``)."""
    ok = type(value) in (int, float) and bool(np.isfinite(value)) and low <= value <= high
    if not ok or (above and value <= low):
        side = "(" if above else "["
        raise _Malformed(f"{what} must be a number in {side}{low:g}, {high:g}], got {_show(value)}")
    return float(value)


def _device(value: Any, job: PredictJob) -> str:
    """The device the child says it used, if it is one that this job may use: ``cpu`` when asked
    for the CPU or for a numpy entry, else ``cuda`` or ``cuda:<GPU name>``."""
    if job.device == "cpu" or job.framework == "numpy":
        if value != "cpu":
            raise _Malformed(f"device must be 'cpu' for --device {job.device}, got {_show(value)}")
        return "cpu"
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise _Malformed(f"device must be 'cuda' or 'cuda:<GPU name>', got {_show(value)}")
    return value


def _done(payload: Any, job: PredictJob, total: int) -> dict[str, Any]:
    """The child's ``done`` report, each field checked (:data:`DONE_FIELDS`)."""
    if not isinstance(payload, dict):
        raise _Malformed("done must be an object")
    unknown = sorted(set(payload) - DONE_FIELDS)
    if unknown:
        raise _Malformed(f"done has unknown field(s) {_show(unknown)}")
    out: dict[str, Any] = {"device": _device(payload.get("device"), job)}
    n_parameters = payload.get("n_parameters")
    if n_parameters is not None:
        n_parameters = _integer(n_parameters, 0, _MAX_PARAMETERS, "n_parameters")
    out["n_parameters"] = n_parameters
    if job.predict:
        n_events = _integer(payload.get("n_events"), 0, total, "n_events")
        out["n_events"] = n_events
        out["n_truncated"] = _integer(payload.get("n_truncated"), 0, n_events, "n_truncated")
        covariance = payload.get("has_covariance")
        if not isinstance(covariance, bool):
            raise _Malformed(f"has_covariance must be true or false, got {_show(covariance)}")
        out["has_covariance"] = covariance
    return out


def _throughput_rows(payload: Any, job: PredictJob, elapsed: float) -> list[dict[str, Any]]:
    """The child's throughput measurement, checked: one row per requested batch size, in order,
    each a plausible measurement (at least the requested calls, finite positive rates, timed
    calls adding up to no more than the parent saw the child run) or a ``skipped`` reason."""
    settings = job.throughput
    if settings is None:
        raise _Malformed("throughput was not asked for")
    sizes = list(settings.batch_sizes)
    if not isinstance(payload, list) or len(payload) != len(sizes):
        raise _Malformed(f"throughput must be a list of {len(sizes)} rows (one per batch size)")
    rows, measured_s = [], 0.0
    for row, size in zip(payload, sizes, strict=True):
        if not isinstance(row, dict) or row.get("batch_size") != size:
            raise _Malformed(f"throughput rows must be for the batch sizes {sizes}, in order")
        if "skipped" in row:
            if set(row) != {"batch_size", "skipped"} or not isinstance(row["skipped"], str):
                raise _Malformed("a skipped throughput row holds batch_size and skipped only")
            rows.append({"batch_size": size, "skipped": safe_text(row["skipped"], 200)})
            continue
        unknown = sorted(set(row) - _THROUGHPUT_FIELDS)
        if unknown:
            raise _Malformed(f"a throughput row has unknown field(s) {_show(unknown)}")
        calls = _integer(row.get("calls"), max(settings.min_calls, 1), 10**12, "calls")
        rate = _number(row.get("events_per_s"), 0.0, 1e12, "events_per_s", above=True)
        checked: dict[str, Any] = {"batch_size": size, "calls": calls, "events_per_s": rate}
        latency = row.get("latency_ms")
        if latency is not None:
            if not isinstance(latency, dict) or set(latency) != {"p50", "p90", "p99"}:
                raise _Malformed("latency_ms must hold p50, p90 and p99")
            checked["latency_ms"] = {
                k: _number(latency[k], 0.0, 1e9, f"latency_ms.{k}") for k in ("p50", "p90", "p99")
            }
        for key in ("peak_rss_mb", "peak_gpu_mb"):
            if row.get(key) is not None:
                checked[key] = _number(row[key], 0.0, 2.0**30, key)
        if row.get("threads") is not None:
            checked["threads"] = _integer(row["threads"], 1, 10**6, "threads")
        measured_s += size * calls / rate
        rows.append(checked)
    if measured_s > elapsed + 1.0:
        raise _Malformed(
            f"throughput claims {measured_s:.3g} s of timed calls; the child ran {elapsed:.3g} s"
        )
    return rows


@dataclass
class _Watch:
    """What the child said (each message checked), and what the watcher decided."""

    label: str
    on_progress: Callable[[int], None] | None
    job: PredictJob
    total: int  # events of the job's files
    start: float
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
            raise _Malformed("not a JSON pair [kind, payload]") from None
        if self.done is not None:
            raise _Malformed(f"{_show(kind)} after done")
        if kind == "progress":
            done = _integer(payload, 0, self.total, "progress")
            if self.on_progress is not None:
                self.on_progress(done)
        elif kind == "error" and isinstance(payload, str):
            self.error = safe_text(payload, 2000)
        elif kind == "throughput":
            if self.throughput is not None:
                raise _Malformed("a second throughput")
            self.throughput = _throughput_rows(payload, self.job, time.monotonic() - self.start)
        elif kind == "done":
            self.done = _done(payload, self.job, self.total)
            self.done_at = time.monotonic()
        else:
            raise _Malformed(f"unknown message {_show(kind)}")


def _disk_usage(folders: list[Path], max_files: int) -> tuple[int, int]:
    """(bytes on disk, entries) of what is under ``folders``; stops counting past ``max_files``
    entries. Links are not followed; a file's allocated blocks count (a sparse file's holes do
    not; its apparent size is bounded by ``RLIMIT_FSIZE``)."""
    used, count = 0, 0
    stack = [str(f) for f in folders]
    while stack and count <= max_files:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    count += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return used, count


def _watch(
    proc: subprocess.Popen[bytes],
    tree: _Tree,
    receive: int,
    log: _CappedLog,
    state: _Watch,
    limits: Limits,
    start: float,
    private: Path,
) -> str:
    """Follow the child until it ends or is killed (past a limit: time, resident memory, the
    size of its private folder on disk; or a malformed message); a note for the log."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout.fileno(), selectors.EVENT_READ, "log")
    selector.register(receive, selectors.EVENT_READ, "messages")
    buffer = bytearray()
    limit_bytes = limits.memory_gb * 2**30
    note = ""
    next_disk_check = start
    private_device = private.stat().st_dev

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
                        raise _Malformed(f"a line longer than {MESSAGE_CAP} bytes")
                    state.handle(line)
                if len(buffer) > MESSAGE_CAP:
                    raise _Malformed(f"a line longer than {MESSAGE_CAP} bytes")

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
            elif time.monotonic() >= next_disk_check:
                next_disk_check = time.monotonic() + _DISK_POLL_S
                used, files = _disk_usage([private / name for name in _WRITABLE], MAX_PRIVATE_FILES)
                used += tree.unlinked_bytes(private_device)
                if used > limits.disk_bytes:
                    state.killed = (
                        f"exceeded its disk limit of {limits.disk_gb:g} GiB (its private folder "
                        f"holds {used / 2**30:.4g} GiB); raise it with --disk-limit"
                    )
                elif files > MAX_PRIVATE_FILES:
                    state.killed = (
                        f"wrote more than {MAX_PRIVATE_FILES} files into its private folder"
                    )
            if state.killed:
                break
        tree.kill()
        drain_until = time.monotonic() + 2.0
        while selector.get_map() and time.monotonic() < drain_until:
            read(drain_until - time.monotonic())
    except _Malformed as exc:
        tree.kill()
        state.killed = f"sent a malformed message to the harness: {exc}"
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
) -> ChildReport:
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
            hint = {
                int(signal.SIGKILL): " (out of memory?)",
                int(
                    signal.SIGXFSZ
                ): " (a file larger than the disk limit; raise it with --disk-limit)",
            }.get(signalled, "")
            raise SubmissionError(
                f"{prefix} crashed: killed by {_signal_name(signalled)}{hint}{last}{where}"
            )
        raise SubmissionError(f"{prefix} exited with status {code} before finishing{last}{where}")
    return ChildReport(
        **state.done,
        peak_rss_mb=state.peak / 2**20,
        wall_s=time.monotonic() - start,
        throughput=state.throughput,
        isolation={"sandbox": kind, "sandboxed": kind != "none"},
    )
