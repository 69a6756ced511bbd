"""Import a submission's entry class: its folder as a package of its own, under a unique name.

A submission folder is imported as the package ``metbench_submission_<folder>_<hash8>``
(:func:`package_name`: the folder's name with every character that is not a letter, digit or
``_`` replaced by ``_``, and the first 8 hex digits of the sha256 of its resolved path), whose
modules are the folder's files: the entry ``model:Model`` of ``submissions/a/`` is
``metbench_submission_a_<hash8>.model.Model``. Nothing is put on ``sys.path``, so two submissions
that both have a ``model.py`` keep their own modules in one process (asv, ``plan_training``).

Within a folder, modules import each other relatively (``from .net import Network``); an absolute
``import net`` of a sibling finds nothing (the folder is not on ``sys.path``). A folder's
``__init__.py``, if it has one, runs first, as for any package.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

__all__ = [
    "PACKAGE_PREFIX",
    "MissingEntryClass",
    "import_entry",
    "package_name",
    "submission_package",
]

#: The first part of every submission package's name.
PACKAGE_PREFIX = "metbench_submission_"


class MissingEntryClass(AttributeError):
    """The entry's module imports but has no such class."""


def package_name(folder: Path | str) -> str:
    """The unique package name under which ``folder`` is imported (see the module docstring)."""
    path = Path(folder).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"{PACKAGE_PREFIX}{re.sub(r'[^A-Za-z0-9_]', '_', path.name)}_{digest}"


def submission_package(folder: Path | str) -> ModuleType:
    """The package of a submission folder, created (and its ``__init__.py`` run) on first use."""
    path = Path(folder).resolve()
    name = package_name(path)
    package = sys.modules.get(name)
    if package is not None:
        return package
    init = path / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(path)]
        )
    else:  # a package without an __init__.py: only its search location
        spec = importlib.util.spec_from_loader(name, None, is_package=True)
    if spec is None:  # pragma: no cover - spec_from_* return None only for unknown suffixes
        raise ImportError(f"{path}: cannot be imported as a package")
    if spec.submodule_search_locations is not None and not init.is_file():
        spec.submodule_search_locations.append(str(path))
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        if spec.loader is not None:
            spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[name]
        raise
    return package


def import_entry(folder: Path | str, entry: str) -> type:
    """The class named by ``entry`` (``module:Class``, ``module`` a dotted path inside the
    folder) of the submission ``folder``.

    Raises
    ------
    ImportError
        The module does not import (its own exception is chained).
    MissingEntryClass
        The module has no such class.
    """
    module_name, _, class_name = entry.partition(":")
    package = submission_package(folder)
    module = importlib.import_module(f"{package.__name__}.{module_name}")
    cls = getattr(module, class_name, None)
    if cls is None:
        raise MissingEntryClass(f"module {module_name!r} has no {class_name!r}")
    return cls
