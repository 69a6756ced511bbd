from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from metbench.data.generate.presets import get_preset
from metbench.data.generate.run import generate_dataset

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
    """The full `mini` preset, seed 1, generated once per session on two workers."""
    out = tmp_path_factory.mktemp("mini_seed1") / "mini"
    generate_dataset(get_preset("mini"), out, seed=1, workers=2)
    return out


@pytest.fixture(scope="session")
def tiny_spec():
    """A few events per process and a small pool: for tests of the machinery, not of physics."""
    return replace(get_preset("mini").scaled(12), pool_size=120, pool_shard_size=60)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())
