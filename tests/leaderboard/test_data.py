"""What the site shows, computed in Python from the committed results (no browser needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from metbench.leaderboard.data import site_data
from metbench.results import SCHEMA_VERSION, find_results, read_results

ROOT = Path(__file__).resolve().parents[2]


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
    assert {"deepmet-keras-resolution", "metnet-torch-torch", "oracle"} <= set(pu200["entries"])
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


def test_marks_of_isolation_pinning_and_verification():
    """Results without ``isolation`` (the committed ones predate it) or not sandboxed are marked
    "unsandboxed"; a dataset is "unpinned" unless every result records ``pinned: true``; the
    build's verification shows as "verified" or "not re-scored"."""
    results = [r for r in _committed() if r["dataset"]["name"] == "pu200"][:3]
    # the committed pu200 results were run in bubblewrap on the published dataset
    assert results and all(
        r["isolation"] == {"sandbox": "bubblewrap", "sandboxed": True} for r in results
    )
    assert all(r["dataset"]["pinned"] is True for r in results)
    results = [json.loads(json.dumps(r)) for r in results]  # copies as older results: no keys
    for r in results:
        del r["isolation"], r["dataset"]["pinned"]
    (group,) = site_data(results)["groups"]
    for entry in group["entries"].values():
        assert [m["kind"] for m in entry["marks"]] == ["unsandboxed"]
        assert "no isolation recorded" in entry["marks"][0]["title"]
    assert [m["kind"] for m in group["dataset"]["marks"]] == ["unpinned"]
    assert "unsandboxed: " in group["legend"][0] and "unpinned: " in group["legend"][1]

    a, b, c = (json.loads(json.dumps(r)) for r in results)  # copies
    a["isolation"] = {"sandbox": "bubblewrap", "sandboxed": True}
    b["isolation"] = {"sandbox": "unshare", "sandboxed": True}
    c["isolation"] = {"sandbox": "none", "sandboxed": False}
    for r in (a, b, c):
        r["dataset"]["pinned"] = True
    checks = [
        {"status": "verified", "detail": None},
        None,
        {"status": "predictions", "detail": "x"},
    ]
    (group,) = site_data([a, b, c], checks)["groups"]
    kinds = {n: [m["kind"] for m in e["marks"]] for n, e in group["entries"].items()}
    assert kinds == {
        a["entry"]["name"]: ["verified"],
        b["entry"]["name"]: [],
        c["entry"]["name"]: ["unsandboxed", "not-rescored"],
    }
    assert "sandbox: none" in group["entries"][c["entry"]["name"]]["marks"][0]["title"]
    assert group["dataset"]["marks"] == [] and group["dataset"]["pinned"] is True
    c["dataset"]["pinned"] = None
    (group,) = site_data([a, b, c])["groups"]
    assert "not a published preset" in group["dataset"]["marks"][0]["title"]
    c["dataset"]["pinned"] = False
    (group,) = site_data([a, b, c])["groups"]
    assert "its manifest is not the published one" in group["dataset"]["marks"][0]["title"]


def test_readme_of_a_results_file_stays_inside_submissions(tmp_path):
    from metbench.leaderboard.build import _readme

    subs = tmp_path / "submissions"
    (subs / "pf").mkdir(parents=True)
    (subs / "pf" / "README.md").write_text("# PF")
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "README.md").write_text("secret")
    (subs / "link").symlink_to(outside)
    assert _readme(subs, "pf") == "# PF"
    for name in ("../home", "../../etc", "/etc", "link", "pf/../../home", "", None, 3):
        assert _readme(subs, name) is None, name
    assert _readme(None, "pf") is None


def test_columns_twins_and_parameter_counts():
    """The table's directions come from the scoring definitions (FIGURES' "lower is better");
    runtime twins share a key; a missing parameter count is "not trainable" or "not reported",
    never "None"; the RST table of the metrics docstring keeps its overflowing names whole."""
    from metbench.leaderboard.build import _parameter_count
    from metbench.leaderboard.data import table_columns, twin_key
    from metbench.leaderboard.pages import rst_to_html
    from metbench.scoring import metrics

    met = {c["key"]: c for c in table_columns()["met"]}
    assert met["S"]["better"] == "lower" and met["cms_sigma_perp_over_r"]["better"] == "lower"
    assert met["response"]["better"] == "one" and met["fake_auc"]["better"] == "higher"
    assert met["fake_rate"]["better"] == "lower" and "90%" in met["fake_rate"]["tip"]
    assert met["tail_50"]["tip"] == "fraction of events with |e - t| > 50 GeV"
    assert all(c["tip"] for c in met.values())
    torch = {"name": "m-torch", "submission": "m", "parameters": {"runtime": "torch", "a": 1}}
    onnx = {"name": "m-onnx", "submission": "m",
            "parameters": {"runtime": "onnx", "a": 1, "weights_file": "w.onnx"}}  # fmt: skip
    other = {"name": "m-b", "submission": "m", "parameters": {"runtime": "onnx", "a": 2}}
    assert twin_key(torch) == twin_key(onnx) != twin_key(other)
    assert twin_key({"name": "pf", "parameters": {}}) is None
    assert _parameter_count({"n_parameters": 5373, "n_parameters_measured_by": "child "
                             "(self-reported)"}, None) == "5,373 (self-reported)"  # fmt: skip
    assert _parameter_count({"n_parameters": None, "kind": "baseline"}, None) == (
        "none (not trainable)"
    )
    assert _parameter_count({"n_parameters": None, "kind": "ML"}, None) == "— (not reported)"
    assert _parameter_count({"n_parameters": None, "kind": "ML"}, {"trainable": False}) == (
        "none (not trainable)"
    )
    table = rst_to_html(metrics.__doc__ or "")
    assert "<td><code>sigma_perp_over_r</code></td><td>sigma_perp / R</td><td>GeV</td>" in table


def test_a_result_made_by_other_code_is_marked_stale(tmp_path, monkeypatch):
    """The site compares each result's content hash with the submission's as it is now: a
    change in the folder (here a comment appended to the entry's module) marks its results
    "stale"; the untouched submission's are not."""
    import shutil

    from metbench.leaderboard.build import current_content_hashes

    results = [r for r in _committed() if r["entry"]["name"] in ("pf", "chs")]
    results = [r for r in results if r["dataset"]["name"] == results[0]["dataset"]["name"]]
    subs = tmp_path / "submissions"
    monkeypatch.setenv("METBENCH_SUBMISSIONS", str(subs))  # the copies are the repository's
    for name in ("pf", "chs"):
        shutil.copytree(ROOT / "submissions" / name, subs / name)
    before = current_content_hashes(subs, {"pf", "chs"})
    for r in results:  # as if made by the code as it is: no mark
        r["entry"]["content_hash"] = before[r["entry"]["submission"]]
    with (subs / "pf" / "pf.py").open("a") as f:
        f.write("# a change\n")
    now = current_content_hashes(subs, {"pf", "chs", "not-here"})
    assert set(now) == {"pf", "chs"} and now["pf"] != before["pf"] and now["chs"] == before["chs"]
    checks = [
        {
            "status": "verified",
            "detail": None,
            "current_content_hash": now[r["entry"]["submission"]],
        }
        for r in results
    ]
    (group,) = site_data(results, checks)["groups"]
    kinds = {n: [m["kind"] for m in e["marks"]] for n, e in group["entries"].items()}
    assert kinds == {"pf": ["verified", "stale"], "chs": ["verified"]}
    assert before["pf"][:12] in group["entries"]["pf"]["marks"][1]["title"]


def test_only_results_and_predictions_are_committed_beside_them():
    """A run's resume state, its child's private folder, locks, logs and input extracts stay
    on the machine that ran it (git-ignored); the published folder holds results documents and
    the predictions they were scored from."""
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "leaderboard/results"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = listed.stdout.split()
    assert files
    odd = [f for f in files if not f.endswith((".json", ".parquet")) or "/." in f]
    assert not odd, odd[:5]
