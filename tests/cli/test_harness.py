"""The harness as users meet it: `metbench run/predict/score/show/list` in real subprocesses,
submissions that misbehave in every way, resumption and reuse."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from metbench.estimators.isolation import Limits, run_isolated
from metbench.estimators.predictions import read_predictions, read_recoil
from metbench.estimators.submission import SubmissionError, load_submission, parse_parameter
from metbench.harness import (
    PARTS_KEPT_S,
    dataset_info,
    predict_entry,
    remove_abandoned_parts,
    results_paths,
)
from metbench.results import find_results, read_results
from metbench.scoring.pulls import pulls_of_results
from metbench.scoring.score import load_truth
from tests.commands import assert_error, cli, fast

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
import numpy as np

class Estimator:
    def __init__(self, scale=1.0):
        self.scale = scale

    def predict(self, batch):
        pt, phi = batch.feature("pt"), batch.feature("phi")
        w = batch.mask * self.scale
        return np.stack([-(w * pt * np.cos(phi)).sum(1), -(w * pt * np.sin(phi)).sum(1)], 1)
"""


def write_submission(root: Path, name: str, code: str = GOOD, extra: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(code))
    (folder / "metbench.toml").write_text(
        textwrap.dedent(
            f"""
            name = "{name}"
            entry = "model:Estimator"
            framework = "numpy"
            paper = "none"
            authors = ["test"]
            trainable = false
            batch_size = 16
            """
        )
        + textwrap.dedent(extra)
    )
    return folder


# ----------------------------------------------------------------------------- manifests


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('weights = ["../../etc/passwd"]\n', "points outside the submission folder"),
        ('weights = ["missing.pt"]\n', "does not exist"),
        ('framework = "jax"\n', "not valid TOML"),  # a duplicate key is a TOML error
        ('colour = "red"\n', "unknown key(s) ['colour']"),
        ('uses_truth = ["truth_is_pileup"]\n', 'must have category = "oracle"'),
        ('uses_truth = ["truth_leptons"]\n', "truth-matched inputs are for a kinematic"),
        ("max_particles = 0\n", "'max_particles' must be an integer >= 1"),
        ("[parameters]\ndeep = " + "[" * 100_000 + "]" * 100_000 + "\n", "at most 64 KiB"),
        ("[parameters]\ndeep = " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply"),
        ("[parameters]\ndeep = " + "[" * 12 + "]" * 12 + "\n", "nested too deeply"),
        ('description = "a\u0000b"\n', "NUL character"),
    ],
)
def test_bad_manifests_are_refused(tmp_path, extra, fragment):
    folder = write_submission(tmp_path, "bad", extra=extra)
    with pytest.raises(SubmissionError) as err:
        load_submission(folder)
    assert fragment in str(err.value)
    assert str(folder) in str(err.value)


def test_symlinks_other_than_listed_weights_are_refused(tmp_path):
    folder = write_submission(tmp_path, "links")
    (folder / "secret.txt").symlink_to("/etc/hostname")
    with pytest.raises(SubmissionError, match=r"secret\.txt is a symbolic link"):
        load_submission(folder)


def test_weights_may_link_only_a_repository_entry_into_the_shared_data(tmp_path, monkeypatch):
    """A weights link pointing outside the folder is refused, except for the repository's own
    entries linking into ``../shared/data`` (deepmet-cms-official's graphs): a stranger's link
    would have the sandbox show the link's target, e.g. another folder's files, to its code."""
    shared = load_submission(ROOT / "submissions" / "deepmet-cms-official")
    assert all((shared.folder / w).is_symlink() for w in shared.manifest.weights)
    graph = (shared.folder / shared.manifest.weights[0]).resolve()
    for target, category in ((graph, "submission"), (Path("/etc/hostname"), "reference")):
        folder = write_submission(
            tmp_path / category, "linker", extra=f'category = "{category}"\nweights = ["w.bin"]\n'
        )
        (folder / "w.bin").symlink_to(target)
        monkeypatch.setenv("METBENCH_SUBMISSIONS", str(ROOT / "submissions"))
        with pytest.raises(SubmissionError, match="points outside the submission folder"):
            load_submission(folder)


def test_bad_command_line_parameters_give_one_line(tmp_path):
    folder = write_submission(tmp_path, "p")
    r = cli("run", folder, "--param", "x=" + "a" * 300, *fast(tmp_path / "results"))
    assert_error(r, "at most 256 characters")
    # argv cannot carry NUL; the parser refuses it from any other caller
    with pytest.raises(SubmissionError, match="NUL characters"):
        parse_parameter("x=a\x00b")


def test_incomplete_and_malformed_manifests(tmp_path):
    folder = write_submission(tmp_path, "x")
    text = (folder / "metbench.toml").read_text()
    (folder / "metbench.toml").write_text(text.replace('entry = "model:Estimator"\n', ""))
    with pytest.raises(SubmissionError, match="missing key 'entry'"):
        load_submission(folder)
    (folder / "metbench.toml").write_text("name = [unclosed")
    with pytest.raises(SubmissionError, match="not valid TOML"):
        load_submission(folder)
    (folder / "metbench.toml").unlink()
    with pytest.raises(SubmissionError, match=r"no metbench\.toml"):
        load_submission(folder)


def test_an_entry_outside_the_folder_and_metbench_is_refused_before_anything_runs(tmp_path):
    """`entry = "os:system"` with a `command` parameter once ran the shell command before the
    "has no predict" error; now the manifest is refused when it is read."""
    marker = tmp_path / "pwned"
    folder = write_submission(
        tmp_path, "shell", extra=f'[parameters]\ncommand = "touch {marker}"\n'
    )
    text = (folder / "metbench.toml").read_text().replace("model:Estimator", "os:system")
    (folder / "metbench.toml").write_text(text)
    r = cli("run", folder, *fast(tmp_path / "results"))
    assert_error(r, "'os:system'", "nothing else is imported")
    assert not marker.exists()


def test_variants_parameters_and_content_hash(tmp_path):
    folder = write_submission(
        tmp_path,
        "v",
        extra="[parameters]\nscale = 1.0\n[variants.half]\nscale = 0.5\n[variants.one]\n",
    )
    sub = load_submission(folder)
    assert sub.entries() == [("v-half", {"scale": 0.5}), ("v-one", {"scale": 1.0})]
    assert sub.entries("half", {"scale": 2}) == [("v-half[scale=2]", {"scale": 2})]
    with pytest.raises(SubmissionError, match="no variant 'third'"):
        sub.entries("third")
    assert parse_parameter("working_point=loose") == ("working_point", "loose")
    assert parse_parameter("x=0.25") == ("x", 0.25)
    before = sub.content_hash
    (folder / "model.py").write_text(GOOD + "\n# changed\n")
    assert load_submission(folder).content_hash != before
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    assert load_submission(folder).content_hash == load_submission(folder).content_hash


def test_every_shipped_submission_loads():
    names = sorted(p.parent.name for p in (ROOT / "submissions").glob("*/metbench.toml"))
    assert {"pf", "chs", "track", "puppi", "softkiller", "atlas-wp", "oracle"} <= set(names)
    for name in names:
        folder = ROOT / "submissions" / name
        sub = load_submission(folder, require_weights=False)
        assert (folder / "README.md").is_file(), name
        assert sub.manifest.category in ("baseline", "oracle", "reference")
        missing = [w for w in sub.manifest.weights if not (folder / w).is_file()]
        if missing:  # only a trainable entry whose training is to come may lack its weights
            assert sub.manifest.trainable, name
            with pytest.raises(SubmissionError, match="metbench train"):
                load_submission(folder)
        else:
            load_submission(folder)


# ------------------------------------------------------------------- misbehaving submissions

MISBEHAVING = {
    "import": ("import numpy as np\nraise ImportError('no module named magic')\n", "does not import", "ImportError: no module named magic"),
    "nan": (GOOD.replace("return np.stack", "return np.full((len(batch), 2), np.nan)\n        return np.stack"), "non-finite value", "batch 0"),
    "shape": (GOOD.replace("], 1)", "], 1)[:, :1]"), "returned shape", "(MET px, py in GeV)"),
    "dtype": (GOOD.replace("], 1)", "], 1).astype(np.int64)"), "dtype int64", "float32 or float64"),
    "raises": (GOOD.replace("pt, phi =", "raise ValueError('bad batch')\n        pt, phi ="), "predict raised ValueError: bad batch", "model.py:"),
    "crash": ("import os\nclass Estimator:\n    def predict(self, batch):\n        os.abort()\n", "crashed: killed by SIGABRT", "log:"),
    "segfault": ("import ctypes\nclass Estimator:\n    def predict(self, batch):\n        ctypes.string_at(0)\n", "crashed: killed by SIGSEGV", "log:"),
    "exit": ("import os\nclass Estimator:\n    def predict(self, batch):\n        os._exit(3)\n", "exited with status 3", "log:"),
    "hang": ("import time\nclass Estimator:\n    def predict(self, batch):\n        time.sleep(600)\n", "exceeded its time limit of 4 s", "--time-limit"),
    "memory": (
        "import numpy as np\nclass Estimator:\n    def predict(self, batch):\n        hoard = []\n"
        "        while True:\n            hoard.append(np.ones(2**25))\n",
        "exceeded its memory limit of 1.5 GiB", "--memory-limit",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MISBEHAVING))
def test_misbehaving_submissions_give_one_line_and_leave_nothing(tmp_path, tiny_dataset, kind):
    code, *fragments = MISBEHAVING[kind]
    folder = write_submission(tmp_path, f"bad-{kind}", code)
    results = tmp_path / "results"
    r = cli(
        "run", folder, "--dataset", tiny_dataset, *fast(results),
        "--time-limit", "4" if kind == "hang" else "300", "--memory-limit", "1.5",
    )  # fmt: skip
    assert_error(r, f"submission bad-{kind}", *fragments)
    assert not find_results([results]), "no results"
    assert not list(results.rglob("*.predictions.parquet")), "no predictions may be written"


def test_the_harness_survives_a_crash_and_goes_on(tmp_path, tiny_dataset):
    """In one Python process: a crashing child, then a good one."""
    info = dataset_info(tiny_dataset)
    bad = load_submission(write_submission(tmp_path, "crash", MISBEHAVING["segfault"][0]))
    good = load_submission(write_submission(tmp_path, "good"))
    with pytest.raises(SubmissionError, match="SIGSEGV"):
        predict_entry(bad, "crash", {}, info, "test", tmp_path / "c.predictions.parquet")
    predict_entry(good, "good", {}, info, "test", tmp_path / "g.predictions.parquet")
    pred = read_predictions(tmp_path / "g.predictions.parquet")
    event_id, meta = pred.event_id, pred.metadata
    assert len(event_id) == info_n(tiny_dataset) and meta["content_hash"] == good.content_hash


def info_n(folder):
    from metbench.data.source import EventSource

    return len(EventSource(folder, "test", verify=False))


@pytest.mark.parametrize("force", [False, True])
def test_an_interrupted_run_resumes_from_the_last_finished_file(tmp_path, tiny_dataset, force):
    """The child is killed after the first file of its input extract is done; the second run
    predicts the other files only (the extract, its opaque ids and the first part are kept), or,
    with ``--force``, everything again."""
    calls = tmp_path / "calls.txt"
    stop = tmp_path / "stop-after-first-file"
    stop.write_text("")
    code = GOOD + textwrap.dedent(
        f"""
        import json, os, sys
        from pathlib import Path
        _original = Estimator.predict
        _out = Path(json.loads(Path(sys.argv[-2]).read_text())["parts_dir"])

        def predict(self, batch):
            if (_out / "part_00000.parquet").exists() and os.path.exists({str(stop)!r}):
                os._exit(1)  # killed mid-run, after the first file is done
            with open({str(calls)!r}, "a") as f:
                f.write(f"{{int(batch.event['event_id'][0])}}\\n")
            return _original(self, batch)

        Estimator.predict = predict
        """
    )
    folder = write_submission(tmp_path, "resumable", code)
    results = tmp_path / "results"
    # --no-sandbox: the submission counts its calls in files outside the sandbox
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results), "--no-sandbox")
    assert r.returncode == 2 and "exited with status 1" in r.stderr
    parts = list(results.rglob(".*.parts/part_*.parquet"))
    assert len(parts) == 1  # the first file's predictions were kept
    first_file_batches = calls.read_text().split()
    assert first_file_batches
    stop.unlink()
    again = ("--force",) if force else ()
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results), "--no-sandbox", *again)
    assert r.returncode == 0, r.stderr
    second_run = calls.read_text().split()[len(first_file_batches) :]
    assert second_run
    if force:
        assert set(first_file_batches) <= set(second_run), "--force resumed the interrupted run"
    else:
        assert not set(first_file_batches) & set(second_run), (
            "the finished file was predicted again"
        )
    # the merged predictions equal an uninterrupted run
    clean = write_submission(tmp_path / "clean", "resumable", GOOD)
    r = cli("predict", clean, "--dataset", tiny_dataset, "--out", tmp_path / "clean.parquet")
    assert r.returncode == 0, r.stderr
    info = dataset_info(tiny_dataset)
    _, pred_path = results_paths(results, info, "test", "resumable")
    pred = read_predictions(pred_path)
    a_ids, a_met = pred.event_id, pred.met
    pred = read_predictions(tmp_path / "clean.parquet")
    b_ids, b_met = pred.event_id, pred.met
    order_a, order_b = np.argsort(a_ids), np.argsort(b_ids)
    np.testing.assert_array_equal(a_ids[order_a], b_ids[order_b])
    np.testing.assert_array_equal(a_met[order_a], b_met[order_b])
    a_recoil, b_recoil = read_recoil(pred_path), read_recoil(tmp_path / "clean.parquet")
    np.testing.assert_array_equal(a_recoil[order_a], b_recoil[order_b])
    assert not list(results.rglob("*.parts"))


def test_a_corrupted_dataset_is_refused(tmp_path, tiny_dataset):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dataset, broken)
    victim = sorted((broken / "events" / "test").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    folder = write_submission(tmp_path, "good")
    r = cli("run", folder, "--dataset", broken, *fast(tmp_path / "results"))
    assert_error(r, victim.name)
    assert not find_results([tmp_path / "results"])


def test_bad_predictions_files_are_refused_by_score(tmp_path, tiny_dataset):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"event_id": [1, 2], "met_x": [0.0, np.inf], "met_y": [0.0, 0.0]}), path
    )
    assert_error(cli("score", path, "--dataset", tiny_dataset), "non-finite")
    pq.write_table(pa.table({"event_id": [1, 2], "met_x": [0.0, 1.0]}), path)
    assert_error(cli("score", path, "--dataset", tiny_dataset), "missing column(s) ['met_y']")
    pq.write_table(pa.table({"event_id": [1, 2], "met_x": [0.0, 1.0], "met_y": [0.0, 1.0]}), path)
    assert_error(cli("score", path, "--dataset", tiny_dataset), "have no prediction")
    path.write_text("not parquet")
    assert_error(cli("score", path, "--dataset", tiny_dataset), "not a readable parquet")


# ------------------------------------------------------------------ the normal path


def test_predict_score_show_list_and_reuse(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path / "subs", "good")
    pred = tmp_path / "good.predictions.parquet"
    r = cli("predict", folder, "--dataset", tiny_dataset, "--out", pred)
    assert r.returncode == 0, r.stderr
    read = read_predictions(pred)
    cov, meta = read.covariance, read.metadata
    assert (
        cov is None
        and meta["dataset_manifest_sha256"] == dataset_info(tiny_dataset).manifest_sha256
    )
    r = cli("score", pred, "--dataset", tiny_dataset, "--out", tmp_path / "good.json")
    assert r.returncode == 0, r.stderr
    result = read_results(tmp_path / "good.json")
    assert result["scores"]["n_boot"] == 200 and result["entry"]["name"] == "good"
    assert "σ⊥/R" in r.stdout

    results = tmp_path / "results"

    def run_with_short_throughput():
        return cli(
            "run", folder, "--dataset", tiny_dataset, "--results", results,
            "--throughput-duration", "0.05", "--batch-sizes", "1,8",
        )  # fmt: skip

    r = run_with_short_throughput()
    assert r.returncode == 0, r.stderr
    path = next(results.rglob("good.json"))
    result = read_results(path)
    batches = result["throughput"]["batches"]
    assert [b["batch_size"] for b in batches] == [1, 8]
    assert all(
        b["events_per_s"] > 0 and b["latency_ms"]["p50"] <= b["latency_ms"]["p99"] for b in batches
    )
    assert result["environment"]["hardware"]["cores"] >= 1
    stamp = path.stat().st_mtime_ns
    r = run_with_short_throughput()
    assert r.returncode == 0 and "up to date" in r.stderr and path.stat().st_mtime_ns == stamp
    (folder / "model.py").write_text(GOOD.replace("self.scale = scale", "self.scale = 0.5 * scale"))
    r = run_with_short_throughput()
    assert r.returncode == 0 and "scored" in r.stderr and path.stat().st_mtime_ns != stamp

    # predictions kept, throughput measured again: no resume state is left behind
    r = cli("run", folder, "--dataset", tiny_dataset, "--results", results, "--no-throughput",
            "--force")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_with_short_throughput()
    assert r.returncode == 0 and "scored" in r.stderr
    assert not [p for p in results.rglob("*") if p.name.endswith(".parts")]

    r = cli("show", results)
    assert r.returncode == 0 and "good" in r.stdout
    r = cli("list", "--results", results, "--submissions", tmp_path / "subs")
    assert r.returncode == 0 and "good" in r.stdout

    broken = json.loads(path.read_text())
    broken["scores"]["tasks"]["met"]["overall"]["response"] = {"value": "high"}
    path.write_text(json.dumps(broken))
    assert_error(cli("show", path), "not a valid metbench results file", "response")
    broken["schema_version"] = 99
    path.write_text(json.dumps(broken))
    assert_error(cli("show", path), "schema version 99")


def test_isolation_reports_progress_and_memory(tmp_path, tiny_dataset):
    from metbench.estimators.worker import PredictJob

    folder = write_submission(tmp_path, "good")
    seen = []
    job = PredictJob(
        label="good", folder=str(folder), entry="model:Estimator", framework="numpy",
        parameters={}, device="cpu", dataset=str(tiny_dataset), split="test", batch_size=16,
        max_particles=4500, uses_truth=(), parts_dir=str(tmp_path / "parts"),
        log_path=str(tmp_path / "log.txt"),
    )  # fmt: skip
    report = run_isolated(job, Limits(time_s=120, memory_gb=4), on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == report.n_events == info_n(tiny_dataset)
    assert report.peak_rss_mb > 50


def test_cuda_is_refused_clearly_without_a_gpu(tmp_path, tiny_dataset):
    folder = write_submission(tmp_path, "tgpu", extra="")
    text = (folder / "metbench.toml").read_text().replace('"numpy"', '"torch"')
    (folder / "metbench.toml").write_text(text)
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = cli("run", folder, "--dataset", tiny_dataset, "--device", "cuda", *fast(tmp_path / "r"))
    assert_error(r, "PyTorch sees no CUDA device")


# ------------------------------------------------------------- the new user's first command


def test_first_command_and_the_physics_ordering_on_mini(tmp_path, mini_dataset):
    """`metbench run submissions/puppi` with the mini preset from the cache, then PF and the
    oracle; the figures agree with a computation straight from the stored events."""
    import awkward as ak

    env = {"METBENCH_DATA": str(mini_dataset.parent)}
    # as the first command, less its throughput (PUPPI's batch of 1024 alone takes seconds;
    # pf's below is measured with the default batch sizes)
    r = cli("run", ROOT / "submissions" / "puppi", "--no-throughput", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "puppi" in r.stdout and "S [GeV]" in r.stdout and "A ranks ahead of B" in r.stdout
    for name in ("pf", "oracle"):
        r = cli(
            "run",
            ROOT / "submissions" / name,
            "--throughput-duration",
            "0.2",
            env=env,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
    r = cli("show", tmp_path / "results", "--bins", "n_pu", cwd=tmp_path)
    assert r.returncode == 0 and "oracle (truth)" in r.stdout

    results = {p.stem: read_results(p) for p in find_results([tmp_path / "results"])}
    assert set(results) == {"pf", "puppi", "puppi-stored", "oracle"}

    def headline(name):
        return results[name]["scores"]["headline"]["value"]

    assert headline("oracle") < headline("puppi") < headline("pf")
    assert results["pf"]["throughput"]["batches"][-1]["batch_size"] == 1024

    # independent computation of PF's figures from the parquet files
    files = sorted((mini_dataset / "events" / "test").glob("*.parquet"))
    events = ak.concatenate([ak.from_parquet(f, columns=["pf.pt", "pf.phi"]) for f in files])
    truth = ak.concatenate(
        [
            ak.from_parquet(
                mini_dataset / "truth" / "test" / f.name,
                columns=["gen_met_x", "gen_met_y", "n_pu", "process"],
            )
            for f in files
        ]
    )
    arr = ak.zip({**{k: events[k] for k in events.fields}, **{k: truth[k] for k in truth.fields}},
                 depth_limit=1)  # fmt: skip
    mx = -ak.to_numpy(ak.sum(arr.pf.pt * np.cos(arr.pf.phi), axis=1))
    my = -ak.to_numpy(ak.sum(arr.pf.pt * np.sin(arr.pf.phi), axis=1))
    tx, ty = ak.to_numpy(arr.gen_met_x).astype(float), ak.to_numpy(arr.gen_met_y).astype(float)
    t = np.hypot(tx, ty)
    ux, uy = (
        np.where(t > 0, tx / np.where(t > 0, t, 1), 1.0),
        np.where(t > 0, ty / np.where(t > 0, t, 1), 0.0),
    )
    par, perp = mx * ux + my * uy, ux * my - uy * mx
    # the overall figures: the processes with neutrinos, |t| from 30 GeV (the region of S)
    process = ak.to_numpy(arr.process).astype(str)
    sel = ~np.isin(process, ["z_mumu", "qcd_multijet"]) & (t >= 30)
    overall = results["pf"]["scores"]["tasks"]["met"]["overall"]
    p16, p84 = np.percentile(perp[sel], [16, 84], method="inverted_cdf")
    assert overall["sigma_perp"]["value"] == pytest.approx((p84 - p16) / 2, rel=1e-4)
    assert overall["response"]["value"] == pytest.approx(par[sel].mean() / t[sel].mean(), rel=1e-4)
    assert overall["n"]["value"] == sel.sum()
    lo, hi = overall["sigma_perp"]["low"], overall["sigma_perp"]["high"]
    assert lo < overall["sigma_perp"]["value"] < hi


#: An entry's covariance of (20 GeV)^2 per component, appended to a :data:`GOOD` entry.
CONSTANT_COVARIANCE = textwrap.dedent(
    """
    def _cov(self, batch):
        cov = np.zeros((len(batch), 2, 2))
        cov[:, 0, 0] = cov[:, 1, 1] = 400.0
        return cov

    Estimator.predict_uncertainty = _cov
    """
)


def test_an_estimator_with_a_covariance_gets_pull_and_significance_figures(tmp_path, tiny_dataset):
    code = GOOD + CONSTANT_COVARIANCE
    folder = write_submission(tmp_path, "withcov", code)
    results = tmp_path / "results"
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results))
    assert r.returncode == 0, r.stderr
    result = read_results(next(results.rglob("withcov.json")))
    cov = result["scores"]["covariance"]
    assert 0 <= cov["coverage_1sigma"] <= cov["coverage_2sigma"] <= 1
    assert cov["pull_width_1"] > 0 and 0 <= cov["significance_auc"] <= 1
    _, pred = results_paths(results, dataset_info(tiny_dataset), "test", "withcov")
    covariance = read_predictions(pred).covariance
    np.testing.assert_array_equal(covariance[:, 0, 0], 400.0)
    # its calibration per process (metbench show --task covariance --bins process) against the
    # residuals over the constant sigma of 20 GeV, computed here from the predictions and truth
    binned = pulls_of_results(next(results.rglob("withcov.json")), by="process")
    truth = load_truth(tiny_dataset, "test")
    p = read_predictions(pred)
    at = np.argsort(p.event_id)[np.searchsorted(np.sort(p.event_id), truth.event_id)]
    pulls = (p.met[at] - np.stack([truth.gen_met_x, truth.gen_met_y], 1)) / 20.0
    for process in binned.index:
        sel = truth.process == process
        assert binned.loc[process, "n"] == sel.sum()
        assert binned.loc[process, "pull_width_2"] == pytest.approx(np.std(pulls[sel, 1]))
    shown = cli("show", results, "--task", "covariance", "--bins", "process")
    assert shown.returncode == 0, shown.stderr
    assert "withcov" in shown.stdout and "pull_kurtosis" in shown.stdout
    assert_error(
        cli("show", results, "--task", "covariance", "--bins", "n_pu"), "sigma, process, truth"
    )
    # the same entry returning a non-positive-definite covariance is refused
    (folder / "model.py").write_text(code.replace("400.0", "-1.0"))
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results))
    assert_error(r, "positive definite")


def test_a_student_t_error_model_is_scored_by_its_own_regions(tmp_path, tiny_dataset):
    """An entry that also gives predict_dof: the degrees of freedom travel through the sandboxed
    run into the predictions, and the coverage is that of its t regions, computed here from the
    predictions and the truth with scipy's F distribution; nu <= 2 is refused in one line."""
    from scipy import stats

    code = (
        GOOD
        + CONSTANT_COVARIANCE
        + textwrap.dedent(
            """
        def _dof(self, batch):
            return np.where(np.arange(len(batch)) % 2 == 0, 3.0, np.inf)

        Estimator.predict_dof = _dof
        """
        )
    )
    folder = write_submission(tmp_path, "withdof", code)
    results = tmp_path / "results"
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results))
    assert r.returncode == 0, r.stderr
    result = read_results(next(results.rglob("withdof.json")))
    _, pred_path = results_paths(results, dataset_info(tiny_dataset), "test", "withdof")
    p = read_predictions(pred_path)
    assert p.dof is not None and set(np.unique(p.dof)) == {3.0, np.inf}
    truth = load_truth(tiny_dataset, "test")
    at = np.argsort(p.event_id)[np.searchsorted(np.sort(p.event_id), truth.event_id)]
    chi2 = ((p.met[at] - np.stack([truth.gen_met_x, truth.gen_met_y], 1)) ** 2).sum(1) / 400.0
    nu = p.dof[at]
    # P(inside) of each event's own error model: F(2, nu) of r^T scale^-1 r / 2 for the t
    # (scale = cov (nu - 2) / nu), chi^2_2 for the Gaussian
    nu_t = np.where(np.isinf(nu), 3.0, nu)
    prob = np.where(
        np.isinf(nu),
        stats.chi2.cdf(chi2, 2),
        stats.f.cdf(chi2 * nu_t / (nu_t - 2.0) / 2.0, 2, nu_t),
    )
    cov = result["scores"]["covariance"]
    assert cov["coverage_1sigma"] == pytest.approx(np.mean(prob < 0.682689492137086))
    assert cov["coverage_2sigma"] == pytest.approx(np.mean(prob < 0.954499736103642))
    # degrees of freedom of 2 or less have no covariance: refused, nothing written
    (folder / "model.py").write_text(code.replace("3.0, np.inf", "2.0, np.inf"))
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(results), "--force")
    assert_error(r, "predict_dof returned")


def test_abandoned_resume_folders_are_removed_and_live_ones_kept(tmp_path):
    """A failed run's parts are kept a week for the same command to resume; older ones, and those
    a run left before writing its identity, go with the next run into that folder."""

    def parts(name: str, age_s: float, identity: bool = True) -> Path:
        folder = tmp_path / f".{name}.predictions.parquet.parts"
        folder.mkdir()
        (folder / "part_00000.parquet").write_bytes(b"x")
        if identity:
            (folder / "identity.json").write_text("{}")
        when = time.time() - age_s
        for p in (*folder.iterdir(), folder):
            os.utime(p, (when, when))
        return folder

    fresh = parts("fresh", 60)
    own = parts("own", 2 * PARTS_KEPT_S)
    old = parts("old", PARTS_KEPT_S + 60)
    orphan = parts("orphan", 7200, identity=False)
    starting = parts("starting", 10, identity=False)
    removed = remove_abandoned_parts(tmp_path, keep=own)
    assert sorted(removed) == sorted([old, orphan])
    assert fresh.is_dir() and own.is_dir() and starting.is_dir()
    assert not old.exists() and not orphan.exists()
