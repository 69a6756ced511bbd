"""Generation: reproducibility, resumption, schema and truth content."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from metbench.data.generate.run import generate_dataset
from metbench.data.source import read_events
from metbench.data.store import sha256_file
from metbench.events import (
    EVENT_DTYPES,
    OBSERVABLE_EVENT_COLUMNS,
    PARTICLE_DTYPES,
    PARTICLE_FEATURES,
    TRUTH_OBJECTS,
    TRUTH_PARTICLE_COLUMNS,
)
from tests.conftest import manifest_of


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "timing.json" and "validation" not in p.parts
    }


@pytest.mark.slow
def test_a_seed_gives_the_same_bytes_on_any_number_of_workers(tiny_dataset, tiny_spec, tmp_path):
    # the same seed on two workers instead of one: every file identical, manifest included (the
    # full mini preset is checked against its published hash in test_published.py)
    again = tmp_path / "again"
    generate_dataset(tiny_spec, again, seed=3, workers=2)
    first, second = _digests(tiny_dataset), _digests(again)
    assert "manifest.json" in first
    assert len(first) > 10
    assert first == second
    # another seed: every file differs
    other = tmp_path / "other"
    generate_dataset(tiny_spec, other, seed=4, workers=2)
    third = _digests(other)
    assert set(third) == set(first)
    assert all(third[k] != first[k] for k in first)


def test_interrupted_generation_resumes_to_the_same_result(tiny_spec, tmp_path):
    clean = tmp_path / "clean"
    generate_dataset(tiny_spec, clean, seed=7)
    interrupted = tmp_path / "interrupted"
    calls = []

    def stop_after_two_shards(stage, done, total):
        calls.append((stage, done))
        if stage == "events" and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tiny_spec, interrupted, seed=7, on_progress=stop_after_two_shards)
    assert not (interrupted / "manifest.json").exists()
    done_before = sorted(p.name for p in (interrupted / ".progress").glob("*_0000.json"))
    assert len(done_before) == 2
    resumed = []
    generate_dataset(
        tiny_spec, interrupted, seed=7, on_progress=lambda s, d, t: resumed.append((s, d, t))
    )
    assert ("events", 2, 6) in resumed  # two shards recognised as done, not regenerated
    assert _digests(clean) == _digests(interrupted)
    assert not (interrupted / ".progress").exists()


def test_refuses_to_mix_datasets(tiny_spec, tmp_path):
    from metbench.errors import MetbenchError

    out = tmp_path / "d"
    generate_dataset(tiny_spec, out, seed=7)
    assert generate_dataset(tiny_spec, out, seed=7)["seed"] == 7  # complete: recognised, no work
    with pytest.raises(MetbenchError, match="different dataset"):
        generate_dataset(tiny_spec, out, seed=8)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(MetbenchError, match="not empty"):
        generate_dataset(tiny_spec, tmp_path / "full", seed=7)


def test_manifest_records_versions_settings_seeds_counts_and_checksums(mini_dataset):
    m = manifest_of(mini_dataset)
    assert m["name"] == "mini" and m["seed"] == 1 and m["version"]
    assert set(m["versions"]) >= {"metbench", "pythia8mc", "numpy"}
    assert m["versions"]["pythia8mc"] == "8.317.2"
    assert m["settings"]["mu"] == {"kind": "uniform", "low": 0.0, "high": 80.0}
    assert sum(sum(p["events"].values()) for p in m["processes"].values()) == 6 * 340
    for relpath, entry in m["files"].items():
        path = mini_dataset / relpath
        assert path.stat().st_size == entry["bytes"]
        assert sha256_file(path) == entry["sha256"]
    n_from_files = sum(e["n_events"] for e in m["files"].values() if e["kind"] == "events")
    assert n_from_files == 2040


def test_stored_schema_matches_the_event_model(mini_dataset):
    m = manifest_of(mini_dataset)
    relpath = next(p for p, e in m["files"].items() if e["kind"] == "events")
    schema = pq.read_schema(mini_dataset / relpath)
    truth = pq.read_schema(mini_dataset / relpath.replace("events/", "truth/", 1))
    import pyarrow as pa

    for name, dtype in EVENT_DTYPES.items():  # observables in events/, truth in truth/
        where = schema if name in OBSERVABLE_EVENT_COLUMNS else truth
        assert where.field(name).type == pa.from_numpy_dtype(dtype), name
    assert truth.field("event_id").type == pa.int64()  # the join key is in both
    pf_struct = schema.field("pf").type.value_type
    assert [pf_struct.field(i).name for i in range(pf_struct.num_fields)] == list(PARTICLE_FEATURES)
    for name in PARTICLE_FEATURES:
        assert pf_struct.field(name).type == pa.from_numpy_dtype(PARTICLE_DTYPES[name]), name
    for name in TRUTH_PARTICLE_COLUMNS:  # a list per event, aligned with pf
        item = truth.field(name).type.value_type
        assert item == pa.from_numpy_dtype(PARTICLE_DTYPES[name]), name
    for name in TRUTH_OBJECTS:
        assert truth.field(name) is not None
        assert schema.get_field_index(name) == -1


def test_events_are_physical(mini_dataset):
    arr = read_events(mini_dataset)
    ids = ak.to_numpy(arr.event_id)
    assert len(np.unique(ids)) == len(ids) == 2040
    pf = arr.pf
    pt = ak.to_numpy(ak.flatten(pf.pt))
    assert np.all(pt > 0)
    assert np.all(np.abs(ak.to_numpy(ak.flatten(pf.eta))) <= 5.0)
    assert np.all(np.abs(ak.to_numpy(ak.flatten(pf.phi))) <= np.pi + 1e-3)
    w = ak.to_numpy(ak.flatten(pf.puppi_weight))
    assert np.all((w >= 0) & (w <= 1))
    assert set(np.unique(ak.to_numpy(ak.flatten(pf.from_pv)))) <= {0, 1, 2, 3}
    assert set(np.unique(np.abs(ak.to_numpy(ak.flatten(pf.pdg_id))))) <= {
        1,
        2,
        11,
        13,
        22,
        130,
        211,
    }
    # neutral candidates carry no track information, as in the event model
    neutral = ak.to_numpy(ak.flatten(pf.charge)) == 0
    assert np.all(ak.to_numpy(ak.flatten(pf.dz))[neutral] == 0)
    assert np.all(ak.to_numpy(ak.flatten(pf.from_pv))[neutral] == 3)
    # stored pt-ordered
    assert ak.all(pf.pt[:, :-1] >= pf.pt[:, 1:])
    # n_pu ~ Poisson(mu): mean matches, and zero-pileup events have no pileup candidates
    mu, n_pu = ak.to_numpy(arr.mu), ak.to_numpy(arr.n_pu)
    assert abs(n_pu.mean() - mu.mean()) < 4 * np.sqrt(mu.mean() / len(mu))
    assert not ak.any(pf.truth_is_pileup[n_pu == 0])


def test_truth_objects(mini_dataset):
    arr = read_events(mini_dataset)
    process = ak.to_numpy(arr.process).astype(str)
    tt = arr[process == "ttbar_2l2nu"]
    assert ak.all(ak.num(tt.truth_neutrinos) == 2)
    assert ak.all(ak.num(tt.truth_leptons) == 2)
    # t -> W b, except for the rare t -> W s / W d (|V_ts|^2 + |V_td|^2 ~ 0.2 % per top)
    n_b = ak.to_numpy(ak.num(tt.truth_b_quarks))
    assert np.all(n_b <= 2) and np.mean(n_b == 2) > 0.98
    assert set(np.unique(np.abs(ak.to_numpy(ak.flatten(tt.truth_leptons.pdg_id))))) <= {11, 13}
    # a b and an anti-b
    assert ak.all(ak.sum(tt.truth_b_quarks.pdg_id[n_b == 2], axis=1) == 0)
    # generator MET is the sum of all invisible particles; the W neutrinos dominate it (b-hadron
    # decays add a little)
    nu_x = ak.to_numpy(ak.sum(tt.truth_neutrinos.px, axis=1))
    met_x = ak.to_numpy(tt.gen_met_x)
    assert np.median(np.abs(nu_x - met_x)) < 3.0
    assert np.corrcoef(nu_x, met_x)[0, 1] > 0.95
    # Z -> nu nu and H -> 4 nu: generator MET equals the boson's qT
    for name in ("z_nunu_jets", "h_zz_4nu"):
        sel = arr[process == name]
        d = np.hypot(
            ak.to_numpy(sel.gen_met_x - sel.gen_qt_x), ak.to_numpy(sel.gen_met_y - sel.gen_qt_y)
        )
        assert np.median(d) < 0.5
    # qT only where a boson is defined
    assert np.all(np.isnan(ak.to_numpy(arr.gen_qt_x[process == "qcd_multijet"])))
    zmm = arr[process == "z_mumu"]
    assert np.all(np.isfinite(ak.to_numpy(zmm.gen_qt_x)))


def test_timing_is_recorded_outside_the_checksums(mini_dataset):
    timing = json.loads((mini_dataset / "timing.json").read_text())
    assert timing["events"] == 2040
    assert timing["events_per_s_per_core"] > 0
    assert "timing.json" not in manifest_of(mini_dataset)["files"]


@pytest.mark.slow  # mini's tt̄ shards and pool, then the other processes
def test_some_processes_first_then_the_rest_give_the_published_dataset(mini_dataset, tmp_path):
    from metbench.data.generate.presets import get_preset
    from metbench.data.published import PUBLISHED_MANIFESTS
    from metbench.data.source import EventSource
    from metbench.errors import DatasetError

    out = tmp_path / "mini"
    published = manifest_of(mini_dataset)["files"]
    messages: list[str] = []
    generate_dataset(get_preset("mini"), out, seed=1, workers=2, processes=["ttbar_2l2nu"],
                     on_message=messages.append)  # fmt: skip
    assert sha256_file(out / "manifest.json") == PUBLISHED_MANIFESTS[("mini", 1)]
    wanted = {
        relpath
        for relpath, entry in published.items()
        if entry["kind"] == "pileup_pool" or entry.get("process") == "ttbar_2l2nu"
    }
    assert 0 < len(wanted) < len(published)
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == wanted | {"manifest.json"}
    for relpath in wanted:  # the bytes of the dataset generated whole
        assert sha256_file(out / relpath) == sha256_file(mini_dataset / relpath), relpath
    assert any("matches the published manifest" in m for m in messages), messages

    # what a training on tt̄ reads is there; another process is a missing file, said so
    n_tt = manifest_of(out)["processes"]["ttbar_2l2nu"]["events"]["train"]
    assert (
        sum(len(b.event["event_id"]) for b in EventSource(out, "train", processes=["ttbar_2l2nu"]))
        == n_tt
    )
    with pytest.raises(DatasetError, match="missing; regenerate"):
        next(iter(EventSource(out, "train", processes=["w_lnu"])))

    generate_dataset(get_preset("mini"), out, seed=1, workers=2)  # the rest
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == set(
        published
    ) | {"manifest.json"}
    for relpath, entry in published.items():
        assert sha256_file(out / relpath) == entry["sha256"], relpath
    assert sha256_file(out / "manifest.json") == PUBLISHED_MANIFESTS[("mini", 1)]


def test_some_processes_only_is_refused_without_a_published_manifest(tmp_path):
    from dataclasses import replace

    from metbench.data.generate.presets import get_preset
    from metbench.errors import MetbenchError
    from tests.commands import assert_one_line_error, cli

    mini = get_preset("mini")
    cases = [
        (mini, 1, ["top"], "--process top: not a process of mini"),
        (mini, 2, ["w_lnu"], "not of mini with seed 2: generate the whole dataset"),
        (mini.scaled(10), 1, ["w_lnu"], "not of mini with seed 1 and other settings"),
        (replace(mini, pool_size=100), 1, ["w_lnu"], "and other settings"),
        (get_preset("standard"), 2, ["w_lnu"], "not of standard with seed 2"),
    ]
    for spec, seed, processes, message in cases:
        out = tmp_path / "new"
        with pytest.raises(MetbenchError, match=message):
            generate_dataset(spec, out, seed=seed, processes=processes)
        assert not out.exists()  # nothing written
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(MetbenchError, match="exists and is not empty"):
        generate_dataset(mini, busy, seed=1, processes=["w_lnu"])
    (busy / "notes.txt").unlink()
    (busy / "events").mkdir()
    (busy / "manifest.json").write_text('{"format": "metb')  # a generation cut short
    with pytest.raises(MetbenchError, match="interrupted generation of the whole dataset"):
        generate_dataset(mini, busy, seed=1, processes=["w_lnu"])

    r = cli("data", "generate", "--preset", "mini", "--seed", "2", "--process", "w_lnu",
            "--out", tmp_path / "cli")  # fmt: skip
    assert_one_line_error(r, "--process needs the published manifest", "mini with seed 1")
    assert not (tmp_path / "cli").exists()
