"""Verify results files against the predictions they were scored from: ``metbench verify``.

A results document names its predictions file (beside it) and that file's sha256, the dataset
(name, manifest sha256) and the scoring settings (bootstrap resamples and seed). Verification
checks, for each results file:

1. the predictions file exists beside the results and its sha256 equals the recorded one, and the
   identity in its footer (entry, submission hash, dataset, split) agrees with the results;
2. (re-scoring) the dataset is found (``--dataset``, else the recorded path, else
   ``$METBENCH_DATA/<name>``) and its manifest sha256 equals the recorded one;
3. the predictions re-scored with the recorded settings (and the entry's validation-split
   predictions ``<entry>.val-predictions.parquet`` when the results have calibrated figures, the
   ``met_source`` rule of :func:`metbench.harness.run_entry` applied) give the recorded scores:
   the same structure exactly and every number to a relative tolerance of :data:`REL_TOL`.

An edited figure, predictions edited or swapped for another entry's, or a dataset other than the
one scored are all caught.

After a change of the scoring code's arithmetic, ``update=True`` (``metbench verify --update``)
rewrites the scores of a file whose steps 1 and 2 pass and whose recomputed scores have the same
structure and differ only by rounding (every number within :data:`UPDATE_REL_TOL` of itself, or
within :data:`UPDATE_SCALE_TOL` of the largest number of its figure: its value, bounds and bins
together, which covers a bound near 0 in a bin of one or two events): status ``"updated"``,
written atomically, everything else kept. Anything larger fails as without ``update``, so that predictions edited with their sha256
updated cannot be laundered into new scores; such results are re-run (``metbench run``). Without the dataset only step 1 is possible (``rescore=False`` or
``require_dataset=False``): the results are then "predictions checked", not "verified".
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from metbench.errors import MetbenchError

__all__ = [
    "ABS_TOL",
    "REL_TOL",
    "UPDATE_REL_TOL",
    "UPDATE_SCALE_TOL",
    "Verification",
    "check_predictions",
    "compare_scores",
    "find_dataset",
    "recompute_scores",
    "verify_paths",
    "verify_results",
]

#: Relative tolerance of a recomputed number (scoring is deterministic; this allows only for
#: the last bits of floating-point summation on another machine).
REL_TOL: Final = 1e-9
#: Absolute tolerance, for figures that are zero up to rounding.
ABS_TOL: Final = 1e-12
#: The largest relative difference ``update`` rewrites: rounding (float32 accumulation moved
#: figures by <= 3e-5), not a change of what the predictions say.
UPDATE_REL_TOL: Final = 1e-4
#: ... or relative to the largest magnitude of the figure (value, bounds, bins): float32 sums
#: moved a bound near 0 in bins of one or two events by up to 1.5e-4 of that scale.
UPDATE_SCALE_TOL: Final = 1e-3
#: How many differences a report names.
MAX_REPORTED: Final = 3
#: The calibrated figures' reason when no validation-split predictions were scored.
_NO_CALIBRATION: Final = "no validation-split predictions"

Status = Literal["verified", "updated", "predictions", "failed"]


@dataclass
class Verification:
    """The outcome of verifying one results file.

    Attributes
    ----------
    path
        The results file.
    status
        ``"verified"`` (predictions checked and re-scored to the recorded scores),
        ``"updated"`` (predictions checked, the scores differed and were rewritten with the
        recomputed ones, see :func:`verify_results`), ``"predictions"`` (predictions file and its
        sha256 checked; not re-scored, see ``note``) or ``"failed"``.
    problems
        What failed, one short sentence each (empty unless failed).
    note
        Why the scores were not recomputed (status ``"predictions"``), else None.
    results
        The results document (None if it could not be read).
    seconds
        Time taken.
    """

    path: Path
    status: Status
    problems: list[str] = field(default_factory=list)
    note: str | None = None
    results: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.status != "failed"

    @property
    def entry(self) -> str | None:
        """The entry's name, if the results could be read."""
        return None if self.results is None else str(self.results["entry"]["name"])

    def line(self) -> str:
        """One line for a report: ``ok``/``FAILED``, the file, and what was checked or differs."""
        if self.status == "verified":
            return f"ok        {self.path}: re-scored, scores equal ({self.seconds:.1f} s)"
        if self.status == "updated":
            return (
                f"updated   {self.path}: re-scored, scores rewritten ({'; '.join(self.problems)})"
            )
        if self.status == "predictions":
            return f"ok        {self.path}: predictions sha256 matches; not re-scored ({self.note})"
        return f"FAILED    {self.path}: {'; '.join(self.problems)}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_scores(
    recorded: Any,
    recomputed: Any,
    where: str = "scores",
    limit: int = MAX_REPORTED,
    rel_tol: float = REL_TOL,
    abs_tol: float = ABS_TOL,
    scale_tol: float = 0.0,
) -> list[str]:
    """Differences between recorded and recomputed scores (at most ``limit``).

    Dictionaries must have the same keys and lists the same lengths; numbers must agree to
    ``rel_tol`` (or ``abs_tol``, or ``scale_tol`` times the largest recorded magnitude in the
    innermost dictionary holding them; NaN equals NaN); everything else must be equal.

    Parameters
    ----------
    recorded, recomputed
        JSON-like values (as read from a results file).
    where
        The key path of the values, for the messages.
    limit
        Stop after this many differences.
    rel_tol, abs_tol, scale_tol
        Tolerances of numbers (default :data:`REL_TOL`, :data:`ABS_TOL`, none).

    Returns
    -------
    list of str
        ``"<key path>: recorded <a>, recomputed <b>"`` per difference, in document order.
    """
    out: list[str] = []

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    def magnitude(value: Any) -> float:
        if isinstance(value, dict):
            return max((magnitude(v) for v in value.values()), default=0.0)
        if isinstance(value, list):
            return max((magnitude(v) for v in value), default=0.0)
        if _number(value) and math.isfinite(value):
            return abs(float(value))
        return 0.0

    def walk(a: Any, b: Any, at: str, scale: float = 0.0) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            if scale_tol:
                scale = magnitude(a)
            if set(a) != set(b):
                missing = sorted(set(a) - set(b))
                extra = sorted(set(b) - set(a))
                what = []
                if missing:
                    what.append(f"recorded only {', '.join(map(str, missing[:4]))}")
                if extra:
                    what.append(f"recomputed only {', '.join(map(str, extra[:4]))}")
                out.append(f"{at}: keys differ ({'; '.join(what)})")
                return
            for key in sorted(a):
                walk(a[key], b[key], f"{at}.{key}", scale)
            return
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{at}: {len(a)} items recorded, {len(b)} recomputed")
                return
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{i}]", scale)
            return
        if type(a) is int and type(b) is int:
            if a == b:  # counts: exact, whatever the tolerances
                return
        elif _number(a) and _number(b):
            if math.isnan(a) and math.isnan(b):
                return
            if math.isclose(a, b, rel_tol=rel_tol, abs_tol=max(abs_tol, scale_tol * scale)):
                return
        elif type(a) is type(b) and a == b:
            return
        out.append(f"{at}: recorded {short(a)}, recomputed {short(b)}")

    walk(recorded, recomputed, where)
    return out


def find_dataset(
    results: dict[str, Any], dataset: Path | str | None = None
) -> tuple[Path | None, str | None]:
    """The dataset folder to re-score a results document against: ``(folder, problem)``.

    ``dataset`` (a folder, or a name under ``$METBENCH_DATA``) if given; else the first of the
    recorded ``dataset.path`` and ``$METBENCH_DATA/<name>`` whose manifest sha256 is the recorded
    one (else the first that exists, whose mismatch is then reported). ``folder`` is None when no
    candidate exists; ``problem`` then says where it was looked for.
    """
    from metbench.data.cache import data_home
    from metbench.data.store import MANIFEST_NAME

    recorded = results["dataset"]
    if dataset is not None:
        path = Path(dataset).expanduser()
        if not path.is_dir() and len(path.parts) == 1:
            path = data_home() / path
        if not (path / MANIFEST_NAME).is_file():
            return None, f"dataset {dataset}: no {MANIFEST_NAME} there"
        return path, None
    candidates: list[Path] = []
    if recorded.get("path"):
        candidates.append(Path(recorded["path"]))
    candidates.append(data_home() / str(recorded["name"]))
    existing = [c for c in candidates if (c / MANIFEST_NAME).is_file()]
    for c in existing:
        if _manifest_sha256(c) == recorded["manifest_sha256"]:
            return c, None
    if existing:
        return existing[0], None
    looked = " or ".join(str(c) for c in dict.fromkeys(candidates))
    return None, f"dataset {recorded['name']} not found at {looked}"


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _manifest_sha256(folder: Path) -> str:
    from metbench.data.store import MANIFEST_NAME, sha256_file

    path = (Path(folder) / MANIFEST_NAME).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def check_predictions(path: Path, results: dict[str, Any]) -> tuple[Path | None, list[str]]:
    """The predictions file of the results document at ``path`` and what is wrong with it
    (missing, sha256, identity): ``(file or None, problems)``."""
    from metbench.data.store import sha256_file
    from metbench.estimators.predictions import read_prediction_metadata

    recorded = results["predictions"]
    name = str(recorded["file"])
    if not name or Path(name).name != name or name in (".", ".."):
        return None, [f"predictions file {name!r} is not a file name beside the results"]
    predictions = path.parent / name
    if not predictions.is_file():
        return None, [f"predictions file {predictions} is missing"]
    digest = sha256_file(predictions)
    if digest != recorded["sha256"]:
        return predictions, [
            f"predictions sha256 mismatch: {name} is {digest[:12]}…, results record "
            f"{recorded['sha256'][:12]}… (the predictions were changed or replaced)"
        ]
    meta = read_prediction_metadata(predictions)
    if meta is None:
        return predictions, [f"{name} is not a predictions file (no parquet footer)"]
    problems = []
    identity = results.get("identity")
    entry = results["entry"]
    expected = {
        "entry": entry["name"],
        "content_hash": entry["content_hash"],
        "dataset_manifest_sha256": results["dataset"]["manifest_sha256"],
        "split": results["dataset"]["split"],
    }
    if isinstance(identity, dict):
        expected.update(identity)
    for key, value in expected.items():
        if key in meta and meta[key] != value:
            problems.append(
                f"predictions identity differs at {key}: file {json.dumps(meta[key])[:60]}, "
                f"results {json.dumps(value)[:60]}"
            )
    return predictions, problems[:MAX_REPORTED]


def _calibrated_in(scores: dict[str, Any]) -> bool:
    """Whether scores were made with validation-split predictions (calibrated figures)."""
    for task in scores.get("tasks", {}).values():
        calibrated = task.get("calibrated") if isinstance(task, dict) else None
        if isinstance(calibrated, dict) and calibrated.get("reason") != _NO_CALIBRATION:
            return True
    return False


def recompute_scores(
    predictions: Path, results: dict[str, Any], dataset: Any, calibration: Path | None
) -> dict[str, Any]:
    """Scores of ``predictions`` as :func:`metbench.harness.run_entry` records them, JSON-normal
    (as read back from a results file)."""
    from metbench.harness import score_file, withdraw_met_headline

    recorded = results["scores"]
    scores, _ = score_file(
        predictions,
        dataset,
        results["dataset"]["split"],
        int(recorded["n_boot"]),
        int(recorded["seed"]),
        calibration,
    )
    withdraw_met_headline(scores, results["entry"].get("met_source"))  # as run_entry
    return json.loads(json.dumps(scores, allow_nan=True))


def verify_results(
    path: Path,
    dataset: Path | str | None = None,
    rescore: bool = True,
    require_dataset: bool = True,
    update: bool = False,
) -> Verification:
    """Verify one results file (see the module's description).

    Parameters
    ----------
    path
        The results JSON.
    dataset
        The dataset folder to re-score against (default: found from the results, see
        :func:`find_dataset`).
    rescore
        Recompute the scores (else only the predictions file is checked).
    require_dataset
        When re-scoring and the recorded dataset is not found (absent, another manifest, or
        unreadable): fail (True) or check the predictions only (False: the site build on a
        machine without the datasets).
    update
        Where the predictions and dataset check out and the recomputed scores differ by rounding
        only (see the module's description), write them into the file (status ``"updated"``,
        the differences in ``problems``) instead of failing.

    Returns
    -------
    Verification
    """
    from metbench.harness import calibration_path, dataset_info
    from metbench.results import ResultsError, read_results

    start = time.perf_counter()
    path = Path(path)

    def done(status: Status, problems: list[str] | None = None, **kw: Any) -> Verification:
        return Verification(path, status, problems or [], seconds=time.perf_counter() - start, **kw)

    try:
        results = read_results(path)
    except ResultsError as exc:
        return done("failed", [str(exc).removeprefix(f"{path}: ")])
    predictions, problems = check_predictions(path, results)
    if problems or predictions is None:
        return done("failed", problems, results=results)
    if not rescore:
        return done("predictions", note="--no-rescore", results=results)
    folder, problem = find_dataset(results, dataset)
    recorded = results["dataset"]
    info = None
    if folder is not None:
        digest = _manifest_sha256(folder)
        if digest != recorded["manifest_sha256"]:
            problem = (
                f"dataset manifest differs: {folder} has {digest[:12]}…, the results were scored "
                f"on {recorded['name']} {recorded['manifest_sha256'][:12]}…"
            )
        else:
            try:
                info = dataset_info(folder)
            except MetbenchError as exc:
                problem = f"dataset {folder}: {exc}"
    if info is None:
        if require_dataset:
            return done(
                "failed",
                [f"cannot re-score: {problem}; give --dataset with the dataset it was scored on"],
                results=results,
            )
        return done("predictions", note=problem, results=results)
    calibration = None
    if _calibrated_in(results["scores"]):
        calibration = calibration_path(predictions)
        if not calibration.is_file():
            return done(
                "failed",
                [f"the results have calibrated figures but {calibration.name} is missing"],
                results=results,
            )
    try:
        scores = recompute_scores(predictions, results, info, calibration)
    except MetbenchError as exc:
        return done("failed", [f"re-scoring failed: {exc}"], results=results)
    differences = compare_scores(results["scores"], scores)
    for key in ("n_events",):
        for where in ("dataset", "predictions"):
            if results[where][key] != scores[key] and len(differences) < MAX_REPORTED:
                differences.append(
                    f"{where}.{key}: recorded {results[where][key]}, recomputed {scores[key]}"
                )
    if differences:
        if not update:
            return done("failed", ["scores differ: " + "; ".join(differences)], results=results)
        beyond = compare_scores(
            results["scores"], scores, rel_tol=UPDATE_REL_TOL, scale_tol=UPDATE_SCALE_TOL
        )
        if beyond:
            return done(
                "failed",
                ["scores differ beyond rounding, not updated (re-run it): " + "; ".join(beyond)],
                results=results,
            )
        from metbench.results import write_results

        results["scores"] = scores
        write_results(path, results)
        return done("updated", ["was: " + "; ".join(differences)], results=results)
    return done("verified", results=results)


def verify_paths(
    paths: list[Path],
    dataset: Path | str | None = None,
    rescore: bool = True,
    require_dataset: bool = True,
) -> list[Verification]:
    """Verify every results file among ``paths`` (files, or folders searched recursively); see
    :func:`verify_results` for the parameters."""
    from metbench.results import find_results

    return [verify_results(p, dataset, rescore, require_dataset) for p in find_results(paths)]
