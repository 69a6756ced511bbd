"""The harness's own speed figures (metbench.speed) and their bench commands."""

from __future__ import annotations

from metbench.data.source import EventSource
from metbench.speed import loading_versus_pyarrow
from tests.commands import cli


def test_loading_is_measured_against_a_plain_pyarrow_read(tiny_dataset):
    r = loading_versus_pyarrow(tiny_dataset, "test", batch_size=64, repeats=1)
    assert r["n_events"] == len(EventSource(tiny_dataset, "test")) > 0
    assert r["ratio"] == r["pyarrow_s"] / r["source_s"]
    assert r["source_events_per_s"] == r["n_events"] / r["source_s"]

    out = cli("bench", "loading", "--dataset", tiny_dataset, "--batch-size", "64")
    assert out.returncode == 0, out.stderr
    assert "plain pyarrow read" in out.stdout and "of the bare read" in out.stdout
    out = cli("bench", "loading", "--dataset", tiny_dataset, "--batch-size", "0")
    assert out.returncode == 2 and "--batch-size must be >= 1" in out.stderr
