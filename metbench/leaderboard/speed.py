"""The site's speed history: asv results across commits, read from asv's own JSON files.

``python benchmarks/history.py`` runs a fixed set of asv benchmarks on each of the last commits and
copies asv's result files into ``leaderboard/speed/`` (committed): ``benchmarks.json`` (asv's
description of the suite) and ``<machine>/machine.json`` with one ``<commit>-<environment>.json``
per commit. This module reads them (asv results format version 2) and renders the page
``speed.html``: one chart and one table per benchmark and parameter, commits in the order of their
dates, a failed or missing run as a gap.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["SpeedSeries", "continuous_demo", "read_speed_history", "speed_body"]

#: asv's units, as the page shows them.
_UNITS: Final[dict[str, str]] = {"seconds": "s", "bytes": "bytes"}


@dataclass
class SpeedSeries:
    """One benchmark (with one parameter combination) on one machine across commits.

    Attributes
    ----------
    name
        asv's benchmark name (``module.Class.method``).
    parameters
        ``name=value`` of each parameter, empty without parameters.
    machine
        asv's machine name.
    unit
        The value's unit (``s``, ``bytes`` or the benchmark's own, e.g. ``ratio``).
    points
        ``(commit hash, commit date [ms since the epoch], value or None)``, ordered by date.
    """

    name: str
    parameters: str
    machine: str
    unit: str
    points: list[tuple[str, int, float | None]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name + (f" ({self.parameters})" if self.parameters else "")


def _value(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def read_speed_history(folder: Path) -> list[SpeedSeries]:
    """Every series of the asv results under ``folder`` (empty if there are none).

    Raises
    ------
    ValueError
        A result file that is not asv's format version 2 (one line naming the file).
    """
    folder = Path(folder)
    described = folder / "benchmarks.json"
    if not described.is_file():
        return []
    benchmarks = json.loads(described.read_text(encoding="utf-8"))
    series: dict[tuple[str, str, str], SpeedSeries] = {}
    for machine_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(machine_dir.glob("*.json")):
            if path.name == "machine.json":
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("version") != 2 or "result_columns" not in doc:
                raise ValueError(f"{path}: not an asv results file of format version 2")
            column = doc["result_columns"].index("result")
            for name, row in doc.get("results", {}).items():
                info = benchmarks.get(name)
                if info is None:
                    continue
                values = row[column]
                combos = list(itertools.product(*info.get("params", []))) or [()]
                values = values if isinstance(values, list) else [values] * len(combos)
                unit = _UNITS.get(info.get("unit", ""), info.get("unit", ""))
                for combo, v in zip(combos, values, strict=False):
                    params = ", ".join(
                        f"{n}={p}" for n, p in zip(info.get("param_names", []), combo, strict=False)
                    )
                    key = (name, params, machine_dir.name)
                    s = series.setdefault(key, SpeedSeries(name, params, machine_dir.name, unit))
                    s.points.append((doc["commit_hash"], int(doc.get("date") or 0), _value(v)))
    for s in series.values():
        s.points.sort(key=lambda p: (p[1], p[0]))
    return sorted(series.values(), key=lambda s: (s.machine, s.name, s.parameters))


def continuous_demo(folder: Path) -> str:
    """The page's account of ``benchmarks/continuous_demo.sh`` (escaped HTML; empty if its
    output ``continuous-demo.txt`` is not in ``folder``): asv's comparison table and verdict."""
    path = Path(folder) / "continuous-demo.txt"
    if not path.is_file():
        return ""
    lines = [
        line.rstrip()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("|") or line.isupper() or line.startswith(("SOME", "PERFORMANCE"))
    ]
    return (
        "<h2>Catching a slowdown</h2><p><code>benchmarks/continuous_demo.sh</code> commits a "
        "deliberate slowdown (the loader spins for 20% of the time each batch took) on top of "
        "<code>main</code> and runs <code>asv continuous --factor 1.1</code> on the two commits "
        "(4 interleaved rounds of 10 samples); asv's verdict, as it printed it:</p><pre>"
        + html.escape("\n".join(lines))
        + "</pre><p>On the loaded machine of that run the measured ratio exceeds 1.2: the spin "
        "ends late whenever the process is descheduled.</p>"
    )


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "bytes":
        return f"{value / 2**20:.4g} MiB"
    return f"{value:.3g} {unit}".strip()


def _chart(s: SpeedSeries, width: int = 640, height: int = 180) -> str:
    """An inline SVG line of the series (gaps where a run failed), its range on the y axis."""
    values = [v for _, _, v in s.points if v is not None]
    if not values:
        return "<p>No successful run recorded.</p>"
    lo, hi = min(values), max(values)
    lo, hi = (0.0, hi * 1.1) if lo >= 0 and lo < 0.5 * hi else (lo * 0.95, hi * 1.05)
    if hi <= lo:
        hi = lo + 1.0
    left, right, top, bottom = 70, 10, 10, 30
    n = len(s.points)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    paths: list[list[str]] = []
    current: list[str] = []
    for i, (_, _, v) in enumerate(s.points):
        if v is None:
            if current:
                paths.append(current)
            current = []
        else:
            current.append(f"{x(i):.1f},{y(v):.1f}")
    if current:
        paths.append(current)
    lines = "".join(
        f'<polyline points="{" ".join(p)}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
        for p in paths
    )
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="#1f77b4">'
        f"<title>{html.escape(c[:8])}: {html.escape(_fmt(v, s.unit))}</title></circle>"
        for i, (c, _, v) in enumerate(s.points)
        if v is not None
    )
    axis = (
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#555"/>'
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{html.escape(_fmt(hi, s.unit))}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">'
        f"{html.escape(_fmt(lo, s.unit))}</text>"
        f'<text x="{left}" y="{height - 8}">{html.escape(s.points[0][0][:8])}</text>'
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end">'
        f"{html.escape(s.points[-1][0][:8])}</text>"
    )
    return (
        f'<svg class="speed-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(s.label)} across {n} commits" font-size="11">'
        f"{axis}{lines}{dots}</svg>"
    )


def speed_body(series: list[SpeedSeries], how: str = "") -> str:
    """The body of ``speed.html`` (escaped HTML): what was measured and how, then per series a
    chart and a table (oldest commit first)."""
    out = [
        "<h1>Speed history</h1>",
        "<p>asv benchmarks run on each commit of a stretch of <code>main</code>, on one machine "
        "(lower is faster for times and memory; the charts name the first and the last commit; "
        "<code>python benchmarks/history.py --commits N</code> adds the newer ones). Every point "
        "is one commit; a gap is a run that failed, usually because the benchmark used an "
        "interface the commit did not have yet.</p>",
    ]
    if how:
        out.append(how)
    if not series:
        out.append("<p>No asv history is recorded in this build.</p>")
        return "\n".join(out)
    commits = {c for s in series for c, _, _ in s.points}
    machines = sorted({s.machine for s in series})
    out.append(
        f"<p>{len(series)} series over {len(commits)} commits, machine "
        f"{html.escape(', '.join(machines))}.</p><nav aria-label='benchmarks'><ul>"
    )
    for i, s in enumerate(series):
        out.append(f'<li><a href="#s{i}">{html.escape(s.label)}</a></li>')
    out.append("</ul></nav>")
    for i, s in enumerate(series):
        rows = "".join(
            f"<tr><td><code>{html.escape(c[:8])}</code></td>"
            f"<td>{html.escape(_date(d))}</td>"
            f"<td>{'failed' if v is None else html.escape(_fmt(v, s.unit))}</td></tr>"
            for c, d, v in s.points
        )
        out.append(
            f'<section id="s{i}"><h2>{html.escape(s.label)}</h2>{_chart(s)}'
            f'<div class="table-scroll"><table><thead><tr><th>commit</th><th>date (UTC)</th>'
            f"<th>{html.escape(s.unit or 'value')}</th></tr></thead><tbody>{rows}</tbody>"
            "</table></div></section>"
        )
    return "\n".join(out)


def _date(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M") if ms else "?"
