"""The cyclic learning rate against values worked out by hand from its definition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metbench.nn.schedules import triangular2_learning_rate


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [
        (0, 3e-4),  # the start of cycle 1: the base
        (50, 6.5e-4),  # half-way up: base + 0.7e-3 / 2
        (100, 1e-3),  # the first peak
        (150, 6.5e-4),  # half-way down
        (200, 3e-4),  # cycle 2 starts at the base
        (300, 6.5e-4),  # its peak is half as high: base + 0.7e-3 / 2
        (500, 4.75e-4),  # cycle 3's peak: base + 0.7e-3 / 4
        (700, 3.875e-4),  # cycle 4's peak: base + 0.7e-3 / 8
    ],
)
def test_triangular2_by_hand(iteration, expected):
    assert triangular2_learning_rate(iteration, 3e-4, 1e-3, 100) == pytest.approx(expected)


def test_a_half_cycle_need_not_be_whole_steps():
    """DeepMET's half cycle is (events / batch size) steps, rarely an integer: 12.5 steps."""
    assert triangular2_learning_rate(25, 0.0, 1.0, 12.5) == pytest.approx(0.0)
    assert triangular2_learning_rate(12, 0.0, 1.0, 12.5) == pytest.approx(12 / 12.5)
    assert triangular2_learning_rate(13, 0.0, 1.0, 12.5) == pytest.approx(12 / 12.5)


@given(st.integers(0, 10**6), st.floats(0.5, 1e4))
def test_stays_between_the_base_and_the_first_peak(iteration, step_size):
    lr = triangular2_learning_rate(iteration, 3e-4, 1e-3, step_size)
    assert 3e-4 - 1e-15 <= lr <= 1e-3 + 1e-15


def test_rejects_a_meaningless_step_size():
    with pytest.raises(ValueError, match="step_size"):
        triangular2_learning_rate(3, 3e-4, 1e-3, 0)
