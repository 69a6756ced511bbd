"""Dataset format 2 (truth in files of its own), the in-place upgrade from format 1, truth given to
a source only on request, and the published manifest hashes (a re-signed dataset is refused)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from metbench.data.published import (
    PUBLISHED_MANIFESTS,
    published_manifest_bytes,
    published_status,
    shipped_manifests,
)
from metbench.data.source import EventSource, write_truth_extract
from metbench.data.store import load_manifest, truth_relpath, write_parquet_atomic
from metbench.data.upgrade import STAGING, upgrade_dataset
from metbench.errors import DatasetError
from metbench.events import TRUTH_EVENT_COLUMNS
from tests.commands import assert_error, cli, fast

#: Field order of a format-1 events file (as the generator of format 1 wrote it).
FORMAT1_FIELDS = (
    "event_id", "process", "mu", "n_pu", "n_pv", "gen_met_x", "gen_met_y", "gen_qt_x",
    "gen_qt_y", "pf", "truth_neutrinos", "truth_leptons", "truth_b_quarks",
)  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def to_format1(folder: Path, out: Path) -> None:
    """Rewrite a format-2 dataset as format 1 (events and truth joined in one file per shard,
    ``truth_is_pileup`` inside ``pf``), independently of the upgrade code."""
    import pyarrow.parquet as pq

    shutil.copytree(folder, out)
    manifest = json.loads((out / "manifest.json").read_text())
    files = {}
    for relpath, entry in manifest["files"].items():
        if entry["kind"] == "truth":
            (out / relpath).unlink()
            continue
        if entry["kind"] == "events":
            ev = ak.from_arrow(pq.read_table(out / relpath))
            tr = ak.from_arrow(pq.read_table(out / truth_relpath(relpath)))
            pf = ak.with_field(ev.pf, tr.truth_is_pileup, "truth_is_pileup")
            merged = {**{f: ev[f] for f in ev.fields}, **{f: tr[f] for f in tr.fields}, "pf": pf}
            write_parquet_atomic(
                out / relpath, ak.zip({f: merged[f] for f in FORMAT1_FIELDS}, depth_limit=1)
            )
            entry = {
                **entry,
                "sha256": sha256(out / relpath),
                "bytes": (out / relpath).stat().st_size,
            }
        files[relpath] = entry
    shutil.rmtree(out / "truth")
    manifest.update(format_version=1, files=files)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_published_mini_is_what_generation_writes(mini_dataset):
    # CI generates mini afresh (its first command), so this is a regeneration check
    digest = sha256(mini_dataset / "manifest.json")
    assert digest == PUBLISHED_MANIFESTS[("mini", 1)]
    manifest = load_manifest(mini_dataset)
    assert published_status(manifest, digest) is True
    assert published_status(manifest, "0" * 64) is False
    scaled = {**manifest, "settings": {**manifest["settings"], "events_per_process": 1000}}
    assert published_status(scaled, "0" * 64) is None  # a private dataset, not a forgery
    assert published_status({**manifest, "seed": 2}, "0" * 64) is None


def test_events_files_hold_no_truth(tiny_dataset):
    import pyarrow.parquet as pq

    manifest = load_manifest(tiny_dataset)
    kinds = {e["kind"] for e in manifest["files"].values()}
    assert {"events", "truth"} <= kinds
    for relpath, entry in manifest["files"].items():
        if entry["kind"] != "events":
            continue
        names = set(pq.read_schema(tiny_dataset / relpath).names)
        assert names.isdisjoint(TRUTH_EVENT_COLUMNS), names
        assert not any(n.startswith("truth") for n in names)
        pf = pq.read_schema(tiny_dataset / relpath).field("pf").type.value_type
        assert "truth_is_pileup" not in [pf.field(i).name for i in range(pf.num_fields)]
        truth = manifest["files"][truth_relpath(relpath)]
        assert truth["kind"] == "truth" and truth["n_events"] == entry["n_events"]


def test_upgrade_from_format1_gives_the_format2_bytes(tiny_dataset, tmp_path):
    old = tmp_path / "old"
    to_format1(tiny_dataset, old)
    with pytest.raises(DatasetError, match="metbench data upgrade"):
        load_manifest(old)

    # interrupted after two files: the old manifest still describes the old files
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upgrade_dataset(old, stop)
    assert json.loads((old / "manifest.json").read_text())["format_version"] == 1
    assert (old / STAGING).is_dir()

    manifest, converted = upgrade_dataset(old)
    assert converted and not (old / STAGING).exists()
    assert (old / "manifest.json").read_bytes() == (tiny_dataset / "manifest.json").read_bytes()
    for relpath in manifest["files"]:
        assert (old / relpath).read_bytes() == (tiny_dataset / relpath).read_bytes(), relpath
    assert upgrade_dataset(old)[1] is False  # already format 2


def test_upgrade_refuses_a_damaged_format1_file(tiny_dataset, tmp_path):
    old = tmp_path / "old"
    to_format1(tiny_dataset, old)
    relpath = next(p for p in sorted((old / "events").rglob("*.parquet")))
    relpath.write_bytes(relpath.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        upgrade_dataset(old)
    assert json.loads((old / "manifest.json").read_text())["format_version"] == 1


def test_truth_is_attached_only_on_request(tiny_dataset, tmp_path):
    full = next(iter(EventSource(tiny_dataset, "test", batch_size=20)))
    assert set(TRUTH_EVENT_COLUMNS) <= set(full.truth)
    assert full.truth["truth_is_pileup"].shape == full.mask.shape

    none = next(iter(EventSource(tiny_dataset, "test", batch_size=20, truth=())))
    assert none.truth == {}
    np.testing.assert_array_equal(none.particles, full.particles)
    with pytest.raises(DatasetError, match="not attached"):
        next(EventSource(tiny_dataset, "test", truth=()).iter_files(["gen_met_x"]))

    # what a submission declaring uses_truth gets: a parent-made extract of those columns only
    extract = tmp_path / "extract"
    write_truth_extract(tiny_dataset, "test", ["gen_met_x", "gen_met_y"], extract)
    import pyarrow.parquet as pq

    for f in extract.rglob("*.parquet"):
        assert set(pq.read_schema(f).names) == {"event_id", "gen_met_x", "gen_met_y"}
    some = next(
        iter(
            EventSource(
                tiny_dataset, "test", batch_size=20, truth=("gen_met_x", "gen_met_y"),
                truth_folder=extract,
            )
        )
    )  # fmt: skip
    assert set(some.truth) == {"gen_met_x", "gen_met_y"}
    np.testing.assert_array_equal(some.truth["gen_met_x"], full.truth["gen_met_x"])
    with pytest.raises(DatasetError, match="unknown truth column"):
        EventSource(tiny_dataset, "test", truth=("pt",))


def test_truth_file_out_of_step_is_refused(tiny_dataset, tmp_path):
    import pyarrow.parquet as pq

    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    relpath = EventSource(copy, "test").files[0]
    truth = copy / truth_relpath(relpath)
    table = pq.read_table(truth)
    write_parquet_atomic(truth, ak.from_arrow(table)[::-1])  # same events, another order
    with pytest.raises(DatasetError, match="same events in the same order"):
        list(EventSource(copy, "test", verify=False))


def test_a_re_signed_dataset_is_not_the_published_one(mini_dataset, tmp_path):
    """The forge attack: the test truth rewritten and the manifest checksums re-signed."""
    forged = tmp_path / "mini"
    shutil.copytree(mini_dataset, forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    relpath = truth_relpath(EventSource(forged, "test").files[0])
    truth = ak.from_parquet(forged / relpath)
    write_parquet_atomic(forged / relpath, ak.with_field(truth, truth.gen_met_x * 0, "gen_met_x"))
    manifest["files"][relpath].update(
        sha256=sha256(forged / relpath), bytes=(forged / relpath).stat().st_size
    )
    (forged / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    load_manifest(forged)  # a well-formed dataset whose checksums all hold ...
    r = cli("run", "submissions/pf", "--dataset", forged, *fast(tmp_path / "results"))
    assert_error(r, "this is not the mini dataset", "published")  # ... but not mini's
    assert not (tmp_path / "results").exists()
    r = cli("data", "validate", forged, "--plots", tmp_path / "plots")
    assert_error(r, "this is not the mini dataset")


def test_shipped_manifests_are_the_published_ones(monkeypatch, tmp_path):
    import metbench.data.published as published

    assert set(shipped_manifests()) == {("mini", 1), ("standard", 1), ("pu200", 1)}
    for name, seed in shipped_manifests():
        data = published_manifest_bytes(name, seed)
        assert (
            data is not None
            and hashlib.sha256(data).hexdigest() == PUBLISHED_MANIFESTS[(name, seed)]
        )
        manifest = json.loads(data)
        assert (manifest["name"], manifest["seed"]) == (name, seed)
        assert published_status(manifest, hashlib.sha256(data).hexdigest()) is True
    assert published_manifest_bytes("mini", 2) is None  # not published
    assert published_manifest_bytes("nonsense", 1) is None

    damaged = tmp_path / "mini-seed1.json"
    data = bytearray(published_manifest_bytes("mini", 1) or b"")
    data[100] ^= 0x01
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(published, "_shipped_file", lambda name, seed: damaged)
    with pytest.raises(DatasetError, match="not the published 785265f07171…; reinstall"):
        published_manifest_bytes("mini", 1)
