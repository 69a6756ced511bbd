"""Build the static leaderboard site: ``index.html`` (tables, filters, interactive plots),
one page per entry, the mplhep figures as PNG and PDF, and each entry's results as JSON and CSV.

Everything the pages need is in the output folder (no network): the data is embedded in each page
as JSON, the script and style are local files. Text that comes from a submission is escaped here
(``html.escape``) or inserted by the script as text (``textContent``), never as markup.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from metbench.errors import MetbenchError
from metbench.leaderboard.data import PLOT_FIGURES, legend_line, site_data
from metbench.leaderboard.pages import dataset_body, metrics_body, render_markdown, submit_body
from metbench.leaderboard.speed import continuous_demo, read_speed_history, speed_body
from metbench.scoring.table import format_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from metbench.verify import Verification

__all__ = [
    "build_site",
    "current_content_hashes",
    "entry_slug",
    "met_figure",
    "mpl_style",
    "verify_for_site",
]

PLOT_BINNINGS = ("truth", "n_pu", "n_pv", "process")
#: Axis labels of the figures in matplotlib's mathtext (the PDF fonts lack some symbols).
MPL_LABELS = {
    "response": r"response $R$",
    "S": r"$S$: RMS of $e/R_k - t$ per component [GeV]",
    "S_par": r"$S_\parallel$ [GeV]",
    "S_perp": r"$S_\perp$ [GeV]",
    "sigma_perp_over_r": r"CMS $\sigma_\perp / R$ [GeV]",
}
BINNING_LABELS = {
    "truth": "true |MET| [GeV]",
    "n_pu": "true pileup interactions n_pu",
    "n_pv": "reconstructed vertices n_pv",
    "process": "process",
}


def entry_slug(name: str) -> str:
    """A file-name-safe, unique slug of an entry name."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "entry"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def verify_for_site(
    paths: list[Path], rescore: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Verification]]:
    """Verify the results files among ``paths`` before they are published.

    Every file's predictions must exist beside it with the recorded sha256; a result whose
    dataset is on this machine (the recorded path or ``$METBENCH_DATA/<name>``, with the recorded
    manifest sha256) is also re-scored and must give the recorded scores
    (:func:`metbench.verify.verify_results`). Without its dataset a result is published with its
    predictions checked only.

    Parameters
    ----------
    paths
        Results files or folders (searched recursively).
    rescore
        Re-score where the dataset is present (False: check the predictions only).

    Returns
    -------
    tuple
        ``(results, marks, failures)``: the documents that passed, their marks for
        :func:`build_site` (``{"status": "verified" | "predictions", "detail"}``, same order),
        and the verifications that failed (to be left out).
    """
    from metbench.verify import verify_paths

    results: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    failures = []
    for check in verify_paths(paths, rescore=rescore, require_dataset=False):
        if not check.ok or check.results is None:
            failures.append(check)
            continue
        results.append(check.results)
        marks.append({"status": check.status, "detail": check.note})
    return results, marks, failures


def current_content_hashes(submissions: Path, names: set[str]) -> dict[str, str]:
    """The content hash of each submission of ``names`` that ``submissions`` holds as it is now
    (code, weights and the metbench modules it imports): a result whose recorded hash differs was
    made by other code. Folders that are missing or do not load are left out (no mark), and so
    are names that are not a submission folder's name (``../x``, ``a/b``: results files are
    data, never joined to a path as they are)."""
    from metbench.estimators.submission import load_submission

    out = {}
    root = Path(submissions).resolve()
    for name in sorted(names):
        # a results file is data: a name with "/" or ".." must not lead outside submissions/
        if not isinstance(name, str) or not _SUBMISSION_NAME.fullmatch(name):
            continue
        folder = (root / name).resolve()
        if folder.parent != root or not folder.is_dir():
            continue
        try:
            out[name] = load_submission(folder, require_weights=False).content_hash
        except MetbenchError:
            continue
    return out


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` and as a JavaScript literal in a
    ``.js`` file (no ``</script>`` breakout; U+2028/U+2029 escaped)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


#: The site's pages in its navigation bar: file -> label.
NAV: Final[dict[str, str]] = {
    "index.html": "Leaderboard",
    "compare.html": "Compare",
    "metrics.html": "Metrics",
    "dataset.html": "Datasets",
    "submit.html": "How to submit",
    "speed.html": "Speed history",
}


_CURRENT: Final = ' aria-current="page"'


def _page(
    title: str,
    body: str,
    data: Any = None,
    script: str | None = None,
    depth: int = 0,
    current: str | None = None,
) -> str:
    """A whole HTML page: the navigation bar, ``body``, the page's data (embedded JSON) and its
    scripts (``site.js`` and ``script``), all local."""
    up = "../" * depth
    nav = "".join(
        f'<a href="{up}{href}"{_CURRENT if href == current else ""}>{html.escape(label)}</a>'
        for href, label in NAV.items()
    )
    scripts = ""
    if script is not None:
        scripts = (
            f'<script id="site-data" type="application/json">{_json_for_script(data)}</script>\n'
            f'<script src="{up}assets/site.js"></script>\n<script src="{up}assets/{script}"></script>'
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{up}assets/style.css">
</head>
<body>
<a class="skip" href="#content">skip to content</a>
<nav class="site-nav" aria-label="site">{nav}</nav>
<div id="content">
{body}
</div>
<footer><p>Built by <code>metbench leaderboard build</code>. No file of this site is loaded from
the network.</p></footer>
{scripts}
</body>
</html>
"""


def _results_csv(result: dict[str, Any]) -> str:
    """Every figure of a results document, one row per (task, binning, bin, figure)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["task", "binning", "bin", "figure", "value", "low", "high"])
    for task_name, task in result["scores"]["tasks"].items():
        if "overall" in task:
            for fig, v in task["overall"].items():
                writer.writerow(
                    [task_name, "overall", "all", fig, v.get("value"), v.get("low"), v.get("high")]
                )
            for binning, b in task.get("bins", {}).items():
                for fig, v in b["figures"].items():
                    for i, label in enumerate(b["labels"]):
                        row = [
                            (v.get(q) or [None] * len(b["labels"]))[i]
                            for q in ("value", "low", "high")
                        ]
                        writer.writerow([task_name, binning, label, fig, *row])
        else:
            for fig, v in task.get("figures", {}).items():
                writer.writerow(
                    [task_name, "overall", "all", fig, v.get("value"), v.get("low"), v.get("high")]
                )
    return out.getvalue()


#: The kinds in the order the figures' legends group them.
KIND_ORDER: Final = ("baseline", "ML", "submission", "reference", "stored", "oracle")
#: The site's styles (``MB.style`` in ``site.js``): 8 colours, 6 markers and 4 dashes; series i
#: takes colour i % 8, marker i % 6 and dash i % 4, so 24 series have 24 combinations.
MPL_COLOURS: Final = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#332288",
                      "#7a7a00")  # fmt: skip
MPL_MARKERS: Final = ("o", "s", "^", "D", "v", "P")
MPL_DASHES: Final = ("-", "--", ":", "-.")
#: The x label of the |t| bins per task.
TRUTH_LABELS: Final = {"met": "true |MET| [GeV]", "recoil": "qT [GeV]"}


def mpl_style(i: int) -> tuple[str, str, str]:
    """``(colour, marker, linestyle)`` of series ``i`` (distinct for ``i < 24``)."""
    return (MPL_COLOURS[i % len(MPL_COLOURS)], MPL_MARKERS[i % len(MPL_MARKERS)],
            MPL_DASHES[i % len(MPL_DASHES)])  # fmt: skip


def _robust_limits(values: list[float]) -> tuple[float, float] | None:
    """y limits around the bulk of the points (a bin where R -> 0 makes sigma/R explode); None
    when there are too few points to tell (matplotlib's own limits then)."""
    import numpy as np

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) <= 4:
        return None
    lo, hi = np.percentile(v, [5, 95])
    span = hi - lo or abs(hi) or 1.0
    lo, hi = max(v.min(), lo - 0.5 * span), min(v.max(), hi + 0.5 * span)
    pad = 0.08 * (hi - lo or abs(hi) or 1.0)
    return float(lo - pad), float(hi + pad)


def met_figure(
    group: dict[str, Any], binning: str, figure: str, task: str = "met"
) -> Figure | None:
    """The mplhep figure (CMS style) of one binned figure of every entry of a dataset.

    Series are grouped by kind (:data:`KIND_ORDER`, then by name), each with its own colour,
    marker and dash (:func:`mpl_style`); the legend is outside the axes, on the right, with a
    header per kind. On a categorical axis (processes) the points have markers and no line. The
    y axis follows the bulk of the points; a point beyond it is drawn as a triangle at the
    frame's edge pointing its way (``gid`` ``"clipped"``).

    Parameters
    ----------
    group
        A group of :func:`metbench.leaderboard.data.site_data`.
    binning, figure, task
        Which bins (``truth``, ``n_pu``, ``n_pv``, ``process``), figure (a key of
        :data:`~metbench.leaderboard.data.PLOT_FIGURES`) and task.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure (the caller saves and closes it), or None when no entry has these bins.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.lines import Line2D

    def order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
        kind = item[1].get("kind", "")
        return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), item[0])

    series = []
    for name, entry in sorted(group["entries"].items(), key=order):
        b = entry["plots"].get(task, {}).get(binning)
        if b is not None:
            series.append((name, entry.get("kind", ""), b))
    if not series:
        return None
    categorical = binning == "process"
    with plt.style.context(mplhep.style.CMS):
        fig, ax = plt.subplots(figsize=(10, 5.5))
        limits = _robust_limits(
            [v for _, _, b in series for v in b["figures"][figure]["value"] if v is not None]
        )
        handles: list[Any] = []
        labels: list[str] = []
        kind_of_last = None
        labels_x: list[str] = []
        for i, (name, kind, b) in enumerate(series):
            f = b["figures"][figure]
            n = len(f["value"])
            values = [v if v is not None else float("nan") for v in f["value"]]
            lows = f.get("low") or [None] * n
            highs = f.get("high") or [None] * n
            err = [
                [max(v - lo, 0) if v is not None and lo is not None else 0 for v, lo in zip(f["value"], lows, strict=True)],
                [max(hi - v, 0) if v is not None and hi is not None else 0 for v, hi in zip(f["value"], highs, strict=True)],
            ]  # fmt: skip
            # side by side on a categorical axis (the same x for every series otherwise)
            shift = 0.7 * (i / max(len(series) - 1, 1) - 0.5) if categorical else 0.0
            x = [k + shift for k in range(n)]
            colour, marker, dash = mpl_style(i)
            container = ax.errorbar(
                x, values, yerr=err, color=colour, marker=marker, ms=5, capsize=2,
                linestyle="none" if categorical else dash, linewidth=1.4, label=name,
            )  # fmt: skip
            if kind != kind_of_last:
                handles.append(Line2D([], [], linestyle="none", marker="none"))
                labels.append(f"{kind}:")
                kind_of_last = kind
            handles.append(container)
            labels.append(name)
            if len(b["labels"]) > len(labels_x):
                labels_x = list(b["labels"])
            if limits is not None:
                lo, hi = limits
                for xi, v in zip(x, values, strict=True):
                    if v > hi or v < lo:
                        ax.plot([xi], [hi if v > hi else lo], linestyle="none",
                                marker="^" if v > hi else "v", ms=9, color=colour,
                                markeredgecolor="black", clip_on=False, gid="clipped",
                                label="_clipped")  # fmt: skip
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_xticks(range(len(labels_x)), labels_x, rotation=45, ha="right", fontsize=9)
        if categorical:
            ax.set_xlim(-0.5, len(labels_x) - 0.5)
        xlabel = (
            TRUTH_LABELS.get(task, "|t| [GeV]") if binning == "truth" else BINNING_LABELS[binning]
        )
        ax.set_xlabel(xlabel, fontsize=13)
        ax.set_ylabel(MPL_LABELS[figure], fontsize=13)
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                  fontsize=8, ncol=2 if len(handles) > 22 else 1, frameon=False)  # fmt: skip
        d = group["dataset"]
        title = f"{d['name']} {d['split']}: {'MET' if task == 'met' else 'recoil'}"
        ax.set_title(title, fontsize=11, loc="left")
        if any(line.get_gid() == "clipped" for line in ax.get_lines()):
            ax.text(1.0, 1.01, "triangles at the frame: points beyond the axis", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8)  # fmt: skip
    return fig


def _figures(data: dict[str, Any], out: Path) -> dict[str, dict[str, str]]:
    """mplhep figures (PNG and PDF) of each group's binned figures; returns their paths."""
    import matplotlib.pyplot as plt

    made: dict[str, dict[str, str]] = {}
    for g_index, group in enumerate(data["groups"]):
        for binning in PLOT_BINNINGS:
            for figure in PLOT_FIGURES:
                fig = met_figure(group, binning, figure)
                if fig is None:
                    continue
                stem = f"g{g_index}_met_{figure}_vs_{binning}"
                paths = {}
                for ext in ("png", "pdf"):
                    fig.savefig(out / "figures" / f"{stem}.{ext}", dpi=110, bbox_inches="tight")
                    paths[ext] = f"figures/{stem}.{ext}"
                made[stem] = paths
                plt.close(fig)
    return made


def _index_body(data: dict[str, Any]) -> str:
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data["notes"])
    return f"""<header>
<h1>metbench leaderboard</h1>
<p>Missing transverse momentum reconstruction: every entry on the same events, split and scoring,
against the generator's MET (the recoil task: against the dimuon qT, the muons removed from the
estimator's input). Intervals are 95% bootstrap intervals; <b>lower S is better</b>.
<a href="metrics.html">How entries are scored</a> ·
<a href="dataset.html">the datasets</a> · <a href="submit.html">how to submit</a> ·
<a href="speed.html">speed across commits</a> (asv).</p>
<ul class="definitions">{notes}</ul>
</header>
<main id="groups" aria-live="polite"><p class="loading">Loading…</p></main>
<noscript><p>The tables and plots of this page need JavaScript; every entry's figures are also in
its results files.</p></noscript>
"""


def _standing(entry: dict[str, Any], dataset: dict[str, Any], columns: list[dict[str, Any]]) -> str:
    """The headline figures of an entry with its rank, per task (escaped HTML)."""
    out = []
    titles = {"met": "MET vs generator MET", "recoil": "Z→μμ recoil vs qT"}
    for task, st in (entry.get("standing") or {}).items():
        rank = st["rank_label"]
        if st["rank"] is not None:
            rank_text = f"rank {html.escape(rank)} of {st['n_ranked']}"
        elif rank == "ref":
            rank_text = "reference (uses truth, not ranked)"
        else:
            rank_text = "not ranked" + (
                f": {html.escape(st['reason'])}" if st.get("reason") else ""
            )
        cells = "".join(
            f"<div class='figure'><dt title='{html.escape(c['tip'])}'>{html.escape(c['label'])}"
            f"{_BETTER.get(c['better'] or '', '')}</dt>"
            f"<dd>{format_figure(st['figures'].get(c['key']), 3 if c['key'] in _THREE_DIGITS else 1, html=True)}"
            "</dd></div>"
            for c in columns
            if (st["figures"].get(c["key"]) or {}).get("value") is not None
        )
        out.append(
            f"<section class='standing' data-task='{html.escape(task)}'><h3>"
            f"{html.escape(titles.get(task, task))} on {html.escape(dataset['name'])}: "
            f"<span class='rank'>{rank_text}</span></h3><dl class='figures'>{cells}</dl></section>"
        )
    return _seeds_line(entry) + (
        "".join(out) or "<p>This entry is in no ranked table (its MET is another entry's).</p>"
    )


def _seeds_line(entry: dict[str, Any]) -> str:
    """What a page says of an entry trained with several seeds (escaped HTML; '' otherwise)."""
    spread = entry.get("seed_spread")
    if not spread:
        return ""
    seeds = ", ".join(str(s) for s in spread["seeds"])
    budget = spread.get("budget")
    figures = (
        f"{html.escape(spread['figure'])} over the {spread['n']} trainings (seeds "
        f"{html.escape(seeds)}{f', {int(budget)} epochs each' if budget else ''}): "
        f"{spread['min']:.1f}–{spread['max']:.1f} GeV, standard deviation {spread['std']:.1f} GeV."
    )
    median = entry.get("seed_of")
    if budget and median:
        return (
            f"<p class='seeds'>One of repeated trainings at a budget of {int(budget)} epochs, "
            f"which measure the spread of a longer training; not ranked: the tables show the "
            f"full training, <a href='{html.escape(Path(entry['seed_of_page']).name)}'>"
            f"{html.escape(median)}</a>. {figures}</p>"
        )
    if budget and entry["name"] not in spread.get("members", ()):
        return (
            f"<p class='seeds'>Trained once in full. How far another seed would move it is "
            f"measured at a shorter budget of {int(budget)} epochs (the budget moves S too: the "
            f"full training's S need not lie in this range): {figures}</p>"
        )
    if median:
        return (
            f"<p class='seeds'>One of repeated trainings, not ranked: the tables show the median "
            f"training, <a href='{html.escape(Path(entry['seed_of_page']).name)}'>"
            f"{html.escape(median)}</a>. "
            f"{figures}</p>"
        )
    return f"<p class='seeds'>The median of repeated trainings: {figures}</p>"


#: The direction marks of :func:`_standing` (as the tables' headers).
_BETTER: Final = {
    "lower": " <span class='better'>↓ better</span>",
    "higher": " <span class='better'>↑ better</span>",
    "one": " <span class='better'>best at 1</span>",
}
_THREE_DIGITS: Final = frozenset({"response", "tail_25", "tail_50", "tail_100", "fake_auc"})


def _parameter_count(entry: dict[str, Any], manifest: dict[str, Any] | None) -> str:
    """The trainable parameter count as text: a number, "not trainable", or "— (not reported)"."""
    n = entry.get("n_parameters")
    if isinstance(n, int) and not isinstance(n, bool):
        by = entry.get("n_parameters_measured_by") or ""
        return f"{n:,}" + (" (self-reported)" if "self-reported" in by else "")
    trainable = (manifest or {}).get("trainable")
    if trainable is None:
        trainable = entry.get("kind") == "ML"
    return "— (not reported)" if trainable else "none (not trainable)"


def _entry_body(
    entry: dict[str, Any],
    readme: str | None,
    downloads: dict[str, str],
    dataset_marks: Sequence[dict[str, str]] = (),
    dataset: dict[str, Any] | None = None,
    columns: list[dict[str, Any]] | None = None,
    elsewhere: Sequence[tuple[str, str]] = (),
    manifest: dict[str, Any] | None = None,
    group: str = "",
    training: str = "—",
) -> str:
    e = {
        k: html.escape(str(v))
        for k, v in entry.items()
        if isinstance(v, (str, int, float)) or v is None
    }
    weights = (
        "".join(
            f"<li><code class='hash'>{html.escape(w)}</code> sha256 "
            f"<code class='hash'>{html.escape(h)}</code></li>"
            for w, h in (entry.get("weights_sha256") or {}).items()
        )
        or "<li>none</li>"
    )
    hw = entry.get("hardware") or {}
    hardware = html.escape(
        f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('memory_gb', '?')} GB; "
        f"device {entry.get('throughput_device') or '?'}"
    )
    readme_html = (
        f"<div class='readme'>{render_markdown(readme)}</div>"
        if readme
        else "<p>No README found.</p>"
    )
    params = html.escape(json.dumps(entry.get("parameters", {}), ensure_ascii=False))
    truth = ", ".join(entry.get("uses_truth") or []) or "none"
    marks = "".join(
        f' <span class="mark mark-{html.escape(m["kind"])}" tabindex="0" '
        f'title="{html.escape(m["title"])}">{html.escape(m["label"])}</span>'
        for m in [*entry.get("marks", []), *dataset_marks]
    )
    legend = "".join(
        f'<p class="legend">{html.escape(legend_line(m["kind"]))}</p>'
        for m in [*entry.get("marks", []), *dataset_marks]
    )
    other = (
        "<ul class='elsewhere'>"
        + "".join(
            f"<li><a href='{html.escape(href)}'>{html.escape(label)}</a></li>"
            for label, href in elsewhere
        )
        + "</ul>"
        if elsewhere
        else "<p>This entry has results on this dataset only.</p>"
    )
    standing = _standing(entry, dataset or {"name": "?"}, columns or [])
    return f"""<header>
<p><a href="../index.html">← leaderboard</a></p>
<h1 id="entry-name">{e["name"]}</h1>
<p class="marks"><span class="kind kind-{html.escape(entry["kind"])}">{html.escape(entry["kind"])}</span>{marks}</p>
{legend}
<p>{e["description"]}</p>
</header>
<main>
<section id="headline"><h2>Headline figures</h2>{standing}
<p class="note">Lower is better for S, S∥, S⊥ and the resolutions; R is best at 1. <a
href="../metrics.html">What the figures are</a>.</p></section>
<section id="pileup"><h2>Pileup dependence</h2>{_pileup_fit(entry.get("pileup_fit"))}</section>
<section id="fake"><h2>Fake MET</h2>{_fake_table(entry.get("fake"))}</section>
<section id="covariance"><h2>Per-event covariance</h2>{_covariance_table(entry.get("covariance"))}</section>
<section id="calibrated"><h2>Calibrated figures</h2>{_calibrated_tables(entry.get("calibrated"))}</section>
<section id="elsewhere"><h2>This entry on other datasets</h2>{other}</section>
<section id="compare-with"><h2>Compare</h2><p><a class="compare-link" href="../compare.html#{html.escape(_compare_hash(group, entry["name"]))}">Compare this
entry with another on this dataset</a> (binned curves overlaid, paired differences).</p></section>
<section>
<h2>About</h2>
<div class="table-scroll"><table class="meta">
<tr><th>paper</th><td class="paper">{_linkified(entry.get("paper") or "")}</td></tr>
<tr><th>authors</th><td>{html.escape(", ".join(entry.get("authors") or []))}</td></tr>
<tr><th>framework</th><td>{e["framework"]}</td></tr>
<tr><th>category</th><td>{e["category"]}</td></tr>
<tr><th>parameters of the run</th><td><code>{params}</code></td></tr>
<tr><th>trainable parameters</th><td id="n-parameters">{html.escape(_parameter_count(entry, manifest))}</td></tr>
<tr><th>training</th><td id="training">{html.escape(training)}</td></tr>
<tr><th>submission content hash</th><td><code class="hash">{e["content_hash"]}</code></td></tr>
<tr><th>weights</th><td><ul>{weights}</ul></td></tr>
<tr><th>truth used</th><td>{html.escape(truth)}</td></tr>
<tr><th>dataset</th><td id="dataset-cell"></td></tr>
<tr><th>throughput hardware</th><td>{hardware}</td></tr>
<tr><th>results</th><td><a href="{html.escape(downloads["json"])}" download>JSON</a> · <a href="{html.escape(downloads["csv"])}" download>CSV</a></td></tr>
</table></div>
</section>
<section><h2>Throughput</h2>
<p class="legend">Self-reported: measured inside the submission's own process, which could alter
the measurement; the harness checks that the figures are plausible (the requested batch sizes,
finite positive rates, no more timed calls than the run lasted), it cannot check that they are
true.</p>
<div id="throughput-table"></div></section>
<section><h2>Binned figures</h2><div id="entry-charts"></div><div id="binned"></div></section>
<section><h2>README</h2>{readme_html}</section>
</main>
"""


def _compare_hash(group: str, name: str) -> str:
    """The compare page's hash state for dataset ``group`` with ``name`` as entry A."""
    return urlencode({"ds": group, "a": name}, quote_via=quote)


def _pileup_fit(fits: dict[str, Any] | None) -> str:
    """The pileup fit of the MET task's figures (escaped HTML): ``a``, ``b`` and the value
    extrapolated to ``at_n_pu`` with their intervals; a sentence when the results have none."""
    if not fits:
        return (
            "<p class='empty'>These results have no pileup fit (too few n_pu bins with enough "
            "events).</p>"
        )
    rows = []
    for figure, fit in fits.items():
        at = float(fit.get("at_n_pu") or 200)
        rows.append(
            f"<tr data-figure='{html.escape(figure)}'><th scope='row'>{html.escape(figure)}</th>"
            f"<td class='fit-a'>{format_figure(fit.get('a'), 1, html=True)}</td>"
            f"<td class='fit-b'>{format_figure(fit.get('b'), 2, html=True)}</td>"
            f"<td class='fit-at'>{at:g}</td>"
            f"<td class='fit-extrapolated'>{format_figure(fit.get('extrapolated'), 1, html=True)}"
            "</td></tr>"
        )
    return (
        "<p>The resolution in bins of the true pileup n_pu, fitted with S² = a² + b²·n_pu "
        "(weighted least squares; <a href='../metrics.html'>metrics</a>): a is the resolution "
        "without pileup, b the growth per √interaction, and the fit's value extrapolated to the "
        "n_pu of the table (200: HL-LHC) with its 95% bootstrap interval. A negative a or b marks a fit whose square "
        "came out negative.</p><div class='table-scroll'><table class='doc pileup-fit'><thead>"
        "<tr><th>figure</th><th>a [GeV]</th><th>b [GeV/√n_pu]</th><th>n_pu</th>"
        "<th>extrapolated [GeV]</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _fake_table(groups: dict[str, Any] | None) -> str:
    """The fake-MET figures of each process without neutrinos and of all of them (escaped
    HTML): events, AUC, the |e| threshold and the fake rate, with their intervals."""
    from metbench.scoring.metrics import (
        FAKE_EFFICIENCY,
        FAKE_SIGNAL_MIN_TRUTH,
        FAKE_THRESHOLD_MIN_TRUTH,
    )

    if not groups:
        return "<p class='empty'>These results have no events without neutrinos.</p>"
    rows = []
    for name, g in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        label = "all without neutrinos" if name == "all" else name
        rows.append(
            f"<tr data-group='{html.escape(name)}'><th scope='row'>{html.escape(label)}</th>"
            f"<td class='fake-n'>{int(g.get('n') or 0):,}</td>"
            f"<td class='fake-auc'>{format_figure(g.get('auc'), 3, html=True)}</td>"
            f"<td class='fake-threshold'>{format_figure(g.get('threshold'), 1, html=True)}</td>"
            f"<td class='fake-rate'>{format_figure(g.get('fake_rate'), 4, html=True)}</td></tr>"
        )
    return (
        f"<p>Events of processes without neutrinos, whose true MET is 0. AUC: how well |e| "
        f"separates them from the events with neutrinos and |t| &gt; {FAKE_SIGNAL_MIN_TRUTH:g} GeV "
        f"(higher is better; its interval is given for all of them together). Fake rate: their "
        f"fraction with |e| above the threshold that keeps {FAKE_EFFICIENCY:.0%} of the events "
        f"with neutrinos and |t| &gt; {FAKE_THRESHOLD_MIN_TRUTH:g} GeV (lower is better).</p>"
        "<div class='table-scroll'><table class='doc fake-met'><thead><tr><th>processes</th>"
        "<th>events</th><th>AUC</th><th>threshold [GeV]</th><th>fake rate</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _covariance_table(figures: dict[str, Any] | None) -> str:
    """The pooled figures of the entry's per-event covariance (escaped HTML), or a line saying it
    gives none."""
    from metbench.scoring.table import COVARIANCE_COLUMNS, covariance_cells

    if not figures:
        return "<p class='empty'>This entry gives no per-event covariance.</p>"
    cells = "".join(
        f"<td class='cov-{html.escape(key)}'>{html.escape(text)}</td>"
        for (key, _), text in zip(COVARIANCE_COLUMNS, covariance_cells(figures), strict=True)
    )
    heads = "".join(f"<th>{html.escape(heading)}</th>" for _, heading in COVARIANCE_COLUMNS)
    return (
        "<p>The residual whitened by the entry's covariance, over all events: pull widths 1 and "
        "coverage 0.683 / 0.954 when the covariance is right; significance AUC: how well "
        "sqrt(e<sup>T</sup> cov<sup>-1</sup> e) separates events with invisible particles from "
        "events without. For an entry whose error is a Student t (it gives the degrees of "
        "freedom), the coverage of its own t regions, and the Gaussian equivalents of the pulls "
        "and the significance (the same tail probability). Per process and per decile of the predicted σ: <code>metbench show "
        "RESULTS --task covariance --bins process</code> (or <code>sigma</code>).</p>"
        "<div class='table-scroll'><table class='doc covariance'><thead><tr>"
        f"{heads}</tr></thead><tbody><tr>{cells}</tr></tbody></table></div>"
    )


def _bin_value(figures: dict[str, Any], key: str, index: int) -> dict[str, Any]:
    """``{value, low, high}`` of bin ``index`` of a binned figure (None where absent)."""
    f = figures.get(key) or {}
    return {q: (f.get(q) or [None] * (index + 1))[index] for q in ("value", "low", "high")}


def _calibrated_tables(calibrated: dict[str, Any] | None) -> str:
    """The calibrated figures of the MET and recoil tasks (escaped HTML): S of the calibrated
    estimate and, per bin of the truth, its response, closure and residual RMS; the reason where
    there are none."""
    if not calibrated:
        return "<p class='empty'>These results have no resolution task.</p>"
    out = [
        "<p>The estimate calibrated by a monotone response curve fitted on the validation split "
        "(<a href='../metrics.html'>metrics</a>), then scored on the test split: its response R "
        "per bin, the closure |R − 1| and the RMS of the calibrated residual (whole, ∥, ⊥), with "
        "95% bootstrap intervals. Bins without events are left out.</p>"
    ]
    for task, cal in calibrated.items():
        title = "MET vs generator MET" if task == "met" else "Z→μμ recoil vs qT"
        if not cal.get("available"):
            reason = cal.get("reason") or "not computed"
            out.append(
                f"<h3>{title}</h3><p class='empty calibrated-reason' data-task='{task}'>"
                f"No calibrated figures: {html.escape(str(reason))}.</p>"
            )
            continue
        bins = cal.get("bins") or {}
        figures = bins.get("figures") or {}
        rows = []
        for i, label in enumerate(bins.get("labels") or []):
            if _bin_value(figures, "rms", i)["value"] is None:
                continue
            cells = "".join(
                f"<td class='cal-{cls}'>"
                f"{format_figure(_bin_value(figures, key, i), digits, html=True)}</td>"
                for key, cls, digits in (
                    ("response", "response", 3),
                    ("closure", "closure", 3),
                    ("rms", "rms", 1),
                    ("rms_par", "rms-par", 1),
                    ("rms_perp", "rms-perp", 1),
                )
            )
            rows.append(
                f"<tr data-bin='{html.escape(str(label))}'><th scope='row'>"
                f"{html.escape(str(label))}</th>{cells}</tr>"
            )
        axis = "|t|" if task == "met" else "qT"
        out.append(
            f"<h3>{title}</h3><p>S of the calibrated estimate: <span class='cal-s' "
            f"data-task='{task}'>{format_figure(cal.get('S'), 1, html=True)}</span> GeV; largest "
            f"closure in the bins of S: {format_figure({'value': cal.get('max_closure')}, 3)}.</p>"
            f"<div class='table-scroll'><table class='doc calibrated' data-task='{task}'><thead>"
            f"<tr><th>{axis} [GeV]</th><th>R</th><th>|R − 1|</th><th>RMS [GeV]</th>"
            "<th>RMS∥ [GeV]</th><th>RMS⊥ [GeV]</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
    return "".join(out)


def _linkified(text: str) -> str:
    """Escaped text with http(s) URLs, arXiv identifiers, DOIs and GitHub repositories written
    as ``owner/repo`` as links (a paper field)."""
    rendered = render_markdown(text.replace("\n", " "), github=True).strip()
    return rendered.removeprefix("<p>").removesuffix("</p>")


def _submission_file(submissions: Path | None, name: object, filename: str) -> Path | None:
    """``<submissions>/<name>/<filename>``, only for a name of the submission pattern whose
    resolved path stays inside ``submissions`` (a results file naming ``../../x`` must not
    publish files of the machine that builds the site)."""
    if submissions is None or not isinstance(name, str) or not _SUBMISSION_NAME.fullmatch(name):
        return None
    root = Path(submissions).resolve()
    path = (root / name / filename).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def _readme(submissions: Path | None, name: object) -> str | None:
    """The README of a submission folder ``<submissions>/<name>/README.md`` (see
    :func:`_submission_file`), or None."""
    path = _submission_file(submissions, name, "README.md")
    return None if path is None else path.read_text(encoding="utf-8", errors="replace")


def _manifest(submissions: Path | None, name: object) -> dict[str, Any] | None:
    """The submission's ``metbench.toml`` (for ``trainable``), or None if absent or unreadable."""
    import tomllib

    path = _submission_file(submissions, name, "metbench.toml")
    if path is None:
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (tomllib.TOMLDecodeError, OSError):
        return None


def _training(submissions: Path | None, entry: dict[str, Any], cache: dict[str, Any]) -> str:
    """The training behind the entry's weights, as its history says
    (:func:`metbench.training.training_summaries`), in one line; ``cache`` keeps each
    submission's trainings for the next of its entries."""
    from metbench.training import training_summaries

    name = entry.get("submission")
    path = _submission_file(submissions, name, "metbench.toml")
    if path is None or not isinstance(name, str):
        return "— (no submission folder)"
    if name not in cache:
        try:
            cache[name] = training_summaries(path.parent)
        except MetbenchError as exc:
            cache[name] = str(exc)
    found = cache[name]
    if isinstance(found, str):
        return f"— ({found})"
    base = str(entry.get("name", "")).split("[", 1)[0]  # an entry run with --param: its weights
    for t in found:
        if base in t.entries:
            return str(t.describe())
    return "— (no training history)"


#: What a submission's folder name may be (as ``metbench.toml``'s ``name``).
_SUBMISSION_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """What the front page embeds: everything but the groups' tables, plots and entries (those
    are in ``data/<group id>.js``, loaded when the dataset is shown)."""
    out = {k: v for k, v in data.items() if k != "groups"}
    out["groups"] = [
        {"id": g["id"], "dataset": g["dataset"], "n_entries": len(g["entries"]),
         "script": f"data/{g['id']}.js", "compare_script": f"data/{g['id']}.compare.js",
         "legend": g["legend"]}
        for g in data["groups"]
    ]  # fmt: skip
    return out


def _compare_body() -> str:
    """The compare page's frame (its script fills it from the dataset's data files)."""
    return """<header>
<h1>Compare two entries</h1>
<p>Two entries of one dataset and task: their binned curves overlaid, and the differences of
their figures (B − A). Both are scored on the same events with the same bootstrap resamples, so
the interval of S(B) − S(A) is that of the paired differences: an interval above 0 means A is
better (lower S). The results keep the bootstrap replicas of S only; the other figures'
differences are shown without an interval, each entry's own interval beside them.
<a href="metrics.html">What the figures are</a>.</p>
</header>
<main id="compare" aria-live="polite"><p class="loading">Loading…</p></main>
<noscript><p>This page needs JavaScript; every entry's figures are also in its results
files.</p></noscript>
"""


def build_site(
    results: list[dict[str, Any]],
    out: Path,
    submissions: Path | None = Path("submissions"),
    verification: Sequence[dict[str, Any] | None] | None = None,
    figures: bool = True,
    speed: Path | None = None,
) -> Path:
    """Write the site to ``out`` (replaced as a whole: built in a temporary folder, then moved).

    Pages: ``index.html`` (the tables, filters, plots; each dataset's data in
    ``data/<group id>.js``, loaded as a script when it is shown, so that the site also works from
    ``file://``), ``metrics.html``, ``dataset.html``, ``submit.html``, ``speed.html`` and one page per entry
    and dataset in ``entry/``; downloads in ``results/`` and ``figures/``.

    Parameters
    ----------
    results
        Results documents (``metbench.results.read_results``).
    out
        The site folder.
    submissions
        Where to find each entry's README and manifest (``<submissions>/<submission>/``).
    verification
        How each of ``results`` was checked (:func:`verify_for_site`), shown as a mark
        ("verified" or "not re-scored"; "stale" when the submission's code in ``submissions``
        now has another content hash than the one that made the predictions); None: no mark.
    figures
        Also draw the mplhep figures (PNG and PDF; the slow part of a build).
    speed
        asv results across commits (``leaderboard/speed``, :mod:`metbench.leaderboard.speed`),
        drawn on ``speed.html``; None or an empty folder: the page says none is recorded.

    Returns
    -------
    Path
        ``out / "index.html"``.
    """
    checks = list(verification) if verification is not None else None
    if checks is not None and submissions is not None:
        current = current_content_hashes(submissions, {r["entry"]["submission"] for r in results})
        checks = [
            None
            if c is None
            else {**c, "current_content_hash": current.get(r["entry"]["submission"])}
            for r, c in zip(results, checks, strict=True)
        ]
    data = site_data(results, checks)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for folder in ("assets", "figures", "entry", "results", "data"):
            (tmp / folder).mkdir()
        assets = resources.files("metbench.leaderboard") / "assets"
        for name in ("style.css", "site.js", "index.js", "entry.js", "compare.js"):
            (tmp / "assets" / name).write_text(
                (assets / name).read_text(encoding="utf-8"), encoding="utf-8"
            )
        data["downloads"] = _figures(data, tmp) if figures else {}
        by_name = {}
        for r in results:
            by_name[(r["dataset"]["manifest_sha256"], r["entry"]["name"])] = r
        for g_index, group in enumerate(data["groups"]):
            for name, entry in group["entries"].items():
                entry["page"] = f"entry/g{g_index}-{entry_slug(name)}.html"
            for entry in group["entries"].values():
                if entry.get("seed_of"):
                    entry["seed_of_page"] = group["entries"][entry["seed_of"]]["page"]
        pages_of: dict[str, list[tuple[str, str]]] = {}
        for group in data["groups"]:
            d = group["dataset"]
            label = (
                f"{d['name']} v{d.get('version')}, split {d['split']} ({d['manifest_sha256'][:12]})"
            )
            for name, entry in group["entries"].items():
                pages_of.setdefault(name, []).append((label, entry["page"]))
        columns = data["columns"]["met"]
        trainings: dict[str, Any] = {}
        for group in data["groups"]:
            for name, entry in group["entries"].items():
                slug = Path(entry["page"]).stem
                result = by_name[(group["dataset"]["manifest_sha256"], name)]
                downloads = {"json": f"../results/{slug}.json", "csv": f"../results/{slug}.csv"}
                (tmp / "results" / f"{slug}.json").write_text(
                    json.dumps(result, indent=1), encoding="utf-8"
                )
                (tmp / "results" / f"{slug}.csv").write_text(_results_csv(result), encoding="utf-8")
                readme = _readme(submissions, entry.get("submission"))
                manifest = _manifest(submissions, entry.get("submission"))
                elsewhere = [
                    (label, "../" + page) for label, page in pages_of[name] if page != entry["page"]
                ]
                page_data = {
                    "entry": entry,
                    "dataset": {**group["dataset"], "id": group["id"]},
                    "figures": data["figures"],
                    "kinematic_figures": data["kinematic_figures"],
                    "columns": data["columns"],
                }
                trainable = (manifest or {}).get("trainable")
                training = (
                    _training(submissions, entry, trainings)
                    if trainable
                    else "none (not trainable)"
                    if trainable is False
                    else "—"
                )
                body = _entry_body(
                    entry, readme, downloads, group["dataset"]["marks"], group["dataset"],
                    columns, elsewhere, manifest, group["id"], training,
                )  # fmt: skip
                (tmp / "entry" / f"{slug}.html").write_text(
                    _page(f"{name} — metbench", body, page_data, "entry.js", depth=1),
                    encoding="utf-8",
                )
            shown = {k: v for k, v in group.items() if k != "compare"}
            (tmp / "data" / f"{group['id']}.js").write_text(
                f"MB.receive({_json_for_script(group['id'])}, {_json_for_script(shown)});\n",
                encoding="utf-8",
            )
            compare_id = _json_for_script(f"{group['id']}.compare")
            (tmp / "data" / f"{group['id']}.compare.js").write_text(
                f"MB.receive({compare_id}, {_json_for_script(group['compare'])});\n",
                encoding="utf-8",
            )
        summary = _summary(data)
        (tmp / "index.html").write_text(
            _page("metbench leaderboard", _index_body(data), summary, "index.js",
                  current="index.html"),
            encoding="utf-8",
        )  # fmt: skip
        (tmp / "compare.html").write_text(
            _page("Compare two entries — metbench", _compare_body(), summary, "compare.js",
                  current="compare.html"),
            encoding="utf-8",
        )  # fmt: skip
        for file, title, body in (
            ("metrics.html", "Metrics", metrics_body(columns)),
            ("dataset.html", "Datasets", dataset_body(data["groups"])),
            ("submit.html", "How to submit", submit_body()),
            (
                "speed.html",
                "Speed history",
                speed_body(
                    read_speed_history(speed) if speed else [],
                    continuous_demo(speed) if speed else "",
                ),
            ),
        ):
            (tmp / file).write_text(
                _page(f"{title} — metbench", f"<main>{body}</main>", current=file),
                encoding="utf-8",
            )
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"
