"""`metbench train` writes into a training folder of its own, never over a submission's committed
weights; `metbench adopt` copies a training's weights into the submission, and refuses weights of
another dataset than the current ones' unless --change-dataset."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metbench.training import weights_dataset

ROOT = Path(__file__).resolve().parents[1]
#: The dataset of the first committed reference weights (their histories' checkpoint folders say
#: so), and of those retrained on the current standard (recorded in their histories).
COMMITTED_DATASET = "standard-abf69509b5b7"
CURRENT = "standard-d416f4eed1eb"


def sha256s(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def top(folder: Path) -> dict[str, str]:
    """The sha256 of the files directly in ``folder`` (not those of other seeds' subfolders)."""
    return {k: v for k, v in sha256s(folder).items() if "/" not in k}


def metbench(*args: str, cwd: Path, submissions: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METBENCH_SUBMISSIONS": str(submissions)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "metbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_committed_histories_say_which_dataset_they_were_trained_on():
    """Histories written before the dataset was recorded take it from their checkpoint folder;
    a recorded dataset wins; a history that says neither is unknown (adopt then asks for
    --change-dataset)."""
    histories = sorted((ROOT / "submissions").glob("*/weights/**/*.history.json"))
    assert len(histories) >= 6
    for path in histories:
        # the entries retrained since on the current standard record it; the others predate that
        assert weights_dataset(json.loads(path.read_text())) in (COMMITTED_DATASET, CURRENT), path
    recorded = {"checkpoint_dir": "/c/training/standard-abf69509b5b7/x", "dataset": {"key": "k"}}
    assert weights_dataset({"settings": recorded}) == "k"
    assert weights_dataset({"settings": {"checkpoint_dir": "/somewhere/else/x"}}) is None
    assert weights_dataset({"epoch": 3}) is None


def test_a_training_folder_inside_the_submission_is_refused_at_once():
    """Before the dataset is looked at (a preset would otherwise be generated first)."""
    r = metbench(
        "train", "submissions/metnet-torch", "--dataset", "/nonexistent", "--out",
        "submissions/metnet-torch/run", cwd=ROOT, submissions=ROOT / "submissions",
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: the training folder submissions/metnet-torch/run is inside the submission folder "
        "submissions/metnet-torch; give --out a folder elsewhere (metbench adopt copies the "
        "weights into the submission)"
    )
    assert not (ROOT / "submissions" / "metnet-torch" / "run").exists()


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("torch", "fastjet")),
    reason="needs torch and fastjet",
)
def test_training_leaves_the_weights_alone_and_adopt_replaces_them(
    mini_dataset, tmp_path, monkeypatch, capsys
):
    """A real one-epoch training on mini, of a copy of metnet-torch (the committed bytes): the
    copy's files keep their sha256, the adopt command is printed; adopt refuses (other dataset than
    the committed weights'), --change-dataset copies the files with the dataset recorded, the same
    command resumes in the training folder, a changed file is refused, and a same-dataset training
    is then adopted as is. (Trainings in subprocesses, adopt in this process: no imports of torch.)"""
    from metbench.cli import main
    from metbench.harness import dataset_info

    def adopt(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["metbench", "adopt", "submissions/metnet-torch", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().err

    subs = tmp_path / "submissions"
    monkeypatch.setenv("METBENCH_SUBMISSIONS", str(subs))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "submissions" / "metnet-torch", subs / "metnet-torch")
    committed = sha256s(ROOT / "submissions" / "metnet-torch")
    key = dataset_info(mini_dataset).key
    run_folder = Path("trainings") / "metnet-torch" / key
    train = (
        "train", "submissions/metnet-torch", "--dataset", str(mini_dataset), "--variant", "torch",
        "--train-events", "20", "--val-events", "10", "--batch-size", "32",
    )  # fmt: skip

    r = metbench(*train, "--epochs", "1", cwd=tmp_path, submissions=subs)
    assert r.returncode == 0, r.stderr
    assert sha256s(subs / "metnet-torch") == committed
    lines = r.stderr.strip().splitlines()
    assert lines[-2] == (
        f"to make them the submission's weights: metbench adopt submissions/metnet-torch {run_folder}"
    )
    assert CURRENT in lines[-1] and "--change-dataset" in lines[-1]
    trained = top(tmp_path / run_folder / "weights")
    assert set(trained) == {"metnet.pt", "metnet.onnx", "metnet.history.json"}

    code, err = adopt(str(run_folder))
    assert code == 2
    assert err.strip() == (
        "error: submissions/metnet-torch: the current weights of metnet-torch-torch were trained "
        f"on {CURRENT}, this training used {key}; add --change-dataset to replace them "
        "with weights of another dataset"
    )
    assert sha256s(subs / "metnet-torch") == committed

    code, err = adopt(str(run_folder), "--change-dataset")
    assert code == 0, err
    assert top(subs / "metnet-torch" / "weights") == trained
    history = json.loads((subs / "metnet-torch" / "weights" / "metnet.history.json").read_text())
    assert weights_dataset(history) == key
    assert (
        history["settings"]["dataset"]["manifest_sha256"]
        == dataset_info(mini_dataset).manifest_sha256
    )

    r = metbench(*train, "--epochs", "2", cwd=tmp_path, submissions=subs)  # the same command
    assert r.returncode == 0, r.stderr
    assert f"resumed after epoch 1 from {run_folder}/checkpoints/metnet-torch-torch" in r.stdout
    assert top(subs / "metnet-torch" / "weights") == trained
    record = json.loads((tmp_path / run_folder / "training.json").read_text())
    assert record["entries"]["metnet-torch-torch"]["epochs"] == 2

    export = tmp_path / run_folder / "weights" / "metnet.onnx"
    exported = export.read_bytes()
    export.write_bytes(b"not the training's")
    code, err = adopt(str(run_folder))
    assert code == 2 and "changed since metbench train wrote it" in err
    assert top(subs / "metnet-torch" / "weights") == trained

    export.write_bytes(exported)
    code, err = adopt(str(run_folder))
    assert code == 0, err
    assert f"replaced weights trained on {key}" in err
    assert top(subs / "metnet-torch" / "weights") == top(tmp_path / run_folder / "weights")
    assert top(subs / "metnet-torch" / "weights") != trained


def test_a_variant_trained_with_its_own_seed(mini_dataset, tmp_path, monkeypatch):
    """Repeated trainings: a variant naming ``seed`` (the reserved training seed), a budget of
    epochs (``training_epochs``) and its own weights file is trained with that seed (not
    --seed's) for that many epochs (not --epochs'), its weights land at its path and are adopted
    there, beside the other seed's; the class never receives the seed or the budget, and the
    estimator built with them predicts with that seed's weights."""
    import numpy as np

    from metbench.data.source import EventSource
    from metbench.estimators.submission import load_submission
    from metbench.harness import build_estimator

    subs = tmp_path / "submissions"
    folder = subs / "metnet-torch"
    shutil.copytree(ROOT / "submissions" / "metnet-torch", folder)
    manifest = folder / "metbench.toml"
    manifest.write_text(
        manifest.read_text()
        + '\n[variants.torch-seed7]\nruntime = "torch"\nweights_file = "weights/seed7/metnet.pt"\n'
        "seed = 7\ntraining_epochs = 2\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METBENCH_SUBMISSIONS", str(subs))
    r = metbench(
        "train", "submissions/metnet-torch", "--dataset", str(mini_dataset), "--variant",
        "torch-seed7", "--train-events", "20", "--val-events", "10", "--batch-size", "32",
        "--epochs", "9", "--patience", "9", "--seed", "3", "--out", "run", cwd=tmp_path,
        submissions=subs,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    history = json.loads((tmp_path / "run/weights/seed7/metnet.history.json").read_text())
    assert history["settings"]["seed"] == 7
    assert history["settings"]["epochs"] == 2
    assert [h["epoch"] for h in history["history"]] == [1, 2]
    assert "checkpoints/metnet-torch-torch-seed7" in history["settings"]["checkpoint_dir"]
    assert not (folder / "weights" / "seed7").exists()
    r = metbench("adopt", "submissions/metnet-torch", "run", cwd=tmp_path, submissions=subs)
    assert r.returncode == 0, r.stderr
    assert (folder / "weights/seed7/metnet.pt").read_bytes() == (
        tmp_path / "run/weights/seed7/metnet.pt"
    ).read_bytes()
    committed = sha256s(ROOT / "submissions" / "metnet-torch" / "weights")
    assert {k: v for k, v in sha256s(folder / "weights").items() if not k.startswith("seed7/")} == (
        committed
    )
    # the report of the trainings behind the weights names its seed, budget and why it stopped
    r = metbench("trainings", "submissions/metnet-torch", cwd=tmp_path, submissions=subs)
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if "metnet-torch-torch-seed7" in line]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[2:6] == ["7", "2", "2", str(history["best_epoch"])]
    assert cells[7] == "budget"

    sub = load_submission(folder, require_weights=False)
    ((entry, params),) = sub.entries("torch-seed7")
    assert params["seed"] == 7 and params["training_epochs"] == 2
    seeded = build_estimator(sub, entry, params)  # the class takes neither: they were taken out
    plain = build_estimator(sub, "metnet-torch-torch", {"runtime": "torch"})
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=16))).for_estimator()
    assert not np.allclose(seeded.predict(batch), plain.predict(batch))


@pytest.mark.parametrize(
    ("parameter", "value", "requirement"),
    [("seed", v, "the training seed must be an integer >= 0") for v in ('"2"', "-1", "true", "1.5")]
    + [
        ("training_epochs", v, "the budget of training epochs must be an integer >= 1")
        for v in ("0", '"2"', "-1", "true", "1.5")
    ],
)
def test_a_reserved_training_parameter_of_the_wrong_kind_is_refused(
    tmp_path, parameter, value, requirement
):
    """The reserved parameters (the training seed, the budget of epochs) are checked when the
    manifest is read: one line naming the table, the value and what it must be."""
    from metbench.estimators.submission import SubmissionError, load_submission

    folder = tmp_path / "s"
    shutil.copytree(ROOT / "submissions" / "pf", folder)
    manifest = folder / "metbench.toml"
    manifest.write_text(manifest.read_text() + f"\n[variants.x]\n{parameter} = {value}\n")
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert str(info.value) == (
        f"{folder / 'metbench.toml'}: [variants.x] {parameter} = {tomllib_value(value)!r}: "
        f"{requirement}"
    )


def tomllib_value(text: str) -> object:
    import tomllib

    return tomllib.loads(f"v = {text}")["v"]


def test_a_checkpoint_is_not_resumed_on_another_dataset(mini_dataset, tiny_dataset, tmp_path):
    """A real one-epoch training on one dataset, then the same --checkpoints with another:
    refused in one line before anything trains (the checkpoint keeps its epoch), where it used to
    continue the training silently on the other dataset's events."""
    ck = tmp_path / "ck"
    common = ["--variant", "torch", "--train-events", "20", "--val-events", "10",
              "--batch-size", "32", "--checkpoints", str(ck)]  # fmt: skip
    args = ["train", str(ROOT / "submissions" / "metnet-torch"), *common]
    r = metbench(*args, "--dataset", str(tiny_dataset), "--epochs", "1", "--out", "a",
                 cwd=tmp_path, submissions=ROOT / "submissions")  # fmt: skip
    assert r.returncode == 0, r.stderr
    states = sorted((ck / "metnet-torch-torch").rglob("state.json"))
    assert states, "the training left no checkpoint"
    before = {p: p.read_bytes() for p in states}
    r = metbench(*args, "--dataset", str(mini_dataset), "--epochs", "2", "--out", "b",
                 cwd=tmp_path, submissions=ROOT / "submissions")  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    tiny_key = json.loads(states[0].read_text())["segments"][-1]["settings"]["dataset"]["key"]
    assert f"was trained on {tiny_key}, not on mini-" in lines[0]
    assert "--restart" in lines[0]
    assert {p: p.read_bytes() for p in states} == before


def test_checkpoint_dataset_check_reads_every_stage(tmp_path):
    """A training in stages (one state.json per stage) is refused if any stage's last recorded
    dataset differs; a checkpoint from before datasets were recorded passes."""
    from metbench.errors import MetbenchError
    from metbench.nn.training import TrainSettings, TrainState
    from metbench.training import check_checkpoint_dataset

    a = {"name": "standard", "key": "standard-aaaaaaaaaaaa", "manifest_sha256": "a" * 64}
    b = {"name": "mini", "key": "mini-bbbbbbbbbbbb", "manifest_sha256": "b" * 64}
    for stage, dataset in (("met", a), ("resolution", a)):
        state = TrainState()
        state.begin_segment(TrainSettings(tmp_path / stage, dataset=dataset), "scratch")
        state.save(tmp_path / "ck" / "entry" / stage)
    check_checkpoint_dataset(tmp_path / "ck", "entry", a)
    check_checkpoint_dataset(tmp_path / "ck", "other-entry", b)  # no checkpoint: nothing to check
    with pytest.raises(MetbenchError, match="was trained on standard-aaaaaaaaaaaa, not on mini-"):
        check_checkpoint_dataset(tmp_path / "ck", "entry", b)
    old = TrainState()
    old.begin_segment(TrainSettings(tmp_path / "x"), "scratch")  # no dataset recorded
    shutil.rmtree(tmp_path / "ck" / "entry")
    old.save(tmp_path / "ck" / "entry")
    check_checkpoint_dataset(tmp_path / "ck", "entry", b)


def test_training_summaries_read_the_histories(tmp_path, monkeypatch):
    """Per training behind a submission's weights: its seed, time (sum and median of the epochs'
    seconds), why it stopped (patience, budget, epoch limit, not finished); variants that share
    weights share one row; a damaged history is one clear error, not a traceback."""
    from metbench.errors import MetbenchError
    from metbench.training import history_file, training_summaries

    assert history_file("weights/6ep/seed2/resolution.weights.h5").as_posix() == (
        "weights/6ep/seed2/resolution.history.json"
    )
    folder = tmp_path / "metnet-torch"
    shutil.copytree(ROOT / "submissions" / "metnet-torch", folder)
    monkeypatch.setenv("METBENCH_SUBMISSIONS", str(tmp_path))  # a reference entry's copy

    def rewrite(rel: str, **changes: object) -> None:
        path = folder / "weights" / rel
        state = json.loads(path.read_text())
        settings = {**state["settings"], **changes.pop("settings", {})}  # type: ignore[dict-item]
        path.write_text(json.dumps({**state, **changes, "settings": settings}))

    epochs = [{"epoch": i + 1, "train_loss": 1.0, "val_loss": 1.0, "seconds": s}
              for i, s in enumerate([10.0, 30.0, 20.0])]  # fmt: skip
    rewrite("seed2/metnet.history.json", epoch=3, best_epoch=2, wait=1, history=epochs,
            settings={"patience": 5, "epochs": 60})  # fmt: skip
    rewrite("seed3/metnet.history.json", epoch=3, wait=5, settings={"patience": 5, "epochs": 60})
    rewrite("seed4/metnet.history.json", epoch=8, wait=2, settings={"patience": 5, "epochs": 8})
    by_entry = {t.entries[0]: t for t in training_summaries(folder)}
    assert by_entry["metnet-torch-torch"].entries == ("metnet-torch-torch", "metnet-torch-onnx")
    assert [by_entry[f"metnet-torch-torch-seed{k}"].seed for k in (2, 3, 4, 5)] == [2, 3, 4, 5]
    two = by_entry["metnet-torch-torch-seed2"]
    assert (two.seconds, two.median_epoch_seconds, two.best_epoch) == (60.0, 20.0, 2)
    assert two.stopped == "not finished"
    assert by_entry["metnet-torch-torch-seed3"].stopped == "patience"
    assert by_entry["metnet-torch-torch-seed4"].stopped == "epoch limit"
    assert by_entry["metnet-torch-torch"].dataset == CURRENT

    (folder / "weights/seed5/metnet.history.json").write_text('{"epoch": 3}')
    with pytest.raises(MetbenchError, match=r"seed5/metnet\.history\.json: not a training history"):
        training_summaries(folder)
    r = metbench("trainings", str(folder), cwd=tmp_path, submissions=tmp_path)
    assert r.returncode != 0
    assert "not a training history" in r.stderr and "Traceback" not in r.stderr

    # without arguments: every trainable submission in submissions/; an invalid one is named
    subs = tmp_path / "repo" / "submissions"
    shutil.copytree(ROOT / "submissions" / "metnet-torch", subs / "metnet-torch")
    shutil.copytree(ROOT / "submissions" / "puppi", subs / "puppi")
    (subs / "broken").mkdir()
    (subs / "broken" / "metbench.toml").write_text("name = 3\n")
    r = metbench("trainings", cwd=subs.parent, submissions=subs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("metnet-torch-torch") == 5 and "puppi" not in r.stdout
    assert "left out: submissions/broken/metbench.toml: 'name' must be" in r.stdout


def test_the_gpu_trainings_read_back_from_their_training_folders():
    """The trainings run on a lent H200 (benchmarks/gpu/h200-2026-12-04): `metbench
    trainings` reads training folders too; the dataset they name is the one whose manifest was
    brought back, and the figures are their histories'."""
    import statistics

    from metbench.training import training_summaries

    gpu = ROOT / "benchmarks" / "gpu" / "h200-2026-12-04"
    key = "mini-" + hashlib.sha256((gpu / "gpu-data-manifest.json").read_bytes()).hexdigest()[:12]
    folders = sorted((gpu / "training-folders").iterdir())
    assert [f.name for f in folders] == [
        "deepmet-keras-resolution", "perceiver-sum-torch-torch", "perceiver-torch-torch",
    ]  # fmt: skip
    for folder in folders:
        (summary,) = training_summaries(folder)
        history = json.loads((folder / summary.history).read_text())
        seconds = [e["seconds"] for e in history["history"]]
        assert summary.entries == (folder.name,) and summary.device == "cuda"
        assert summary.dataset == key and summary.epochs == len(seconds) == 3
        assert summary.median_epoch_seconds == statistics.median(seconds)
    r = metbench("trainings", *map(str, folders), cwd=ROOT, submissions=ROOT / "submissions")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("cuda") == 3 and key in r.stdout
    r = metbench("trainings", str(gpu), cwd=ROOT, submissions=ROOT / "submissions")
    assert r.returncode != 0 and "Traceback" not in r.stderr
