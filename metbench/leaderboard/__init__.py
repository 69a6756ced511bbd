"""The static leaderboard website: ``metbench leaderboard build``."""

from __future__ import annotations

from metbench.leaderboard.build import build_site
from metbench.leaderboard.data import site_data

__all__ = ["build_site", "site_data"]
