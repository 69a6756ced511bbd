"""The text tables' number formatting (one formatter, shared with the site)."""

from __future__ import annotations

from metbench.scoring.table import format_figure


def test_format_figure_value_interval_and_missing() -> None:
    assert format_figure({"value": 26.64, "low": 25.951, "high": 27.35}) == "26.6 [26.0, 27.4]"
    assert format_figure({"value": 0.9134}, 3) == "0.913"
    assert format_figure({"value": None, "low": 1.0, "high": 2.0}) == "—"
    assert format_figure(None) == "—"
    # the interval needs both ends
    assert format_figure({"value": 1.0, "low": 0.5, "high": None}) == "1.0"


def test_format_figure_html_wraps_only_the_interval() -> None:
    text = format_figure({"value": 26.64, "low": 25.951, "high": 27.35}, html=True)
    assert text == "26.6 <span class='ci'>[26.0, 27.4]</span>"
    assert format_figure({"value": 3.0}, html=True) == "3.0"
