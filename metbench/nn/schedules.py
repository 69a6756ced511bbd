"""Learning-rate schedules of the originals that reference entries follow.

Kept out of :mod:`metbench.nn.training` (part of every trainable entry's content hash): only the
entries that use a schedule import it, so that a schedule added here stales no other entry's
results.
"""

from __future__ import annotations

import math

__all__ = ["triangular2_learning_rate"]


def triangular2_learning_rate(
    iteration: int, base_lr: float, max_lr: float, step_size: float
) -> float:
    """The cyclic learning rate of the ``triangular2`` policy (L. N. Smith, arXiv:1506.01186), as
    DeepMET's training uses it (yongbinfeng/DeepMETTraining: 3e-4 to 1e-3, a half cycle of one
    pass over the events).

    The rate climbs linearly from ``base_lr`` to the cycle's peak in ``step_size`` optimiser steps
    and falls back in as many; the peak's height above ``base_lr`` halves with every cycle
    (cycle k, counted from 1: ``(max_lr - base_lr) / 2**(k-1)``).

    Parameters
    ----------
    iteration
        Optimiser steps taken before this one (0 for the first step of a training); a resumed
        training continues the count.
    base_lr, max_lr
        The lowest rate and the first cycle's peak.
    step_size
        Optimiser steps per half cycle (need not be an integer).

    Returns
    -------
    float
        The learning rate of step ``iteration``.
    """
    if step_size <= 0 or iteration < 0:
        raise ValueError(f"step_size must be > 0 and iteration >= 0, not {step_size}, {iteration}")
    cycle = math.floor(1 + iteration / (2 * step_size))
    x = abs(iteration / step_size - 2 * cycle + 1)
    return base_lr + (max_lr - base_lr) * max(0.0, 1 - x) * 0.5 ** (cycle - 1)
