"""The tests mirror the code: every folder of tests/ is a package of metbench (or the entries'
``submissions/``), and every test module of such a folder is named after a module there."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Test modules named after what they test rather than after one module (a figure, an attack).
BY_SUBJECT = {
    "tests/test_benchmarks.py",  # the asv suite in benchmarks/
    "tests/test_layout.py",
    "tests/cli/test_cli.py",  # the command itself: version, help, exit codes
    "tests/cli/test_harness.py",  # the harness as users meet it, through the commands
    "tests/estimators/test_content_hash.py",
    "tests/estimators/test_hardening.py",
    "tests/nn/test_deepmet_graph.py",
    "tests/scoring/test_headline.py",
    "tests/data/generate/test_repair.py",
    "tests/submissions/test_baselines.py",
    "tests/data/readers/test_readers.py",  # every reader against the real files
}


def test_test_folders_mirror_packages():
    tests = ROOT / "tests"
    folders = [tests, *(p for p in tests.rglob("*") if p.is_dir() and p.name != "__pycache__")]
    for folder in sorted(folders):
        rel = folder.relative_to(tests)
        code = ROOT / "submissions" if rel.parts == ("submissions",) else ROOT / "metbench" / rel
        assert code.is_dir(), f"tests/{rel.as_posix()} has no metbench package to mirror"
        for test in sorted(folder.glob("test_*.py")):
            name = test.relative_to(ROOT).as_posix()
            if name in BY_SUBJECT or rel.parts == ("submissions",):
                continue
            module = test.name.removeprefix("test_")
            assert (code / module).is_file(), f"{name}: no {code.relative_to(ROOT) / module}"
