"""The child's report (:class:`metbench.estimators.isolation.ChildReport`): what crosses a Dask
worker comes back the same, nothing unknown is accepted, and two children of one prediction add
up as the harness records them."""

from __future__ import annotations

import json

import pytest

from metbench.estimators.isolation import ChildReport
from metbench.estimators.submission import SubmissionError


def test_report_round_trips_through_json_and_refuses_unknown_fields():
    report = ChildReport(
        n_events=1200, n_truncated=3, has_covariance=False, device="cpu", n_parameters=None,
        peak_rss_mb=512.5, wall_s=12.0, throughput=[{"batch_size": 1, "skipped": "no"}],
        isolation={"sandbox": "bubblewrap", "sandboxed": True},
    )  # fmt: skip
    plain = json.loads(json.dumps(report.to_json()))  # what a Dask worker hands back
    assert "n_parameters" not in plain  # unset fields are left out
    assert ChildReport.from_json(plain) == report
    with pytest.raises(SubmissionError, match="unknown field"):
        ChildReport.from_json({**plain, "is_admin": True})


def test_a_report_without_predictions_claims_no_counts():
    """Reused predictions (or a throughput-only child) say nothing about truncation: the
    results must not record ``n_truncated: 0`` for them."""
    assert "n_truncated" not in ChildReport(reused=True).to_json()
    assert "n_events" not in ChildReport(reused=True).to_json()


def test_a_second_child_adds_its_time_and_the_larger_peak():
    first = ChildReport(n_events=10, peak_rss_mb=300.0, wall_s=5.0)
    first.add_run(ChildReport(peak_rss_mb=450.0, wall_s=2.5))
    assert (first.n_events, first.wall_s, first.peak_rss_mb) == (10, 7.5, 450.0)
