"""`metbench verify`: results re-checked against their predictions and dataset; tampered results,
predictions or datasets are caught, and the site build leaves out what fails."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from metbench.data.store import sha256_file
from metbench.estimators.predictions import (
    read_neutrinos,
    read_predictions,
    read_recoil,
    write_predictions,
)
from metbench.estimators.submission import load_submission
from metbench.harness import dataset_info, run_entry
from metbench.leaderboard.build import verify_for_site
from metbench.verify import compare_scores, verify_paths, verify_results
from tests.commands import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(mini_dataset, tmp_path_factory) -> Path:
    """pf and track run on mini (predictions, validation predictions, results) into a folder
    that the tests copy before tampering with it."""
    results = tmp_path_factory.mktemp("verify") / "results"
    info = dataset_info(mini_dataset)
    for name in ("pf", "track"):
        sub = load_submission(ROOT / "submissions" / name)
        run_entry(sub, name, {}, info, "test", results, n_boot=200, seed=3)
    return results


@pytest.fixture
def pf(runs, tmp_path) -> Path:
    """The pf results file in a copy of the runs (``<copy>/<dataset key>/test/pf.json``)."""
    folder = tmp_path / "results"
    shutil.copytree(runs, folder)
    return next(folder.rglob("pf.json"))


def edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


def test_untouched_results_verify_with_their_calibration(runs):
    checks = verify_paths([runs])
    assert [c.status for c in checks] == ["verified", "verified"], [c.line() for c in checks]
    assert all(c.line().startswith("ok") for c in checks)
    # mini has a validation split: it was scored for the calibrated figures, and re-scored
    doc = checks[0].results
    assert (
        doc["scores"]["tasks"]["met"]["calibrated"]["reason"] != "no validation-split predictions"
    )
    assert checks[0].path.with_name("pf.val-predictions.parquet").is_file()


def test_edited_headline_is_caught(pf):
    edit(pf, lambda d: d["scores"]["headline"].update(value=d["scores"]["headline"]["value"] - 1))
    check = verify_results(pf)
    assert check.status == "failed"
    assert "scores.headline.value: recorded" in check.line()
    assert "recomputed" in check.line()


def test_deleted_or_added_figure_is_caught(pf):
    edit(pf, lambda d: d["scores"]["tasks"]["met"]["overall"].pop("tail_50"))
    line = verify_results(pf).line()
    assert "scores.tasks.met.overall: keys differ (recomputed only tail_50)" in line


def test_swapped_predictions_are_caught(pf):
    track = pf.with_name("track.predictions.parquet")
    shutil.copyfile(track, pf.with_name("pf.predictions.parquet"))
    check = verify_results(pf)
    assert check.status == "failed"
    assert "predictions sha256 mismatch" in check.line()
    # with the sha256 edited to match, the footer still names the other entry
    edit(pf, lambda d: d["predictions"].update(sha256=sha256_file(track)))
    assert "predictions identity differs at" in verify_results(pf).line()


def test_changed_prediction_value_is_caught_even_with_its_sha256_updated(pf):
    predictions = pf.with_name("pf.predictions.parquet")
    pred = read_predictions(predictions)
    event_id, met, cov, meta = pred.event_id, pred.met, pred.covariance, pred.metadata
    met = met.copy()
    met[:50] *= 1.5
    write_predictions(
        predictions, event_id, met, cov, meta, read_neutrinos(predictions), read_recoil(predictions)
    )
    assert "predictions sha256 mismatch" in verify_results(pf).line()
    edit(pf, lambda d: d["predictions"].update(sha256=sha256_file(predictions)))
    check = verify_results(pf)
    assert check.status == "failed" and "scores differ" in check.line(), check.line()


def test_missing_predictions_and_calibration(pf):
    pf.with_name("pf.val-predictions.parquet").unlink()
    assert "pf.val-predictions.parquet is missing" in verify_results(pf).line()
    pf.with_name("pf.predictions.parquet").unlink()
    assert "pf.predictions.parquet is missing" in verify_results(pf).line()


def test_dataset_other_or_absent(pf, mini_dataset, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text((mini_dataset / "manifest.json").read_text() + "\n")
    check = verify_results(pf, dataset=other)
    assert check.status == "failed" and "dataset manifest differs" in check.line()
    # nowhere to be found: a failure for `metbench verify`, predictions-only for the site
    edit(pf, lambda d: d["dataset"].update(path=str(tmp_path / "gone"), name="gone"))
    assert "cannot re-score: dataset gone not found" in verify_results(pf).line()
    check = verify_results(pf, require_dataset=False)
    assert check.status == "predictions" and check.ok
    assert verify_results(pf, rescore=False).status == "predictions"


def test_compare_scores_rules():
    assert compare_scores({"a": [1.0, math.nan]}, {"a": [1.0 + 1e-12, math.nan]}) == []
    assert compare_scores({"a": 1.0}, {"a": 1.0 + 1e-6}) == [
        "scores.a: recorded 1.0, recomputed 1.000001"
    ]
    assert compare_scores({"a": True}, {"a": 1}) == ["scores.a: recorded true, recomputed 1"]
    assert compare_scores({"a": None}, {"a": 0.0}) == ["scores.a: recorded null, recomputed 0.0"]
    assert compare_scores({"a": [1]}, {"a": [1, 2]}) == ["scores.a: 1 items recorded, 2 recomputed"]
    many = compare_scores({str(i): i for i in range(10)}, {str(i): -i - 1 for i in range(10)})
    assert len(many) == 3


def test_cli_exit_codes(pf):
    folder = pf.parents[2]
    r = cli("verify", folder)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [line[:2] for line in r.stdout.splitlines()] == ["ok", "ok"]
    assert "2 ok, 0 failed" in r.stderr
    edit(pf, lambda d: d["scores"]["headline"].update(value=1.0))
    r = cli("verify", folder)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "pf.json" in failed[0] and "headline" in failed[0]
    r = cli("verify", folder / "nothing-here")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error:") and "no such file or folder" in r.stderr


def test_site_build_leaves_out_what_fails(pf, tmp_path):
    folder = pf.parents[2]
    edit(pf, lambda d: d["scores"]["headline"].update(value=1.0))
    results, marks, failures = verify_for_site([folder])
    assert [r["entry"]["name"] for r in results] == ["track"]
    assert marks == [{"status": "verified", "detail": None}]
    assert [f.path for f in failures] == [pf]
    r = cli("leaderboard", "build", folder, "--out", tmp_path / "site", "--strict")
    assert r.returncode == 2 and "failed verification" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "site").exists()
    r = cli("leaderboard", "build", folder, "--out", tmp_path / "site", "--no-rescore")
    assert r.returncode == 0, r.stderr
    # the edit leaves the predictions as they were: without re-scoring it is not seen
    assert "0 re-scored and verified, 2 predictions checked only, 0 left out" in r.stderr
    shutil.copyfile(
        pf.with_name("track.predictions.parquet"), pf.with_name("pf.predictions.parquet")
    )
    r = cli("leaderboard", "build", folder, "--out", tmp_path / "site")
    assert r.returncode == 0, r.stderr
    assert "warning: left out:" in r.stderr and "pf.json" in r.stderr
    assert "1 re-scored and verified, 0 predictions checked only, 1 left out" in r.stderr
    site = json.loads(
        (tmp_path / "site" / "index.html")
        .read_text()
        .split('<script id="site-data" type="application/json">')[1]
        .split("</script>")[0]
    )
    (summary,) = site["groups"]  # the index lists the datasets; each one's data is a script
    script = (tmp_path / "site" / "data" / f"{summary['id']}.js").read_text()
    group = json.loads(script.split(", ", 1)[1].rsplit(");", 1)[0])
    assert list(group["entries"]) == ["track"]
    assert [m["kind"] for m in group["entries"]["track"]["marks"]][-1] == "verified"


def test_update_rewrites_rounding_differences_only(pf):
    """`verify --update` after a change of the scoring arithmetic: a figure off by rounding is
    rewritten from the predictions (everything else kept); a real change is refused and the file
    left as it was, so that edited predictions cannot be laundered into scores."""
    original = json.loads(pf.read_text())
    headline = original["scores"]["headline"]["value"]
    edit(pf, lambda d: d["scores"]["headline"].update(value=headline * (1 + 3e-6)))
    assert verify_results(pf).status == "failed"
    check = verify_results(pf, update=True)
    assert check.status == "updated", check.line()
    assert check.line().startswith("updated") and "scores.headline.value" in check.line()
    rewritten = json.loads(pf.read_text())
    assert rewritten["scores"]["headline"]["value"] == pytest.approx(headline, rel=1e-12)
    assert {k: v for k, v in rewritten.items() if k != "scores"} == {
        k: v for k, v in original.items() if k != "scores"
    }
    assert verify_results(pf).status == "verified"

    edit(pf, lambda d: d["scores"]["headline"].update(value=headline + 1.0))
    before = pf.read_bytes()
    check = verify_results(pf, update=True)
    assert check.status == "failed" and "beyond rounding" in check.line(), check.line()
    assert pf.read_bytes() == before


def test_update_does_not_launder_edited_predictions(pf):
    predictions = pf.with_name("pf.predictions.parquet")
    pred = read_predictions(predictions)
    met = pred.met.copy()
    met[:50] *= 1.5
    write_predictions(
        predictions,
        pred.event_id,
        met,
        pred.covariance,
        pred.metadata,
        read_neutrinos(predictions),
        read_recoil(predictions),
    )
    edit(pf, lambda d: d["predictions"].update(sha256=sha256_file(predictions)))
    before = pf.read_bytes()
    r = cli("verify", "--update", pf)
    assert r.returncode == 1 and "beyond rounding" in r.stdout, (r.stdout, r.stderr)
    assert pf.read_bytes() == before


def test_update_tolerance_is_relative_to_the_figure_and_counts_stay_exact():
    """A bound near 0 in a bin of one or two events moved by float32 rounding is within 1e-3 of
    its figure's scale; the same absolute change in a figure whose numbers are all small is not,
    and counts must be equal."""
    from metbench.verify import UPDATE_REL_TOL, UPDATE_SCALE_TOL

    tol = {"rel_tol": UPDATE_REL_TOL, "scale_tol": UPDATE_SCALE_TOL}
    rms = {"value": [80.0, 35.0], "low": [70.0, 0.033], "high": [90.0, 60.0]}
    moved = {"value": [80.0, 35.0], "low": [70.0, 0.0], "high": [90.0, 60.0]}
    assert compare_scores(rms, moved, **tol) == []
    assert compare_scores(rms, moved) != []  # verify's own tolerance: a difference
    small = {"value": [0.05, 0.04], "low": [0.03, 0.033], "high": [0.07, 0.06]}
    assert compare_scores(small, {**small, "low": [0.03, 0.0]}, **tol) != []
    assert compare_scores({"n": 40, "x": {"value": 1.0}}, {"n": 41, "x": {"value": 1.0}}, **tol)
