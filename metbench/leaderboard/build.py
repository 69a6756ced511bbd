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

from metbench.leaderboard.data import PLOT_FIGURES, legend_line, site_data

if TYPE_CHECKING:
    from metbench.verify import Verification

__all__ = ["build_site", "entry_slug", "verify_for_site"]

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


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` breakout)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, body: str, data: Any, script: str, depth: int = 0) -> str:
    up = "../" * depth
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{up}assets/style.css">
</head>
<body>
{body}
<script id="site-data" type="application/json">{_json_for_script(data)}</script>
<script src="{up}assets/site.js"></script>
<script src="{up}assets/{script}"></script>
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


def _robust_ylim(ax: Any) -> None:
    """Limit the y axis to the bulk of the points (a bin where R -> 0 makes sigma/R explode)."""
    import numpy as np

    lines = [np.asarray(line.get_ydata(), float) for line in ax.get_lines()]
    values = np.concatenate(lines) if lines else np.zeros(0)
    values = values[np.isfinite(values)]
    if len(values) > 4:
        lo, hi = np.percentile(values, [5, 95])
        span = hi - lo or abs(hi) or 1.0
        ax.set_ylim(lo - 0.5 * span, hi + 0.5 * span)


def _figures(data: dict[str, Any], out: Path) -> dict[str, dict[str, str]]:
    """mplhep figures (PNG and PDF) of each group's binned figures; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    made: dict[str, dict[str, str]] = {}
    for g_index, group in enumerate(data["groups"]):
        for binning in PLOT_BINNINGS:
            for figure in PLOT_FIGURES:
                fig, ax = plt.subplots(figsize=(7, 5))
                with plt.style.context(mplhep.style.CMS):
                    plotted = 0
                    for name, entry in group["entries"].items():
                        b = entry["plots"].get("met", {}).get(binning)
                        if b is None:
                            continue
                        f = b["figures"][figure]
                        values = [v if v is not None else float("nan") for v in f["value"]]
                        x = list(range(len(values)))
                        low = [
                            v - lo if v is not None and lo is not None else 0
                            for v, lo in zip(
                                f["value"], f.get("low") or [None] * len(values), strict=True
                            )
                        ]
                        high = [
                            hi - v if v is not None and hi is not None else 0
                            for v, hi in zip(
                                f["value"], f.get("high") or [None] * len(values), strict=True
                            )
                        ]
                        ax.errorbar(
                            x, values, yerr=[low, high], marker="o", ms=4, capsize=2, label=name
                        )
                        ax.set_xticks(x, b["labels"], rotation=45, ha="right", fontsize=8)
                        plotted += 1
                    if not plotted:
                        plt.close(fig)
                        continue
                    _robust_ylim(ax)
                    ax.set_xlabel(BINNING_LABELS[binning], fontsize=11)
                    ax.set_ylabel(MPL_LABELS[figure], fontsize=11)
                    ax.legend(fontsize=7, ncol=2)
                    ax.set_title(
                        f"{group['dataset']['name']} {group['dataset']['split']}: MET", fontsize=10
                    )
                    fig.tight_layout()
                    stem = f"g{g_index}_met_{figure}_vs_{binning}"
                    paths = {}
                    for ext in ("png", "pdf"):
                        fig.savefig(out / "figures" / f"{stem}.{ext}", dpi=110)
                        paths[ext] = f"figures/{stem}.{ext}"
                    made[stem] = paths
                plt.close(fig)
    return made


def _index_body(data: dict[str, Any]) -> str:
    return """<header>
<h1>metbench leaderboard</h1>
<p>Missing transverse momentum reconstruction, every entry on the same events, split and scoring.
Figures are against the generator's MET (the recoil task: against the selected dimuon's qT, with the
muons removed from the estimator's input); intervals are 95% bootstrap intervals.</p>
<p><b>S</b> (lower is better): over the processes with neutrinos, in bins of the true |MET| from
30 GeV (CMS edges), the response R_k = &Sigma;e&#8741; / &Sigma;|t| is corrected bin by bin and the
RMS per component of the residual e/R_k &minus; t is taken; S is the unweighted mean over the bins.
An entry whose response interval reaches 0 or lies below 0.1 in a bin gets no S ("&mdash;").
CMS's (P84&minus;P16)/2 figures are secondary columns: they are not robust to a non-linear
shrinkage of the estimate.</p>
<p><b>Ranks</b>: every entry is resampled alike (a Poisson bootstrap keyed by the event id); A
ranks ahead of B only if the 95% interval of S(B) &minus; S(A) lies above 0; rank = 1 + entries
ranked ahead, so entries ahead of none of each other share a rank (marked =). The oracle uses truth
(the limit of pileup removal) and is a reference ("ref"), not ranked.</p>
</header>
<main id="groups"></main>
<footer><p>Built by <code>metbench leaderboard build</code>. No file of this site is loaded from the network.</p></footer>
"""


def _entry_body(
    entry: dict[str, Any],
    readme: str | None,
    downloads: dict[str, str],
    dataset_marks: Sequence[dict[str, str]] = (),
) -> str:
    e = {
        k: html.escape(str(v))
        for k, v in entry.items()
        if isinstance(v, (str, int, float)) or v is None
    }
    weights = (
        "".join(
            f"<li><code>{html.escape(w)}</code> sha256 <code>{html.escape(h)}</code></li>"
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
        f"<pre class='readme'>{html.escape(readme)}</pre>" if readme else "<p>No README found.</p>"
    )
    params = html.escape(json.dumps(entry.get("parameters", {}), ensure_ascii=False))
    truth = ", ".join(entry.get("uses_truth") or []) or "none"
    marks = "".join(
        f' <span class="mark mark-{html.escape(m["kind"])}" '
        f'title="{html.escape(m["title"])}">{html.escape(m["label"])}</span>'
        for m in [*entry.get("marks", []), *dataset_marks]
    )
    legend = "".join(
        f'<p class="legend">{html.escape(legend_line(m["kind"]))}</p>'
        for m in [*entry.get("marks", []), *dataset_marks]
    )
    return f"""<header>
<p><a href="../index.html">← leaderboard</a></p>
<h1 id="entry-name">{e["name"]}</h1>
<p class="marks"><span class="kind kind-{html.escape(entry["kind"])}">{html.escape(entry["kind"])}</span>{marks}</p>
{legend}
<p>{e["description"]}</p>
</header>
<main>
<section>
<h2>About</h2>
<table class="meta">
<tr><th>paper</th><td>{e["paper"]}</td></tr>
<tr><th>authors</th><td>{html.escape(", ".join(entry.get("authors") or []))}</td></tr>
<tr><th>framework</th><td>{e["framework"]}</td></tr>
<tr><th>category</th><td>{e["category"]}</td></tr>
<tr><th>parameters of the run</th><td><code>{params}</code></td></tr>
<tr><th>trainable parameters</th><td>{e.get("n_parameters") or "—"}{" (self-reported)" if e.get("n_parameters") else ""}</td></tr>
<tr><th>submission content hash</th><td><code>{e["content_hash"]}</code></td></tr>
<tr><th>weights</th><td><ul>{weights}</ul></td></tr>
<tr><th>truth used</th><td>{html.escape(truth)}</td></tr>
<tr><th>dataset</th><td id="dataset-cell"></td></tr>
<tr><th>throughput hardware</th><td>{hardware}</td></tr>
<tr><th>results</th><td><a href="{html.escape(downloads["json"])}" download>JSON</a> · <a href="{html.escape(downloads["csv"])}" download>CSV</a></td></tr>
</table>
</section>
<section><h2>Throughput</h2>
<p class="legend">Self-reported: measured inside the submission's own process, which could alter
the measurement; the harness checks that the figures are plausible (the requested batch sizes,
finite positive rates, no more timed calls than the run lasted), it cannot check that they are
true.</p>
<div id="throughput-table"></div></section>
<section><h2>Binned figures</h2><div id="binned"></div></section>
<section><h2>README</h2>{readme_html}</section>
</main>
"""


def _readme(submissions: Path | None, name: object) -> str | None:
    """The README of a submission folder ``<submissions>/<name>/README.md``, only for a name of
    the submission pattern whose resolved path stays inside ``submissions`` (a results file
    naming ``../../x`` must not publish files of the machine that builds the site)."""
    if submissions is None or not isinstance(name, str) or not _SUBMISSION_NAME.fullmatch(name):
        return None
    root = Path(submissions).resolve()
    path = (root / name / "README.md").resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path.read_text(encoding="utf-8", errors="replace")


#: What a submission's folder name may be (as ``metbench.toml``'s ``name``).
_SUBMISSION_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")


def build_site(
    results: list[dict[str, Any]],
    out: Path,
    submissions: Path | None = Path("submissions"),
    verification: Sequence[dict[str, Any] | None] | None = None,
) -> Path:
    """Write the site to ``out`` (replaced as a whole: built in a temporary folder, then moved).

    Parameters
    ----------
    results
        Results documents (``metbench.results.read_results``).
    out
        The site folder.
    submissions
        Where to find each entry's README (``<submissions>/<submission>/README.md``).
    verification
        How each of ``results`` was checked (:func:`verify_for_site`), shown as a mark
        ("verified" or "not re-scored"); None: no mark.

    Returns
    -------
    Path
        ``out / "index.html"``.
    """
    data = site_data(results, list(verification) if verification is not None else None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "assets").mkdir()
        (tmp / "figures").mkdir()
        (tmp / "entry").mkdir()
        (tmp / "results").mkdir()
        assets = resources.files("metbench.leaderboard") / "assets"
        for name in ("style.css", "site.js", "index.js", "entry.js"):
            (tmp / "assets" / name).write_text(
                (assets / name).read_text(encoding="utf-8"), encoding="utf-8"
            )
        data["downloads"] = _figures(data, tmp)
        by_name = {}
        for r in results:
            by_name[(r["dataset"]["manifest_sha256"], r["entry"]["name"])] = r
        for g_index, group in enumerate(data["groups"]):
            for name, entry in group["entries"].items():
                slug = f"g{g_index}-{entry_slug(name)}"
                entry["page"] = f"entry/{slug}.html"
                result = by_name[(group["dataset"]["manifest_sha256"], name)]
                downloads = {"json": f"../results/{slug}.json", "csv": f"../results/{slug}.csv"}
                (tmp / "results" / f"{slug}.json").write_text(
                    json.dumps(result, indent=1), encoding="utf-8"
                )
                (tmp / "results" / f"{slug}.csv").write_text(_results_csv(result), encoding="utf-8")
                readme = _readme(submissions, entry.get("submission"))
                page_data = {
                    "entry": entry,
                    "dataset": group["dataset"],
                    "figures": data["figures"],
                }
                (tmp / "entry" / f"{slug}.html").write_text(
                    _page(
                        f"{name} — metbench",
                        _entry_body(entry, readme, downloads, group["dataset"]["marks"]),
                        page_data,
                        "entry.js",
                        depth=1,
                    ),
                    encoding="utf-8",
                )
        (tmp / "index.html").write_text(
            _page("metbench leaderboard", _index_body(data), data, "index.js"), encoding="utf-8"
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
