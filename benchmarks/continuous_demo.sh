#!/usr/bin/env bash
# asv continuous --factor 1.1 flags a deliberate 20% slowdown (issue #18 item 8).
#
# Makes a throw-away commit on top of HEAD whose EventSource sleeps 20% of the time it spent
# producing each batch (a slowdown that does not depend on how loaded the machine is), runs
#   asv continuous --factor 1.1 --bench 'Loading\.time_read_test_split' HEAD <slow commit>
# in asv's own virtualenv (built from asv.conf.json: the first run installs the dependencies),
# keeps asv's output in leaderboard/speed/continuous-demo.txt, removes the commit again, and
# fails unless asv reported the benchmark as slower. Needs $METBENCH_DATA with the mini preset.
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
old = """        self.n_truncated = 0
        for arr in self.iter_arrays():
            batch = to_event_batch(arr, self.max_particles, self.features)
            self.n_truncated += batch.n_truncated
            yield batch
"""
new = """        import time  # the deliberate slowdown of benchmarks/continuous_demo.sh

        self.n_truncated = 0
        start = time.perf_counter()
        for arr in self.iter_arrays():
            batch = to_event_batch(arr, self.max_particles, self.features)
            self.n_truncated += batch.n_truncated
            time.sleep(0.2 * (time.perf_counter() - start))
            yield batch
            start = time.perf_counter()
"""
assert text.count(old) == 1, "EventSource.__iter__ changed: update the demo's patch"
path.write_text(text.replace(old, new))
EOF
git -C "$tree" commit -q -am "demo: EventSource 20% slower (throw-away)"
slow=$(git -C "$tree" rev-parse HEAD)
mkdir -p leaderboard/speed
status=0
asv continuous --factor 1.1 --show-stderr --bench 'Loading\.time_read_test_split' "$base" "$slow" \
    2>&1 | tee leaderboard/speed/continuous-demo.txt || status=$?
# asv exits 1 when a benchmark got slower by more than the factor
if [ "$status" -ne 1 ] || ! grep -q "PERFORMANCE DECREASED" leaderboard/speed/continuous-demo.txt; then
    echo "continuous_demo: asv did not flag the 20% slowdown (exit $status)" >&2
    exit 1
fi
echo "continuous_demo: asv flagged the deliberate 20% slowdown (output in leaderboard/speed/continuous-demo.txt)"
