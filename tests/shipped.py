"""The entry classes of the repository's submissions, imported as the harness imports them."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from metbench.estimators.loader import import_entry, submission_package
from metbench.estimators.submission import load_submission

__all__ = ["SUBMISSIONS", "shipped", "shipped_module"]

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"


def shipped(folder: str) -> Any:
    """The entry class of ``submissions/<folder>`` (its manifest's ``entry``)."""
    sub = load_submission(SUBMISSIONS / folder, require_weights=False)
    return import_entry(sub.folder, sub.manifest.entry)


def shipped_module(folder: str, module: str) -> ModuleType:
    """The module ``module`` of ``submissions/<folder>`` (under the folder's package)."""
    package = submission_package(SUBMISSIONS / folder)
    return importlib.import_module(f"{package.__name__}.{module}")
