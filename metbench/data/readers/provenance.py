"""The CMSSW configuration stored in a CMS EDM-derived file (NanoAOD, PFNano).

Every CMSSW output file carries the full configuration that produced it: the ``ParameterSets``
tree holds each parameter set as CMSSW's canonical text (``<name=+T(value);...>``) keyed by its
md5, and ``MetaData/ProcessHistory`` lists the processes (GEN, SIM, ..., PAT, NANO) with their
release and the id of their process parameter set. This module reads both with uproot, so that a
stored estimator can be traced to the modules that made it: which DeepMET graph ran on which
candidates, which PUPPI tune, which candidate selection a track MET used.

The text format (``FWCore/ParameterSet``): entries ``name=±T(value)`` separated by ``;``; ``+`` is
tracked, ``-`` untracked; ``T`` the type (``S`` string as hex, ``s`` strings, ``t`` InputTag,
``v`` InputTags, ``D``/``d`` double(s), ``I``/``i`` int32(s), ``U``/``u`` uint32(s), ``B`` bool,
``P`` nested set, ``Q`` nested set by id, ``q``/``p`` lists of sets, ...).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from metbench.errors import DatasetError

__all__ = [
    "STORED_MET_PRODUCERS",
    "CmsModule",
    "CmsProcess",
    "describe_lineage",
    "lineage",
    "parse_parameter_set",
    "read_provenance",
]

#: The CMSSW module (label) behind each NanoAOD MET table, as PAT's MET tool and NanoAOD name them.
STORED_MET_PRODUCERS: Final[dict[str, str]] = {
    "RawMET": "pfMet",
    "ChsMET": "pfMetCHS",
    "TkMET": "pfMetTrk",
    "RawPuppiMET": "pfMetPuppi",
    "DeepMETResolutionTune": "deepMETsResolutionTune",
    "DeepMETResponseTune": "deepMETsResponseTune",
}
_SKIP_CURRENT: Final = "@skipCurrentProcess"
#: Type letters of CMSSW's other vector parameters (``s`` and ``v`` are hex-decoded).
_VECTOR_TYPES: Final = frozenset("diulxemarpqG")


@dataclass(frozen=True)
class CmsModule:
    """One configured module of a process.

    Attributes
    ----------
    process
        The process that ran it (``NANO``, ``PAT``, ...).
    label, type
        Module label (``pfTrk``) and C++ type (``CandPtrSelector``).
    parameters
        Top-level parameters as text: strings decoded, lists as ``[a, b]``, nested sets as ids.
    kinds
        Each parameter's CMSSW type letter (``t`` InputTag, ``v`` InputTags, ``Q`` nested set...).
    """

    process: str
    label: str
    type: str
    parameters: dict[str, str]
    kinds: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def inputs(self) -> list[str]:
        """The InputTags (``label[:instance[:process]]``) this module reads."""
        tags: list[str] = []
        for key, value in self.parameters.items():
            kind = self.kinds.get(key)
            if kind == "t" and value:
                tags.append(value)
            elif kind == "v":
                tags += [v for v in _split_list(value) if v]
        return tags


@dataclass(frozen=True)
class CmsProcess:
    """A process of the file's history, with its release and modules (by label)."""

    name: str
    release: str
    modules: dict[str, CmsModule]


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside any bracket."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "(<{":
            depth += 1
        elif ch in ")>}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _split_list(value: str) -> list[str]:
    inner = value.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    return [v.strip() for v in inner.split(",")] if inner else []


def _hex_text(value: str) -> str:
    try:
        return bytes.fromhex(value).decode("utf-8", "replace")
    except ValueError:
        return value


def parse_parameter_set(text: str) -> dict[str, tuple[str, str]]:
    """The top-level entries of a parameter set in CMSSW's canonical text.

    Parameters
    ----------
    text
        ``<name=+T(value);...>``.

    Returns
    -------
    dict
        ``name -> (type letter, value as text)``: ``S`` decoded from hex, ``s`` decoded and shown
        as ``[a, b]``, ``v``/list types as ``[a, b]``, the others as stored.
    """
    body = text.strip()
    if not (body.startswith("<") and body.endswith(">")):
        raise ValueError("a parameter set starts with '<' and ends with '>'")
    entries: dict[str, tuple[str, str]] = {}
    for item in _split_top(body[1:-1], ";"):
        if not item:
            continue
        name, _, rest = item.partition("=")
        if len(rest) < 3 or rest[0] not in "+-":
            raise ValueError(f"malformed entry {item[:60]!r}")
        kind, raw = rest[1], rest[2:]
        if raw[:1] in "({" and raw[-1:] in ")}":
            raw = raw[1:-1]
        if raw.startswith("{") and raw.endswith("}"):
            raw = raw[1:-1]
        if kind == "S":
            value = _hex_text(raw)
        elif kind in ("s", "v"):  # strings and InputTags are hex-encoded inside a vector
            value = "[" + ", ".join(_hex_text(v) for v in raw.split(",") if v) + "]"
        elif kind in _VECTOR_TYPES:
            value = "[" + ", ".join(v for v in _split_top(raw, ",") if v) + "]"
        else:
            value = raw
        entries[name] = (kind, value)
    return entries


def _length_prefixed(data: bytes, start: int) -> tuple[bytes, int] | None:
    """A ROOT-streamed std::string at ``start``: (content, end) or None."""
    if start >= len(data):
        return None
    n = data[start]
    if n == 255:
        n = int.from_bytes(data[start + 1 : start + 5], "big")
        begin = start + 5
    else:
        begin = start + 1
    end = begin + n
    return (data[begin:end], end) if end <= len(data) else None


def _blob(chunk: bytes) -> bytes | None:
    """The parameter-set text of one (md5, text) entry, or None; the md5 may itself hold '<'."""
    at = chunk.find(b"<")
    while 0 <= at < 64:
        for start in (at - 1, at - 5):
            got = _length_prefixed(chunk, start) if start >= 0 else None
            if (
                got is not None
                and got[0].startswith(b"<")
                and got[0].endswith(b">")
                and hashlib.md5(got[0]).digest() in chunk[:start]
            ):
                return got[0]
        at = chunk.find(b"<", at + 1)
    return None


def _parameter_sets(tree: Any) -> dict[str, str]:
    """``md5 hex -> canonical text`` of every parameter set in the ``ParameterSets`` tree.

    Each entry is a (16-byte md5, text) pair; a text is kept only where its md5 is the stored id,
    so a misread entry cannot pass.
    """
    branch = tree["IdToParameterSetsBlobs"]
    sets: dict[str, str] = {}
    for i in range(branch.num_baskets):
        basket = branch.basket(i)
        data = bytes(basket.data)
        offsets = basket.byte_offsets
        bounds = list(itertools.pairwise(offsets)) if offsets is not None else [(0, len(data))]
        for lo, hi in bounds:
            chunk = data[int(lo) : int(hi)]
            if (text := _blob(chunk)) is not None:
                sets[hashlib.md5(text).hexdigest()] = text.decode("latin-1")
    return sets


def _process_history(tree: Any) -> list[tuple[str, str, str]]:
    """``(process name, release, process parameter-set id)`` in processing order.

    ``ProcessHistory`` is streamed memberwise: the number of processes, then every name, then
    every parameter-set id (16-byte md5), then every release, each a length-prefixed string.
    """
    import re

    branch = tree["ProcessHistory"]
    data = b"".join(bytes(branch.basket(i).data) for i in range(branch.num_baskets))
    releases = [m.decode().strip('"') for m in re.findall(rb'"CMSSW_[^"]*"', data)]
    n = len(releases)
    ids = [m.hex() for m in re.findall(rb"\x00\t\x10(.{16})", data, flags=re.DOTALL)]
    count_at = data.find(b"\x00\x00\x00" + bytes([n])) if 0 < n < 256 else -1
    names: list[str] = []
    pos = count_at + 4 + 6  # the count, then the names' byte count and version
    while count_at >= 0 and len(names) < n:
        got = _length_prefixed(data, pos)
        if got is None or not got[0].isalnum():
            break
        names.append(got[0].decode())
        pos = got[1]
    if n == 0 or len(names) != n or len(ids) < n:
        raise ValueError("the process history could not be read")
    return list(zip(names, releases, ids[:n], strict=True))


def _module(process: str, text: str) -> CmsModule | None:
    entries = parse_parameter_set(text)
    if "@module_label" not in entries:
        return None
    return CmsModule(
        process=process,
        label=entries["@module_label"][1],
        type=entries.get("@module_type", ("", ""))[1],
        parameters={k: v for k, (_, v) in entries.items() if not k.startswith("@")},
        kinds={k: t for k, (t, _) in entries.items()},
    )


def read_provenance(path: str | Path) -> list[CmsProcess]:
    """The processes that made a CMS file, oldest first, each with its configured modules.

    Parameters
    ----------
    path
        A NanoAOD / PFNano ROOT file.

    Raises
    ------
    DatasetError
        When the file is not a CMSSW output (no ``ParameterSets``/``MetaData`` trees).
    """
    import uproot

    path = Path(path)
    try:
        with uproot.open(path) as root:
            names = root.keys()
            keys = {k.split(";")[0] for k in names}
            if not {"ParameterSets", "MetaData"} <= keys:
                raise DatasetError(
                    f"{path} carries no CMSSW configuration (no ParameterSets/MetaData trees); "
                    "only files written by CMSSW (NanoAOD, PFNano) have one"
                )
            sets = _parameter_sets(root["ParameterSets"])
            history = _process_history(root["MetaData"])
    except DatasetError:
        raise
    except Exception as err:  # not ROOT, truncated, ...
        reason = " ".join(str(err).split())  # one line, whatever the library's message
        raise DatasetError(f"{path} could not be read as a CMSSW file: {reason}") from None
    processes = []
    for name, release, pset_id in history:
        text = sets.get(pset_id)
        modules: dict[str, CmsModule] = {}
        if text is not None:
            top = parse_parameter_set(text)
            labels = _split_list(top.get("@all_modules", ("s", "[]"))[1])
            for label in labels:
                kind, ref = top.get(label, ("", ""))
                module_text = sets.get(ref) if kind == "Q" else (ref if kind == "P" else None)
                module = _module(name, module_text) if module_text else None
                if module is not None:
                    modules[label] = module
        processes.append(CmsProcess(name=name, release=release, modules=modules))
    return processes


def _find(processes: list[CmsProcess], label: str, before: int) -> int | None:
    for i in range(before - 1, -1, -1):
        if label in processes[i].modules:
            return i
    return None


def lineage(
    processes: list[CmsProcess], label: str, depth: int = 3
) -> Iterator[tuple[int, CmsModule]]:
    """A module and, recursively, the modules it reads, as ``(level, module)``.

    Starts at the latest process that ran ``label``; an input tagged ``@skipCurrentProcess`` or
    with an explicit process is looked up in the earlier processes. Inputs made by no configured
    module (the event source, a product of a module outside the file's record) end the branch.
    """
    start = _find(processes, label, len(processes))
    if start is None:
        return
    seen: set[tuple[int, str]] = set()

    def walk(index: int, name: str, level: int) -> Iterator[tuple[int, CmsModule]]:
        if (index, name) in seen:
            return
        seen.add((index, name))
        module = processes[index].modules[name]
        yield level, module
        if level >= depth:
            return
        for tag in module.inputs():
            parts = tag.split(":")
            upstream, proc = parts[0], parts[2] if len(parts) > 2 else ""
            if proc == _SKIP_CURRENT:
                where = _find(processes, upstream, index)
            elif proc:
                named = [i for i, p in enumerate(processes) if p.name == proc]
                where = named[0] if named and upstream in processes[named[0]].modules else None
            else:
                where = _find(processes, upstream, index + 1)
            if where is not None:
                yield from walk(where, upstream, level + 1)

    yield from walk(start, label, 0)


def describe_lineage(processes: list[CmsProcess], label: str, depth: int = 2) -> str:
    """:func:`lineage` as an indented text: ``PROCESS label (Type)`` and its parameters.

    Nested parameter sets are shown by their md5 id; values longer than 100 characters are cut.
    """
    lines = []
    for level, module in lineage(processes, label, depth):
        pad = "  " * level
        lines.append(f"{pad}{module.process} {module.label} ({module.type})")
        for key, value in module.parameters.items():
            if module.kinds.get(key) in ("Q", "q", "P", "p"):
                continue
            text = value if len(value) <= 100 else value[:97] + "..."
            lines.append(f"{pad}    {key} = {text}")
    return "\n".join(lines)
