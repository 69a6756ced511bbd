"""The content hash covers the metbench modules an entry imports: a change in a building block
makes the results of every entry that uses it stale, and leaves the others alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import metbench
from metbench.estimators.submission import load_submission, metbench_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(metbench.__file__).resolve().parent


def rel(paths: list[Path]) -> set[str]:
    return {p.relative_to(PACKAGE.parent).as_posix() for p in paths}


def test_imports_are_followed_transitively(tmp_path):
    code = tmp_path / "model.py"
    code.write_text(
        "import numpy as np\n"
        "def make():\n"
        "    from metbench.physics import puppi  # inside a function: still a dependency\n"
        "    return puppi\n"
    )
    found = rel(metbench_modules([code]))
    # the module, the packages above it, and what the module imports in turn
    assert {
        "metbench/__init__.py",
        "metbench/physics/__init__.py",
        "metbench/physics/puppi.py",
        "metbench/events.py",  # imported by metbench/__init__.py
    } <= found
    assert "metbench/scoring/score.py" not in found
    assert not {p for p in found if p.startswith("metbench/cli")}
    # a module given by name
    assert "metbench/physics/puppi_met.py" in rel(
        metbench_modules([], ("metbench.physics.puppi_met",))
    )


def test_a_module_imported_by_a_literal_name_is_followed(tmp_path):
    """``importlib.import_module("metbench.physics.puppi")`` and ``__import__(...)`` with a string
    literal count as imports (the audit of 2026-12-05 found them unfollowed); a computed name
    cannot be followed (DEVELOPERS.md says so)."""
    code = tmp_path / "model.py"
    code.write_text(
        "import importlib\n"
        'puppi = importlib.import_module("metbench.physics.puppi")\n'
        'kill = __import__("metbench.physics.softkiller")\n'
        'other = importlib.import_module("metbench.physics." + "neutrinos")\n'
    )
    found = rel(metbench_modules([code]))
    assert {"metbench/physics/puppi.py", "metbench/physics/softkiller.py"} <= found
    assert "metbench/physics/neutrinos.py" not in found


def test_the_scan_starts_from_every_file_of_the_folder():
    """puppi's entry module (in its folder) imports the PUPPI MET helpers, which import the PUPPI
    weights: all are in its hash; the track entry imports neither."""
    folder = ROOT / "submissions" / "puppi"
    found = rel(metbench_modules(sorted(folder.glob("*.py"))))
    assert {"metbench/physics/puppi_met.py", "metbench/physics/puppi.py"} <= found
    track = rel(metbench_modules(sorted((ROOT / "submissions" / "track").glob("*.py"))))
    assert "metbench/physics/puppi.py" not in track


def test_type_only_imports_of_metbench_do_not_count_but_a_submissions_do(tmp_path):
    """``metbench.estimators.protocol`` names the training settings under ``if TYPE_CHECKING:``
    only; a submission's own ``if TYPE_CHECKING:`` import is followed all the same."""
    protocol = rel(metbench_modules([], ("metbench.estimators.protocol",)))
    assert "metbench/nn/training.py" not in protocol
    code = tmp_path / "model.py"
    code.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import metbench.physics.softkiller\n"
    )
    assert "metbench/physics/softkiller.py" in rel(metbench_modules([code]))


def test_no_shipped_entry_depends_on_the_harness():
    """What runs, isolates and scores an entry is not part of any shipped entry's hash: a change
    there must not make every trained entry's results stale (and the results would be the same)."""
    harness = ("metbench/harness.py", "metbench/training.py", "metbench/results.py")
    for folder in sorted(p for p in (ROOT / "submissions").iterdir() if p.is_dir()):
        found = rel(metbench_modules(sorted(folder.rglob("*.py"))))
        assert not [
            p for p in found
            if p in harness or p.startswith(("metbench/estimators/", "metbench/scoring/"))
        ], folder.name  # fmt: skip


def _copied(pythonpath: Path) -> dict[str, str]:
    """The environment that runs the package copied to ``pythonpath``: outside a checkout it has
    no repository of its own, so it is told where the repository's submissions are (only they
    may be baselines)."""
    return {"PYTHONPATH": str(pythonpath), "METBENCH_SUBMISSIONS": str(ROOT / "submissions")}


def _hash(pythonpath: Path, folder: Path) -> str:
    code = (
        "import sys; from metbench.estimators.submission import load_submission; "
        "print(load_submission(sys.argv[1]).content_hash)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True, text=True, cwd=pythonpath.parent,
        env={**os.environ, **_copied(pythonpath)}, check=True,
    )  # fmt: skip
    return r.stdout.strip()


def test_editing_a_building_block_makes_results_stale(tiny_dataset, tmp_path):
    """A copy of the package shadows the installed one; editing its PUPPI module (a building
    block the puppi entry's folder imports) changes the hash of puppi and makes `run` recompute;
    an unrelated module does not."""
    pkg = tmp_path / "pkg"
    shutil.copytree(PACKAGE, pkg / "metbench", ignore=shutil.ignore_patterns("__pycache__"))
    puppi, track = ROOT / "submissions" / "puppi", ROOT / "submissions" / "track"
    assert load_submission(puppi).content_hash == _hash(pkg, puppi)  # same bytes, same hash

    results = tmp_path / "results"

    def run() -> str:
        r = subprocess.run(
            [sys.executable, "-m", "metbench.cli", "run", str(puppi), "--variant", "stored",
             "--dataset", str(tiny_dataset), "--results", str(results), "--no-throughput",
             "--n-boot", "0"],
            capture_output=True, text=True, cwd=tmp_path, timeout=600,
            env={**os.environ, **_copied(pkg)},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return r.stdout + r.stderr

    assert "up to date" not in run()
    assert "up to date" in run()
    before = {f: _hash(pkg, f) for f in (puppi, track)}

    (pkg / "metbench" / "scoring" / "robustness.py").write_text(
        (pkg / "metbench" / "scoring" / "robustness.py").read_text() + "\n# unrelated edit\n"
    )
    assert {f: _hash(pkg, f) for f in (puppi, track)} == before

    module = pkg / "metbench" / "physics" / "puppi.py"
    module.write_text(module.read_text() + "\n# a comment is a change of the code\n")
    assert _hash(pkg, puppi) != before[puppi]
    assert "up to date" not in run()  # recomputed, not reused
