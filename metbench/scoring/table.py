"""The headline table of results files (pandas), ranked with ties."""

from __future__ import annotations

from typing import Any

import pandas as pd

from metbench.scoring.metrics import FIGURES
from metbench.scoring.score import HEADLINE, rank_with_ties

__all__ = ["bins_table", "headline_table", "interval_key", "kinematics_table", "throughput_at"]


def _fmt(entry: dict[str, Any] | None, digits: int = 1) -> str:
    if not entry or entry.get("value") is None:
        return "—"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        text += f" [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
    return text


def throughput_at(result: dict[str, Any], batch_size: int | None = None) -> float | None:
    """Events/s at ``batch_size`` (default: the largest measured)."""
    tp = result.get("throughput") or {}
    batches = [b for b in tp.get("batches", []) if "events_per_s" in b]
    if batch_size is not None:
        batches = [b for b in batches if b["batch_size"] == batch_size]
    if not batches:
        return None
    return float(max(batches, key=lambda b: b["batch_size"])["events_per_s"])


def _top_bin(task: dict[str, Any], binning: str, figure: str) -> dict[str, Any] | None:
    bins = task.get("bins", {}).get(binning)
    if not bins:
        return None
    f = bins["figures"][figure]
    values = f["value"]
    for i in range(len(values) - 1, -1, -1):  # the highest bin with a value
        if values[i] is not None:
            return {k: f[k][i] for k in ("value", "low", "high") if k in f}
    return None


def interval_key(figure: dict[str, Any] | None) -> tuple[float, float, float]:
    """``(value, low, high)`` of a figure with NaN for what is missing (for ranking)."""
    figure = figure or {}
    return tuple(  # type: ignore[return-value]
        float("nan") if figure.get(k) is None else float(figure[k])
        for k in ("value", "low", "high")
    )


def _ranked_frame(
    rows: list[dict[str, Any]], keyed: dict[str, tuple[float, float, float]]
) -> pd.DataFrame:
    """Rows (with ``_name``, ``_value``) ranked with ties, best first."""
    if not rows:
        return pd.DataFrame()
    ranks = rank_with_ties(keyed)
    frame = pd.DataFrame(rows)
    frame.insert(0, "rank", [ranks[n] for n in frame["_name"]])
    frame = frame.sort_values(["rank", "_value"]).drop(columns=["_name", "_value"])
    return frame.reset_index(drop=True)


def headline_table(results: list[dict[str, Any]], task: str = HEADLINE[0]) -> pd.DataFrame:
    """One row per results file, ranked by the headline figure (overlapping intervals tie).

    Columns: rank, entry, category, the headline figure and the resolutions, response, bias, tail
    fraction above 50 GeV, pileup slope b (GeV per sqrt(interaction)), the headline figure in the
    highest n_pu bin, and throughput (events/s at the largest batch measured, CPU).
    """
    figure = HEADLINE[1]
    rows = []
    keyed: dict[str, tuple[float, float, float]] = {}
    for r in results:
        t = r["scores"]["tasks"].get(task)
        if t is None:
            continue
        o = t["overall"]
        name = r["entry"]["name"]
        h = o[figure]
        keyed[name] = interval_key(h)
        fit = t.get("pileup_fit", {}).get("perp", {})
        tp = throughput_at(r)
        label = FIGURES
        rows.append(
            {
                "entry": name + (" (truth)" if r["entry"]["category"] == "oracle" else ""),
                "category": r["entry"]["category"],
                f"{label[figure][0]} [GeV]": _fmt(h),
                f"{label['sigma_par_over_r'][0]} [GeV]": _fmt(o["sigma_par_over_r"]),
                "R": _fmt(o["response"], 3),
                f"{label['sigma_perp'][0]} [GeV]": _fmt(o["sigma_perp"]),
                "bias [GeV]": _fmt(o["bias"]),
                "f(|Δ|>50)": _fmt(o["tail_50"], 3),
                "b⊥ [GeV/√PU]": _fmt(fit.get("b"), 2),
                f"{label[figure][0]} top n_pu": _fmt(_top_bin(t, "n_pu", figure)),
                "events/s": "—" if tp is None else f"{tp:,.0f}",
                "_name": name,
                "_value": keyed[name][0],
            }
        )
    return _ranked_frame(rows, keyed)


def bins_table(
    results: list[dict[str, Any]], binning: str, figure: str = HEADLINE[1], task: str = HEADLINE[0]
) -> pd.DataFrame:
    """One row per entry, one column per bin of ``binning``: the figure with its interval."""
    rows = {}
    labels: list[str] = []
    for r in results:
        t = r["scores"]["tasks"].get(task)
        if t is None or binning not in t["bins"]:
            continue
        b = t["bins"][binning]
        labels = b["labels"]
        f = b["figures"][figure]
        rows[r["entry"]["name"]] = [
            _fmt({k: f[k][i] for k in ("value", "low", "high") if k in f})
            for i in range(len(labels))
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=labels)


def kinematics_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """The kinematic-reconstruction task (tt -> 2l2nu): one row per result that has it, ranked by
    the neutrino pz resolution (overlapping intervals tie). Entries with truth-matched inputs are
    marked."""
    rows = []
    keyed: dict[str, tuple[float, float, float]] = {}
    for r in results:
        k = r["scores"]["tasks"].get("kinematics")
        if k is None or not k.get("figures"):
            continue
        f = k["figures"]
        name = r["entry"]["name"]
        pz = f["nu_pz_sigma"]
        keyed[name] = interval_key(pz)
        truth_inputs = [u for u in r["entry"].get("uses_truth", []) if u != "truth_is_pileup"]
        rows.append(
            {
                "entry": name + (" (truth-matched inputs)" if truth_inputs else ""),
                "events": k["n_events"],
                "σ(ν px) [GeV]": _fmt(f["nu_px_sigma"]),
                "σ(ν pz) [GeV]": _fmt(pz),
                "m(ℓν) median [GeV]": _fmt(f["m_w_median"]),
                "m(ℓν) width [GeV]": _fmt(f["m_w_width"]),
                "m(ℓνb) median [GeV]": _fmt(f["m_top_median"]),
                "m(ℓνb) width [GeV]": _fmt(f["m_top_width"]),
                "m(ℓνb) ±10%": _fmt(f["m_top_in_window"], 3),
                "_name": name,
                "_value": keyed[name][0],
            }
        )
    return _ranked_frame(rows, keyed)
