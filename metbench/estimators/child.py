"""Entry point of a submission's child process: ``python -m metbench.estimators.child JOB FD``.

``JOB`` is the job's JSON file (:func:`~metbench.estimators.worker.job_to_json`), ``FD`` the
inherited file descriptor of the message pipe: one JSON message per line
(:mod:`metbench.estimators.worker`). Standard output and error are the parent's log pipe. Before
anything of the submission runs: no core files, Python's fault handler on (a crash leaves a Python
stack in the log), line-buffered output.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import resource
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the job named on the command line; 0 when the harness was told how it went."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m metbench.estimators.child JOB.json FD", file=sys.stderr)
        return 2
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file
    faulthandler.enable(all_threads=True)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    channel = os.fdopen(int(args[1]), "wb", buffering=0)
    lock = threading.Lock()

    def send(message: list[Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with lock:
            channel.write(data)

    from metbench.estimators.worker import child_main, job_from_json

    job = job_from_json(Path(args[0]).read_text())
    child_main(send, job)
    with contextlib.suppress(OSError):
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
