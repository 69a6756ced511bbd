"""The text tables' number formatting (one formatter, shared with the site)."""

from __future__ import annotations

from metbench.scoring.table import format_figure


def test_format_figure_value_interval_and_missing() -> None:
    assert format_figure({"value": 26.64, "low": 25.951, "high": 27.35}) == "26.6 [26.0, 27.4]"
    assert format_figure({"value": 0.9134}, 3) == "0.913"
    assert format_figure({"value": None, "low": 1.0, "high": 2.0}) == "—"
    assert format_figure(None) == "—"
    # the interval needs both ends
    assert format_figure({"value": 1.0, "low": 0.5, "high": None}) == "1.0"


def test_format_figure_html_wraps_only_the_interval() -> None:
    text = format_figure({"value": 26.64, "low": 25.951, "high": 27.35}, html=True)
    assert text == "26.6 <span class='ci'>[26.0, 27.4]</span>"
    assert format_figure({"value": 3.0}, html=True) == "3.0"


def test_an_entry_without_s_is_shown_unranked_with_its_reason():
    """PF MET flipped (-e: what `score` gives it, tests/scoring/test_robustness.py) beside the
    committed pu200 results: "—" in the table and on the site, the reason in the notes."""
    import copy
    from pathlib import Path

    from metbench.leaderboard.data import site_data
    from metbench.results import find_results, read_results
    from metbench.scoring.table import headline_table

    root = Path(__file__).resolve().parents[2]
    docs = [
        read_results(p)
        for p in find_results([root / "leaderboard" / "results"])
        if "pu200" in str(p) and p.name in ("pf.json", "puppi.json")
    ]
    flipped = copy.deepcopy(next(d for d in docs if d["entry"]["name"] == "pf"))
    flipped["entry"]["name"] = "pf-flipped"
    reason = "response interval [-0.99, -0.98] in bin [30, 40) GeV reaches 0 or lies below 0.1"
    for head in (flipped["scores"]["headline"], flipped["scores"]["tasks"]["met"]["headline"]):
        head.update(value=None, low=None, high=None, ranked=False, reason=reason, replicas=None)
    head = flipped["scores"]["tasks"]["met"]["headline"]
    for key in ("S", "S_par", "S_perp"):
        head[key] = {"value": None, "low": None, "high": None}
    frame = headline_table([*docs, flipped])
    row = frame[frame["entry"] == "pf-flipped"].iloc[0]
    assert row["rank"] == "—" and row["S [GeV]"] == "—"
    assert frame.iloc[-1]["entry"] == "pf-flipped"  # after every ranked entry
    assert f"pf-flipped: no S — {reason}" in frame.attrs["notes"]
    group = site_data([*docs, flipped])["groups"][0]
    rows = next(v for v in group["tasks"]["met"] if v["id"] == "all")["rows"]
    shown = next(r for r in rows if r["entry"] == "pf-flipped")
    assert shown["rank_label"] == "—" and shown["reason"] == reason
