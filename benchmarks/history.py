"""Run asv benchmarks on each of the last commits and keep the results for the site.

Usage (from the repository root, with the project installed and ``$METBENCH_DATA`` holding mini)::

    python benchmarks/history.py --commits 10            # the last 10 first-parent commits
    python benchmarks/history.py --commits 10 --quick    # one sample per benchmark (faster)

Each commit's ``metbench`` is checked out into a temporary git worktree and put first on the
benchmark processes' path (asv's ``ASV_PYTHONPATH``); asv runs the current benchmark suite in this
environment (``--python=same``) and files the results under that commit (``--set-commit-hash``).
The benchmarks kept by default (``--bench``) use interfaces that the recent commits share
(scoring, loading, generation); a benchmark a commit cannot run is recorded as failed, a gap on the
page. asv's result files are then copied to ``leaderboard/speed/`` (committed), from which
``metbench leaderboard build`` draws ``speed.html``. Commits already there are skipped.

This file is not a benchmark (asv imports it while discovering the suite: stdlib only here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Benchmarks whose interfaces the recent commits share.
DEFAULT_BENCH = r"^bench_(harness\.Scoring|generation\.)"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=10, help="last N first-parent commits")
    parser.add_argument(
        "--machine", default="metbench-dev", help="asv machine name (results folder)"
    )
    parser.add_argument("--bench", default=DEFAULT_BENCH, help="asv --bench regular expression")
    parser.add_argument("--quick", action="store_true", help="one sample per benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "leaderboard" / "speed")
    args = parser.parse_args(argv)
    if args.commits < 1:
        print("history: --commits must be at least 1", file=sys.stderr)
        return 2
    commits = _git("rev-list", "--first-parent", "-n", str(args.commits), "HEAD").split()[::-1]
    asv_results = ROOT / ".asv" / "results"
    done = {p.name.split("-")[0] for p in (args.out / args.machine).glob("*-*.json")}
    subprocess.run(["asv", "machine", "--yes", "--machine", args.machine], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="metbench-history-") as tmp:
        for sha in commits:
            if sha[:8] in done:
                print(f"{sha[:8]}: already in {args.out}")
                continue
            tree = Path(tmp) / sha[:8]
            _git("worktree", "add", "--detach", str(tree), sha)
            try:
                env = {**os.environ, "ASV_PYTHONPATH": str(tree)}
                command = ["asv", "run", "--python=same", "--set-commit-hash", sha,
                           "--machine", args.machine, "--bench", args.bench]  # fmt: skip
                if args.quick:
                    command.append("--quick")
                print(f"{sha[:8]}: {' '.join(command)}", flush=True)
                subprocess.run(command, cwd=ROOT, env=env, check=False)
            finally:
                _git("worktree", "remove", "--force", str(tree))
    # asv's files for the site: what the folder held, with this run's files over it
    staging = Path(tempfile.mkdtemp(prefix=".speed.", dir=args.out.parent))
    try:
        if args.out.is_dir():
            shutil.copytree(args.out, staging, dirs_exist_ok=True)
        shutil.copy2(asv_results / "benchmarks.json", staging / "benchmarks.json")
        # only this run's commits (asv's folder may hold others: asv continuous, local runs)
        machine = staging / args.machine
        machine.mkdir(exist_ok=True)
        shutil.copy2(asv_results / args.machine / "machine.json", machine / "machine.json")
        for path in (asv_results / args.machine).glob("*-*.json"):
            if any(path.name.startswith(sha[:8] + "-") for sha in commits):
                shutil.copy2(path, machine / path.name)
        old = args.out.with_name(f".{args.out.name}.old")
        if args.out.exists():
            args.out.rename(old)
        staging.rename(args.out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"results of {len(commits)} commits in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
