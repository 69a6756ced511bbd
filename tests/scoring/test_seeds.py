"""Repeated trainings (metbench/scoring/seeds.py): one entry trained with several seeds is shown
by its median training with the spread of S, in the CLI table and on the site alike; the other
trainings are not ranked."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from metbench.leaderboard.build import _seeds_line
from metbench.leaderboard.data import site_data
from metbench.results import find_results, read_results
from metbench.scoring.seeds import median_trainings, seed_key, seed_spreads, shown_results
from metbench.scoring.table import headline_table, kinematics_table

ROOT = Path(__file__).resolve().parents[2]


def _results(name: str) -> list[dict]:
    return [
        r
        for r in map(read_results, find_results([ROOT / "leaderboard" / "results"]))
        if r["dataset"]["name"] == name
    ]


def _seeded(base: dict, values: dict[int, float | None]) -> list[dict]:
    """Copies of a result as trainings with the given seeds and S (the headline and the MET
    task's, which the tables show)."""
    out = []
    for seed, s in values.items():
        c = copy.deepcopy(base)
        c["entry"]["name"] = f"{base['entry']['name']}-seed{seed}"
        c["entry"]["parameters"] = {
            **base["entry"]["parameters"], "seed": seed, "weights_file": f"w/{seed}.pt",
        }  # fmt: skip
        c["scores"]["headline"]["value"] = s
        c["scores"]["tasks"]["met"]["headline"]["S"]["value"] = s
        out.append(c)
    return out


def test_the_median_training_is_the_middle_one_by_s():
    base = _results("pu200")[0]
    five = _seeded(base, {1: 40.0, 2: 43.0, 3: 46.0, 4: 41.0, 5: 50.0})
    assert set(median_trainings(five).values()) == {five[1]["entry"]["name"]}  # 43: third best
    four = _seeded(base, {1: 40.0, 2: 43.0, 3: 46.0, 4: None})  # no S: last
    assert set(median_trainings(four).values()) == {four[1]["entry"]["name"]}  # lower middle
    assert median_trainings(five[:1]) == {}  # one training: nothing to choose
    shown, hidden = shown_results(five)
    assert [r["entry"]["name"] for r in shown] == [five[1]["entry"]["name"]]
    assert hidden == {five[k]["entry"]["name"]: five[1]["entry"]["name"] for k in (0, 2, 3, 4)}


def test_seed_key_ignores_the_weights_file_but_not_other_parameters():
    a = {"name": "x-1", "submission": "x", "parameters": {"seed": 1, "weights_file": "a.pt"}}
    b = {"name": "x-2", "submission": "x", "parameters": {"seed": 2, "weights_file": "b.pt"}}
    c = {"name": "x-3", "submission": "x", "parameters": {"seed": 3, "runtime": "onnx"}}
    assert seed_key(a) == seed_key(b) != seed_key(c)
    assert seed_key({"name": "pf", "parameters": {}}) is None
    # trainings at a shorter budget of epochs are a group of their own, not seeds of the full one
    short = [
        {"name": f"x-6ep-{s}", "submission": "x",
         "parameters": {"seed": s, "training_epochs": 6, "weights_file": f"6/{s}.pt"}}
        for s in (1, 2)
    ]  # fmt: skip
    assert seed_key(short[0]) == seed_key(short[1]) != seed_key(a)


def test_the_cli_table_shows_the_median_training_with_the_spread():
    results = _results("pu200")
    chs = next(r for r in results if r["entry"]["name"] == "chs")
    trainings = _seeded(chs, {1: 80.0, 2: 84.0, 3: 88.0})
    frame = headline_table([*results, *trainings], "met")
    names = list(frame["entry"])
    assert "chs-seed2" in names and "chs-seed1" not in names and "chs-seed3" not in names
    assert "chs" in names  # the result without a seed is another entry
    assert len(names) == len(results) + 1
    assert frame.loc[names.index("chs-seed2"), "S [GeV]"].startswith("84.0")
    assert (
        "chs-seed2: the median of repeated trainings; S 80.0–88.0 GeV, std 4.0 GeV over 3 "
        "trainings (seeds 1, 2, 3); not shown: chs-seed1, chs-seed3"
    ) in frame.attrs["notes"]


def test_the_site_ranks_the_median_training_and_pages_the_others():
    results = _results("pu200")
    chs = next(r for r in results if r["entry"]["name"] == "chs")
    trainings = _seeded(chs, {1: 80.0, 2: 84.0, 3: 88.0})
    (group,) = site_data([*results, *trainings])["groups"]
    rows = next(v for v in group["tasks"]["met"] if v["id"] == "all")["rows"]
    ranked = {row["entry"] for row in rows}
    assert "chs-seed2" in ranked and not {"chs-seed1", "chs-seed3"} & ranked
    entries = group["entries"]
    assert entries["chs-seed1"]["seed_of"] == entries["chs-seed3"]["seed_of"] == "chs-seed2"
    assert entries["chs-seed2"]["seed_of"] is None
    spread = entries["chs-seed2"]["seed_spread"]
    assert spread == seed_spreads(trainings)["chs-seed1"]
    assert (spread["min"], spread["max"], spread["std"]) == (80.0, 88.0, pytest.approx(4.0))
    follower = {**entries["chs-seed1"], "seed_of_page": "entry/g0-chs-seed2-x.html"}
    line = _seeds_line(follower)
    assert "not ranked" in line and "href='g0-chs-seed2-x.html'" in line
    assert "S over the 3 trainings (seeds 1, 2, 3): 80.0–88.0 GeV" in line
    assert "The median of repeated trainings" in _seeds_line(entries["chs-seed2"])
    assert _seeds_line(entries["pf"]) == ""


def test_a_full_training_is_ranked_with_the_spread_of_its_budget_group():
    """An entry trained once in full and three times at a budget of 6 epochs: the full training
    alone is ranked, with the budget group's spread of S (computed here by hand); the budget's
    trainings are paged, not ranked, and point at the full training."""
    results = _results("pu200")
    chs = next(r for r in results if r["entry"]["name"] == "chs")
    short = _seeded(chs, {1: 81.0, 2: 84.0, 3: 90.0})
    for r in short:
        r["entry"]["name"] = r["entry"]["name"].replace("-seed", "-6ep-seed")
        r["entry"]["parameters"]["training_epochs"] = 6
    values = np.array([81.0, 84.0, 90.0])
    frame = headline_table([*results, *short], "met")
    names = list(frame["entry"])
    assert "chs" in names and not any("6ep" in n for n in names) and len(names) == len(results)
    assert (
        "chs: trained once in full; how far another seed moves S, measured at a budget of 6 "
        "epochs (which moves S too: the full training's S need not lie in it); "
        f"S 81.0–90.0 GeV, std {values.std(ddof=1):.1f} GeV over 3 trainings (seeds 1, 2, 3, 6 "
        "epochs each); not shown: chs-6ep-seed1, chs-6ep-seed2, chs-6ep-seed3"
    ) in frame.attrs["notes"]
    (group,) = site_data([*results, *short])["groups"]
    entries = group["entries"]
    spread = entries["chs"]["seed_spread"]
    assert spread["budget"] == 6 and spread["n"] == 3 and spread["seeds"] == [1, 2, 3]
    assert spread["std"] == pytest.approx(values.std(ddof=1))
    assert {entries[f"chs-6ep-seed{s}"]["seed_of"] for s in (1, 2, 3)} == {"chs"}
    assert "Trained once in full" in _seeds_line(entries["chs"])
    follower = {**entries["chs-6ep-seed2"], "seed_of_page": "entry/g0-chs-x.html"}
    assert "at a budget of 6 epochs" in _seeds_line(follower)
    assert "href='g0-chs-x.html'" in _seeds_line(follower)
    # without the full training's result, the budget group is an entry of its own (its median)
    alone = headline_table([r for r in results if r is not chs] + short, "met")
    assert "chs-6ep-seed2" in list(alone["entry"])


def test_kinematic_trainings_are_ordered_by_their_pz_resolution():
    """An entry whose MET is another's (DeeLeMa) has no S: its trainings are ordered by the RMS
    of the neutrino pz residual, and the kinematics table shows the median one."""
    everything = _results("standard")
    deelema = next(r for r in everything if r["entry"]["name"] == "deelema-torch-torch")
    results = [r for r in everything if r["entry"]["submission"] != "deelema-torch"]
    deelema = copy.deepcopy(deelema)
    deelema["entry"]["name"] = "dl"
    trainings = _seeded(deelema, {1: None, 2: None, 3: None})
    for t, rms in zip(trainings, (190.0, 180.0, 200.0), strict=True):
        t["scores"]["tasks"]["kinematics"]["figures"]["nu_pz_rms"]["value"] = rms
    assert set(median_trainings(trainings).values()) == {trainings[0]["entry"]["name"]}
    frame = kinematics_table([*results, *trainings])
    names = [n.removesuffix(" (truth-matched inputs)") for n in frame["entry"]]
    assert "dl-seed1" in names and not {"dl-seed2", "dl-seed3"} & set(names)
    assert any(n.startswith("dl-seed1: the median of repeated trainings; RMS(ν pz) 180.0–200.0 GeV")
               for n in frame.attrs["notes"])  # fmt: skip
