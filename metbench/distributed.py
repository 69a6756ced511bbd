"""Running independent tasks on a Dask distributed cluster (generation shards, prediction files).

Workers of a real cluster are processes of their own, started anywhere: every path a task gets is
absolute (resolved on the client), and before any task runs the client checks that every worker
sees the folders the tasks read and write at the same paths (:func:`check_workers_see`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Final

import metbench
from metbench.errors import MetbenchError, first_line

__all__ = ["PROBE_PREFIX", "check_workers_on", "check_workers_see", "run_on_dask"]

#: Name prefix of the probe files that the visibility check writes (and removes).
PROBE_PREFIX: Final = ".metbench-probe-"
_WORKER_WAIT_S: Final = 30.0
_NAMED_WORKERS: Final = 3


def _connect(scheduler: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``scheduler``, or a one-line error."""
    try:
        from distributed import Client
    except ImportError:
        raise MetbenchError(
            "--scheduler needs Dask distributed: pip install 'metbench[dask]'"
        ) from None
    try:
        return Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise MetbenchError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`"
        ) from None


def run_on_dask(
    scheduler: str,
    tasks: list[tuple[str, Callable[..., Any], tuple[Any, ...]]],
    retries: int = 3,
    *,
    read: Mapping[str, Path] | None = None,
    write: Mapping[str, Path] | None = None,
    listed: Mapping[str, Path] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Run independent tasks on a Dask cluster, yielding ``(key, result)`` as they finish.

    Each task is submitted once (``pure=False``) with ``retries``: a task whose worker dies is
    rescheduled by the scheduler on another worker, so none is lost, and each key is yielded
    exactly once.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (``tcp://host:port``).
    tasks
        ``(key, function, args)`` of each task; paths in ``args`` must be absolute.
    retries
        Reruns of a task whose worker died.
    read, write, listed
        Folders (by what they are, e.g. ``{"dataset": path}``) that the tasks read, write, or
        read and that must not be written in: checked with :func:`check_workers_see` before any
        task is submitted.

    Raises
    ------
    MetbenchError
        The scheduler is unreachable, no worker is connected, a worker does not see a folder, or
        a task killed its worker on every try.
    """
    try:
        from distributed import KilledWorker
        from distributed import as_completed as dask_completed
    except ImportError:
        raise MetbenchError(
            "--scheduler needs Dask distributed: pip install 'metbench[dask]'"
        ) from None
    client = _connect(scheduler)
    try:
        if tasks and (read or write or listed):
            check_workers_see(client, read, write, listed)
        futures = {
            client.submit(
                fn, *args, key=f"metbench-{key}-{uuid.uuid4().hex[:8]}", pure=False, retries=retries
            ): key
            for key, fn, args in tasks
        }
        for future in dask_completed(futures):
            try:
                result = future.result()
            except KilledWorker:
                raise MetbenchError(
                    f"Dask task {futures[future]} lost its worker {retries + 1} times (out of "
                    f"memory? see the workers' logs); give the workers more memory and re-run "
                    "the same command to resume"
                ) from None
            yield futures[future], result
    finally:
        client.close()


def check_workers_on(
    scheduler: str,
    read: Mapping[str, Path] | None = None,
    write: Mapping[str, Path] | None = None,
    listed: Mapping[str, Path] | None = None,
) -> None:
    """Connect to the scheduler at ``scheduler`` and :func:`check_workers_see` its workers."""
    client = _connect(scheduler)
    try:
        check_workers_see(client, read, write, listed)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# visibility check
# ---------------------------------------------------------------------------------------------
def _listing(folder: str) -> list[tuple[str, int]] | None:
    """Names of a folder's entries and sizes of its files (probe files and Python caches
    excluded), or None if it is not a folder here."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                (e.name, e.stat(follow_symlinks=False).st_size if e.is_file() else -1)
                for e in entries
                if not e.name.startswith(PROBE_PREFIX) and e.name != "__pycache__"
            )
    except OSError:
        return None


def _probe_on_worker(
    reads: list[tuple[str, str, Any]], writes: list[str], tag: str
) -> dict[str, Any]:
    """Run on each worker: which folders it sees as the client does, and the probe files it
    wrote in each folder of ``writes`` (``{folder: [name, token]}``)."""
    unseen: list[str] = []
    unwritable: list[str] = []
    wrote: dict[str, list[str]] = {}
    for folder, kind, expected in reads:
        if kind == "probe":
            name, token = expected
            try:
                seen = (Path(folder) / name).read_text() == token
            except OSError:
                seen = False
        else:  # a listing: the folder was not writable for the client
            seen = _listing(folder) == [tuple(e) for e in expected]
        if not seen:
            unseen.append(folder)
    for folder in writes:
        if folder in unseen:
            continue
        name, token = f"{PROBE_PREFIX}{tag}-{uuid.uuid4().hex}", uuid.uuid4().hex
        try:
            (Path(folder) / name).write_text(token)
        except OSError:
            unwritable.append(folder)
            continue
        wrote[folder] = [name, token]
    return {"unseen": unseen, "unwritable": unwritable, "wrote": wrote}


def _remove_on_worker(files: list[str]) -> None:
    for f in files:
        with suppress(OSError):
            Path(f).unlink()


def _who(workers: list[str]) -> str:
    named = ", ".join(workers[:_NAMED_WORKERS])
    more = f" and {len(workers) - _NAMED_WORKERS} more" if len(workers) > _NAMED_WORKERS else ""
    return f"Dask worker {named}{more}" if len(workers) == 1 else f"Dask workers {named}{more}"


def check_workers_see(
    client: Any,
    read: Mapping[str, Path] | None = None,
    write: Mapping[str, Path] | None = None,
    listed: Mapping[str, Path] | None = None,
) -> None:
    """Check that every worker of a Dask cluster sees the client's folders at the same paths.

    The client writes a probe file (random name and content) in each folder, which every worker
    must read; in each folder of ``write`` every worker also writes one, which the client must
    read. A folder of ``listed``, or one of ``read`` that the client cannot write in (a read-only
    dataset), is compared by its listing (names and sizes) instead. Probe files are removed
    afterwards.

    Parameters
    ----------
    client
        A connected ``distributed.Client``.
    read, write, listed
        Folders by what they are (``{"dataset": path}``): read by the tasks, written (and read)
        by them, or read and never written in (a submission: no probe file there). Each must
        exist on the client.

    Raises
    ------
    MetbenchError
        No worker is connected, or a worker does not see a folder or cannot write in it: one line
        naming the worker(s), the folder and what to do.
    """
    read, write, listed = dict(read or {}), dict(write or {}), dict(listed or {})
    roles = {str(Path(p).resolve()): role for role, p in {**listed, **read, **write}.items()}
    list_folders = [str(Path(p).resolve()) for p in listed.values()]
    read_folders = [str(Path(p).resolve()) for p in (*read.values(), *write.values())]
    write_folders = [str(Path(p).resolve()) for p in write.values()]
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=_WORKER_WAIT_S)
    except TimeoutError:
        raise MetbenchError(
            f"no Dask worker is connected to the scheduler at {address} (waited "
            f"{_WORKER_WAIT_S:g} s); start workers with `dask worker {address}`"
        ) from None
    tag = uuid.uuid4().hex[:12]
    ours: list[Path] = []
    theirs: list[str] = []
    try:
        reads: list[tuple[str, str, Any]] = []
        for folder in dict.fromkeys((*list_folders, *read_folders)):
            if folder not in list_folders:
                probe = Path(folder) / f"{PROBE_PREFIX}{tag}"
                token = uuid.uuid4().hex
                try:
                    probe.write_text(token)
                except OSError:
                    if folder in write_folders:
                        raise MetbenchError(
                            f"cannot write in the {roles[folder]} folder {folder}; choose a "
                            "folder you can write in"
                        ) from None
                else:
                    ours.append(probe)
                    reads.append((folder, "probe", (probe.name, token)))
                    continue
            listing = _listing(folder)
            if listing is None:
                raise MetbenchError(f"the {roles[folder]} folder {folder} is missing; check it")
            reads.append((folder, "listing", listing))
        answers = client.run(
            _probe_on_worker, reads, list(dict.fromkeys(write_folders)), tag, on_error="return"
        )
        failed = {w: a for w, a in answers.items() if isinstance(a, BaseException)}
        if failed:  # the check itself did not run there (no metbench, another version)
            exc = failed[min(failed)]
            raise MetbenchError(
                f"{_who(sorted(failed))} could not run metbench's folder check "
                f"({type(exc).__name__}: {first_line(exc)}); install the same metbench on the "
                f"workers as here ({metbench.__version__})"
            )
        unseen: dict[str, list[str]] = {}
        unwritable: dict[str, list[str]] = {}
        for worker, answer in sorted(answers.items()):
            for folder in answer["unseen"]:
                unseen.setdefault(folder, []).append(worker)
            for folder in answer["unwritable"]:
                unwritable.setdefault(folder, []).append(worker)
            for folder, (name, token) in answer["wrote"].items():
                path = Path(folder) / name
                theirs.append(str(path))
                try:
                    seen = path.read_text() == token
                except OSError:
                    seen = False
                if not seen:
                    unseen.setdefault(folder, []).append(worker)
        for folder, workers in unseen.items():
            raise MetbenchError(
                f"{_who(workers)} {'does' if len(workers) == 1 else 'do'} not see the "
                f"{roles[folder]} folder {folder} as this machine does; workers must share the "
                f"filesystem: start them where {folder} is visible at the same path"
            )
        for folder, workers in unwritable.items():
            raise MetbenchError(
                f"{_who(workers)} cannot write in the {roles[folder]} folder {folder}; start the "
                "workers as a user that can write there"
            )
    finally:
        for probe in ours:
            with suppress(OSError):
                probe.unlink()
        for name in theirs:
            with suppress(OSError):
                Path(name).unlink()
        if theirs:  # files that only the workers see (another filesystem) are theirs to remove
            with suppress(Exception):
                client.run(_remove_on_worker, theirs, on_error="ignore")
