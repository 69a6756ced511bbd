"""Where datasets live when none is named: the cache (``METBENCH_DATA`` overrides it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from metbench.data.generate.presets import PRESETS
from metbench.errors import DatasetError

__all__ = ["DEFAULT_PRESET", "data_home", "resolve_dataset"]

#: The dataset a run uses when none is given: small, generated on first use.
DEFAULT_PRESET = "mini"


def data_home() -> Path:
    """``$METBENCH_DATA``, else ``$XDG_CACHE_HOME/metbench``, else ``~/.cache/metbench``."""
    if os.environ.get("METBENCH_DATA"):
        return Path(os.environ["METBENCH_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metbench"


def resolve_dataset(
    spec: str | Path | None,
    on_progress: Callable[[str, int, int], None] | None = None,
    workers: int | None = None,
) -> Path:
    """The dataset folder for ``--dataset``: a folder with ``manifest.json``, or a preset name
    (``mini``, ``standard``, ``pu200``; default ``mini``) generated with seed 1 into
    :func:`data_home` on first use (an interrupted generation resumes)."""
    from metbench.data.store import MANIFEST_NAME, load_manifest

    name = str(spec) if spec is not None else DEFAULT_PRESET
    path = Path(name).expanduser()
    if path.is_dir():
        load_manifest(path)
        return path
    if path.suffix.lower() == ".root":
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        raise DatasetError(
            f"{path}: ROOT files cannot be read by this version of metbench yet; "
            "use a metbench dataset folder or a preset"
        )
    if name not in PRESETS:
        raise DatasetError(
            f"{name}: no such dataset folder and not a preset; give a folder with "
            f"{MANIFEST_NAME} or one of {', '.join(PRESETS)}"
        )
    folder = data_home() / name
    if not (folder / MANIFEST_NAME).is_file():
        from metbench.data.generate.presets import get_preset
        from metbench.data.generate.run import generate_dataset

        n_workers = workers or max(1, min(2, len(os.sched_getaffinity(0))))
        generate_dataset(
            get_preset(name), folder, seed=1, workers=n_workers, on_progress=on_progress
        )
    load_manifest(folder)
    return folder
