"""The red team's second round (holes 3-11 of the sandbox review): forged self-reports and
messages, secrets in the environment, memory and disk outside the resident-memory check,
impostors, hidden bytecode, folders of ``sys.path``, decompression bombs, directories posing as
parts and terminal escapes. Each test writes the attack as a submission and runs it."""

from __future__ import annotations

import json
import math
import py_compile
from pathlib import Path

import pytest

from metbench.errors import safe_text
from metbench.estimators.isolation import ChildReport, Limits
from metbench.estimators.sandbox import (
    _python_binds,
    available_sandbox,
    child_environment,
    python_binds,
)
from metbench.estimators.submission import SubmissionError, load_submission
from metbench.harness import build_estimator, dataset_info, predict_entry, run_entry
from metbench.results import SELF_REPORTED, ResultsError, read_results, write_results
from metbench.scoring.throughput import ThroughputSettings
from tests.commands import assert_one_line_error, cli, fast
from tests.estimators.test_sandbox import MET, write_submission

pytestmark = pytest.mark.skipif(
    available_sandbox() is None, reason="neither bubblewrap nor unshare works on this machine"
)

QUICK = ThroughputSettings(batch_sizes=(1, 8), warmup_calls=1, min_duration_s=0.05, min_calls=2)


def predict(tmp_path: Path, dataset: Path, name: str, body: str, **kwargs) -> ChildReport:
    sub = load_submission(write_submission(tmp_path, name, body))
    out = tmp_path / "r" / f"{name}.predictions.parquet"
    return predict_entry(sub, name, {}, dataset_info(dataset), "test", out, **kwargs)


# ---------------------------------------------------------------- hole 3: forged self-reports

SEND = (
    """
import os, sys
os.write(int(sys.argv[2]), {line!r} + b"\\n")

class Estimator:
"""
    + MET
)

FORGED_MESSAGES = {
    "huge progress": b'["progress", ' + b"1" * 4000 + b"]",
    "negative progress": b'["progress", -5]',
    "boolean progress": b'["progress", true]',
    "NaN parameters": b'["done", {"device": "cpu", "n_parameters": NaN}]',
    "escape codes as device": b'["done", {"device": "\\u001b[31mcuda:H200", "n_parameters": 3}]',
    "negative truncation": (
        b'["done", {"device": "cpu", "n_parameters": null, "n_events": 1, "n_truncated": -7,'
        b' "has_covariance": false}]'
    ),
    "extra field": b'["done", {"device": "cpu", "n_parameters": null, "unexpected": [1, 2]}]',
    "batch size 2**70": (
        b'["throughput", [{"batch_size": 1180591620717411303424, "events_per_s": 1e308}, '
        b'{"batch_size": 8, "calls": 5, "events_per_s": 10.0}]]'
    ),
    "impossible timing": (
        b'["throughput", [{"batch_size": 1, "calls": 100000000000, "events_per_s": 1e9}, '
        b'{"batch_size": 8, "calls": 5, "events_per_s": 10.0}]]'
    ),
}


@pytest.mark.parametrize("line", FORGED_MESSAGES.values(), ids=FORGED_MESSAGES.keys())
def test_forged_reports_end_the_run(tmp_path, tiny_dataset, line):
    body = SEND.format(line=line)
    with pytest.raises(SubmissionError, match="sent a malformed message to the harness") as err:
        predict(tmp_path, tiny_dataset, "forger", body, throughput=QUICK)
    assert "\x1b" not in str(err.value) and len(str(err.value)) < 600


MONKEY = (
    """
import metbench.estimators.worker as worker

worker.count_parameters = lambda estimator: 3  # a claim the harness cannot check

class Estimator:
"""
    + MET
)


def test_what_cannot_be_checked_is_marked_self_reported(tmp_path, tiny_dataset):
    sub = load_submission(write_submission(tmp_path, "claims", MONKEY))
    path, _ = run_entry(
        sub, "claims", {}, dataset_info(tiny_dataset), "test", tmp_path / "r", n_boot=0,
        throughput=QUICK,
    )  # fmt: skip
    result = read_results(path)
    assert result["entry"]["n_parameters"] == 3
    assert result["entry"]["n_parameters_measured_by"] == SELF_REPORTED
    assert result["throughput"]["measured_by"] == SELF_REPORTED
    assert [b["batch_size"] for b in result["throughput"]["batches"]] == [1, 8]
    assert result["entry"]["folder"] == str(sub.folder)
    # NaN is not JSON: refused on write, and a file holding one is refused on read (one line)
    result["throughput"]["batches"][0]["latency_ms"]["p50"] = math.nan
    with pytest.raises(ResultsError, match="NaN or an infinity"):
        write_results(tmp_path / "nan.json", result)
    (tmp_path / "nan.json").write_text(json.dumps(result))  # Python writes NaN
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_results(tmp_path / "nan.json")


# ------------------------------------------------------------ hole 4: secrets in the environment


def test_only_named_variables_enter_the_sandbox(monkeypatch):
    monkeypatch.setenv("TF_TOKEN_app_terraform_io", "secret")
    monkeypatch.setenv("TF_VAR_db_password", "secret")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    env = child_environment("/home", "/tmp")
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert "secret" not in env.values()
    assert not [k for k in env if k.startswith(("TF_TOKEN", "TF_VAR"))]


# ------------------------------------------------- hole 5: memory and disk the RSS does not see

FILL = (
    """
import errno, os

def fill(where, mib):
    try:
        with open(where, "wb") as f:
            for _ in range(mib):
                f.write(b"\\1" * 2**20)
                f.flush()
        return "WROTE"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, "?")

def past_the_end(where, mib):  # a byte past the per-file cap; the hole takes no disk
    try:
        with open(where, "wb") as f:
            f.seek(mib * 2**20)
            f.write(b"\1")
        return "WROTE"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, "?")

big = os.environ["HOME"] + "/big"
print("PROBE", fill("/dev/shm/fill", 160), fill("/fill", 1), past_the_end(big, 240), flush=True)
os.remove(big)

class Estimator:
"""
    + MET
)


def test_shm_is_bounded_the_root_read_only_and_files_capped(tmp_path, tiny_dataset):
    limits = Limits(memory_gb=0.5, disk_gb=200 / 1024)  # /dev/shm 128 MiB, files up to 200 MiB
    predict(tmp_path, tiny_dataset, "filler", FILL, limits=limits)
    probe = next(
        line for line in (tmp_path / "r" / "filler.log").read_text().splitlines()
        if line.startswith("PROBE")
    )  # fmt: skip
    assert probe.split()[1:] == ["ENOSPC", "EROFS", "EFBIG"]


DISK = (
    """
import os, time

for i in range(12):  # 12 files of 8 MiB, each below RLIMIT_FSIZE, together above the limit
    with open(os.path.join(os.environ["HOME"], f"f{i}"), "wb") as f:
        f.write(os.urandom(8 * 2**20))
time.sleep(30)

class Estimator:
"""
    + MET
)


def test_the_private_folder_has_a_disk_limit(tmp_path, tiny_dataset):
    with pytest.raises(SubmissionError, match=r"exceeded its disk limit of 0\.05 GiB"):
        predict(tmp_path, tiny_dataset, "hoarder", DISK, limits=Limits(disk_gb=0.05))
    assert not list((tmp_path / "r").glob("*.sandbox.*"))


HIDDEN = (
    """
import os, time

held = []
for i in range(12):  # 12 files of 8 MiB removed from the folder but kept open: no scan sees them
    f = open(os.path.join(os.environ["HOME"], f"f{i}"), "wb")
    os.remove(f.name)
    f.write(os.urandom(8 * 2**20))
    f.flush()
    held.append(f)
time.sleep(30)

class Estimator:
"""
    + MET
)


def test_removed_files_held_open_count_against_the_disk_limit(tmp_path, tiny_dataset):
    with pytest.raises(SubmissionError, match=r"exceeded its disk limit of 0\.05 GiB"):
        predict(tmp_path, tiny_dataset, "hider", HIDDEN, limits=Limits(disk_gb=0.05))


# --------------------------------------------------------------------------- hole 6: impostors


def test_impostors_are_refused(tmp_path, tiny_dataset):
    baseline = write_submission(tmp_path / "a", "fake", "class Estimator:\n" + MET)
    text = (baseline / "metbench.toml").read_text()
    (baseline / "metbench.toml").write_text(text.replace('"submission"', '"baseline"'))
    with pytest.raises(SubmissionError, match="category 'baseline' is kept for the submissions"):
        load_submission(baseline)
    pf = write_submission(tmp_path / "b", "pf", "class Estimator:\n" + MET)
    with pytest.raises(SubmissionError, match="the entry name 'pf' belongs to the repository"):
        load_submission(pf)

    # two folders whose manifests take one name: the second does not replace the first's result
    first = load_submission(write_submission(tmp_path / "c", "twin", "class Estimator:\n" + MET))
    other = "class Estimator:  # another twin\n" + MET
    second = load_submission(write_submission(tmp_path / "d", "twin", other))
    info, results = dataset_info(tiny_dataset), tmp_path / "r"
    path, _ = run_entry(first, "twin", {}, info, "test", results, n_boot=0)
    # the same code in another folder (another checkout of the repository): reused, not replaced
    clone = load_submission(write_submission(tmp_path / "e", "twin", "class Estimator:\n" + MET))
    assert run_entry(clone, "twin", {}, info, "test", results, n_boot=0) == (path, True)
    assert read_results(path)["entry"]["folder"] == str(first.folder)
    with pytest.raises(SubmissionError, match="was made from") as err:
        run_entry(second, "twin", {}, info, "test", results, n_boot=0)
    assert str(first.folder) in str(err.value) and str(second.folder) in str(err.value)
    assert read_results(path)["entry"]["folder"] == str(first.folder)
    run_entry(second, "twin", {}, info, "test", results, n_boot=0, force=True)
    assert read_results(path)["entry"]["folder"] == str(second.folder)


# ------------------------------------------------------------------- hole 7: hidden bytecode

EVIL = """
import numpy as np

print("EVIL RAN", flush=True)

class Estimator:
    def predict(self, batch):
        return np.zeros((len(batch), 2))
"""


def test_bytecode_shipped_with_a_submission_never_runs(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "honest", "class Estimator:\n" + MET)
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL)
    cache = folder / "__pycache__"
    cache.mkdir()
    for tag in ("cpython-311", "cpython-312", "cpython-313"):
        py_compile.compile(
            str(evil), str(cache / f"model.{tag}.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
    sub = load_submission(folder)
    before = sub.content_hash
    out = tmp_path / "r" / "honest.predictions.parquet"
    predict_entry(sub, "honest", {}, dataset_info(tiny_dataset), "test", out)
    assert "EVIL RAN" not in (tmp_path / "r" / "honest.log").read_text()

    # bytecode outside __pycache__ is imported without a source: refused
    (folder / "helper.pyc").write_bytes((cache / "model.cpython-311.pyc").read_bytes())
    with pytest.raises(SubmissionError, match=r"helper\.pyc is compiled Python outside"):
        load_submission(folder)
    (folder / "helper.pyc").unlink()
    # a dot-file is part of the hash (code may read it)
    (folder / ".weights").write_text("1")
    assert load_submission(folder).content_hash != before


# -------------------------------------------------------------- hole 8: folders of sys.path


def test_only_python_folders_are_bound(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    pythonpath = tmp_path / "pythonpath"
    pythonpath.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.setattr("sys.path", ["", str(home), str(pythonpath), *__import__("sys").path])
    shown = {b.source for b in python_binds()}
    assert not [s for s in shown if s and Path(s).is_relative_to(tmp_path)]


def test_environment_inside_the_source_tree_is_bound_but_not_the_tree(tmp_path):
    # CI's layout: the repository holds its virtual environment (.ci/venv) and its dataset
    # (.ci/data); the child needs the first (its python lives there), must not see the second
    tree = tmp_path / "repo"
    package = tree / "metbench"
    venv = tree / ".ci" / "venv"
    site_packages = venv / "lib" / "python3.11" / "site-packages"
    data = tree / ".ci" / "data"
    for folder in (package, site_packages, data, tree / "tests"):
        folder.mkdir(parents=True)
    (tree / "pyproject.toml").write_text("")
    shown = {
        b.source
        for b in _python_binds([str(venv), str(site_packages), str(tree / ".ci")], package, [data])
    }
    assert {str(venv), str(site_packages), str(package)} <= shown
    assert str(tree) not in shown and str(tree / ".ci") not in shown  # .ci holds the dataset
    assert not [s for s in shown if Path(s).is_relative_to(data)]
    # an environment that is the tree itself, or holds it, is never shown
    shown = {b.source for b in _python_binds([str(tree), str(tmp_path)], package, [])}
    assert not [s for s in shown if Path(s).is_relative_to(tmp_path) and s != str(package)]


# -------------------------------------------------------------- hole 9: decompression bombs

BOMB = (
    """
import json, os, sys
import pyarrow as pa, pyarrow.parquet as pq
from pathlib import Path
from metbench.data.source import EventSource

class Estimator:
    def __init__(self):
        job = json.loads(Path(sys.argv[1]).read_text())
        relpath = EventSource(job["dataset"], job["split"], verify=False).files[0]
        ids = pq.read_table(Path(job["dataset"]) / relpath, columns=["event_id"])["event_id"]
        n = len(ids)
        blob = pa.array([b"\\0" * (4 << 20)], pa.binary())
        table = pa.table({
            "event_id": ids, "met_x": pa.array(np.ones(n)), "met_y": pa.array(np.ones(n)),
            "junk": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), blob),
        })
        pq.write_table(table, Path(job["parts_dir"]) / "part_00000.parquet",
                       compression="zstd", store_schema=False)
"""
    + MET
)


def test_a_decompression_bomb_is_refused_from_its_footer(tmp_path, tiny_dataset):
    with pytest.raises(SubmissionError, match="'junk' is not one of the predictions' columns"):
        predict(tmp_path, tiny_dataset, "bomb", BOMB)


# --------------------------------------------------------- hole 10: a folder posing as a part

FOLDER_PART = (
    """
import json, os, sys
from pathlib import Path

class Estimator:
    def __init__(self):
        job = json.loads(Path(sys.argv[1]).read_text())
        os.mkdir(Path(job["parts_dir"]) / "part_00000.parquet")
        os.mkfifo(Path(job["parts_dir"]) / "part_00001.parquet")
"""
    + MET
)


def test_a_folder_named_as_a_part_is_refused_in_one_line(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "folders", FOLDER_PART)
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(tmp_path / "r"))
    assert_one_line_error(r, "part_00000.parquet: not a regular file")


# ------------------------------------------------------------- hole 11: terminal escapes

ANSI = """
class Estimator:
    def predict(self, batch):
        raise RuntimeError("\\x1b]52;c;ZWNobw==\\x07\\x1b[1A\\x1b[2K\\x1b[32mscored\\r\\u202e")
"""


def test_text_from_the_child_is_printed_escaped(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "ansi", ANSI)
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(tmp_path / "r"))
    assert_one_line_error(r, "\\x1b]52;c;ZWNobw==\\x07", "\\x1b[32mscored\\r\\u202e")
    assert not [c for c in r.stderr if ord(c) < 32 and c != "\n"]
    assert "\u202e" not in r.stderr
    assert safe_text("a\x1bb\x9bc\nd", 40) == "a\\x1bb\\x9bc\\nd"
    # the manifest's text is printed too: no control character in it
    text = (folder / "metbench.toml").read_text()
    (folder / "metbench.toml").write_text(text.replace("a hostile", "\\u001b[2J a hostile"))
    with pytest.raises(SubmissionError, match=r"'description' holds the control character \\x1b"):
        load_submission(folder)


def test_a_results_file_with_escapes_is_shown_escaped(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "shown", "class Estimator:\n" + MET)
    path, _ = run_entry(
        load_submission(folder), "shown", {}, dataset_info(tiny_dataset), "test", tmp_path / "r",
        n_boot=0,
    )  # fmt: skip
    result = json.loads(path.read_text())
    result["entry"]["name"] = "\x1b]0;title\x07"
    path.write_text(json.dumps(result))
    r = cli("show", path)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout


# ------------------------------------------- hole 12: commands that run an entry in this process

PLANT = (
    """
import os

open(os.environ["PLANTED"], "w").write("ran in the parent")

class Estimator:
    def fit(self, train, val, settings):
        pass

    def save(self, folder):
        pass
"""
    + MET
)


def test_in_process_commands_refuse_a_strangers_code_without_trust(
    tmp_path, tiny_dataset, monkeypatch
):
    """train, bench baseline/scaling and compare --resample build the estimator in this process,
    unsandboxed: a folder from outside the repository needs --trust, and its code does not run
    before it is given."""
    planted = tmp_path / "planted"
    monkeypatch.setenv("PLANTED", str(planted))
    folder = write_submission(tmp_path / "subs", "plant", PLANT)
    toml = folder / "metbench.toml"
    toml.write_text(toml.read_text().replace("trainable = false", "trainable = true"))
    for args in (
        ("train", folder, "--dataset", tiny_dataset, "--epochs", "1", "--out", tmp_path / "t"),
        ("bench", "baseline", folder, "--dataset", tiny_dataset),
        ("bench", "scaling", folder, "--dataset", tiny_dataset),
        ("compare", folder, "--stored", "RawMET", "--resample", "2", "--dataset", tiny_dataset),
    ):
        r = cli(*args)
        assert_one_line_error(r, "pass --trust if you trust it")
        assert not planted.exists(), args
    sub = load_submission(folder, require_weights=False)
    with pytest.raises(SubmissionError, match="category 'submission'"):
        build_estimator(sub, "plant", {})
    assert not planted.exists()
    build_estimator(sub, "plant", {}, trusted=True)  # the user's own decision
    assert planted.read_text() == "ran in the parent"
