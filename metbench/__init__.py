"""metbench: the benchmark suite and leaderboard for missing-transverse-momentum reconstruction."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metbench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from metbench.errors import DatasetError, MetbenchError
from metbench.events import EventBatch

__all__ = ["DatasetError", "EventBatch", "MetbenchError", "__version__"]
