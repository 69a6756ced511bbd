"""The sandbox and the process control of a submission's child (GitHub issue #15): hostile
submissions that read, write, connect, spawn, hang, flood, crash, forge parts or send pickles, and
a harness that is killed or run twice at once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from metbench.estimators.isolation import LOG_CAP, Limits
from metbench.estimators.predictions import read_predictions
from metbench.estimators.sandbox import PASSED_VARIABLES, available_sandbox
from metbench.estimators.submission import SubmissionError, load_submission
from metbench.harness import dataset_info, predict_entry, results_paths
from tests.commands import assert_one_line_error, cli, fast, popen_cli

pytestmark = pytest.mark.skipif(
    available_sandbox() is None, reason="neither bubblewrap nor unshare works on this machine"
)

MET = """
    def predict(self, batch):
        pt, phi = batch.feature("pt"), batch.feature("phi")
        return np.stack([-(batch.mask * pt * np.cos(phi)).sum(1),
                         -(batch.mask * pt * np.sin(phi)).sum(1)], 1)
"""


def write_submission(root: Path, name: str, body: str, parameters: str = "") -> Path:
    """A submission folder (``metbench.toml`` as in submissions/pf) with ``model.py``: numpy
    imported, then ``body`` (which defines ``Estimator``)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("import numpy as np\n" + textwrap.dedent(body))
    (folder / "metbench.toml").write_text(
        textwrap.dedent(
            f"""
            name = "{name}"
            entry = "model:Estimator"
            framework = "numpy"
            category = "submission"
            description = "a hostile test submission"
            paper = "none"
            authors = ["test"]
            trainable = false
            batch_size = 64
            """
        )
        + textwrap.dedent(parameters)
    )
    return folder


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or ()) and p.pid != os.getpid():
            found.append(p)
    return found


def wait_until_gone(marker: str, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def wait_until_started(harness: subprocess.Popen[str], marker: str) -> None:
    """Until a process with ``marker`` in its command line runs (the submission started)."""
    deadline = time.monotonic() + 120
    while not processes_with(marker) and time.monotonic() < deadline:
        assert harness.poll() is None, harness.communicate()
        time.sleep(0.2)
    assert processes_with(marker), "the submission never started"


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------ tamper

TAMPER = (
    """
import json, os, socket, sys
from pathlib import Path

import metbench

def attempt(what, action):
    try:
        return f"DONE {action()!r}"[:200]
    except Exception as exc:
        return f"REFUSED {type(exc).__name__}"

class Estimator:
    def __init__(self, results, dataset, victim, oracle):
        d = Path(dataset)
        seen = {
            "hostname_file": attempt("read", lambda: Path("/etc/hostname").read_text()),
            "passwd": attempt("read", lambda: Path("/etc/passwd").read_text()),
            "hostname": socket.gethostname(),
            "environment": sorted(os.environ),
            "tcp": attempt("net", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
            "dns": attempt("net", lambda: socket.getaddrinfo("example.com", 80)),
            "udp": attempt("net", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                           .sendto(b"x", ("8.8.8.8", 53))),
            "rewrite_results": attempt("write", lambda: Path(victim).write_text("{}")),
            "read_results": attempt("read", lambda: os.listdir(Path(victim).parent)),
            "read_oracle": attempt("read", lambda: Path(oracle).read_bytes()),
            "write_manifest": attempt("write", lambda: open(d / "manifest.json", "a").write("x")),
            "write_events": attempt("write", lambda: (d / "events" / "x.parquet").write_text("x")),
            "write_dataset": attempt("write", lambda: (d / "x.txt").write_text("x")),
            "read_truth": attempt("read", lambda: os.listdir(d / "truth")),
            "write_submission": attempt("write", lambda: Path(__file__).write_text("x")),
            "write_metbench": attempt("write", lambda: Path(metbench.__file__).write_text("x")),
            "repository": attempt("read", lambda: os.listdir(Path(metbench.__file__).parents[1])),
            "leaderboard": attempt(
                "read", lambda: os.listdir(Path(metbench.__file__).parents[1] / "leaderboard")
            ),
        }
        print("PROBE " + json.dumps(seen), flush=True)
"""
    + MET
)


def test_a_tampering_submission_sees_and_changes_nothing(tmp_path, tiny_dataset, monkeypatch):
    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, dataset)
    results = tmp_path / "results"
    info = dataset_info(dataset)
    victim, _ = results_paths(results, info, "test", "puppi")
    victim.parent.mkdir(parents=True)
    victim.write_text('{"the": "puppi results"}')
    oracle = victim.with_name("oracle.predictions.parquet")
    oracle.write_bytes(b"PAR1 the truth PAR1")
    before_dataset, before_results = digest(dataset), digest(results)
    parameters = f"""
        [parameters]
        results = "{results}"
        dataset = "{dataset}"
        victim = "{victim}"
        oracle = "{oracle}"
    """
    folder = write_submission(tmp_path, "tamper", TAMPER, parameters)
    monkeypatch.setenv("METBENCH_TEST_SECRET", "s3cret")
    r = cli("run", folder, "--dataset", dataset, *fast(results))
    assert r.returncode == 0, r.stderr
    log = results_paths(results, info, "test", "tamper")[0].with_suffix(".log")
    seen = json.loads(log.read_text().split("PROBE ", 1)[1].splitlines()[0])
    refused = [k for k, v in seen.items() if isinstance(v, str) and v.startswith("REFUSED")]
    assert set(refused) == {
        "hostname_file", "passwd", "tcp", "dns", "udp", "rewrite_results", "read_results",
        "read_oracle", "write_manifest", "write_events", "write_dataset", "read_truth",
        "write_submission", "write_metbench", "leaderboard",
    }, seen  # fmt: skip
    assert "leaderboard" not in seen["repository"] and "tests" not in seen["repository"]
    assert seen["hostname"] == "sandbox"
    assert "METBENCH_TEST_SECRET" not in seen["environment"]
    assert set(seen["environment"]) <= {
        "PATH", "HOME", "TMPDIR", "LANG", "PWD", "LC_CTYPE", "PYTHONDONTWRITEBYTECODE",
        "PYTHONPATH", *PASSED_VARIABLES,
    }  # fmt: skip
    assert digest(dataset) == before_dataset
    after = digest(results)
    assert {k: after[k] for k in before_results} == before_results
    document = json.loads(results_paths(results, info, "test", "tamper")[0].read_text())
    assert document["isolation"] == {"sandbox": available_sandbox(), "sandboxed": True}
    assert not list(results.rglob("*.sandbox.*")), "the private folders are removed"


@pytest.mark.skipif(not shutil.which("unshare"), reason="no unshare")
def test_the_unshare_fallback_hides_the_same(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setenv("METBENCH_SANDBOX", "unshare")
    if available_sandbox() != "unshare":
        pytest.skip("unshare with user namespaces does not work here")
    info = dataset_info(tiny_dataset)
    victim = tmp_path / "results" / "puppi.json"
    victim.parent.mkdir()
    victim.write_text("{}")
    parameters = f"""
        [parameters]
        results = "{victim.parent}"
        dataset = "{tiny_dataset}"
        victim = "{victim}"
        oracle = "{victim.parent / "oracle.predictions.parquet"}"
    """
    sub = load_submission(write_submission(tmp_path, "tamper", TAMPER, parameters))
    out = tmp_path / "results" / "tamper.predictions.parquet"
    report = predict_entry(sub, "tamper", sub.manifest.parameters, info, "test", out)
    assert report.isolation == {"sandbox": "unshare", "sandboxed": True}
    log = out.with_name("tamper.log").read_text()
    seen = json.loads(log.split("PROBE ", 1)[1].splitlines()[0])
    for key in ("hostname_file", "tcp", "rewrite_results", "read_truth", "write_manifest",
                "write_submission", "write_metbench", "leaderboard"):  # fmt: skip
        assert seen[key].startswith("REFUSED"), (key, seen)
    assert seen["hostname"] == "sandbox" and "METBENCH_TEST_SECRET" not in seen["environment"]
    assert victim.read_text() == "{}"


# ---------------------------------------------------------------------------- process control

SPAWN_AND_HANG = """
import subprocess, sys, time

class Estimator:
    def __init__(self, marker):
        for session in (False, True):  # one of them leaves the process group
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker],
                             start_new_session=session)

    def predict(self, batch):
        time.sleep(600)
"""


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_no_grandchild_survives_the_time_limit(tmp_path, tiny_dataset, sandbox):
    marker = f"metbench-test-marker-{tmp_path.name}-{sandbox}"
    folder = write_submission(
        tmp_path, "spawner", SPAWN_AND_HANG, f'[parameters]\nmarker = "{marker}"\n'
    )
    sub = load_submission(folder)
    info = dataset_info(tiny_dataset)
    out = tmp_path / "r" / "spawner.predictions.parquet"
    with pytest.raises(SubmissionError, match="exceeded its time limit of 6 s"):
        predict_entry(sub, "spawner", sub.manifest.parameters, info, "test", out,
                      limits=Limits(time_s=6), sandbox=sandbox)  # fmt: skip
    assert not wait_until_gone(marker, 3), "a grandchild survived"
    assert not processes_with(str(folder)), "the child survived"


THREAD = (
    """
import threading, time

class Estimator:
    def __init__(self):
        threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon
"""
    + MET
)


def test_a_thread_left_running_does_not_fail_the_run(tmp_path, tiny_dataset):
    sub = load_submission(write_submission(tmp_path, "threads", THREAD))
    info = dataset_info(tiny_dataset)
    out = tmp_path / "r" / "threads.predictions.parquet"
    start = time.monotonic()
    report = predict_entry(sub, "threads", {}, info, "test", out, limits=Limits(time_s=120))
    assert time.monotonic() - start < 90
    event_id = read_predictions(out).event_id
    from metbench.data.source import EventSource

    assert len(event_id) == report.n_events == len(EventSource(tiny_dataset, "test"))
    assert "still running 5 s after it was done: killed" in out.with_name("threads.log").read_text()


FLOOD = (
    """
import sys

class Estimator:
    def __init__(self):
        sys.stdout.write("FIRST LINE\\n")
        line = "x" * 1023 + "\\n"
        for _ in range(5 * 1024):  # 5 MiB
            sys.stdout.write(line)
        sys.stdout.write("LAST LINE\\n")
        sys.stdout.flush()
"""
    + MET
)


def test_a_flood_of_output_is_capped(tmp_path, tiny_dataset):
    sub = load_submission(write_submission(tmp_path, "flood", FLOOD))
    out = tmp_path / "r" / "flood.predictions.parquet"
    predict_entry(sub, "flood", {}, dataset_info(tiny_dataset), "test", out)
    log = out.with_name("flood.log").read_bytes()
    assert len(log) < 2 * LOG_CAP + 4096
    assert log.startswith(b"FIRST LINE\n") and b"LAST LINE\n" in log[-LOG_CAP:]
    dropped = int(log.split(b"[metbench: ", 1)[1].split(b" bytes of output dropped")[0])
    assert dropped == 5 * 2**20 + len("FIRST LINE\nLAST LINE\n") - 2 * LOG_CAP


HANG = """
import subprocess, sys, time

class Estimator:
    def __init__(self, marker):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])

    def predict(self, batch):
        time.sleep(600)
"""


def test_killing_the_harness_kills_the_child_and_its_children(tmp_path, tiny_dataset):
    marker = f"metbench-test-marker-{tmp_path.name}"
    folder = write_submission(tmp_path, "orphan", HANG, f'[parameters]\nmarker = "{marker}"\n')
    harness = popen_cli("predict", folder, "--dataset", tiny_dataset,
                        "--out", tmp_path / "r" / "o.parquet")  # fmt: skip
    try:
        wait_until_started(harness, marker)
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)
        assert not wait_until_gone(marker, 5), "the submission's child survived the harness"
        assert not wait_until_gone(str(folder), 5), "the child survived the harness"
    finally:
        harness.kill()
        harness.communicate()
        for p in processes_with(marker):
            p.kill()


SLOW = (
    """
import time

class Estimator:
    def __init__(self):
        time.sleep(3)
"""
    + MET
)


def test_two_runs_of_one_entry_at_once_both_succeed(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "twice", SLOW)
    results = tmp_path / "results"
    runs = [popen_cli("run", folder, "--dataset", tiny_dataset, "--force", *fast(results))
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err
    assert "waiting for another run of it (pid" in outputs[0][1] + outputs[1][1]
    path, _ = results_paths(results, dataset_info(tiny_dataset), "test", "twice")
    assert json.loads(path.read_text())["entry"]["name"] == "twice"


def test_a_segfault_is_one_line_and_leaves_a_python_stack(tmp_path, tiny_dataset):
    code = """
    import ctypes

    class Estimator:
        def predict(self, batch):
            ctypes.string_at(0)
    """
    folder = write_submission(tmp_path, "segv", code)
    out = tmp_path / "r" / "segv.parquet"
    r = cli("predict", folder, "--dataset", tiny_dataset, "--out", out)
    assert_one_line_error(r, "submission segv crashed: killed by SIGSEGV", "log:")
    log = out.with_name("segv.log").read_text()
    assert "Fatal Python error: Segmentation fault" in log
    assert "model.py" in log and "predict" in log


# ------------------------------------------------------------------ what the child sends back

PICKLE = """
import os, pickle, sys

class Boom:
    def __reduce__(self):
        return (os.system, ("touch " + {pwned!r},))

class Estimator:
    def predict(self, batch):
        os.write(int(sys.argv[-1]), pickle.dumps(Boom()) + b"\\n")
        return np.zeros((len(batch), 2))
"""


def test_the_harness_never_unpickles_what_the_child_sends(tmp_path, tiny_dataset):
    pwned = tmp_path / "pwned"
    sub = load_submission(write_submission(tmp_path, "pickler", PICKLE.format(pwned=str(pwned))))
    out = tmp_path / "r" / "pickler.predictions.parquet"
    with pytest.raises(SubmissionError, match="sent a malformed message to the harness"):
        predict_entry(sub, "pickler", {}, dataset_info(tiny_dataset), "test", out)
    assert not pwned.exists()


FORGER = (
    """
import json, os, sys
from pathlib import Path

from metbench.estimators.predictions import write_predictions

class Estimator:
    def __init__(self):
        job = json.loads(Path(sys.argv[-2]).read_text())
        out = Path(job["parts_dir"])
        n = 1000
        write_predictions(out / "part_00000.parquet", np.arange(n), np.zeros((n, 2)))
        # not the events of file 0
        os.symlink("/etc/ld.so.cache", out / "part_00001.parquet")
"""
    + MET
)


def test_forged_parts_are_refused(tmp_path, tiny_dataset):
    sub = load_submission(write_submission(tmp_path, "forger", FORGER))
    out = tmp_path / "r" / "forger.predictions.parquet"
    with pytest.raises(SubmissionError, match="wrote a part the harness refuses") as caught:
        predict_entry(sub, "forger", {}, dataset_info(tiny_dataset), "test", out)
    # its footer already shows the wrong number of rows: refused before any value is read
    assert "part_00000.parquet: 1000 rows; its dataset file has" in str(caught.value)
    parts = out.with_name(f".{out.name}.parts")
    kept = sorted(p.name for p in parts.glob("part_*.parquet"))
    assert "part_00000.parquet" not in kept and "part_00001.parquet" not in kept
    assert len(kept) >= 1  # the honest parts are kept for the resume
    for part in kept:
        event_id = read_predictions(parts / part).event_id
        assert np.all(event_id >= 0)
    assert not list(out.parent.glob("*.sandbox.*")) and not list(out.parent.glob("*.truth"))


# -------------------------------------------------------------------------------------- peek

PEEK = """
import gc, sys

TRUTH = {"process", "n_pu", "gen_met_x", "gen_met_y", "gen_qt_x", "gen_qt_y",
         "truth_is_pileup", "truth_neutrinos", "truth_leptons", "truth_b_quarks"}

def truth_in(value):
    # truth columns held as data (an array per name), not merely named (as in dtype tables)
    found = set()
    if isinstance(value, dict):
        found |= {k for k, v in value.items() if k in TRUTH and isinstance(v, np.ndarray)}
    names = getattr(value, "column_names", None)  # an Arrow table or record batch
    if isinstance(names, list):
        found |= set(names) & TRUTH
    for attr in ("event", "truth"):  # an EventBatch
        inner = getattr(value, attr, None)
        if isinstance(inner, dict):
            found |= truth_in(inner)
    return found

class Estimator:
    def predict(self, batch):
        found = set()
        frame = sys._getframe(0)
        while frame is not None:  # every caller up to the child's first frame
            for value in frame.f_locals.values():
                found |= truth_in(value)
            frame = frame.f_back
        for value in gc.get_objects():  # and everything alive in the child
            try:
                found |= truth_in(value)
            except Exception:
                pass
        print("PEEK " + ",".join(sorted(found)), flush=True)
        for owner in (batch.event, batch.truth):
            if "gen_met_x" in owner:  # the old attack: hand the truth back
                return np.stack([owner["gen_met_x"], owner["gen_met_y"]], 1)
        return self.pf(batch)
""" + MET.replace("def predict", "def pf")


def test_a_frame_walking_submission_finds_no_truth(tmp_path, tiny_dataset):
    """The `peek` attack: the submission walks ``sys._getframe`` up through the child's callers
    and every object alive in it for truth columns, and would hand them back as its MET."""
    folder = write_submission(tmp_path, "peek", PEEK)
    results = tmp_path / "results"
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results))
    assert r.returncode == 0, r.stderr
    info = dataset_info(tiny_dataset)
    path, _ = results_paths(results, info, "test", "peek")
    seen = [line for line in path.with_suffix(".log").read_text().splitlines() if "PEEK" in line]
    assert seen and all(line.strip() == "PEEK" for line in seen), seen[:3]
    document = json.loads(path.read_text())
    assert document["entry"]["uses_truth"] == []
    # what it returned is its PF MET, not the truth: a realistic σ, far from zero
    sigma = document["scores"]["tasks"]["met"]["overall"]["sigma_perp"]["value"]
    assert sigma > 5.0, sigma


def test_ctrl_c_during_run_exits_130_and_leaves_no_child(tmp_path, tiny_dataset):
    marker = f"metbench-test-marker-{tmp_path.name}"
    folder = write_submission(tmp_path, "stopped", HANG, f'[parameters]\nmarker = "{marker}"\n')
    harness = popen_cli("run", folder, "--dataset", tiny_dataset, *fast(tmp_path / "results"))
    try:
        wait_until_started(harness, marker)
        harness.send_signal(signal.SIGINT)
        _, err = harness.communicate(timeout=60)
        assert harness.returncode == 130, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == ["interrupted; the same command resumes"], err
        assert not wait_until_gone(marker, 5), "the submission's child survived Ctrl-C"
        assert not wait_until_gone(str(folder), 5), "the child survived Ctrl-C"
    finally:
        harness.kill()
        harness.communicate()
        for p in processes_with(marker):
            p.kill()


def test_without_a_sandbox_tool_run_refuses_unless_told(tmp_path, tiny_dataset):
    """No bubblewrap and no unshare on PATH: `run` refuses in one line; with --no-sandbox it runs
    and the results say unsandboxed. The entry name with its --param (``[k=v]``) is shown as it
    is in the progress bar, not eaten as rich markup."""
    body = "class Estimator:\n    def __init__(self, weights):\n        pass\n" + MET
    folder = write_submission(tmp_path, "plain", body, '[parameters]\nweights = "all"\n')
    (tmp_path / "bin").mkdir()
    no_tools = {"PATH": str(tmp_path / "bin")}
    results = tmp_path / "results"
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results), env=no_tools)
    assert_one_line_error(r, "no sandbox works here", "--no-sandbox")
    assert not list(results.rglob("*.json"))
    terminal = {**no_tools, "TTY_COMPATIBLE": "1", "COLUMNS": "200"}  # rich draws its bars
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results), "--no-sandbox",
            "--param", "weights=nolep", env=terminal)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "plain[weights=nolep]: predicting" in r.stderr, r.stderr
    path, _ = results_paths(results, dataset_info(tiny_dataset), "test", "plain[weights=nolep]")
    document = json.loads(path.read_text())
    assert document["isolation"] == {"sandbox": "none", "sandboxed": False}
