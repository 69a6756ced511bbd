"""Repeated trainings: one entry trained with several seeds.

The results schema has no record of seeds of its own: an entry trained with several seeds is
several results that differ only in ``entry.parameters.seed`` (the manifest's reserved parameter,
:data:`metbench.estimators.submission.TRAINING_SEED`: variants whose weights were trained with
different seeds). Such a group is shown as one entry: the **median training** (by the headline
S) takes the group's place in the tables, with the spread of S over the group; the other trainings
keep their results and pages but are not ranked.

An entry whose training takes hours is trained once in full and several times at a shorter, fixed
budget of epochs (the reserved parameter ``training_epochs``,
:data:`metbench.estimators.submission.TRAINING_EPOCHS`). Such a **budget group** is the spread of
the full training: when the full training's result is there (the same parameters without seed and
budget), it alone is ranked, with the budget group's spread, and none of the group is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from metbench.results import Results, as_results

__all__ = [
    "key_without",
    "median_trainings",
    "seed_key",
    "seed_spreads",
    "shown_results",
    "training_figure",
]

R = TypeVar("R", bound="Results | dict[str, Any]")


def key_without(entry: dict[str, Any], parameter: str) -> str | None:
    """The identity of an entry apart from one of its parameters (and the weights file, which
    goes with it): the submission and the other parameters; None without that parameter.
    Entries with the same key differ only in it (:func:`seed_key`; the site's runtime twins)."""
    if parameter not in (entry.get("parameters") or {}):
        return None
    return _identity(entry, (parameter, "weights_file"))


def _identity(entry: dict[str, Any], dropped: tuple[str, ...]) -> str:
    """The submission and the entry's parameters but ``dropped``, as one string."""
    params = {k: v for k, v in (entry.get("parameters") or {}).items() if k not in dropped}
    return f"{entry.get('submission', entry['name'])}|{json.dumps(params, sort_keys=True)}"


#: The reserved parameter of a variant's budget of epochs (as
#: :data:`metbench.estimators.submission.TRAINING_EPOCHS`; not imported: scoring reads results).
BUDGET: Final = "training_epochs"


def _full_training_key(entry: dict[str, Any]) -> str:
    """The identity of an entry apart from how long and with which seed it was trained."""
    return _identity(entry, ("seed", BUDGET, "weights_file"))


def _budget_groups(results: Sequence[Results | dict[str, Any]]) -> dict[str, list[str]]:
    """Full training's name -> the names of its budget group's members (two or more), for the
    full trainings that are among ``results``."""
    entries = [as_results(r).entry.to_json() for r in results]
    full = {
        _full_training_key(e): e["name"]
        for e in entries
        if "seed" not in (e.get("parameters") or {}) and BUDGET not in (e.get("parameters") or {})
    }
    groups: dict[str, list[str]] = {}
    for e in entries:
        params = e.get("parameters") or {}
        key = _full_training_key(e)
        if BUDGET in params and "seed" in params and key in full:
            groups.setdefault(full[key], []).append(e["name"])
    return {name: sorted(members) for name, members in groups.items() if len(members) >= 2}


def seed_key(entry: dict[str, Any]) -> str | None:
    """Entries that differ only in ``parameters.seed`` (and the weights file each names) are one
    entry trained with several seeds (None without a ``seed`` parameter)."""
    return key_without(entry, "seed")


def training_figure(r: Results | dict[str, Any]) -> tuple[str, float | None]:
    """The figure that orders repeated trainings and whose spread is shown: the headline S, or
    for an entry whose MET is another's (``met_source``: a kinematic reconstruction) the RMS of
    its neutrino pz residual [GeV]; ``(name, value or None)``."""
    res = as_results(r)
    name, value = "S", res.headline["value"]
    if res.entry.met_source:
        f = res.figure("kinematics", "nu_pz_rms")
        name, value = "RMS(ν pz)", (f.value if f is not None else None)
    return name, (value if value is not None and math.isfinite(value) else None)


def _headline(r: Results | dict[str, Any]) -> float | None:
    return training_figure(r)[1]


def median_trainings(results: Sequence[Results | dict[str, Any]]) -> dict[str, str]:
    """Each member of a group of two or more trainings -> the group's median training's name.

    The median is the middle of the members ordered by their headline S (the lower middle for an
    even number; members without S last; ties by name), so that a group of five shows its third
    best. Results of one dataset and split; entries without a seed are not in the mapping.
    """
    groups: dict[str, list[tuple[float, str]]] = {}
    for r in results:
        res = as_results(r)
        key = seed_key(res.entry.to_json())
        if key is not None:
            s = _headline(r)
            groups.setdefault(key, []).append((math.inf if s is None else s, res.name))
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        ordered = sorted(members)
        median = ordered[(len(ordered) - 1) // 2][1]
        out |= {name: median for _, name in members}
    return out


def shown_results(results: Sequence[R]) -> tuple[list[R], dict[str, str]]:
    """The results a table ranks (each group of trainings by its median training, a budget group
    by its full training, every other result as it is) and, for the trainings left out,
    ``name -> the name of the training shown in their place``."""
    median = median_trainings(results)
    hidden = {name: m for name, m in median.items() if name != m}
    for full, members in _budget_groups(results).items():
        hidden |= dict.fromkeys(members, full)
    return [r for r in results if as_results(r).name not in hidden], hidden


def seed_spreads(results: Sequence[Results | dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The spread of the headline S over the seeds of each entry (results of one dataset).

    For each group of trainings (:func:`seed_key`) with at least two seeds whose S is defined:
    ``{"figure", "n", "min", "max", "std", "seeds", "budget", "members"}`` (std with
    ``ddof = 1``) [GeV], ``figure`` the figure's name (:func:`training_figure`), ``seeds`` the
    group's seeds in the order of the members' names, ``budget`` its budget of epochs (None: the
    entry's own training), ``members`` their names. A full training takes its budget group's
    spread. None for every other entry (the site shows —).
    """
    by_key: dict[str, list[tuple[str, float | None, Any]]] = {}
    for r in results:
        entry = as_results(r).entry.to_json()
        key = seed_key(entry)
        if key is not None:
            by_key.setdefault(key, []).append(
                (entry["name"], _headline(r), entry["parameters"]["seed"])
            )
    out: dict[str, dict[str, Any] | None] = {as_results(r).name: None for r in results}
    for members in by_key.values():
        values = [v for _, v, _ in members if v is not None]
        if len(values) < 2:
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        seeds = [seed for _, _, seed in sorted(members, key=lambda m: m[0])]
        first = next(r for r in results if as_results(r).name == members[0][0])
        figure = training_figure(first)[0]
        budget = as_results(first).entry.parameters.get(BUDGET)
        spread = {"figure": figure, "n": len(values), "min": min(values), "max": max(values),
                  "std": std, "seeds": seeds, "budget": budget,
                  "members": sorted(name for name, _, _ in members)}  # fmt: skip
        for name, _, _ in members:
            out[name] = spread
    for full, names in _budget_groups(results).items():
        if out.get(names[0]) is not None and out.get(full) is None:
            out[full] = out[names[0]]
    return out
