"""The tricks of metbench.scoring.robustness on real estimates: PF MET of the mini preset's test
split (Pythia events with pileup), computed here as minus the candidates' vector sum. Gaming
PF's estimates never improves S; flipped or zeroed PF MET is unranked; ``metbench bench
robustness`` prints the same table from a predictions file."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.scoring.robustness import TRICKS, robustness_table
from metbench.scoring.score import load_truth, score
from tests.commands import cli


@pytest.fixture(scope="module")
def pf_met(mini_dataset):
    """``(met, truth)``: PF MET of every test event, aligned with the split's truth."""
    truth = load_truth(mini_dataset, "test")
    ids, mets = [], []
    for batch in EventSource(mini_dataset, "test", batch_size=512):
        pt = batch.feature("pt").astype(np.float64) * batch.mask
        phi = batch.feature("phi").astype(np.float64)
        mets.append(-np.stack([(pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)], 1))
        ids.append(np.asarray(batch.event["event_id"]))
    met = np.concatenate(mets)
    order = {int(e): i for i, e in enumerate(np.concatenate(ids))}
    return met[[order[int(e)] for e in truth.event_id]], truth


def test_gaming_pf_never_improves_s(pf_met):
    met, truth = pf_met
    table = robustness_table(met, truth).set_index("estimate")
    honest = float(table.loc["honest", "S [GeV]"])
    assert table.loc["honest", "ranked"] == "yes"
    for name in TRICKS:
        s = table.loc[name, "S [GeV]"]
        if name == "honest":
            continue
        if name == "scale by 0.5":  # a global scale is undone by the response correction
            assert float(s) == pytest.approx(honest, abs=0.05)
        elif s != "—":
            assert float(s) > honest, name


def test_flipped_and_zero_pf_met_are_unranked(pf_met):
    met, truth = pf_met
    for bad in (-met, np.zeros_like(met)):
        head = score(bad, truth, n_boot=200)["headline"]
        assert head["value"] is None and not head["ranked"]
        assert "reaches 0 or lies below" in head["reason"]


def test_bench_robustness_command(mini_dataset, tmp_path):
    predictions = tmp_path / "pf.parquet"
    r = cli("predict", "submissions/pf", "--dataset", mini_dataset, "--out", predictions)
    assert r.returncode == 0, r.stderr
    r = cli("bench", "robustness", predictions, "--dataset", mini_dataset)
    assert r.returncode == 0, r.stderr
    assert "the headline under" in r.stdout and "pf on mini" in r.stdout
    for name in ("honest", "zero below 80 GeV", "flip (-e)"):
        assert name in r.stdout
    flip = next(line for line in r.stdout.splitlines() if "flip (-e)" in line)
    assert "—" in flip and "no" in flip
