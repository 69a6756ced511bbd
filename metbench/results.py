"""Results files: versioned JSON, validated against :data:`RESULTS_SCHEMA` on write and on read.

One file per (dataset, split, entry): ``<results>/<dataset>-<hash12>/<split>/<entry>.json``, next
to the predictions ``<entry>.predictions.parquet`` they were scored from.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from metbench.data.store import atomic_write_bytes
from metbench.errors import MetbenchError
from metbench.frameworks import FRAMEWORKS

__all__ = [
    "RESULTS_SCHEMA",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SELF_REPORTED",
    "DatasetRecord",
    "EntryRecord",
    "Figure",
    "Results",
    "ResultsError",
    "as_results",
    "find_results",
    "load_results",
    "now_iso",
    "read_results",
    "write_results",
]

SCHEMA_NAME: Final = "metbench-results"
#: 2: the headline S (response-corrected residual RMS) with its bootstrap replicas, the fake-MET
#: and CMS-style recoil tasks, the calibrated figures (metbench.scoring); 1 ranked by sigma_perp/R.
SCHEMA_VERSION: Final = 2

_NUM = {"type": ["number", "null"]}
_FIGURE = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": _NUM, "low": _NUM, "high": _NUM},
    "additionalProperties": False,
}
_BINNED = {
    "type": "object",
    "required": ["labels", "figures"],
    "properties": {
        "labels": {"type": "array", "items": {"type": "string"}},
        "edges": {"type": "array", "items": _NUM},
        "figures": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["value"],
                "properties": {
                    k: {"type": "array", "items": _NUM} for k in ("value", "low", "high")
                },
            },
        },
    },
}
_BOOT_REPLICAS = {"type": ["array", "null"], "items": {"type": "number"}}
_HEADLINE_FIGURES = {
    "type": "object",
    "required": ["S", "S_par", "S_perp", "n_bins", "bins", "ranked", "reason", "replicas"],
    "properties": {
        "S": _FIGURE,
        "S_par": _FIGURE,
        "S_perp": _FIGURE,
        "cms_sigma_perp_over_r": _FIGURE,
        "n_bins": {"type": "integer", "minimum": 0},
        "bins": {"type": "array", "items": {"type": "string"}},
        "ranked": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
        "replicas": _BOOT_REPLICAS,
    },
}
_TASK = {
    "type": "object",
    "required": ["n_events", "headline", "overall", "bins", "calibrated"],
    "properties": {
        "n_events": {"type": "integer", "minimum": 1},
        "headline": _HEADLINE_FIGURES,
        "overall": {"type": "object", "additionalProperties": _FIGURE},
        "bins": {"type": "object", "required": ["truth"], "additionalProperties": _BINNED},
        "pileup_fit": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["a", "b", "at_n_pu", "extrapolated"],
                "properties": {
                    "a": _FIGURE,
                    "b": _FIGURE,
                    "at_n_pu": {"type": "number"},
                    "extrapolated": _FIGURE,
                },
            },
        },
        "calibrated": {
            "type": "object",
            "required": ["available", "reason"],
            "properties": {
                "available": {"type": "boolean"},
                "reason": {"type": ["string", "null"]},
                "S": _FIGURE,
                "S_par": _FIGURE,
                "S_perp": _FIGURE,
                "bins": _BINNED,
                "max_closure": _NUM,
            },
        },
    },
}
_FAKE = {
    "type": "object",
    "required": ["n_signal", "n_reference", "definition", "groups"],
    "properties": {
        "groups": {
            "type": "object",
            "required": ["all"],
            "additionalProperties": {
                "type": "object",
                "required": ["n", "auc", "threshold", "fake_rate"],
                "properties": {
                    "n": {"type": "integer", "minimum": 1},
                    "auc": _FIGURE,
                    "threshold": _FIGURE,
                    "fake_rate": _FIGURE,
                },
            },
        }
    },
}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
#: What ``measured_by`` says of figures measured inside the submission's own interpreter
#: (throughput, trainable parameters): the harness checks their types and ranges, it cannot check
#: that they are true.
SELF_REPORTED: Final = "child (self-reported)"
#: A device as a run records it (the child's report, checked by the harness).
_DEVICE = {"type": "string", "pattern": "^(cpu|cuda(:[A-Za-z0-9][A-Za-z0-9 ._()/+-]{0,63})?)$"}
_COUNT = {"type": "integer", "minimum": 0}
_AMOUNT = {"type": "number", "minimum": 0}
_THROUGHPUT_ROW = {
    "type": "object",
    "required": ["batch_size"],
    "properties": {
        "batch_size": {"type": "integer", "minimum": 1},
        "calls": {"type": "integer", "minimum": 1},
        "events_per_s": {"type": "number", "exclusiveMinimum": 0},
        "latency_ms": {"type": "object", "additionalProperties": _AMOUNT},
        "peak_rss_mb": _AMOUNT,
        "peak_gpu_mb": _AMOUNT,
        "threads": {"type": "integer", "minimum": 1},
        "skipped": {"type": "string"},
    },
    "additionalProperties": False,
}

#: JSON Schema (draft 2020-12) of a results file.
RESULTS_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "metbench results",
    "type": "object",
    "required": [
        "schema",
        "schema_version",
        "created",
        "entry",
        "dataset",
        "predictions",
        "scores",
        "environment",
    ],
    "properties": {
        "schema": {"const": SCHEMA_NAME},
        "schema_version": {"const": SCHEMA_VERSION},
        "created": {"type": "string"},
        "entry": {
            "type": "object",
            "required": [
                "name",
                "submission",
                "category",
                "framework",
                "content_hash",
                "parameters",
            ],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "submission": {"type": "string", "minLength": 1},
                "category": {"enum": ["baseline", "reference", "oracle", "submission"]},
                "framework": {"enum": [*FRAMEWORKS, "unknown"]},
                "content_hash": _SHA256,
                "parameters": {"type": "object"},
                "paper": {"type": "string"},
                "authors": {"type": "array", "items": {"type": "string"}},
                "description": {"type": "string"},
                "met_source": {"type": ["string", "null"]},
                "folder": {"type": "string", "minLength": 1},
                "n_parameters": {"type": ["integer", "null"], "minimum": 0},
                "n_parameters_measured_by": {"const": SELF_REPORTED},
            },
        },
        "dataset": {
            "type": "object",
            "required": ["name", "version", "manifest_sha256", "split", "n_events"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": ["string", "integer"]},
                "manifest_sha256": _SHA256,
                "split": {"type": "string"},
                "n_events": {"type": "integer", "minimum": 1},
            },
        },
        "predictions": {
            "type": "object",
            "required": ["file", "sha256", "n_events"],
            "properties": {
                "file": {"type": "string"},
                "sha256": _SHA256,
                "n_events": {"type": "integer"},
                "n_truncated": _COUNT,
                "wall_s": {
                    **_AMOUNT,
                    "description": "wall time of the run's children, added up [s]: the scored "
                    "split with the validation split predicted alongside it, the recoil copies "
                    "and the throughput measurement (not a rate of n_events)",
                },
                "peak_rss_mb": {
                    **_AMOUNT,
                    "description": "the largest peak resident memory of those children [MiB]",
                },
                "device": _DEVICE,
            },
        },
        "scores": {
            "type": "object",
            "required": [
                "n_events",
                "n_boot",
                "seed",
                "confidence",
                "resampling",
                "definition",
                "headline",
                "tasks",
            ],
            "properties": {
                "n_boot": {"type": "integer", "minimum": 0},
                "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "resampling": {"const": "poisson-by-event-id"},
                "headline": {
                    "type": "object",
                    "required": ["task", "figure", "value", "ranked", "reason"],
                    "properties": {
                        "task": {"const": "met"},
                        "figure": {"const": "S"},
                        "value": _NUM,
                        "low": _NUM,
                        "high": _NUM,
                        "ranked": {"type": "boolean"},
                        "reason": {"type": ["string", "null"]},
                    },
                },
                "tasks": {
                    "type": "object",
                    "properties": {
                        "met": _TASK,
                        "recoil": _TASK,
                        "fake": _FAKE,
                        "kinematics": {
                            "type": "object",
                            "required": ["n_events", "n_eligible", "figures"],
                        },
                    },
                },
                "covariance": {"type": "object", "additionalProperties": _NUM},
            },
        },
        "throughput": {
            "type": ["object", "null"],
            "properties": {
                "device": _DEVICE,
                "measured_by": {"const": SELF_REPORTED},
                "batches": {"type": "array", "items": _THROUGHPUT_ROW},
            },
        },
        "environment": {
            "type": "object",
            "required": ["versions", "hardware"],
        },
        "extra_throughput": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "device",
                    "measured_by",
                    "batches",
                    "measured",
                    "content_hash",
                    "hardware",
                ],
                "properties": {
                    "device": _DEVICE,
                    "measured_by": {"const": SELF_REPORTED},
                    "settings": {"type": "object"},
                    "batches": {"type": "array", "items": _THROUGHPUT_ROW},
                    "sample_events": {"type": "integer", "minimum": 1},
                    "measured": {"type": "string"},
                    "content_hash": _SHA256,
                    "hardware": {"type": "object"},
                    "versions": {"type": "object"},
                    "isolation": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
    },
}


class ResultsError(MetbenchError):
    """A results file that is missing, unreadable or does not follow the schema."""


def _validate(obj: Any, where: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(RESULTS_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResultsError(
            f"{where}: not a valid metbench results file (schema v{SCHEMA_VERSION}): at {at}: "
            f"{error.message[:200]}"
        )


@dataclass(frozen=True)
class Figure:
    """A figure with its interval (``low``/``high``: the bootstrap interval, ``None`` without).

    Units are the figure's own (GeV for S and widths, none for a response or an AUC)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Figure:
        return cls(obj.get("value"), obj.get("low"), obj.get("high"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        out.update({k: v for k, v in (("low", self.low), ("high", self.high)) if v is not None})
        return out


@dataclass(frozen=True)
class EntryRecord:
    """The entry a result belongs to (the results file's ``entry`` block).

    Attributes
    ----------
    name, submission
        The entry (``<submission>`` or ``<submission>-<variant>``) and its submission folder's name.
    category
        ``baseline``, ``reference``, ``oracle`` or ``submission``.
    framework
        The manifest's framework (``unknown`` for predictions scored without one).
    content_hash
        sha256 of the code that made the predictions (:mod:`metbench.estimators.submission`).
    parameters
        The entry's parameters.
    extra
        The optional fields (paper, authors, description, met_source, folder, uses_truth, ...).
    """

    name: str
    submission: str
    category: str
    framework: str
    content_hash: str
    parameters: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _FIELDS = ("name", "submission", "category", "framework", "content_hash", "parameters")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EntryRecord:
        known = {k: obj[k] for k in cls._FIELDS}
        return cls(**known, extra={k: v for k, v in obj.items() if k not in cls._FIELDS})

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self._FIELDS}, **self.extra}

    @property
    def met_source(self) -> str | None:
        """The entry whose MET this one uses (it then sits in the kinematics table only)."""
        return self.extra.get("met_source")

    @property
    def is_oracle(self) -> bool:
        return self.category == "oracle"


@dataclass(frozen=True)
class DatasetRecord:
    """The dataset and split a result was scored on (the ``dataset`` block)."""

    name: str
    version: str | int
    manifest_sha256: str
    split: str
    n_events: int
    extra: dict[str, Any] = field(default_factory=dict)  # pinned, path

    _FIELDS = ("name", "version", "manifest_sha256", "split", "n_events")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DatasetRecord:
        known = {k: obj[k] for k in cls._FIELDS}
        return cls(**known, extra={k: v for k, v in obj.items() if k not in cls._FIELDS})

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self._FIELDS}, **self.extra}

    @property
    def key(self) -> str:
        """``<name>-<first 12 hex digits of the manifest sha256>``: the results folder's name."""
        return f"{self.name}-{self.manifest_sha256[:12]}"


@dataclass(frozen=True)
class Results:
    """One results file (:data:`RESULTS_SCHEMA`): an entry scored on a dataset split.

    ``scores`` stays the schema's nested mapping (tasks, figures, bins; built by
    :func:`metbench.scoring.score.score`); :meth:`task`, :meth:`figure` and :attr:`headline` read
    it. :meth:`from_json` validates, :meth:`to_json` gives back the same document.
    """

    entry: EntryRecord
    dataset: DatasetRecord
    predictions: dict[str, Any]
    scores: dict[str, Any]
    environment: dict[str, Any]
    created: str
    extra: dict[str, Any] = field(default_factory=dict)  # throughput, identity, isolation, ...

    _FIELDS = ("schema", "schema_version", "entry", "dataset", "predictions", "scores",
               "environment", "created")  # fmt: skip

    @classmethod
    def from_json(
        cls, obj: Any, where: str = "results", validate: bool = True, copied: bool = True
    ) -> Results:
        """A results document, validated unless ``validate`` is false (raises
        :class:`ResultsError`); ``copied=False`` shares the document's nested objects (a view
        for reading)."""
        if validate:
            _validate(obj, where)
        if copied:
            obj = copy.deepcopy(obj)
        return cls(
            entry=EntryRecord.from_json(obj["entry"]),
            dataset=DatasetRecord.from_json(obj["dataset"]),
            predictions=obj["predictions"],
            scores=obj["scores"],
            environment=obj["environment"],
            created=obj["created"],
            extra={k: v for k, v in obj.items() if k not in cls._FIELDS},
        )

    def to_json(self) -> dict[str, Any]:
        """The results document (a deep copy: changing it leaves this object alone)."""
        out = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "entry": self.entry.to_json(),
            "dataset": self.dataset.to_json(),
            "predictions": self.predictions,
            "scores": self.scores,
            "environment": self.environment,
            **self.extra,
        }
        return copy.deepcopy(out)

    @property
    def throughput(self) -> dict[str, Any] | None:
        """The throughput block (rows per batch size; ``None``: not measured)."""
        return self.extra.get("throughput")

    @property
    def extra_throughput(self) -> list[dict[str, Any]]:
        """Throughput measured after the run on other devices or machines (``metbench run
        --throughput-only``): one block per device, each with its batches and hardware."""
        return list(self.extra.get("extra_throughput") or [])

    @property
    def name(self) -> str:
        """The entry's name."""
        return self.entry.name

    @property
    def headline(self) -> dict[str, Any]:
        """The results' headline block: S of the MET task, ranked or not and why."""
        return dict(self.scores["headline"])

    def task(self, name: str) -> dict[str, Any] | None:
        """A task's scores (``met``, ``recoil``, ``fake``, ``kinematics``), or ``None``."""
        task = self.scores["tasks"].get(name)
        return task if isinstance(task, dict) else None

    def figure(self, task: str, name: str, group: str = "overall") -> Figure | None:
        """A figure of a task: ``group`` ``overall`` (or ``headline``) of ``met`` and ``recoil``,
        a process group of ``fake`` (``all``), ``figures`` of ``kinematics``; ``None`` if absent."""
        t = self.task(task)
        if t is None:
            return None
        block = t.get("figures") if task == "kinematics" else t.get(group)
        if task == "fake":
            block = (t.get("groups") or {}).get(group if group != "overall" else "all")
        value = (block or {}).get(name)
        return Figure.from_json(value) if isinstance(value, dict) else None

    def write(self, path: Path) -> None:
        """Write atomically (:func:`write_results`)."""
        write_results(path, self.to_json())


def as_results(result: Results | dict[str, Any]) -> Results:
    """``result`` as :class:`Results`; a document is taken as :func:`read_results` validated it,
    and read through (not copied)."""
    if isinstance(result, Results):
        return result
    return Results.from_json(result, validate=False, copied=False)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def write_results(path: Path, results: dict[str, Any] | Results) -> None:
    """Validate and write a results file atomically (indented, key-sorted JSON; NaN and
    infinities are refused: they are not JSON, and the site's JSON encoder rejects them)."""
    if isinstance(results, Results):
        results = results.to_json()
    _validate(results, str(path))
    try:
        text = json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError:
        raise ResultsError(
            f"{path}: the results hold NaN or an infinity, which JSON cannot carry; not written"
        ) from None
    atomic_write_bytes(Path(path), text.encode())


def load_results(path: Path) -> Results:
    """Read and validate a results file as :class:`Results`."""
    return Results.from_json(read_results(path), str(path))


def read_results(path: Path) -> dict[str, Any]:
    """Read and validate a results file: the JSON document (what the site publishes;
    :func:`load_results` for the typed view)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"), parse_constant=_not_json)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(obj, dict) and obj.get("schema") == SCHEMA_NAME:
        version = obj.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsError(
                f"{path}: results schema version {version}; this metbench reads version "
                f"{SCHEMA_VERSION} (re-score with `metbench score`)"
            )
    _validate(obj, str(path))
    return obj


def find_results(paths: list[Path]) -> list[Path]:
    """Results files among ``paths`` (folders are searched recursively)."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*.json")
                    if not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise ResultsError(f"{path}: no such file or folder")
    return found
