"""``python -m metbench.cli``."""

from __future__ import annotations

from metbench.cli import main

main()
