"""The published datasets: the manifest sha256 of each preset generated with its published seed.

A dataset's identity is its manifest's sha256 (the manifest lists every file's sha256). Results are
comparable only on the same bytes, so the hashes of the published datasets are fixed here, in code:
``metbench run``, ``score``, ``verify`` and ``data validate`` check a dataset that claims to be one
of them (a preset's name, seed and settings) against its hash, and refuse one that differs, such as
a dataset whose truth was rewritten and whose checksums were re-signed. A dataset with other
settings (``--events-per-process``) or another seed is a private dataset: it runs, and its results
say it is not published (``dataset.pinned`` is null).

Generation is deterministic (the same preset and seed give the same bytes on any machine with the
same package versions; a test regenerates ``mini`` and compares). A change of the generator that
changes the bytes must publish the new hashes here.

The published manifests themselves (every file's size and sha256) ship with metbench, where
one has been written down (``metbench/data/manifests/<preset>-seed<seed>.json``, each checked
against its hash here when read): with one, ``metbench data generate --process P`` generates the
files of some processes only, each checked against the published checksums, in a folder that holds
the whole published manifest (a training on those processes runs on it; anything else that reads a
missing file says so and how to add it).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, Final

from metbench.errors import DatasetError

__all__ = [
    "PUBLISHED_MANIFESTS",
    "check_published",
    "published_manifest_bytes",
    "published_status",
    "shipped_manifests",
]

#: (preset, seed) -> sha256 of the published ``manifest.json`` (dataset format 2).
PUBLISHED_MANIFESTS: Final[dict[tuple[str, int], str]] = {
    ("mini", 1): "785265f0717196445219dbb9d525d725380c4d3e210aba6a5472d75289a31c85",
    ("standard", 1): "d416f4eed1eb2012d36bac31699b0af07aa07e5a0f8f968ff2b959513bf2dae3",
    ("pu200", 1): "37baec8534c28efe19c157cb0fb965daaf16ccbedc41650af94d178de550d277",
}


def published_status(manifest: dict[str, Any], manifest_sha256: str) -> bool | None:
    """Whether a dataset is the published one it claims to be: True (its hash is the published
    one), False (a preset's name, seed and settings with another hash), None (not a published
    dataset: another seed, other settings, a converted real file)."""
    from metbench.data.generate.presets import PRESETS

    name, seed = manifest.get("name"), manifest.get("seed")
    if not isinstance(name, str) or not isinstance(seed, int) or isinstance(seed, bool):
        return None
    expected = PUBLISHED_MANIFESTS.get((name, seed))
    if expected is None or manifest.get("settings") != PRESETS[name].to_dict():
        return None
    return manifest_sha256 == expected


def check_published(folder: object, manifest: dict[str, Any], manifest_sha256: str) -> bool | None:
    """:func:`published_status`, with a dataset that claims to be published and is not an error."""
    status = published_status(manifest, manifest_sha256)
    if status is False:
        name, seed = manifest["name"], manifest["seed"]
        expected = PUBLISHED_MANIFESTS[(name, seed)]
        raise DatasetError(
            f"{folder}: this is not the {name} dataset: its manifest sha256 {manifest_sha256[:12]}… "
            f"differs from the published {expected[:12]}… (files rewritten or re-signed, or made "
            f"by another generator); regenerate it with 'metbench data generate --preset {name} "
            f"--seed {seed}' into an empty folder (a deliberate generator change publishes its new "
            "hash in metbench/data/published.py)"
        )
    return status


def _shipped_file(name: str, seed: int) -> Any:
    return resources.files("metbench.data").joinpath("manifests", f"{name}-seed{seed}.json")


def shipped_manifests() -> list[tuple[str, int]]:
    """The published (preset, seed) pairs whose ``manifest.json`` ships with metbench."""
    return [key for key in PUBLISHED_MANIFESTS if _shipped_file(*key).is_file()]


def published_manifest_bytes(name: str, seed: int) -> bytes | None:
    """The published ``manifest.json`` of ``name`` (a preset, its settings unchanged) generated
    with ``seed``, byte for byte as generation writes it; None where the pair is not published or
    its manifest is not shipped. A shipped file that does not have the published sha256 (a damaged
    installation) is a :class:`DatasetError`."""
    expected = PUBLISHED_MANIFESTS.get((name, seed))
    shipped = _shipped_file(name, seed)
    if expected is None or not shipped.is_file():
        return None
    data: bytes = shipped.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise DatasetError(
            f"{shipped}: the shipped manifest of {name} (seed {seed}) has sha256 {digest[:12]}…, "
            f"not the published {expected[:12]}…; reinstall metbench"
        )
    return data
