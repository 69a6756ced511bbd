"""Running independent tasks on a Dask distributed cluster (generation shards, prediction files)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from metbench.errors import MetbenchError

__all__ = ["run_on_dask"]


def run_on_dask(
    scheduler: str, tasks: list[tuple[str, Callable[..., Any], tuple[Any, ...]]], retries: int = 3
) -> Iterator[tuple[str, Any]]:
    """Run independent tasks on a Dask cluster, yielding ``(key, result)`` as they finish.

    Each task is submitted once (``pure=False``) with ``retries``: a task whose worker dies is
    rescheduled by the scheduler on another worker, so none is lost, and each key is yielded
    exactly once.
    """
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise MetbenchError(
            "--scheduler needs Dask distributed: pip install 'metbench[dask]'"
        ) from None
    try:
        client = Client(scheduler, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise MetbenchError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`"
        ) from None
    try:
        futures = {
            client.submit(
                fn, *args, key=f"metbench-{key}-{uuid.uuid4().hex[:8]}", pure=False, retries=retries
            ): key
            for key, fn, args in tasks
        }
        for future in dask_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
