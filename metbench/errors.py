"""Errors that metbench reports to a user as one line (no traceback)."""

from __future__ import annotations

__all__ = ["DatasetError", "MetbenchError", "first_line"]


class MetbenchError(Exception):
    """A user-facing error: the message says what, where and what to do."""


class DatasetError(MetbenchError):
    """A dataset on disk is missing, corrupt, truncated or inconsistent with its manifest."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if the message is empty), for
    one-line reports of errors raised by libraries."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
