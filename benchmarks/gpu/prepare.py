"""Prepare `benchmarks/gpu/run.sh throughput` here, on a machine with the standard dataset.

The dataset does not travel to the GPU machine. What a throughput measurement there reads is the
input extract of the sample it times (the largest batch size of events of the test split, the
same sample for every entry that declares no truth), kept beside the committed predictions in
``leaderboard/results/<dataset>/test/.inputs/`` (ignored by git: it is carried), and the dataset's
``manifest.json`` (its identity, copied to ``.dev/<dataset name>/``, also carried)::

    python benchmarks/gpu/prepare.py [--dataset standard] [--sample 1024] ENTRY_FOLDER...

prints the paths to name in the device call's ``carry``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from metbench.data.cache import resolve_dataset
from metbench.data.store import MANIFEST_NAME
from metbench.estimators.submission import load_submission
from metbench.harness import INPUTS_FOLDER, dataset_info, results_paths, shared_extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="+", type=Path)
    parser.add_argument("--dataset", default="standard")
    parser.add_argument("--results", type=Path, default=Path("leaderboard/results"))
    parser.add_argument("--sample", type=int, default=1024, help="the largest batch size")
    args = parser.parse_args()
    info = dataset_info(resolve_dataset(args.dataset))
    carry = set()
    for folder in args.submissions:
        sub = load_submission(folder)
        entry, _ = sub.entries()[0]
        _, predictions = results_paths(args.results, info, "test", entry)
        extract = shared_extract(
            info.folder, "test", predictions, sub.manifest.uses_truth, sample=args.sample
        )
        print(f"{entry}: {extract}")
        carry.add(str(predictions.parent / INPUTS_FOLDER))
    target = Path(".dev") / info.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(info.folder / MANIFEST_NAME, target / MANIFEST_NAME)
    carry.add(".dev")
    print("carry:", " ".join(sorted(carry)))


if __name__ == "__main__":
    main()
