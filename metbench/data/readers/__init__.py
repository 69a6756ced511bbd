"""Readers of the experiments' files into the metbench event model (uproot).

:func:`read_file` picks the reader from the file's content: a CMS ``Events`` tree (NanoAOD, with
``PFCands_*`` for PFNano), an ATLAS ``CollectionTree`` (DAOD_PHYSLITE) or a ``Delphes`` tree.
:func:`convert_file` writes the events as a dataset folder (see :mod:`.common`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from metbench.data.readers.common import STORED_PREFIX, FileEvents, write_file_dataset
from metbench.errors import DatasetError

__all__ = ["READER_VERSION", "STORED_PREFIX", "FileEvents", "convert_file", "read_file"]

#: Bumped whenever a reader's output changes, so that converted files are converted again.
#: 2: PFNano ``from_pv``: qualities 4 and 5 are at the first vertex whatever their dz.
#: 3: dataset format 2 (truth in files of its own).
READER_VERSION: Final[int] = 3


def read_file(path: Path | str) -> FileEvents:
    """Read a ROOT file into :class:`FileEvents`; one clear :class:`DatasetError` otherwise."""
    import uproot

    from metbench.data.readers.atlas import read_physlite
    from metbench.data.readers.cms import read_cms
    from metbench.data.readers.delphes import read_delphes

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        handle: Any = uproot.open(path)
        keys = {k.split(";")[0] for k in handle.keys(recursive=False)}
    except Exception as exc:  # uproot raises many kinds for broken files
        raise DatasetError(
            f"{path}: not a readable ROOT file ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not keys:
        raise DatasetError(
            f"{path}: the ROOT file holds no objects at all (broken or empty); nothing to read"
        )
    try:
        if "Events" in keys:
            return read_cms(handle["Events"], path)
        if "CollectionTree" in keys:
            return read_physlite(handle["CollectionTree"], path)
        if "Delphes" in keys:
            return read_delphes(handle["Delphes"], path)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(
            f"{path}: could not be read ({type(exc).__name__}: {str(exc)[:160]})"
        ) from None
    raise DatasetError(
        f"{path}: no tree a metbench reader knows (Events, CollectionTree, Delphes); it has "
        f"{', '.join(sorted(keys))}"
    )


def convert_file(path: Path | str, out: Path) -> dict[str, Any]:
    """Read a ROOT file and write it as a dataset folder; returns the manifest."""
    return write_file_dataset(read_file(path), Path(path), Path(out))
