"""Errors that metbench reports to a user as one line (no traceback)."""

from __future__ import annotations

__all__ = ["DatasetError", "MetbenchError"]


class MetbenchError(Exception):
    """A user-facing error: the message says what, where and what to do."""


class DatasetError(MetbenchError):
    """A dataset on disk is missing, corrupt, truncated or inconsistent with its manifest."""
