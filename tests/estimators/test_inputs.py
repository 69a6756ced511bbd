"""The input extract (:mod:`metbench.estimators.inputs`): the child sees an opaque, mixed copy of
the observables, and the muon-removed recoil copies in a second run. A red team's submission that
read the process out of the event ids, the file names and the manifest, and matched each
muon-removed event to the event it came from, now scores exactly as its honest self."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metbench.data.source import EventSource
from metbench.estimators.inputs import (
    EXTRACT_LAYOUT,
    PROCESS,
    SPLIT,
    is_input_extract,
    mapping_path,
    prepare_inputs,
    read_mapping,
)
from metbench.estimators.predictions import read_predictions, read_recoil
from metbench.estimators.sandbox import available_sandbox
from metbench.estimators.submission import load_submission
from metbench.harness import (
    build_estimator,
    dataset_info,
    predict_entry,
    run_entry,
    shared_extract,
)
from metbench.recoil import remove_candidates, select_dimuons_in_batch
from metbench.results import read_results

ROOT = Path(__file__).resolve().parents[2]
needs_sandbox = pytest.mark.skipif(
    available_sandbox() is None, reason="neither bubblewrap nor unshare works on this machine"
)


def write_submission(root: Path, name: str, code: str, batch_size: int = 64) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(code))
    (folder / "metbench.toml").write_text(
        textwrap.dedent(
            f"""
            name = "{name}"
            entry = "model:Estimator"
            framework = "numpy"
            category = "submission"
            description = "a test submission"
            paper = "none"
            authors = ["test"]
            trainable = false
            batch_size = {batch_size}
            """
        )
    )
    return folder


def dataset_ids(folder: Path, split: str = "test") -> np.ndarray:
    source = EventSource(folder, split, verify=False)
    return np.concatenate(
        [
            pq.read_table(folder / f, columns=["event_id"])["event_id"].to_numpy()
            for f in source.files
        ]
    )


# ------------------------------------------------------------------------------ the extract


def test_the_extract_is_opaque_mixed_and_complete(tiny_dataset, tmp_path):
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    extract = prepare_inputs(tiny_dataset, "test", tmp_path / "parts" / "input")
    assert is_input_extract(extract)
    text = (extract / "manifest.json").read_text()
    names = {Path(f).stem for f in manifest["files"]} | set(manifest["processes"])
    assert not [n for n in names if n in text], "a dataset file or process name in the manifest"
    listed = sorted(p.relative_to(extract).as_posix() for p in extract.rglob("*") if p.is_file())
    assert listed == sorted(["manifest.json", *json.loads(text)["files"]])
    assert all(Path(f).name.startswith("part_") for f in json.loads(text)["files"])
    assert not (extract / "truth").exists() and mapping_path(extract).parent != extract
    assert {e["process"] for e in json.loads(text)["files"].values()} == {PROCESS}
    # the observables, no truth column, under fresh ids
    source_columns = pq.read_schema(tiny_dataset / sorted(manifest["files"])[0]).names
    source = EventSource(extract, SPLIT, truth=())
    for relpath in source.files:
        assert pq.read_schema(extract / relpath).names == source_columns
    ids = np.concatenate(
        [
            pq.read_table(extract / f, columns=["event_id"])["event_id"].to_numpy()
            for f in source.files
        ]
    )
    real = dataset_ids(tiny_dataset)
    assert len(np.unique(ids)) == len(ids) == len(real)
    assert not set(ids.tolist()) & set(real.tolist())
    codes = {p["code"] for p in manifest["processes"].values()}
    assert np.mean(np.isin(ids // 10**12, list(codes))) < 0.01
    # the map: every event once; each part mixes processes
    mapping = read_mapping(extract)
    np.testing.assert_array_equal(np.sort(mapping.position), np.arange(len(real)))
    np.testing.assert_array_equal(real[mapping.position], mapping.event_id)
    np.testing.assert_array_equal(mapping.opaque_id, ids)
    for part in np.unique(mapping.part):
        assert len(np.unique(mapping.event_id[mapping.part == part] // 10**12)) > 1
    # the same values: the events, looked up by their real ids
    by_id = {}
    for batch in EventSource(tiny_dataset, "test", batch_size=1000, truth=()):
        for k, i in enumerate(batch.event["event_id"]):
            by_id[int(i)] = (batch.particles[k][batch.mask[k]], batch.event["mu"][k])
    to_real = dict(zip(mapping.opaque_id.tolist(), mapping.event_id.tolist(), strict=True))
    for batch in EventSource(extract, SPLIT, batch_size=1000, truth=()):
        for k, i in enumerate(batch.event["event_id"]):
            particles, mu = by_id[to_real[int(i)]]
            np.testing.assert_array_equal(batch.particles[k][batch.mask[k]], particles)
            assert batch.event["mu"][k] == mu
    # resumable: the same making is reused, another is rewritten
    before = mapping_path(extract).stat().st_mtime_ns
    assert prepare_inputs(tiny_dataset, "test", extract) == extract
    assert mapping_path(extract).stat().st_mtime_ns == before
    prepare_inputs(tiny_dataset, "test", extract, uses_truth=("truth_is_pileup",))
    assert read_mapping(extract).spec["uses_truth"] == ["truth_is_pileup"]
    truth_files = sorted((extract / "truth").rglob("*.parquet"))
    assert len(truth_files) == len(source.files)
    assert pq.read_schema(truth_files[0]).names == ["event_id", "truth_is_pileup"]


def test_the_recoil_extract_holds_the_selected_events_without_their_muons(tiny_dataset, tmp_path):
    """Its events are those of the old child-side recoil input, value for value."""
    extract = prepare_inputs(
        tiny_dataset, [("test", "recoil")], tmp_path / "recoil", max_particles=4500
    )  # fmt: skip
    mapping = read_mapping(extract)
    expected = {}
    for batch in EventSource(tiny_dataset, "test", batch_size=64, truth=()):
        selection, _, slot = select_dimuons_in_batch(batch)
        rows = np.flatnonzero(selection.selected)
        if len(rows):
            slots = np.stack([slot[selection.first[rows]], slot[selection.second[rows]]], 1)
            without = remove_candidates(batch, rows, slots)
            for k, i in enumerate(batch.event["event_id"][rows]):
                expected[int(i)] = without.particles[k][without.mask[k]]
    assert expected, "the tiny dataset has no selected dimuon"
    to_real = dict(zip(mapping.opaque_id.tolist(), mapping.event_id.tolist(), strict=True))
    seen = {}
    for batch in EventSource(extract, SPLIT, batch_size=64, truth=()):
        for k, i in enumerate(batch.event["event_id"]):
            seen[to_real[int(i)]] = batch.particles[k][batch.mask[k]]
    assert set(seen) == set(expected)
    for i, particles in expected.items():
        np.testing.assert_array_equal(seen[i], particles)
    assert not set(mapping.opaque_id.tolist()) & set(dataset_ids(tiny_dataset).tolist())


def test_a_mixed_extract_holds_each_source_once_and_mixes_them(tiny_dataset, tmp_path):
    """The extract of a run: the test and validation splits in one set of parts, each event under
    its own id, the map telling each back to its split and position; their recoil copies in a
    second extract, never with the events (a child could pair an event with its copy)."""
    sources = [("test", "events"), ("val", "events")]
    extract = prepare_inputs(tiny_dataset, sources, tmp_path / "mixed")
    mapping = read_mapping(extract)
    assert mapping.sources == sources
    manifest = json.loads((extract / "manifest.json").read_text())
    assert manifest["splits"] == {SPLIT: len(mapping.position)}
    assert "val" not in json.dumps(manifest)
    for split in ("test", "val"):
        rows = mapping.rows_of(split)
        np.testing.assert_array_equal(mapping.event_id[rows], dataset_ids(tiny_dataset, split))
        counts = np.concatenate([
            pq.read_table(tiny_dataset / f, columns=["pf"])["pf"].combine_chunks()
            .value_lengths().to_numpy(zero_copy_only=False)
            for f in EventSource(tiny_dataset, split, verify=False).files
        ])  # fmt: skip
        np.testing.assert_array_equal(mapping.n_candidates[rows], counts)
    n_files = sum(len(EventSource(tiny_dataset, s, verify=False).files) for s in ("test", "val"))
    assert len(manifest["files"]) == n_files
    assert len(np.unique(mapping.opaque_id)) == len(mapping.opaque_id)
    # the splits share the parts: most parts hold test and validation events alike
    test_index, val_index = 0, 1
    both = [
        part for part in np.unique(mapping.part)
        if {test_index, val_index} <= set(mapping.source[mapping.part == part].tolist())
    ]  # fmt: skip
    assert len(both) >= len(np.unique(mapping.part)) // 2
    # the values: a validation event read from the extract is the dataset's
    by_id = {}
    for batch in EventSource(tiny_dataset, "val", batch_size=1000, truth=()):
        for k, i in enumerate(batch.event["event_id"]):
            by_id[int(i)] = batch.particles[k][batch.mask[k]]
    is_val = dict(
        zip(mapping.opaque_id.tolist(), (mapping.source == val_index).tolist(), strict=True)
    )
    to_real = dict(zip(mapping.opaque_id.tolist(), mapping.event_id.tolist(), strict=True))
    checked = 0
    for batch in EventSource(extract, SPLIT, batch_size=1000, truth=()):
        for k, i in enumerate(batch.event["event_id"]):
            if is_val[int(i)]:
                np.testing.assert_array_equal(
                    batch.particles[k][batch.mask[k]], by_id[to_real[int(i)]]
                )
                checked += 1
    assert checked == len(by_id)
    # the recoil copies of both splits: one extract of their own, each copy once
    copies = read_mapping(
        prepare_inputs(
            tiny_dataset, [("test", "recoil"), ("val", "recoil")], tmp_path / "copies",
            max_particles=4500,
        )
    )  # fmt: skip
    alone = read_mapping(
        prepare_inputs(tiny_dataset, [("test", "recoil")], tmp_path / "alone", max_particles=4500)
    )
    np.testing.assert_array_equal(
        copies.event_id[copies.rows_of("test", "recoil")], np.sort(alone.event_id)
    )
    with pytest.raises(ValueError, match="not both"):
        prepare_inputs(
            tiny_dataset, [("test", "events"), ("test", "recoil")], tmp_path / "x",
            max_particles=4500,
        )  # fmt: skip


# ------------------------------------------------------------------ through the harness


def _old_style_pf(dataset: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PF's predictions as the child made them before the extract: file by file in the dataset's
    order, the recoil input made from each batch."""
    sub = load_submission(ROOT / "submissions" / "pf")
    estimator = build_estimator(sub, "pf", {})
    source = EventSource(
        dataset, "test", sub.manifest.batch_size, sub.manifest.max_particles, truth=()
    )
    ids, mets, recoils = [], [], []
    for relpath in source.files:
        for batch in source.restrict([relpath]):
            ids.append(batch.event["event_id"])
            mets.append(estimator.predict(batch).astype(np.float64))
            out = np.full((len(batch), 2), np.nan)
            selection, _, slot = select_dimuons_in_batch(batch)
            rows = np.flatnonzero(selection.selected)
            if len(rows):
                slots = np.stack([slot[selection.first[rows]], slot[selection.second[rows]]], 1)
                out[rows] = estimator.predict(remove_candidates(batch, rows, slots))
            recoils.append(out)
    return np.concatenate(ids), np.concatenate(mets), np.concatenate(recoils)


@needs_sandbox
def test_entries_of_one_results_folder_share_their_extract(tiny_dataset, tmp_path):
    # one extract of the split per kind of input, written by the first entry and read by the
    # next (a standard-size extract takes minutes); an entry declaring truth gets its own
    info = dataset_info(tiny_dataset)
    results = tmp_path / "r"

    def extracts() -> dict[str, tuple[int, bytes]]:
        return {
            folder.name: (
                mapping_path(folder).stat().st_mtime_ns,
                mapping_path(folder).read_bytes(),
            )
            for folder in sorted((results / ".inputs").iterdir())
            if is_input_extract(folder)
        }

    for name in ("pf", "track"):
        sub = load_submission(ROOT / "submissions" / name)
        predict_entry(sub, name, {}, info, "test", results / f"{name}.predictions.parquet")
        if name == "pf":
            first = extracts()
    assert extracts() == first and len(first) == 2  # the events and their recoil copies
    assert sorted(read_mapping(results / ".inputs" / name).sources for name in first) == [
        [("test", "events")], [("test", "recoil")]
    ]  # fmt: skip
    np.testing.assert_array_equal(  # both entries' predictions land on the same events
        read_predictions(results / "pf.predictions.parquet").event_id,
        read_predictions(results / "track.predictions.parquet").event_id,
    )
    oracle = load_submission(ROOT / "submissions" / "oracle")
    predict_entry(oracle, "oracle", {}, info, "test", results / "oracle.predictions.parquet")
    now = extracts()
    assert len(now) == 4 and {k: now[k] for k in first} == first
    declared = [
        k for k in now if k not in first and read_mapping(results / ".inputs" / k).sources[0][1]
        == "events"
    ]  # fmt: skip
    assert len(declared) == 1
    assert read_mapping(results / ".inputs" / declared[0]).spec["uses_truth"] == ["truth_is_pileup"]


def test_an_extract_of_an_older_layout_is_removed(tiny_dataset, tmp_path):
    """Never read again, it would stay beside the results (gigabytes on standard)."""
    out = tmp_path / "r" / "pf.predictions.parquet"
    current = shared_extract(tiny_dataset, "test", out)
    old = current.with_name("test-events-0123456789ab")
    shutil.copytree(current, old)
    shutil.copy(mapping_path(current), mapping_path(old))
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["input_extract"] = {"layout": 2}
    (old / "manifest.json").write_text(json.dumps(manifest))
    unrelated = current.with_name("notes")
    unrelated.mkdir()
    assert shared_extract(tiny_dataset, "test", out) == current
    assert not old.exists() and not mapping_path(old).exists()
    assert is_input_extract(current) and unrelated.is_dir()


def test_an_honest_entry_predicts_exactly_as_before(tiny_dataset, tmp_path):
    sub = load_submission(ROOT / "submissions" / "pf")
    out = tmp_path / "r" / "pf.predictions.parquet"
    predict_entry(sub, "pf", {}, dataset_info(tiny_dataset), "test", out)
    pred = read_predictions(out)
    event_id, met, cov = pred.event_id, pred.met, pred.covariance
    ids, expected_met, expected_recoil = _old_style_pf(tiny_dataset)
    np.testing.assert_array_equal(event_id, ids)  # the dataset's order, its ids
    np.testing.assert_array_equal(met, expected_met)
    np.testing.assert_array_equal(read_recoil(out), expected_recoil)
    assert cov is None
    assert not list(out.parent.glob(".*.parts")) and not list(out.parent.glob("*.sandbox.*"))
    assert out.with_name("pf.recoil.log").is_file()


SPY = """
import json, os, sys
from pathlib import Path

import numpy as np

class Estimator:
    def __init__(self):
        job = json.loads(Path(sys.argv[-2]).read_text())
        folder = Path(job["dataset"])
        manifest = json.loads((folder / "manifest.json").read_text())
        seen = {
            "dataset": job["dataset"],
            "job": sorted(k for k, v in job.items() if v),
            "listing": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")),
            "processes": sorted({e["process"] for e in manifest["files"].values()}),
            "manifest": manifest,
        }
        print("SPY " + json.dumps(seen), flush=True)

    def predict(self, batch):
        ids = batch.event["event_id"]
        print("IDS " + json.dumps(ids.tolist()), flush=True)
        code = (ids // 10**12) % 2**20  # what the process code would be
        return np.stack([code.astype(np.float64), np.zeros(len(ids))], 1)
"""


@needs_sandbox
def test_the_child_cannot_tell_the_process_from_what_it_sees(tiny_dataset, tmp_path):
    """A submission that writes `event_id // 10**12` (the process code in the dataset's ids) as
    its MET: what it wrote is not the process, and the ids it saw are none of the dataset's."""
    sub = load_submission(write_submission(tmp_path, "spy", SPY))
    out = tmp_path / "r" / "spy.predictions.parquet"
    predict_entry(sub, "spy", {}, dataset_info(tiny_dataset), "test", out)
    log = out.with_name("spy.log").read_text()
    seen = json.loads(log.split("SPY ", 1)[1].splitlines()[0])
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    assert seen["processes"] == [PROCESS]
    assert "source_dataset" not in seen["job"] and str(tiny_dataset) not in json.dumps(seen)
    text = json.dumps(seen)
    assert not [p for p in manifest["processes"] if p in text]
    assert not [f for f in manifest["files"] if Path(f).stem in text]
    assert not [name for name in seen["listing"] if name.startswith("truth")]
    ids = [i for line in log.split("IDS ")[1:] for i in json.loads(line.splitlines()[0])]
    real = dataset_ids(tiny_dataset)
    assert len(ids) == len(real) and not set(ids) & set(real.tolist())
    pred = read_predictions(out)
    event_id, met = pred.event_id, pred.met
    code = event_id // 10**12
    assert np.mean(met[:, 0] == code) < 0.05
    for c in np.unique(code):  # events of one process get many different "codes"
        if (code == c).sum() >= 5:
            assert len(np.unique(met[code == c, 0])) > 1
    spy_recoil = out.with_name("spy.recoil.log").read_text()
    recoil_ids = [
        i for line in spy_recoil.split("IDS ")[1:] for i in json.loads(line.splitlines()[0])
    ]
    assert recoil_ids and not set(recoil_ids) & (set(ids) | set(real.tolist()))


VIEW = """
import json, sys
from pathlib import Path

import numpy as np

class Estimator:
    def __init__(self):
        job = json.loads(Path(sys.argv[-2]).read_text())
        manifest = json.loads((Path(job["dataset"]) / "manifest.json").read_text())
        for entry in manifest["files"].values():  # how many events (and parts): visible
            for key in ("bytes", "n_events", "sha256"):
                entry.pop(key)
        names = sorted(manifest["files"])
        assert names == [f"events/test/part_{i:05d}.parquet" for i in range(len(names))], names
        manifest["files"] = sorted({json.dumps(e, sort_keys=True) for e in manifest["files"].values()})
        manifest["splits"] = sorted(manifest["splits"])
        print("VIEW " + json.dumps({"job": job, "manifest": manifest}, sort_keys=True), flush=True)

    def predict(self, batch):
        return np.zeros((len(batch), 2))
"""


@needs_sandbox
def test_the_child_cannot_tell_which_run_it_is_in(tiny_dataset, tmp_path):
    """One child predicts the test split and the validation split (the calibration), mixed in one
    extract; a second predicts both splits' muon-removed copies (the recoil), mixed in another.
    Both get the same job and an extract that says nothing of what it was made of: the scored
    events cannot be treated differently from the calibration's by reading the job, the manifest
    or the number of events (the audit of 2026-12-05 read the kind, the split and the run's whole
    identity there, and each split had a child of its own, so also its size). Only the
    throughput measurement, in a child of its own, is told it measures.
    """
    from metbench.scoring.throughput import ThroughputSettings

    sub = load_submission(write_submission(tmp_path, "view", VIEW))
    results = tmp_path / "r"
    fast = ThroughputSettings(batch_sizes=(1, 4), warmup_calls=1, min_duration_s=0.0, min_calls=1)
    run_entry(sub, "view", {}, dataset_info(tiny_dataset), "test", results, n_boot=0,
              throughput=fast)  # fmt: skip
    views = []
    for log in sorted(results.rglob("*.log")):
        for line in log.read_text().splitlines():
            if line.startswith("VIEW "):
                views.append((log.name, json.loads(line[5:])))
    assert sorted({name for name, _ in views}) == [
        "view.log", "view.recoil.log", "view.throughput.log"
    ]  # fmt: skip
    predicting = [view for _, view in views if view["job"]["predict"]]
    measuring = [view for _, view in views if not view["job"]["predict"]]
    assert len(predicting) == 2 and len(measuring) == 1  # the events, the copies; throughput
    differ = {k for k in predicting[1]["job"] if predicting[1]["job"][k] != predicting[0]["job"][k]}
    assert not differ, differ
    assert predicting[1]["manifest"] == predicting[0]["manifest"]
    job = predicting[0]["job"]
    assert job["split"] == SPLIT and job["throughput"] is None and "metadata" not in job
    assert list(predicting[0]["manifest"]["splits"]) == [SPLIT]
    text = json.dumps(predicting[0]["manifest"])
    assert predicting[0]["manifest"]["input_extract"] == {"layout": EXTRACT_LAYOUT}
    assert not [word for word in ("val", "recoil") if word in text]
    # what the children read: both splits in one extract, both splits' copies in another
    made = sorted(
        read_mapping(f).sources for f in results.rglob(".inputs/*")
        if is_input_extract(f) and read_mapping(f).spec["sample"] is None
    )  # fmt: skip
    assert made == [
        [("test", "events"), ("val", "events")],
        [("test", "recoil"), ("val", "recoil")],
    ]
    assert measuring[0]["job"]["throughput"] is not None
    assert read_results(results_file(results))["throughput"]["batches"]  # it was measured
    val = read_predictions(next(results.rglob("view.val-predictions.parquet")))
    np.testing.assert_array_equal(val.event_id, dataset_ids(tiny_dataset, "val"))


def results_file(results: Path) -> Path:
    return next(p for p in results.rglob("view.json"))


CHEAT = """
import json, os, glob
import numpy as np
import pyarrow.parquet as pq
from metbench.recoil import select_dimuons_in_batch

def _process_map():
    job = json.load(open("/run/metbench/job.json"))
    ds = job["dataset"]
    manifest = json.load(open(os.path.join(ds, "manifest.json")))
    m = {}
    for rel, entry in manifest["files"].items():
        if entry["kind"] != "events":
            continue
        ids = pq.read_table(os.path.join(ds, rel), columns=["event_id"])["event_id"].to_numpy()
        for i in ids:
            m[int(i)] = entry["process"]
    return m

class Estimator:
    def __init__(self, leak_process=True, game_recoil=True):
        self.process = _process_map()
        self.leak_process = leak_process
        self.game_recoil = game_recoil
        self.last_full = None
        self.qt = {}

    def predict(self, batch):
        ids = batch.event["event_id"]
        px = batch.feature("pt") * np.cos(batch.feature("phi"))
        py = batch.feature("pt") * np.sin(batch.feature("phi"))
        met = -np.stack([(px * batch.mask).sum(1), (py * batch.mask).sum(1)], 1).astype(np.float64)
        if self.last_full is not None and set(ids.tolist()) <= self.last_full:
            self.last_full = None  # this is the muon-removed recoil input
            if self.game_recoil:
                return np.stack([self.qt[int(i)] for i in ids]).astype(np.float64)
            return met
        self.last_full = set(ids.tolist())
        sel, _, _ = select_dimuons_in_batch(batch)
        for r in np.flatnonzero(sel.selected):
            self.qt[int(ids[r])] = sel.qt[r]
        if self.leak_process:
            proc = np.array([self.process.get(int(i), "?") for i in ids])
            met[proc == "qcd_multijet"] *= 1e-3
            met[proc == "z_mumu"] *= 1e-3
        return met
"""


@needs_sandbox
def test_the_red_team_cheat_scores_as_its_honest_self(mini_dataset, tmp_path):
    """The cheat got a fake-MET AUC of 1.000 (PF: 0.868) and a perfect recoil; now its figures
    are those of the same code with the cheats off."""
    folder = write_submission(tmp_path, "cheat", CHEAT)
    sub = load_submission(folder)
    info = dataset_info(mini_dataset)
    scores = {}
    for name, params in (
        ("cheat", {}),
        ("honest", {"leak_process": False, "game_recoil": False}),
    ):
        path, _ = run_entry(sub, name, params, info, "test", tmp_path / "r", n_boot=0)
        scores[name] = read_results(path)["scores"]["tasks"]
    cheat, honest = scores["cheat"], scores["honest"]
    auc = cheat["fake"]["groups"]["all"]["auc"]["value"]
    assert auc == pytest.approx(honest["fake"]["groups"]["all"]["auc"]["value"], abs=1e-12)
    assert auc < 0.97
    assert cheat["fake"] == honest["fake"]
    assert cheat["recoil"] == honest["recoil"]
    resolution = cheat["recoil"]["overall"]
    assert json.dumps(resolution) == json.dumps(honest["recoil"]["overall"])
