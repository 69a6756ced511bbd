"""The `metbench` command as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import metbench
from tests.commands import cli, popen_cli


def test_version():
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"metbench {metbench.__version__}"


def test_info_prints_counts_speed_and_disk(mini_dataset):
    r = cli("data", "info", str(mini_dataset))
    assert r.returncode == 0, r.stderr
    for text in ("ttbar_2l2nu", "z_mumu", "disk per 1k events", "events/s per core", "n_pu"):
        assert text in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "info", "/nonexistent/dataset"), "no such dataset folder"),
        (("data", "generate", "--preset", "huge", "--out", "/tmp/x"), "unknown preset 'huge'"),
        (
            ("data", "generate", "--workers", "0", "--out", "/tmp/metbench-never"),
            "--workers must be >= 1",
        ),
        (
            ("train", "submissions/metnet-torch", "--init-weights", "/nonexistent/w.pt"),
            "--init-weights /nonexistent/w.pt: no such file",
        ),
        (  # refused before the dataset is looked at
            ("train", "submissions/metnet-torch", "--dataset", "/x", "--out", "submissions"),
            "submissions is not empty and not a training folder; give --out a new or empty folder",
        ),
        (
            ("adopt", "submissions/metnet-torch", "/nonexistent/run"),
            "/nonexistent/run: not a training folder (no training.json)",
        ),
        (("trainings", "/nonexistent"), "/nonexistent: no such submission folder"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message):
    r = cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "submissions/puppi", "--bogus"), "No such option: --bogus"),
        (("run", "submissions/puppi", "--n-boot", "many"), "Invalid value for '--n-boot'"),
        (("data", "nonsense"), "No such command 'nonsense'"),
    ],
)
def test_usage_errors_are_a_message_without_traceback(args, message):
    """Mistyped options and commands: click's usage message and status 2, whichever click the
    installed typer uses (its own copy from typer 0.29 on)."""
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert message in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_train_checks_init_weights_before_the_dataset_is_looked_at():
    """One starting point for two separate trainings is refused at once (a preset would
    otherwise be generated first). TensorFlow's own import lines come before metbench's."""
    r = cli(
        "train", "submissions/deepmet-keras", "--init-weights", "pyproject.toml",
        "--dataset", "/nonexistent/dataset",
    )  # fmt: skip
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "error: submissions/deepmet-keras: --init-weights gives one starting point but "
        "deepmet-keras-resolution, deepmet-keras-response, deepmet-keras-resolution-6ep-seed1, "
        "deepmet-keras-resolution-6ep-seed2, deepmet-keras-resolution-6ep-seed3, "
        "deepmet-keras-response-6ep-seed1, deepmet-keras-response-6ep-seed2, "
        "deepmet-keras-response-6ep-seed3 are trained separately; choose one with --variant"
    )


def test_corrupt_dataset_is_one_line(mini_dataset, tmp_path):
    import shutil

    copy = tmp_path / "d"
    shutil.copytree(mini_dataset, copy)
    victim = next((copy / "events" / "val").iterdir())
    victim.write_bytes(victim.read_bytes()[:-10])
    r = cli("data", "validate", str(copy))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "truncated" in r.stderr


def test_generate_command_writes_a_dataset(tmp_path):
    out = tmp_path / "tiny"
    r = cli(
        "data",
        "generate",
        "--preset",
        "mini",
        "--out",
        str(out),
        "--seed",
        "3",
        "--events-per-process",
        "5",
    )
    assert r.returncode == 0, r.stderr
    assert "30 events" in r.stdout
    assert (out / "manifest.json").is_file()


def test_speed_command_compares_both_pileup_paths():
    r = cli(
        "data", "speed", "--mu", "5", "--events", "5", "--pool-size", "20", "--process", "z_mumu"
    )
    assert r.returncode == 0, r.stderr
    assert "speed-up of premixing" in r.stdout and "per-event pileup" in r.stdout
    r = cli("data", "speed", "--process", "tt")
    assert r.returncode == 2 and "unknown process 'tt'" in r.stderr


def test_ctrl_c_exits_130_with_one_line():
    """An interrupt is not a success: exit status 130 and a line saying how to resume."""
    import signal
    import time

    proc = popen_cli("bench", "scoring", "--events", "3000000")
    time.sleep(8.0)  # imported, and scoring (about 20 s of work)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err


def test_entry_names_with_brackets_are_printed_verbatim(tmp_path):
    """`perceiver-torch-onnx[chunk=1]` (a --param entry) is text, not rich markup."""
    import json
    import os
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "leaderboard" / "results"
    result = json.loads(next(committed.rglob("pf.json")).read_text())
    result["entry"]["name"] = "perceiver-torch-onnx[chunk=1]"
    results = tmp_path / "results"
    results.mkdir()
    (results / "perceiver-torch-onnx[chunk=1].json").write_text(json.dumps(result))
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "show", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "400"},  # one line per row
    )
    assert r.returncode == 0, r.stderr
    assert "perceiver-torch-onnx[chunk=1]" in r.stdout
