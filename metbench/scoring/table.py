"""The headline table of results files (pandas), ranked with ties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pandas as pd

from metbench.results import Results, as_results
from metbench.scoring.ranking import RANK_RULE, RankedValue, paired_ranks, ranked_value
from metbench.scoring.score import HEADLINE
from metbench.scoring.seeds import seed_spreads, shown_results

__all__ = [
    "COVARIANCE_COLUMNS",
    "RECOIL_S_DEFINITION",
    "S_DEFINITION",
    "bins_table",
    "covariance_cells",
    "covariance_table",
    "format_figure",
    "headline_table",
    "interval_key",
    "kinematics_table",
    "seed_notes",
    "throughput_at",
]


def format_figure(entry: dict[str, Any] | None, digits: int = 1, *, html: bool = False) -> str:
    """A figure of a results file as ``value [low, high]`` (``—`` where it has no value).

    Parameters
    ----------
    entry
        ``{"value": ..., "low": ..., "high": ...}`` (the interval optional), or None.
    digits
        Decimals.
    html
        Wrap the interval in ``<span class='ci'>`` (the site; the numbers need no escaping).
    """
    if not entry or entry.get("value") is None:
        return "—"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        interval = f"[{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
        text += f" <span class='ci'>{interval}</span>" if html else f" {interval}"
    return text


def _value(entry: dict[str, Any] | None, digits: int = 1) -> str:
    """The value alone (secondary columns; their intervals are in the results files)."""
    if not entry or entry.get("value") is None:
        return "—"
    return f"{entry['value']:.{digits}f}"


def throughput_at(
    result: Results | dict[str, Any], batch_size: int | None = None, gpu: bool = False
) -> float | None:
    """Events/s at ``batch_size`` (default: the largest measured) of the run's own rows; with
    ``gpu``, of its rows measured on a GPU (the run's, or one added after it: ``extra_throughput``;
    the last one added)."""
    res = as_results(result)  # read through, not copied
    blocks = [res.throughput or {}]
    if gpu:
        blocks = [
            b
            for b in [*blocks, *res.extra_throughput][::-1]
            if str(b.get("device", "")).startswith("cuda")
        ][:1]
    tp = blocks[0] if blocks else {}
    batches = [b for b in tp.get("batches", []) if "events_per_s" in b]
    if batch_size is not None:
        batches = [b for b in batches if b["batch_size"] == batch_size]
    if not batches:
        return None
    return float(max(batches, key=lambda b: b["batch_size"])["events_per_s"])


def interval_key(figure: dict[str, Any] | None) -> tuple[float, float, float]:
    """``(value, low, high)`` of a figure with NaN for what is missing."""
    figure = figure or {}
    return tuple(  # type: ignore[return-value]
        float("nan") if figure.get(k) is None else float(figure[k])
        for k in ("value", "low", "high")
    )


def _rank_label(rank: int | None, ranks: list[int | None], oracle: bool) -> str:
    if oracle:
        return "ref"
    if rank is None:
        return "—"
    return f"{rank}{' =' if ranks.count(rank) > 1 else ''}"


def _ranked(
    rows: list[dict[str, Any]], keyed: dict[str, RankedValue], notes: list[str]
) -> pd.DataFrame:
    """Rows (with ``_name``, ``_value``, ``_oracle``) ranked by the paired rule, best first; the
    rule and ``notes`` travel in ``frame.attrs["notes"]``."""
    if not rows:
        return pd.DataFrame()
    ranks = paired_ranks(keyed)
    values = list(ranks.values())
    frame = pd.DataFrame(rows)
    frame.insert(
        0,
        "rank",
        [
            _rank_label(ranks[n], values, o)
            for n, o in zip(frame["_name"], frame["_oracle"], strict=True)
        ],
    )
    order = [(ranks[n] is None, ranks[n] or 0, v if v == v else float("inf")) for n, v in zip(frame["_name"], frame["_value"], strict=True)]  # fmt: skip
    frame["_order"] = order
    frame = frame.sort_values("_order").drop(columns=["_name", "_value", "_oracle", "_order"])
    frame = frame.reset_index(drop=True)
    frame.attrs["notes"] = [RANK_RULE, *notes]
    return frame


#: One line defining S, printed under the tables.
S_DEFINITION = (
    "S: mean over |t| bins from 30 GeV (CMS edges) of the RMS per component of e/R_k - t, R_k the "
    "bin's response; lower is better. CMS σ⊥/R: (P84-P16)/2 of e⊥ over R_k, averaged alike — not "
    "robust to non-linear shrinkage."
)


def headline_table(
    results: Sequence[Results | dict[str, Any]], task: str = HEADLINE[0]
) -> pd.DataFrame:
    """One row per results file, ranked by S of ``task`` (``met`` or ``recoil``) from paired
    bootstrap differences (:mod:`metbench.scoring.ranking`).

    Columns: rank ("ref" for the oracle, "—" for an entry without S), entry, category, S with its
    interval, then values only (their intervals are in the results files): S∥, S⊥, the response R (pooled over the bins of S), the calibrated S and its worst
    closure, CMS's σ⊥/R (secondary), the tail fraction, the pileup slope b and S extrapolated to
    n_pu = 200, for ``met`` the fake-MET AUC and fake rate, events/s (the run's, largest batch)
    and, where any result has a GPU row, events/s on the GPU (largest batch).
    Entries whose MET is another entry's (``met_source``) and entries without S are named in
    ``frame.attrs["notes"]``.
    """
    rows = []
    keyed: dict[str, RankedValue] = {}
    notes: list[str] = []
    borrowed: list[str] = []
    shown, _ = shown_results(list(results))
    notes.extend(seed_notes(results))
    for r in map(as_results, shown):
        name = r.name
        if r.entry.met_source:
            borrowed.append(f"{name} ({r.entry.met_source})")
            continue
        t = r.task(task)
        if t is None:
            continue
        oracle = r.entry.is_oracle
        keyed[name] = ranked_value(t, r.scores, oracle)
        head = t["headline"]
        if not head["ranked"]:
            notes.append(f"{name}: no S — {head['reason']}")
        o = t["overall"]
        fit = (t.get("pileup_fit") or {}).get("S", {})
        cal = t.get("calibrated") or {}
        tp = throughput_at(r)
        row = {
            "entry": name + (" (truth)" if oracle else ""),
            "category": r.entry.category,
            "S [GeV]": format_figure(head["S"]),
            "S∥": _value(head["S_par"]),
            "S⊥": _value(head["S_perp"]),
            "R": _value(o["response"], 3),
            "S cal.": _value(cal.get("S")) if cal.get("available") else "—",
            "max|R_k-1| cal.": _value({"value": cal.get("max_closure")}, 3),
            "CMS σ⊥/R": _value(head.get("cms_sigma_perp_over_r")),
            "f(|Δ|>50)": _value(o["tail_50"], 3),
            "b [GeV/√PU]": _value(fit.get("b"), 2),
            "S(n_pu=200)": _value(fit.get("extrapolated")),
        }
        if task == "met":
            auc, rate = r.figure("fake", "auc"), r.figure("fake", "fake_rate")
            row["fake AUC"] = _value(auc.to_json() if auc else None, 3)
            row["fake rate"] = _value(rate.to_json() if rate else None, 3)
        row["events/s"] = "—" if tp is None else f"{tp:,.0f}"
        gpu = throughput_at(r, gpu=True)
        row["events/s GPU"] = "—" if gpu is None else f"{gpu:,.0f}"
        rows.append({**row, "_name": name, "_value": keyed[name].value, "_oracle": oracle})
    if borrowed:
        notes.append(f"not in this table, their MET is another entry's: {', '.join(borrowed)}")
    definition = RECOIL_S_DEFINITION if task == "recoil" else S_DEFINITION
    if all(item["events/s GPU"] == "—" for item in rows):  # no GPU measured: no column
        rows = [{k: v for k, v in item.items() if k != "events/s GPU"} for item in rows]
    frame = _ranked(rows, keyed, [definition, *notes])
    if frame.empty and borrowed:
        frame.attrs["notes"] = notes
    return frame


def seed_notes(results: Sequence[Results | dict[str, Any]]) -> list[str]:
    """One line per entry trained with several seeds: the training the tables show (the median,
    or the full training of a budget group), the spread of S over the trainings, and the
    trainings left out (:mod:`metbench.scoring.seeds`)."""
    _, hidden = shown_results(list(results))
    spreads = seed_spreads(results)
    lines = []
    for shown in sorted(set(hidden.values())):
        spread = spreads.get(shown)
        others = ", ".join(sorted(n for n, m in hidden.items() if m == shown))
        budget = spread.get("budget") if spread else None
        figures = (
            f"{spread['figure']} {spread['min']:.1f}–{spread['max']:.1f} GeV, std "
            f"{spread['std']:.1f} GeV over "
            f"{spread['n']} trainings (seeds {', '.join(map(str, spread['seeds']))}"
            + (f", {budget} epochs each" if budget else "")
            + ")"
            if spread
            else "the figure is undefined for all but one"
        )
        what = (
            f"trained once in full; how far another seed moves S, measured at a budget of "
            f"{budget} epochs (which moves S too: the full training's S need not lie in it)"
            if budget and spread and shown not in spread["members"]
            else "the median of repeated trainings"
        )
        lines.append(f"{shown}: {what}; {figures}; not shown: {others}")
    return lines


def bins_table(
    results: Sequence[Results | dict[str, Any]],
    binning: str,
    figure: str = "S",
    task: str = HEADLINE[0],
) -> pd.DataFrame:
    """One row per entry, one column per bin of ``binning`` (``truth``, ``n_pu``, ``n_pv``,
    ``process``): the figure with its interval (S in n_pu, n_pv and process bins; in truth bins
    the per-bin ``rc_sigma``, the RMS per component of e/R_k - t)."""
    rows = {}
    labels: list[str] = []
    for r in map(as_results, results):
        if r.entry.met_source:
            continue
        t = r.task(task)
        if t is None or binning not in t["bins"]:
            continue
        b = t["bins"][binning]
        labels = b["labels"]
        name = "rc_sigma" if binning == "truth" and figure == "S" else figure
        f = b["figures"].get(name)
        if f is None:
            continue
        rows[r.name] = [
            format_figure({k: f[k][i] for k in ("value", "low", "high") if k in f})
            for i in range(len(labels))
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=labels)


#: The columns of :func:`covariance_table`: stored figure, heading.
COVARIANCE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("pull_width_1", "pull width 1"),
    ("pull_width_2", "pull width 2"),
    ("coverage_1sigma", "1σ coverage"),
    ("coverage_2sigma", "2σ coverage"),
    ("significance_auc", "significance AUC"),
)


def covariance_cells(figures: dict[str, Any]) -> list[str]:
    """The :data:`COVARIANCE_COLUMNS` of stored covariance figures as text (3 decimals; "—"
    where one is missing): one formatting for the CLI and the site."""
    return [
        f"{figures[key]:.3f}" if isinstance(figures.get(key), (int, float)) else "—"
        for key, _ in COVARIANCE_COLUMNS
    ]


def covariance_table(results: Sequence[Results | dict[str, Any]]) -> pd.DataFrame:
    """One row per results file whose entry gives a covariance (index: entry, dataset and split):
    the pooled figures of :func:`metbench.scoring.metrics.covariance_figures` as scored."""
    rows = {}
    for r in map(as_results, results):
        figures = r.scores.get("covariance")
        if not isinstance(figures, dict):
            continue
        label = f"{r.name} ({r.dataset.name}, {r.dataset.split})"
        rows[label] = covariance_cells(figures)
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=[heading for _, heading in COVARIANCE_COLUMNS]
    )


#: The same line for the recoil task (Z -> mu mu, the estimator run without the dimuon).
RECOIL_S_DEFINITION = (
    "S (recoil): mean over qT bins from 30 GeV (CMS edges) of the RMS per component of "
    "u/R_k + qT, u = -e' the recoil (e' the MET of the event without its dimuon), "
    "R_k = -<u∥>/<qT>; lower is better."
)


def kinematics_table(results: Sequence[Results | dict[str, Any]]) -> pd.DataFrame:
    """The kinematic-reconstruction task (tt -> 2l2nu): one row per result that has it, ranked by
    the RMS of the neutrino pz residual (bias included) by value: the results keep no bootstrap
    replicas of it, so there are no paired differences and no ties (each row's interval is
    printed). Entries with truth-matched inputs are marked."""
    rows = []
    keyed: dict[str, RankedValue] = {}
    shown, _ = shown_results(list(results))
    for r in map(as_results, shown):
        k = r.task("kinematics")
        if k is None or not k.get("figures"):
            continue
        f = k["figures"]
        name = r.name
        pz = f.get("nu_pz_rms", f["nu_pz_sigma"])
        keyed[name] = RankedValue(pz.get("value"))
        truth_inputs = [u for u in r.entry.extra.get("uses_truth", []) if u != "truth_is_pileup"]
        rows.append(
            {
                "entry": name + (" (truth-matched inputs)" if truth_inputs else ""),
                "events": k["n_events"],
                "RMS(ν pz) [GeV]": format_figure(pz),
                "bias(ν pz) [GeV]": format_figure(f.get("nu_pz_bias")),
                "RMS(ν px) [GeV]": format_figure(f.get("nu_px_rms")),
                "σ(ν pz) [GeV]": format_figure(f["nu_pz_sigma"]),
                "m(ℓν) median [GeV]": format_figure(f["m_w_median"]),
                "m(ℓνb) median [GeV]": format_figure(f["m_top_median"]),
                "m(ℓνb) width [GeV]": format_figure(f["m_top_width"]),
                "m(ℓνb) ±10%": format_figure(f["m_top_in_window"], 3),
                "_name": name,
                "_value": keyed[name].value,
                "_oracle": False,
            }
        )
    frame = _ranked(rows, keyed, [])
    if not frame.empty:
        frame.attrs["notes"] = [
            "ranked by the RMS of the neutrino pz residual (bias included), by value: no "
            "bootstrap replicas of it are kept, so no paired ties",
            *seed_notes(results),
        ]
    return frame
