"""Physics building blocks shared by the data, the baselines and the scoring."""

from __future__ import annotations

from metbench.physics.constants import TOP_MASS, W_MASS, Z_MASS

__all__ = ["TOP_MASS", "W_MASS", "Z_MASS"]
