"""What the site shows, computed in Python from the committed results (no browser needed)."""

from __future__ import annotations

from pathlib import Path

from metbench.leaderboard.data import site_data
from metbench.results import find_results, read_results

ROOT = Path(__file__).resolve().parents[1]


def test_committed_results_group_by_dataset_with_the_largest_first():
    """leaderboard/results holds the standard test split and pu200: two groups, standard (the
    most events) on top, each entry in the group of the dataset it was run on."""
    results = [read_results(p) for p in find_results([ROOT / "leaderboard" / "results"])]
    groups = site_data(results)["groups"]
    names = [g["dataset"]["name"] for g in groups]
    assert names == ["standard", "pu200"]
    assert groups[0]["dataset"]["n_events"] > groups[1]["dataset"]["n_events"]
    for group in groups:
        on_disk = {
            r["entry"]["name"] for r in results if r["dataset"]["name"] == group["dataset"]["name"]
        }
        assert set(group["entries"]) == on_disk
    assert "perceiver-torch-onnx[chunk=1]" in groups[1]["entries"]
