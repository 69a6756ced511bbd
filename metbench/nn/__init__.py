"""Model code shared by reference entries (graph readers, forward passes)."""

from __future__ import annotations

__all__: list[str] = []
