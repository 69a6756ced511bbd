"""What the site shows, computed once in Python from results documents (the site's JavaScript
only displays it): tables per task and per event selection with ranks and ties, the binned
figures for the plots, throughput, and per-entry metadata.

Ranks come from :func:`metbench.scoring.ranking.paired_ranks` (paired bootstrap differences of
the headline S) and figures from the results files, so the site, the CLI tables and asv share one
definition of every number.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final, cast

from metbench.frameworks import FRAMEWORKS
from metbench.leaderboard.compare import compare_data
from metbench.results import SCHEMA_VERSION, Results, as_results
from metbench.scoring.metrics import (
    FAKE_EFFICIENCY,
    FAKE_SIGNAL_MIN_TRUTH,
    FAKE_THRESHOLD_MIN_TRUTH,
    FIGURES,
)
from metbench.scoring.ranking import RANK_RULE, RankedValue, paired_ranks, ranked_value
from metbench.scoring.score import HEADLINE
from metbench.scoring.seeds import key_without, seed_key, seed_spreads, shown_results
from metbench.scoring.table import S_DEFINITION

__all__ = [
    "KINEMATIC_FIGURES",
    "MARKS",
    "OPTIONAL_FIGURES",
    "PLOT_FIGURES",
    "TABLE_FIGURES",
    "dataset_marks",
    "entry_marks",
    "group_id",
    "legend_line",
    "seed_key",
    "seed_spreads",
    "site_data",
    "table_columns",
    "twin_key",
]

#: The columns of the MET tables (figure key -> header), the headline first.
TABLE_FIGURES: Final[dict[str, str]] = {
    "S": "S [GeV]",
    "S_par": "S∥ [GeV]",
    "S_perp": "S⊥ [GeV]",
    "response": "R",
    "calibrated_S": "S calibrated [GeV]",
    "cms_sigma_perp_over_r": "CMS σ⊥/R [GeV]",
    "rms_par": "RMS∥ [GeV]",
    "rms_perp": "RMS⊥ [GeV]",
    "tail_25": "f(|Δ|>25 GeV)",
    "tail_50": "f(|Δ|>50 GeV)",
    "tail_100": "f(|Δ|>100 GeV)",
    "fake_auc": "fake-MET AUC",
    "fake_rate": "fake rate",
}
#: Columns of :data:`TABLE_FIGURES` that the front page hides until chosen (the table stays
#: narrow; the column chooser shows them).
OPTIONAL_FIGURES: Final[tuple[str, ...]] = ("rms_par", "rms_perp", "tail_25", "tail_100")
#: Figures plotted against the bins (in |t| bins, S is the bin's own RMS, ``rc_sigma``).
PLOT_FIGURES: Final[tuple[str, ...]] = (
    "S", "S_par", "S_perp", "response", "sigma_perp_over_r",
)  # fmt: skip
_IN_TRUTH_BINS: Final = {"S": "rc_sigma", "S_par": "rc_sigma_par", "S_perp": "rc_sigma_perp"}
KINEMATIC_FIGURES: Final[dict[str, str]] = {
    "nu_pz_rms": "RMS(ν pz) [GeV]",
    "nu_pz_bias": "bias(ν pz) [GeV]",
    "nu_pz_sigma": "σ(ν pz) [GeV]",
    "nu_px_sigma": "σ(ν px) [GeV]",
    "m_w_median": "m(ℓν) median [GeV]",
    "m_w_width": "m(ℓν) width [GeV]",
    "m_top_median": "m(ℓνb) median [GeV]",
    "m_top_width": "m(ℓνb) width [GeV]",
    "m_top_in_window": "m(ℓνb) within 10%",
}


#: Which way is better for each column of the MET tables not in :data:`FIGURES` under its own
#: key (the figure it is): ``"lower"``, ``"higher"`` or ``"one"`` (closest to 1).
_COLUMN_FIGURE: Final = {"calibrated_S": "S", "cms_sigma_perp_over_r": "sigma_perp_over_r"}


def _better(key: str) -> str | None:
    if key == "response":
        return "one"
    if key == "fake_auc":
        return "higher"
    if key == "fake_rate":
        return "lower"
    spec = FIGURES.get(_COLUMN_FIGURE.get(key, key))
    return "lower" if spec is not None and spec[2] else None


def table_columns() -> dict[str, list[dict[str, Any]]]:
    """The columns of the site's tables with their tooltips and direction, from the scoring
    definitions (:data:`~metbench.scoring.table.S_DEFINITION`, the figure table of
    :mod:`metbench.scoring.metrics`, :data:`~metbench.scoring.metrics.FIGURES`' "lower is
    better").

    Returns
    -------
    dict
        ``{"met": [...], "kinematics": [...]}``, each column ``{key, label, tip, better}`` with
        ``better`` one of ``"lower"``, ``"higher"``, ``"one"``, ``"zero"`` or None.
    """
    from metbench.leaderboard.pages import figure_definitions

    defs = figure_definitions()
    s_line, _, cms_line = S_DEFINITION.partition("; lower is better. ")
    tips = {
        "S": s_line,
        "S_par": "S∥: as S, from the RMS of the component of e/R_k − t along t",
        "S_perp": "S⊥: as S, from the RMS of the component of e/R_k − t across t",
        "response": f"R = {defs.get('response', '').removeprefix('R = ')}, all events of the task",
        "calibrated_S": "S of the estimate calibrated by a response curve fitted on the "
        "validation split (— without validation predictions)",
        "cms_sigma_perp_over_r": cms_line,
        **{
            f"tail_{t}": defs.get("tail_<T>", "").replace(" T ", f" {t} ")
            for t in ("25", "50", "100")
        },
        "rms_par": f"RMS∥: {defs.get('rms_par', 'standard deviation of e_par - |t|')}, all events "
        "of the task",
        "rms_perp": f"RMS⊥: {defs.get('rms_perp', 'standard deviation of e_perp')}, all events "
        "of the task",
        "fake_auc": f"AUC of |e| separating events without neutrinos from events with |t| > "
        f"{FAKE_SIGNAL_MIN_TRUTH:g} GeV",
        "fake_rate": "fraction of the events without neutrinos (QCD, Z→μμ) with |e| above the "
        f"threshold that keeps {FAKE_EFFICIENCY:.0%} of the events with neutrinos and |t| > "
        f"{FAKE_THRESHOLD_MIN_TRUTH:g} GeV",
    }
    met = [
        {"key": key, "label": label, "tip": tips.get(key, label), "better": _better(key)}
        for key, label in TABLE_FIGURES.items()
    ]
    kin_better = {"rms": "lower", "sigma": "lower", "width": "lower", "bias": "zero",
                  "window": "higher"}  # fmt: skip
    kinematics = [
        {"key": key, "label": label, "tip": label,
         "better": next((v for k, v in kin_better.items() if k in key), None)}
        for key, label in KINEMATIC_FIGURES.items()
    ]  # fmt: skip
    return {"met": met, "kinematics": kinematics}


def twin_key(entry: dict[str, Any]) -> str | None:
    """Entries that differ only in the runtime (``parameters.runtime``: torch, onnx, …, with its
    weights file) are runtime twins: the same submission and the same other parameters."""
    return key_without(entry, "runtime")


def group_id(dataset: dict[str, Any]) -> str:
    """A short id of a dataset group (in file names and permalinks):
    ``<name>-<manifest hash 12>-<split>``."""
    return f"{dataset['name']}-{dataset['manifest_sha256'][:12]}-{dataset['split']}"


#: The marks on the site: kind -> (label, meaning); the meaning is the mark's title and, for the
#: marks present, a legend line under the tables.
MARKS: Final[dict[str, tuple[str, str]]] = {
    "unsandboxed": (
        "unsandboxed",
        "the submission's code ran without a sandbox (or the results do not record one), so "
        "nothing stopped it from reading the truth or other files",
    ),
    "verified": (
        "verified",
        "the predictions' sha256 matched and the scores were recomputed from them when the site "
        "was built, equal to the figures shown",
    ),
    "not-rescored": (
        "not re-scored",
        "the predictions' sha256 matched, but the scores were not recomputed when the site was "
        "built (the dataset was not on the building machine, or the build skipped re-scoring)",
    ),
    "stale": (
        "stale",
        "made by code that is no longer the submission's: its content hash (code, weights, the "
        "metbench modules it imports and the metbench version) has changed since; `metbench run` "
        "makes it again",
    ),
    "unpinned": (
        "unpinned",
        "the dataset is not the published one for its preset and seed (or the results do not "
        "record that it is): its figures are not comparable with the published leaderboard's",
    ),
}


def legend_line(kind: str) -> str:
    """``"<label>: <meaning>"`` of a mark."""
    label, meaning = MARKS[kind]
    return f"{label}: {meaning}"


def _mark(kind: str, detail: str | None = None) -> dict[str, str]:
    label, meaning = MARKS[kind]
    return {"kind": kind, "label": label, "title": f"{meaning} ({detail})" if detail else meaning}


def entry_marks(
    result: dict[str, Any], check: dict[str, Any] | None = None
) -> list[dict[str, str]]:
    """The marks of an entry's results: ``unsandboxed`` (``isolation.sandboxed`` not true; an
    absent key counts as not sandboxed) and, when the results were checked at build time,
    ``verified`` (re-scored) or ``not re-scored``, and ``stale`` when the check carries the
    submission's current content hash and it is not the recorded one. Each mark is
    ``{kind, label, title}``."""
    marks = []
    isolation = result.get("isolation")
    if not (isinstance(isolation, dict) and isolation.get("sandboxed") is True):
        if not isinstance(isolation, dict):
            detail = "no isolation recorded"
        else:
            detail = f"sandbox: {isolation.get('sandbox') or 'none'}"
        marks.append(_mark("unsandboxed", detail))
    if check is not None:
        if check.get("status") == "verified":
            marks.append(_mark("verified"))
        else:
            marks.append(_mark("not-rescored", check.get("detail")))
        current, made = check.get("current_content_hash"), result["entry"].get("content_hash")
        if current and made and current != made:
            marks.append(_mark("stale", f"made by {made[:12]}…, the code is now {current[:12]}…"))
    return marks


def dataset_marks(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``unpinned`` unless every result of the dataset records ``dataset.pinned = true``."""
    for r in results:
        d = r["dataset"]
        pinned = d.get("pinned")
        if pinned is True:
            continue
        if "pinned" not in d:
            detail = "the results do not record whether it is the published dataset"
        elif pinned is False:
            detail = f"named like the preset {d['name']}, but its manifest is not the published one"
        else:
            detail = "not a published preset"
        return [_mark("unpinned", detail)]
    return []


def _value(fig: dict[str, Any] | None) -> dict[str, Any]:
    fig = fig or {}
    return {k: fig.get(k) for k in ("value", "low", "high")}


def _throughput_rows(
    block: dict[str, Any], hardware: dict[str, Any] | None, extra: bool = False
) -> list[dict[str, Any]]:
    """The site's throughput rows of one measurement (the run's own, or one added after it on
    another device or machine: ``extra``), each with its device and machine."""
    hw = hardware or {}
    machine = f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores"
    return [
        {
            "batch_size": b["batch_size"],
            "events_per_s": b.get("events_per_s"),
            "p50_ms": (b.get("latency_ms") or {}).get("p50"),
            "p99_ms": (b.get("latency_ms") or {}).get("p99"),
            "peak_rss_mb": b.get("peak_rss_mb"),
            "peak_gpu_mb": b.get("peak_gpu_mb"),
            "device": block.get("device") or "cpu",
            "machine": machine,
            "extra": extra,
        }
        for b in block.get("batches", [])
    ]


def _kind(result: dict[str, Any]) -> str:
    """baseline, ML, oracle, stored (an experiment's own estimator) or submission."""
    entry = result["entry"]
    if entry["category"] == "oracle":
        return "oracle"
    if entry["category"] == "baseline":
        return "baseline"
    known = FRAMEWORKS.get(entry.get("framework", ""))
    if known is not None and known.machine_learning:
        return "ML"
    return entry["category"]


def _bin_figure(task: dict[str, Any], binning: str, index: int, figure: str) -> dict[str, Any]:
    b = task["bins"][binning]["figures"].get(figure) or {}
    out: dict[str, Any] = {}
    for k in ("value", "low", "high"):
        values = b.get(k)
        out[k] = values[index] if values is not None else None
    return out


def _label_ranks(rows: list[dict[str, Any]], keyed: dict[str, RankedValue]) -> None:
    """Rank rows in place by the paired rule (the oracle "ref", entries without S "—"), best
    first."""
    ranks = paired_ranks(keyed) if keyed else {}
    counts = Counter(v for v in ranks.values() if v is not None)
    for row in rows:
        rank = ranks.get(row["entry"])
        row["rank"] = rank
        row["tied"] = rank is not None and counts[rank] > 1
        row["rank_label"] = (
            "ref"
            if row.get("oracle")
            else "—"
            if rank is None
            else f"{rank}{' =' if row['tied'] else ''}"
        )

    def key(row: dict[str, Any]) -> Any:
        value = row["figures"]["S"]["value"]
        return (row["rank"] is None, row["rank"] or 0, value if value is not None else float("inf"))

    rows.sort(key=key)


def _views(results: list[dict[str, Any]], task_name: str) -> list[dict[str, Any]]:
    """The table of a task for all events (ranked) and each process and n_pu bin (S in that
    selection, ordered by value: the paired intervals are kept for the headline only)."""
    having = [r for r in map(as_results, results) if r.task(task_name) and not r.entry.met_source]
    if not having:
        return []
    first = having[0].scores["tasks"][task_name]
    selections: list[tuple[str, str, str | None, int | None]] = [("all", "all events", None, None)]
    for binning, prefix in (("process", "process"), ("n_pu", "true pileup n_pu")):
        if binning in first["bins"]:
            for i, label in enumerate(first["bins"][binning]["labels"]):
                selections.append((f"{binning}:{label}", f"{prefix} {label}", binning, i))
    views = []
    for view_id, view_label, selected, index in selections:
        rows = []
        keyed: dict[str, RankedValue] = {}
        for r in having:
            task = r.scores["tasks"][task_name]
            oracle = r.entry.is_oracle
            head = task["headline"]
            if selected is None:
                cal = task.get("calibrated") or {}
                auc, rate = r.figure("fake", "auc"), r.figure("fake", "fake_rate")
                figures = {
                    "S": _value(head["S"]),
                    "S_par": _value(head["S_par"]),
                    "S_perp": _value(head["S_perp"]),
                    "response": _value(task["overall"].get("response")),
                    "calibrated_S": _value(cal.get("S")),
                    "cms_sigma_perp_over_r": _value(head.get("cms_sigma_perp_over_r")),
                    **{
                        k: _value(task["overall"].get(k))
                        for k in ("rms_par", "rms_perp", "tail_25", "tail_50", "tail_100")
                    },
                    "fake_auc": _value(auc.to_json() if auc and task_name == "met" else None),
                    "fake_rate": _value(rate.to_json() if rate and task_name == "met" else None),
                }
                n = task["overall"]["n"]["value"]
                keyed[r.name] = ranked_value(task, r.scores, oracle)
            else:
                assert index is not None
                b = task["bins"].get(selected)
                if b is None or b["labels"] != first["bins"][selected]["labels"]:
                    continue  # another binning (results of another dataset): not comparable
                figures = {k: _bin_figure(task, selected, index, k) for k in TABLE_FIGURES}
                n = _bin_figure(task, selected, index, "n")["value"]
                value = figures["S"]["value"]
                keyed[r.name] = RankedValue(value, ranked=head["ranked"] and not oracle)
            rows.append(
                {"entry": r.name, "n": n, "figures": figures, "oracle": oracle,
                 "reason": head.get("reason")}
            )  # fmt: skip
        _label_ranks(rows, keyed)
        views.append({"id": view_id, "label": view_label, "rows": rows})
    return views


def _calibrated(result: Results) -> dict[str, Any]:
    """The calibrated figures of the MET and recoil tasks of a result, by task."""
    out = {}
    for name in ("met", "recoil"):
        task = result.task(name)
        if task is not None and "calibrated" in task:
            out[name] = task["calibrated"]
    return out


def _plots(result: dict[str, Any]) -> dict[str, Any]:
    """Binned figures of one entry: per task and binning, labels/edges and each figure (every
    key of :data:`PLOT_FIGURES` present; S in |t| bins is the bin's own RMS)."""
    out: dict[str, Any] = {}
    for task_name, task in result["scores"]["tasks"].items():
        if "bins" not in task:
            continue
        out[task_name] = {}
        for binning, b in task["bins"].items():
            figures = {}
            for k in (*PLOT_FIGURES, "n", "mean_truth"):
                source = _IN_TRUTH_BINS.get(k, k) if binning == "truth" else k
                f = b["figures"].get(source) or {}
                figures[k] = {q: f.get(q) for q in ("value", "low", "high")}
                if figures[k]["value"] is None:
                    figures[k]["value"] = [None] * len(b["labels"])
            out[task_name][binning] = {"labels": b["labels"], "edges": b.get("edges"),
                                       "figures": figures}  # fmt: skip
    return out


def _counts(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Events of the MET task per process and per true n_pu bin (the first result that has
    them: every entry of a dataset is scored on the same events)."""
    for r in map(as_results, results):
        bins = (r.task("met") or {}).get("bins") or {}
        if "process" not in bins:
            continue
        out = {}
        for binning in ("process", "n_pu"):
            b = bins.get(binning)
            if b is None:
                continue
            n = (b["figures"].get("n") or {}).get("value") or []
            out[binning] = {str(k): v for k, v in zip(b["labels"], n, strict=False) if v}
        return out
    return {}


def site_data(
    results: list[dict[str, Any]], verification: list[dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """Everything the site displays, JSON-ready.

    Results of several datasets are kept apart: one group per (dataset, manifest hash, split),
    the group with the most scored events first (the standard test split above e.g. pu200).

    Parameters
    ----------
    results
        Results documents.
    verification
        For each of ``results`` (same order), how it was checked at build time:
        ``{"status": "verified" | "predictions", "detail": str | None}``, or None (not checked,
        no mark); see :func:`metbench.leaderboard.build.verify_for_site`.
    """
    checks = list(verification) if verification is not None else [None] * len(results)
    if len(checks) != len(results):
        raise ValueError(f"{len(checks)} verification marks for {len(results)} results")
    check_of = {id(r): c for r, c in zip(results, checks, strict=True)}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        d = r["dataset"]
        groups.setdefault((d["name"], d["manifest_sha256"], d["split"]), []).append(r)
    out_groups = []

    def most_events_first(item: tuple[tuple[str, str, str], list[dict[str, Any]]]) -> Any:
        return (-(item[1][0]["dataset"].get("n_events") or 0), item[0])

    for (name, digest, split), rs in sorted(groups.items(), key=most_events_first):
        rs = sorted(rs, key=lambda r: r["entry"]["name"])
        entries = {}
        spreads = seed_spreads(rs)
        rs_ranked, seed_of = shown_results(rs)
        for r in rs:
            e, res = r["entry"], as_results(r)
            tp = res.throughput or {}
            entries[e["name"]] = {
                "name": e["name"],
                "submission": e.get("submission", e["name"]),
                "kind": _kind(r),
                "category": e["category"],
                "framework": e.get("framework", "unknown"),
                "description": e.get("description", ""),
                "paper": e.get("paper", ""),
                "authors": e.get("authors", []),
                "parameters": e.get("parameters", {}),
                "content_hash": e.get("content_hash", ""),
                "uses_truth": e.get("uses_truth", []),
                "n_parameters": e.get("n_parameters"),
                "weights_sha256": e.get("weights_sha256", {}),
                "throughput": _throughput_rows(tp, r.get("environment", {}).get("hardware"))
                + [
                    row
                    for extra in res.extra_throughput
                    for row in _throughput_rows(extra, extra.get("hardware"), extra=True)
                ],
                "throughput_device": tp.get("device"),
                "hardware": r.get("environment", {}).get("hardware", {}),
                "versions": r.get("environment", {}).get("versions", {}),
                "created": r.get("created"),
                "plots": _plots(r),
                "pileup_fit": (res.task("met") or {}).get("pileup_fit"),
                "fake": (res.task("fake") or {}).get("groups"),
                "covariance": res.scores.get("covariance"),
                "calibrated": _calibrated(res),
                "headline": res.headline,
                "met_source": e.get("met_source"),
                "kinematics": (res.task("kinematics") or {}).get("figures"),
                "isolation": r.get("isolation"),
                "marks": entry_marks(r, check_of[id(r)]),
                "n_parameters_measured_by": e.get("n_parameters_measured_by"),
                "twin": twin_key(e),
                "seed_spread": spreads[e["name"]],
                "seed_of": seed_of.get(e["name"]),
            }
        kinematics = []
        for res in map(as_results, rs_ranked):
            k = res.task("kinematics")
            if k and k.get("figures"):
                kinematics.append(
                    {
                        "entry": res.name,
                        "n": k["n_events"],
                        "figures": {f: _value(k["figures"].get(f)) for f in KINEMATIC_FIGURES},
                    }
                )
        kin_keyed = {
            k["entry"]: RankedValue(k["figures"]["nu_pz_rms"]["value"]) for k in kinematics
        }
        for row in kinematics:
            row["figures"]["S"] = row["figures"]["nu_pz_rms"]  # the sort key of _label_ranks
        _label_ranks(kinematics, kin_keyed)
        for row in kinematics:
            del row["figures"]["S"]
        marks = dataset_marks(rs)
        kinds = [m["kind"] for m in marks]
        for e in entries.values():
            kinds.extend(m["kind"] for m in e["marks"])
        tasks = {
            task: _views(rs_ranked, task) for task in ("met", "recoil")
            if any(as_results(r).task(task) for r in rs_ranked)
        }  # fmt: skip
        for task, views in tasks.items():
            rows: list[dict[str, Any]] = next((v["rows"] for v in views if v["id"] == "all"), [])
            n_ranked = sum(row["rank"] is not None for row in rows)
            for row in rows:
                entries[row["entry"]].setdefault("standing", {})[task] = {
                    "rank": row["rank"], "rank_label": row["rank_label"], "n_ranked": n_ranked,
                    "figures": row["figures"], "reason": row["reason"],
                }  # fmt: skip
        out_groups.append(
            {
                "id": "",  # set below (unique)
                "counts": _counts(rs),
                "dataset": {"name": name, "manifest_sha256": digest, "split": split,
                            "version": rs[0]["dataset"].get("version"),
                            "n_events": rs[0]["dataset"].get("n_events"),
                            "pinned": rs[0]["dataset"].get("pinned"), "marks": marks},
                "legend": [legend_line(k) for k in MARKS if k in kinds],
                "entries": entries,
                "met_source": sorted(
                    f"{r['entry']['name']} ({r['entry']['met_source']})"
                    for r in rs if r["entry"].get("met_source")
                ),
                "tasks": tasks,
                "kinematics": kinematics,
                "compare": compare_data(rs, tasks),
            }
        )  # fmt: skip
    seen: Counter[str] = Counter()
    for g in out_groups:
        gid = group_id(cast(dict[str, Any], g["dataset"]))
        seen[gid] += 1
        g["id"] = gid if seen[gid] == 1 else f"{gid}-{seen[gid]}"
    return {
        "schema": "metbench-site",
        "schema_version": 2,
        "results_schema_version": SCHEMA_VERSION,
        "notes": [S_DEFINITION, RANK_RULE],
        "figures": {k: {"label": FIGURES[k][0], "unit": FIGURES[k][1]} for k in FIGURES},
        "table_figures": TABLE_FIGURES,
        "columns": table_columns(),
        "kinematic_figures": KINEMATIC_FIGURES,
        "headline": {"task": HEADLINE[0], "figure": HEADLINE[1]},
        "groups": out_groups,
    }
