"""What the site shows, computed in Python from the committed results (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metbench.leaderboard.data import site_data
from metbench.results import SCHEMA_VERSION, find_results, read_results

ROOT = Path(__file__).resolve().parents[1]


def _committed() -> list[dict]:
    return [read_results(p) for p in find_results([ROOT / "leaderboard" / "results"])]


def test_committed_results_are_scoring_v2_grouped_by_dataset_largest_first():
    """Every committed results file reads as schema v2 (read_results refuses v1); one group per
    dataset, the one with the most events on top, each entry in the group it was run on."""
    results = _committed()
    assert results and all(r["schema_version"] == SCHEMA_VERSION for r in results)
    groups = site_data(results)["groups"]
    sizes = [g["dataset"]["n_events"] for g in groups]
    assert sizes == sorted(sizes, reverse=True)
    for group in groups:
        on_disk = {
            r["entry"]["name"] for r in results if r["dataset"]["name"] == group["dataset"]["name"]
        }
        assert set(group["entries"]) == on_disk
    names = [g["dataset"]["name"] for g in groups]
    assert "pu200" in names
    pu200 = groups[names.index("pu200")]
    assert "perceiver-torch-onnx[chunk=1]" in pu200["entries"]
    assert {"puppi", "puppi-stored"} <= set(pu200["entries"])


def test_committed_ranks_follow_the_paired_rule():
    """The site's ranks of the MET table, recomputed here from the stored replicas: rank = 1 +
    the entries whose S is lower with the 95% interval of the paired difference above 0."""
    results = _committed()
    for group in site_data(results)["groups"]:
        rows = next(v for v in group["tasks"]["met"] if v["id"] == "all")["rows"]
        by_name = {
            r["entry"]["name"]: r
            for r in results
            if r["dataset"]["manifest_sha256"] == group["dataset"]["manifest_sha256"]
        }
        replicas = {}
        for row in rows:
            head = by_name[row["entry"]]["scores"]["tasks"]["met"]["headline"]
            if row["oracle"] or not head["ranked"]:
                assert row["rank"] is None
                assert row["rank_label"] == ("ref" if row["oracle"] else "—")
                continue
            replicas[row["entry"]] = np.asarray(head["replicas"])
        for row in rows:
            if row["entry"] not in replicas:
                continue
            mine = replicas[row["entry"]]
            ahead = sum(
                np.quantile(mine - other, 0.025) > 0
                for name, other in replicas.items()
                if name != row["entry"]
            )
            assert row["rank"] == 1 + ahead, row["entry"]
        # entries whose MET is PUPPI's are not in the MET table
        assert not any(by_name[row["entry"]]["entry"].get("met_source") for row in rows)
