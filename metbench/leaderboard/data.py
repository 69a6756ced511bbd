"""What the site shows, computed once in Python from results documents (the site's JavaScript
only displays it): tables per task and per event selection with ranks and ties, the binned
figures for the plots, throughput, and per-entry metadata.

Ranks come from :func:`metbench.scoring.score.rank_with_ties` and figures from the results files,
so the site, the CLI tables and asv share one definition of every number.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from metbench.scoring.metrics import FIGURES
from metbench.scoring.score import HEADLINE, rank_with_ties
from metbench.scoring.table import interval_key

__all__ = ["TABLE_FIGURES", "site_data"]

#: The columns of the MET tables (figure key -> header), the headline first.
TABLE_FIGURES: Final[dict[str, str]] = {
    "sigma_perp_over_r": "σ⊥/R [GeV]",
    "sigma_par_over_r": "σ∥/R [GeV]",
    "response": "R",
    "sigma_perp": "σ⊥ [GeV]",
    "sigma_par": "σ∥ [GeV]",
    "bias": "bias [GeV]",
    "tail_50": "f(|Δ|>50 GeV)",
}
#: Figures plotted against the bins.
PLOT_FIGURES: Final[tuple[str, ...]] = (
    "response", "sigma_par", "sigma_perp", "sigma_par_over_r", "sigma_perp_over_r",
)  # fmt: skip
KINEMATIC_FIGURES: Final[dict[str, str]] = {
    "nu_pz_sigma": "σ(ν pz) [GeV]",
    "nu_px_sigma": "σ(ν px) [GeV]",
    "m_w_median": "m(ℓν) median [GeV]",
    "m_w_width": "m(ℓν) width [GeV]",
    "m_top_median": "m(ℓνb) median [GeV]",
    "m_top_width": "m(ℓνb) width [GeV]",
    "m_top_in_window": "m(ℓνb) within 10%",
}


def _value(fig: dict[str, Any] | None) -> dict[str, Any]:
    fig = fig or {}
    return {k: fig.get(k) for k in ("value", "low", "high")}


def _kind(result: dict[str, Any]) -> str:
    """baseline, ML, oracle, stored (an experiment's own estimator) or submission."""
    entry = result["entry"]
    if entry["category"] == "oracle":
        return "oracle"
    if entry["category"] == "baseline":
        return "baseline"
    if entry.get("framework") in ("torch", "keras", "onnx"):
        return "ML"
    return entry["category"]


def _bin_figure(task: dict[str, Any], binning: str, index: int, figure: str) -> dict[str, Any]:
    b = task["bins"][binning]["figures"][figure]
    return {
        k: (b.get(k)[index] if b.get(k) is not None else None) for k in ("value", "low", "high")
    }


def _rank_rows(rows: list[dict[str, Any]], figure: str) -> None:
    """Rank rows in place by ``figure`` (lower is better; overlapping intervals tie), marking the
    tied ones, and sort them best first."""
    keyed = {row["entry"]: interval_key(row["figures"][figure]) for row in rows}
    ranks = rank_with_ties(keyed) if keyed else {}
    counts = Counter(ranks.values())
    for row in rows:
        row["rank"] = ranks[row["entry"]]
        row["tied"] = counts[row["rank"]] > 1
    rows.sort(key=lambda row: (row["rank"], keyed[row["entry"]][0]))


def _views(results: list[dict[str, Any]], task_name: str) -> list[dict[str, Any]]:
    """The table of a task for all events, each process and each n_pu bin."""
    having = [r for r in results if task_name in r["scores"]["tasks"]]
    if not having:
        return []
    first = having[0]["scores"]["tasks"][task_name]
    selections: list[tuple[str, str, str | None, int | None]] = [("all", "all events", None, None)]
    for binning, prefix in (("process", "process"), ("n_pu", "true pileup n_pu")):
        if binning in first["bins"]:
            for i, label in enumerate(first["bins"][binning]["labels"]):
                selections.append((f"{binning}:{label}", f"{prefix} {label}", binning, i))
    views = []
    for view_id, view_label, selected, index in selections:
        rows = []
        for r in having:
            task = r["scores"]["tasks"][task_name]
            if selected is None:
                figures = {k: _value(task["overall"].get(k)) for k in TABLE_FIGURES}
                n = task["overall"]["n"]["value"]
            else:
                assert index is not None
                b = task["bins"].get(selected)
                if b is None or b["labels"] != first["bins"][selected]["labels"]:
                    continue  # another binning (results of another dataset): not comparable
                figures = {k: _bin_figure(task, selected, index, k) for k in TABLE_FIGURES}
                n = _bin_figure(task, selected, index, "n")["value"]
            rows.append({"entry": r["entry"]["name"], "n": n, "figures": figures})
        _rank_rows(rows, HEADLINE[1])
        views.append({"id": view_id, "label": view_label, "rows": rows})
    return views


def _plots(result: dict[str, Any]) -> dict[str, Any]:
    """Binned figures of one entry: per task and binning, labels/edges and each figure."""
    out: dict[str, Any] = {}
    for task_name, task in result["scores"]["tasks"].items():
        if "bins" not in task:
            continue
        out[task_name] = {
            binning: {
                "labels": b["labels"],
                "edges": b.get("edges"),
                "figures": {
                    k: {q: b["figures"][k].get(q) for q in ("value", "low", "high")}
                    for k in (*PLOT_FIGURES, "n", "mean_truth")
                },
            }
            for binning, b in task["bins"].items()
        }
    return out


def site_data(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the site displays, JSON-ready.

    Results of several datasets are kept apart: one group per (dataset, manifest hash, split),
    the group with the most scored events first (the standard test split above e.g. pu200).
    """
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
        for r in rs:
            e = r["entry"]
            tp = r.get("throughput") or {}
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
                "throughput": [
                    {
                        "batch_size": b["batch_size"],
                        "events_per_s": b.get("events_per_s"),
                        "p50_ms": (b.get("latency_ms") or {}).get("p50"),
                        "p99_ms": (b.get("latency_ms") or {}).get("p99"),
                        "peak_rss_mb": b.get("peak_rss_mb"),
                    }
                    for b in tp.get("batches", [])
                ],
                "throughput_device": tp.get("device"),
                "hardware": r.get("environment", {}).get("hardware", {}),
                "versions": r.get("environment", {}).get("versions", {}),
                "created": r.get("created"),
                "plots": _plots(r),
                "pileup_fit": r["scores"]["tasks"]["met"].get("pileup_fit"),
                "kinematics": (r["scores"]["tasks"].get("kinematics") or {}).get("figures"),
            }
        kinematics = []
        for r in rs:
            k = r["scores"]["tasks"].get("kinematics")
            if k and k.get("figures"):
                kinematics.append(
                    {
                        "entry": r["entry"]["name"],
                        "n": k["n_events"],
                        "figures": {f: _value(k["figures"].get(f)) for f in KINEMATIC_FIGURES},
                    }
                )
        _rank_rows(kinematics, "nu_pz_sigma")
        out_groups.append(
            {
                "dataset": {"name": name, "manifest_sha256": digest, "split": split,
                            "version": rs[0]["dataset"].get("version"),
                            "n_events": rs[0]["dataset"].get("n_events")},
                "entries": entries,
                "tasks": {
                    task: _views(rs, task) for task in ("met", "recoil")
                    if any(task in r["scores"]["tasks"] for r in rs)
                },
                "kinematics": kinematics,
            }
        )  # fmt: skip
    return {
        "schema": "metbench-site",
        "schema_version": 1,
        "figures": {k: {"label": FIGURES[k][0], "unit": FIGURES[k][1]} for k in FIGURES},
        "table_figures": TABLE_FIGURES,
        "kinematic_figures": KINEMATIC_FIGURES,
        "headline": {"task": HEADLINE[0], "figure": HEADLINE[1]},
        "groups": out_groups,
    }
