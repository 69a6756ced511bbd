from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from metbench.data.generate.presets import get_preset
from metbench.data.generate.run import generate_dataset
from metbench.data.store import verify_file

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real experiment files (read in place, never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: the real reference files are not on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full `mini` preset, seed 1, generated once per session on two workers.

    If ``$METBENCH_DATA/mini`` holds a complete mini with seed 1 (CI's first command,
    ``metbench run submissions/puppi``, makes one), it is used after its checksums are verified.
    """
    cached = Path(os.environ.get("METBENCH_DATA", "/nonexistent")) / "mini"
    if (cached / "manifest.json").is_file():
        manifest = manifest_of(cached)
        if manifest["name"] == "mini" and manifest["seed"] == 1:
            for relpath in manifest["files"]:
                verify_file(cached, relpath, manifest)
            return cached
    out = tmp_path_factory.mktemp("mini_seed1") / "mini"
    generate_dataset(get_preset("mini"), out, seed=1, workers=2)
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_spec, worker_id: str) -> Path:
    """A few events per process: for tests of the harness machinery, not of physics.

    Generated once per test run: the pytest-xdist workers share it (the first one generates it
    under a lock, the others wait and verify it). Tests read it; one that damages a dataset
    copies it first.
    """
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # the workers' common folder
    out = root / "tiny-seed3" / "tiny"
    with (root / "tiny-seed3.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "manifest.json").is_file():
            manifest = manifest_of(out)
            for relpath in manifest["files"]:
                verify_file(out, relpath, manifest)
        else:
            shutil.rmtree(out.parent, ignore_errors=True)
            generate_dataset(tiny_spec, out, seed=3, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_spec():
    """A few events per process and a small pool: for tests of the machinery, not of physics."""
    return replace(get_preset("mini").scaled(12), pool_size=120, pool_shard_size=60)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())
