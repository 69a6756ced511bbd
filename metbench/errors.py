"""Errors that metbench reports to a user as one line (no traceback)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DatasetError", "MetbenchError", "first_line", "safe_text"]

#: C0 and C1 control characters, DEL, and the Unicode bidirectional overrides and isolates (which
#: reorder what a terminal shows): what :func:`safe_text` escapes.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class MetbenchError(Exception):
    """A user-facing error: the message says what, where and what to do."""


class DatasetError(MetbenchError):
    """A dataset on disk is missing, corrupt, truncated or inconsistent with its manifest."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if the message is empty), for
    one-line reports of errors raised by libraries."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def safe_text(text: object, cap: int | None = 2000) -> str:
    """Text that came from a submission (its error messages, its log, its device string, names of
    files it wrote), made safe to print or store: every control character (C0, C1, DEL: terminal
    escape sequences, carriage returns, newlines) and every bidirectional override is written as
    a visible escape (``\\x1b``, ``\\n``, ``\\u202e``), and the result is cut to ``cap``
    characters (None: no cap) with a mark saying so.

    Parameters
    ----------
    text
        Anything; it is converted with ``str``.
    cap
        The longest result [characters], the mark included.

    Returns
    -------
    str
        One line of printable text.
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        code = ord(char)
        if char == "\n":
            return "\\n"
        if char == "\t":
            return "\\t"
        if char == "\r":
            return "\\r"
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    out = _UNSAFE.sub(escape, str(text))
    if cap is not None and len(out) > cap:
        keep = max(cap - len(f"... [{len(out)} more characters]"), 0)
        out = out[:keep] + f"... [{len(out) - keep} more characters]"
    return out
