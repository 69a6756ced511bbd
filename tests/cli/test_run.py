"""`metbench run --throughput-only` (metbench/cli/run.py; the rest of `run`, through the harness,
is in test_harness.py): an entry's throughput measured again on another device or machine (a GPU)
and added to its current results as a row of its own, the predictions and scores untouched;
refused, in one line, for results that are missing or were made by other code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from metbench.data.store import MANIFEST_NAME, sha256_file
from metbench.frameworks import DeviceUnavailable, framework
from metbench.results import read_results
from tests.cli.test_harness import GOOD, write_submission
from tests.commands import assert_error, cli

QUICK = ("--throughput-duration", "0.05", "--batch-sizes", "1,8")


def _run(folder: Path, dataset: Path, results: Path, *extra: str):
    return cli("run", folder, "--dataset", dataset, "--results", results, *QUICK, *extra)


def test_a_row_is_added_and_nothing_else_changes(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path / "subs", "good")
    results = tmp_path / "results"
    r = _run(folder, tiny_dataset, results)
    assert r.returncode == 0, r.stderr
    path = next(results.rglob("good.json"))
    before = read_results(path)
    predictions = path.with_name("good.predictions.parquet")
    digest = sha256_file(predictions)

    r = _run(folder, tiny_dataset, results, "--throughput-only")
    assert r.returncode == 0, r.stderr
    assert "throughput on cpu" in r.stderr and "added to" in r.stderr
    after = read_results(path)
    (row,) = after["extra_throughput"]
    assert row["device"] == "cpu" and row["sample_events"] == 8
    assert [b["batch_size"] for b in row["batches"]] == [1, 8]
    assert all(b["events_per_s"] > 0 for b in row["batches"])
    assert row["content_hash"] == before["entry"]["content_hash"]
    assert row["hardware"]["cores"] >= 1 and row["measured_by"] == "child (self-reported)"
    assert row["isolation"]["sandboxed"] is True
    # the run's own record is as it was: scores, throughput, predictions
    for key in ("scores", "throughput", "entry", "dataset", "predictions", "isolation"):
        assert after[key] == before[key], key
    assert sha256_file(predictions) == digest
    r = cli("verify", path)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr

    # the same device of the same kind of machine: the row is replaced, not repeated
    r = _run(folder, tiny_dataset, results, "--throughput-only")
    assert r.returncode == 0, r.stderr
    (again,) = read_results(path)["extra_throughput"]
    assert again["measured"] >= row["measured"]

    # where the dataset does not travel (a GPU machine): its manifest and the sample's input
    # extract beside the predictions are enough
    bare = tmp_path / "bare" / tiny_dataset.name
    bare.mkdir(parents=True)
    shutil.copy(tiny_dataset / MANIFEST_NAME, bare / MANIFEST_NAME)
    r = _run(folder, bare, results, "--throughput-only")
    assert r.returncode == 0, r.stderr
    assert len(read_results(path)["extra_throughput"]) == 1

    # a re-run of the same code keeps the row; the row dies with the code that made it
    r = _run(folder, tiny_dataset, results, "--force")
    assert r.returncode == 0, r.stderr
    assert len(read_results(path)["extra_throughput"]) == 1
    (folder / "model.py").write_text(GOOD.replace("self.scale = scale", "self.scale = 0.5 * scale"))
    r = _run(folder, tiny_dataset, results)
    assert r.returncode == 0, r.stderr
    assert "extra_throughput" not in read_results(path)


def test_stale_or_missing_results_are_refused(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path / "subs", "good")
    results = tmp_path / "results"
    r = _run(folder, tiny_dataset, results, "--throughput-only")
    assert_error(r, "no results of good to add a throughput measurement to", "run it first")
    assert not list(results.rglob("*.json"))

    r = _run(folder, tiny_dataset, results, "--n-boot", "0")
    assert r.returncode == 0, r.stderr
    path = next(results.rglob("good.json"))
    text = path.read_text()
    (folder / "model.py").write_text(GOOD.replace("self.scale = scale", "self.scale = 2 * scale"))
    r = _run(folder, tiny_dataset, results, "--throughput-only")
    assert_error(r, "were not made by its code as it is now", "run it again first")
    assert path.read_text() == text

    r = _run(folder, tiny_dataset, results, "--throughput-only", "--no-throughput")
    assert_error(r, "--throughput-only measures throughput")


def test_a_hand_made_row_must_follow_the_schema(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path / "subs", "good")
    results = tmp_path / "results"
    assert _run(folder, tiny_dataset, results, "--n-boot", "0").returncode == 0
    path = next(results.rglob("good.json"))
    doc = json.loads(path.read_text())
    doc["extra_throughput"] = [{"device": "tpu", "batches": []}]
    path.write_text(json.dumps(doc))
    r = cli("show", path)
    assert_error(r, "not a valid metbench results file", "extra_throughput")


def test_keras_on_pytorch_is_checked_through_pytorch(monkeypatch):
    """``KERAS_BACKEND=torch`` (a GPU machine with PyTorch and no TensorFlow): the device check and
    the GPU memory hooks are PyTorch's."""
    torch = pytest.importorskip("torch")
    keras = framework("keras")
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    peak, _ = keras.memory_hooks("cuda")
    assert peak() is None  # TensorFlow's allocator is not read
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    if torch.cuda.is_available():
        assert keras.device("cuda").startswith("cuda:")
    else:
        with pytest.raises(DeviceUnavailable, match="PyTorch sees no CUDA device"):
            keras.device("cuda")
    assert keras.device("cpu") == "cpu"


def test_the_headline_table_has_a_gpu_column_only_where_a_gpu_was_measured(tmp_path, tiny_dataset):
    from metbench.scoring.table import headline_table, throughput_at

    folder = write_submission(tmp_path / "subs", "good")
    results = tmp_path / "results"
    assert _run(folder, tiny_dataset, results, "--n-boot", "0").returncode == 0
    doc = read_results(next(results.rglob("good.json")))
    assert "events/s GPU" not in headline_table([doc]).columns
    rows = [{"batch_size": b, "events_per_s": 1000.0 * b} for b in (1, 64, 8)]
    cpu_rate = throughput_at(doc)
    doc["extra_throughput"] = [
        {"device": "cuda:NVIDIA H200", "batches": rows},
        {"device": "cpu", "batches": [{"batch_size": 64, "events_per_s": 1.0}]},
    ]
    assert throughput_at(doc, gpu=True) == 64000.0  # the largest batch of the GPU's rows
    assert throughput_at(doc) == cpu_rate  # the run's own rows
    table = headline_table([doc])
    assert table["events/s GPU"].tolist() == ["64,000"]
