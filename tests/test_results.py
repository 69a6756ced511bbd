"""Results files as :class:`metbench.results.Results`: the committed files round-trip exactly, and
the typed accessors read the same numbers as a walk of the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metbench.results import Figure, Results, ResultsError, find_results, load_results, read_results

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = find_results([ROOT / "leaderboard" / "results"])


def test_committed_results_round_trip_and_read_the_same_numbers():
    assert len(COMMITTED) >= 20
    for path in COMMITTED:
        raw = json.loads(path.read_text())
        r = load_results(path)
        assert r.to_json() == raw, path
        assert r.name == raw["entry"]["name"] and r.entry.category == raw["entry"]["category"]
        assert r.dataset.key == f"{raw['dataset']['name']}-{raw['dataset']['manifest_sha256'][:12]}"
        met = raw["scores"]["tasks"]["met"]
        s = r.figure("met", "S", group="headline")
        assert s is not None and s.value == met["headline"]["S"]["value"]
        assert s.low == met["headline"]["S"].get("low")
        assert r.figure("met", "response").value == met["overall"]["response"]["value"]
        fake = raw["scores"]["tasks"].get("fake")
        auc = r.figure("fake", "auc")
        assert (auc is None) == (fake is None)
        if fake is not None:
            assert auc.value == fake["groups"]["all"]["auc"]["value"]
        assert r.throughput == raw.get("throughput")
        assert r.task("no-such-task") is None and r.figure("met", "no-such-figure") is None


def test_to_json_is_a_copy_and_bad_documents_are_refused(tmp_path):
    raw = read_results(COMMITTED[0])
    r = Results.from_json(raw)
    r.to_json()["entry"]["name"] = "changed"
    raw["scores"]["n_boot"] = -1  # the object holds its own copy
    assert r.name != "changed" and r.scores["n_boot"] >= 0
    with pytest.raises(ResultsError, match="not a valid metbench results file"):
        Results.from_json({**r.to_json(), "dataset": {"name": "x"}})
    r.write(tmp_path / "r.json")
    assert load_results(tmp_path / "r.json") == r
    assert Figure(1.5).to_json() == {"value": 1.5}
    assert Figure(1.5, 1.0, 2.0).to_json() == {"value": 1.5, "low": 1.0, "high": 2.0}
