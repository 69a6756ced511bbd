#!/usr/bin/env bash
# asv continuous --factor 1.1 flags a deliberate 20% slowdown (issue #18 item 8).
#
# Makes a throw-away commit on top of HEAD whose EventSource spins for 20% of the time it spent
# producing each batch (a slowdown proportional to the work, however loaded the machine), runs
#   asv continuous --factor 1.1 -a rounds=4 -a repeat=10 --bench 'Loading\.time_read_test_split' HEAD <slow commit>
# (4 interleaved rounds of 10 samples: enough for asv's test on a shared, loaded machine)
# in asv's own virtualenv (built from asv.conf.json: the first run installs the dependencies),
# keeps asv's output in leaderboard/speed/continuous-demo.txt, removes the commit again, and
# fails unless asv reported the benchmark as slower. Needs $METBENCH_DATA with the mini preset;
# $ASV_MACHINE names asv's machine (default metbench-demo: not the history's metbench-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(git rev-parse HEAD)
branch="asv-demo-slowdown-$$"
tree=$(mktemp -d)/slow
git worktree add -q -b "$branch" "$tree" "$base"
cleanup() { git worktree remove --force "$tree" || true; git branch -D -q "$branch" || true; }
trap cleanup EXIT
python - "$tree/metbench/data/source.py" <<'EOF'
import sys
from pathlib import Path

path = Path(sys.argv[1])
text = path.read_text()
old = """        for batch in batches:
            self.n_truncated += batch.n_truncated
            yield batch
"""
new = """        import time  # the deliberate slowdown of benchmarks/continuous_demo.sh

        start = time.perf_counter()
        for batch in batches:
            self.n_truncated += batch.n_truncated
            deadline = time.perf_counter() + 0.2 * (time.perf_counter() - start)
            while time.perf_counter() < deadline:  # busy: a sleep oversleeps on a loaded machine
                pass
            yield batch
            start = time.perf_counter()
"""
assert text.count(old) == 1, "EventSource.__iter__ changed: update the demo's patch"
path.write_text(text.replace(old, new))
EOF
git -C "$tree" commit -q -am "demo: EventSource 20% slower (throw-away)"
slow=$(git -C "$tree" rev-parse HEAD)
mkdir -p leaderboard/speed
machine="${ASV_MACHINE:-metbench-demo}"
asv machine --yes --machine "$machine" >/dev/null
status=0
asv continuous --factor 1.1 --machine "$machine" --show-stderr -a rounds=4 -a repeat=10 --bench 'Loading\.time_read_test_split' "$base" "$slow" \
    2>&1 | tee leaderboard/speed/continuous-demo.txt || status=$?
# asv exits 1 when a benchmark got slower by more than the factor
if [ "$status" -ne 1 ] || ! grep -q "PERFORMANCE DECREASED" leaderboard/speed/continuous-demo.txt; then
    echo "continuous_demo: asv did not flag the 20% slowdown (exit $status)" >&2
    exit 1
fi
echo "continuous_demo: asv flagged the deliberate 20% slowdown (output in leaderboard/speed/continuous-demo.txt)"
