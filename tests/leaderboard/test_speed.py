"""The speed history (issue #18 item 8): asv's result files across commits, read and drawn on the
site's ``speed.html``; ``benchmarks/history.py`` runs asv for real on a commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metbench.leaderboard.speed import continuous_demo, read_speed_history, speed_body

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "leaderboard" / "speed"


def _write_asv(folder: Path, commits: dict[str, tuple[int, object]]) -> None:
    """asv's layout and format 2 (``benchmarks.json``; ``<machine>/<commit>-<env>.json``)."""
    (folder / "m").mkdir(parents=True)
    (folder / "benchmarks.json").write_text(json.dumps({
        "b.G.time_x": {"name": "b.G.time_x", "params": [["20.0", "80.0"]],
                       "param_names": ["mu"], "unit": "seconds", "type": "time"},
        "b.L.track_r": {"name": "b.L.track_r", "params": [], "param_names": [],
                        "unit": "ratio", "type": "track"},
        "version": 2,
    }))  # fmt: skip
    (folder / "m" / "machine.json").write_text(json.dumps({"machine": "m", "version": 1}))
    columns = ["result", "params", "version", "started_at", "duration"]
    for sha, (date, x) in commits.items():
        doc = {
            "commit_hash": sha, "env_name": "existing", "date": date, "params": {},
            "result_columns": columns, "version": 2,
            "results": {"b.G.time_x": [x, [["20.0", "80.0"]], "v", 0, 1.0],
                        "b.L.track_r": [[0.5], [], "v", 0, 1.0]},
        }  # fmt: skip
        (folder / "m" / f"{sha[:8]}-existing.json").write_text(json.dumps(doc))


def test_series_per_parameter_in_commit_date_order_with_failures_as_gaps(tmp_path):
    _write_asv(tmp_path, {
        "c" * 40: (3000, [1.2, None]),   # the mu=80 run failed
        "a" * 40: (1000, [1.0, 2.0]),
        "b" * 40: (2000, None),          # the whole benchmark failed (asv writes null)
    })  # fmt: skip
    series = read_speed_history(tmp_path)
    assert [s.label for s in series] == [
        "b.G.time_x (mu=20.0)", "b.G.time_x (mu=80.0)", "b.L.track_r",
    ]  # fmt: skip
    mu20, mu80, ratio = series
    assert [c[0] for c, _, _ in mu20.points] == ["a", "b", "c"]  # by date, not by name or file
    assert [v for _, _, v in mu20.points] == [1.0, None, 1.2]
    assert [v for _, _, v in mu80.points] == [2.0, None, None]
    assert mu20.unit == "s" and ratio.unit == "ratio"
    body = speed_body(series)
    assert body.count("<section") == 3 and body.count("<td>failed</td>") == 3
    # two pieces of line around the gap in mu=20, one point alone for mu=80
    section = body.split('<section id="s0">')[1].split("</section>")[0]
    assert section.count("<polyline") == 2 and section.count("<circle") == 2


def test_missing_folder_and_foreign_files(tmp_path):
    assert read_speed_history(tmp_path / "none") == []
    assert "No asv history" in speed_body([])
    _write_asv(tmp_path, {"a" * 40: (1, [1.0, 2.0])})
    (tmp_path / "m" / "bad-existing.json").write_text(json.dumps({"version": 1, "results": {}}))
    with pytest.raises(ValueError, match=r"bad-existing\.json: not an asv results file"):
        read_speed_history(tmp_path)


def test_committed_history_covers_ten_commits_of_this_repository():
    """The history published with the site: at least 10 commits of this repository's main, each
    with a successful scoring and loading run, times positive."""
    series = read_speed_history(COMMITTED)
    assert series, f"no asv history in {COMMITTED}: run python benchmarks/history.py --commits 10"
    commits = {c for s in series for c, _, _ in s.points}
    assert len(commits) >= 10
    known = subprocess.run(
        ["git", "rev-list", "--all"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if known:  # a source archive without git history cannot check this
        assert commits <= set(known)
    scoring = next(
        s for s in series if s.name.endswith("Scoring.time_score_1m_events_200_resamples")
    )
    ok = [v for _, _, v in scoring.points if v is not None]
    assert len(ok) >= 10 and all(0 < v < 300 for v in ok)


def test_committed_continuous_demo_flagged_the_slowdown():
    """benchmarks/continuous_demo.sh's recorded run: asv continuous --factor 1.1 called the
    deliberately slowed commit slower, and the page shows its verdict."""
    text = (COMMITTED / "continuous-demo.txt").read_text()
    assert "PERFORMANCE DECREASED" in text
    row = next(line for line in text.splitlines() if "Loading.time_read_test_split" in line
               and line.startswith("| +"))  # fmt: skip
    ratio = float(row.split("|")[4])
    assert ratio > 1.1
    page = continuous_demo(COMMITTED)
    assert "PERFORMANCE DECREASED" in page and "<script" not in page


@pytest.mark.slow
def test_history_runs_asv_on_a_commit(mini_dataset, tmp_path):
    """benchmarks/history.py on the last commit, one cheap benchmark: asv's own files come out,
    filed under that commit, and the page reads them."""
    out = tmp_path / "speed"
    env = {**os.environ, "METBENCH_DATA": str(mini_dataset.parent)}
    run = subprocess.run(
        [sys.executable, "benchmarks/history.py", "--commits", "1", "--quick",
         "--machine", "historytest", "--bench", r"CandidateSum\.time_numpy_sum", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (out / "historytest" / "machine.json").is_file()
    (series,) = [s for s in read_speed_history(out) if s.name.endswith("time_numpy_sum")]
    assert [c for c, _, _ in series.points] == [head]
    assert series.points[0][2] is not None and series.points[0][2] > 0
    # the worktree of the commit is gone again
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True)
    assert "metbench-history-" not in listed.stdout
