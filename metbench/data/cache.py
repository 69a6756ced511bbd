"""Where datasets live when none is named: the cache (``METBENCH_DATA`` overrides it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from metbench.data.generate.presets import PRESETS
from metbench.errors import DatasetError

__all__ = ["DEFAULT_PRESET", "converted_file", "data_home", "resolve_dataset"]

#: The dataset a run uses when none is given: small, generated on first use.
DEFAULT_PRESET = "mini"


def data_home() -> Path:
    """``$METBENCH_DATA``, else ``$XDG_CACHE_HOME/metbench``, else ``~/.cache/metbench``."""
    if os.environ.get("METBENCH_DATA"):
        return Path(os.environ["METBENCH_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metbench"


def converted_file(path: Path) -> Path:
    """The dataset folder of a ROOT file, converted on first use into
    ``data_home()/files/<stem>-<sha256[:12]>-r<READER_VERSION>`` (a changed file or reader gets
    a new folder)."""
    from metbench.data.readers import READER_VERSION, convert_file
    from metbench.data.store import MANIFEST_NAME, load_manifest, sha256_file

    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    folder = data_home() / "files" / f"{path.stem}-{sha256_file(path)[:12]}-r{READER_VERSION}"
    if not (folder / MANIFEST_NAME).is_file():
        convert_file(path, folder)
    load_manifest(folder)
    return folder


def resolve_dataset(
    spec: str | Path | None,
    on_progress: Callable[[str, int, int], None] | None = None,
    workers: int | None = None,
) -> Path:
    """The dataset folder for ``--dataset``: a folder with ``manifest.json``; a ROOT file (CMS
    NanoAOD/PFNano, ATLAS PHYSLITE, Delphes), converted on first use; or a preset name (``mini``,
    ``standard``, ``pu200``; default ``mini``) generated with seed 1 into :func:`data_home` on first
    use (an interrupted generation resumes)."""
    from metbench.data.store import MANIFEST_NAME, load_manifest

    name = str(spec) if spec is not None else DEFAULT_PRESET
    path = Path(name).expanduser()
    if path.is_dir():
        load_manifest(path)
        return path
    if path.suffix.lower() == ".root":
        return converted_file(path)
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
