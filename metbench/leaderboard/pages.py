"""The explanatory pages of the leaderboard site (metrics, dataset, how to submit) and the
README of an entry rendered as Markdown.

Nothing here restates a definition by hand: the metrics page renders the docstrings of
:mod:`metbench.scoring.metrics` and :mod:`metbench.scoring.ranking` (a small reStructuredText
subset: sections, paragraphs, bullets, literal blocks and simple tables), the one-line
:data:`~metbench.scoring.table.S_DEFINITION` and :data:`~metbench.scoring.ranking.RANK_RULE`,
and the constants of :mod:`metbench.scoring.metrics`; the dataset page renders the presets
(:data:`metbench.data.generate.presets.PRESETS`), the processes, the detector's docstring and
:mod:`metbench.data.published`. Every piece of text is escaped (``html.escape``) before any
markup is added.
"""

from __future__ import annotations

import html
import inspect
import math
import re
from typing import Any, Final

__all__ = [
    "dataset_body",
    "figure_definitions",
    "metrics_body",
    "render_markdown",
    "rst_to_html",
    "submit_body",
    "vector_drawing",
]


# --------------------------------------------------------------------------------------------
# a small reStructuredText subset (the docstrings of this project)
# --------------------------------------------------------------------------------------------
_ROLE: Final = re.compile(r":(?:func|data|mod|class|meth|attr):`~?([^`]+)`")
_LITERAL: Final = re.compile(r"``(.+?)``")
_EMPHASIS: Final = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")


def _inline(text: str) -> str:
    """Escape ``text`` and turn ``literal``, :role:`target` and *emphasis* into markup."""
    out = html.escape(text, quote=False)
    out = _ROLE.sub(lambda m: f"<code>{m.group(1).split('.')[-1]}</code>", out)
    out = _LITERAL.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _EMPHASIS.sub(lambda m: f"<em>{m.group(1)}</em>", out)


def _simple_table(lines: list[str]) -> str:
    """An RST simple table (``====`` rules; the last column takes the rest of the line)."""
    rule = lines[0]
    starts = [m.start() for m in re.finditer(r"=+", rule)]
    rows = [line for line in lines if not re.fullmatch(r"[= ]+", line)]

    def cells(line: str) -> list[str]:
        # a cell may run past its rule (a long name): its column then ends at the next gap
        out, pos = [], 0
        for start in starts[1:]:
            cut = max(start, pos)
            if cut < len(line) and line[cut - 1] != " ":
                gap = re.compile(r" {2,}").search(line, cut)
                cut = gap.start() if gap else len(line)
            out.append(line[pos:cut].strip())
            pos = cut
        return [*out, line[pos:].strip()]

    head, *body = (cells(r) for r in rows)
    out = ["<div class='table-scroll'><table class='doc'><thead><tr>"]
    out += [f"<th>{_inline(c)}</th>" for c in head]
    out.append("</tr></thead><tbody>")
    for row in body:
        out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def rst_to_html(text: str, heading: int = 3) -> str:
    """Render a docstring (the reStructuredText subset this project writes) as HTML.

    Parameters
    ----------
    text
        The docstring (``inspect.cleandoc``-ed here).
    heading
        The HTML heading level of its sections (``Title`` over a ``----`` rule).

    Returns
    -------
    str
        Escaped HTML: paragraphs, ``* ``/``- `` bullet lists, ``::`` literal blocks, simple tables
        and section headings; inline ``literal``, roles and *emphasis*.
    """
    lines = inspect.cleandoc(text).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            out.append(f"<h{heading}>{_inline(line.strip())}</h{heading}>")
            i += 2
            continue
        if re.fullmatch(r"=+( +=+)+", line):
            block = []
            rules = 0
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                rules += bool(re.fullmatch(r"[= ]+", lines[i]))
                i += 1
                if rules == 3:
                    break
            out.append(_simple_table(block))
            continue
        if re.match(r"[*-] ", line):
            items: list[str] = []
            while i < len(lines) and (re.match(r"[*-] ", lines[i]) or lines[i].startswith("  ")):
                if re.match(r"[*-] ", lines[i]):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(it)}</li>" for it in items) + "</ul>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not re.match(r"[*-] ", lines[i]):
            if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
                break
            para.append(lines[i].strip())
            i += 1
        joined = " ".join(para)
        literal = joined.endswith("::")
        if literal:
            joined = joined[:-1]
        out.append(f"<p>{_inline(joined)}</p>")
        if literal:
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            out.append(f"<pre>{html.escape(inspect.cleandoc(chr(10).join(block)))}</pre>")
    return "\n".join(out)


def figure_definitions() -> dict[str, str]:
    """The figure table of :mod:`metbench.scoring.metrics`'s docstring: figure -> definition
    (plain text, e.g. ``{"response": "R = <e_par> / <|t|> (a ratio of means)", …}``)."""
    from metbench.scoring import metrics

    out: dict[str, str] = {}
    doc = inspect.cleandoc(metrics.__doc__ or "")
    rows = re.findall(r"^``(\w+(?:<T>)?)``\s{2,}(.+?)(?:\s{2,}\S+)?$", doc, flags=re.M)
    for name, definition in rows:
        out[name] = definition.replace("``", "").strip()
    return out


def _summary(obj: Any) -> str:
    """A function's or class's docstring up to its NumPy ``Parameters`` section."""
    doc = inspect.getdoc(obj) or ""
    return re.split(r"\n(?:Parameters|Returns|Attributes)\n-+\n", doc)[0]


# --------------------------------------------------------------------------------------------
# the drawing of e (or u) against the truth
# --------------------------------------------------------------------------------------------
def vector_drawing() -> str:
    """An inline SVG: the truth ``t``, an estimate ``e``, and ``e``'s components along ``t``
    (``e_par = e . t_hat``) and across it (``e_perp``); the recoil task's ``u = -e``."""
    ox, oy = 150.0, 232.0
    ta, tl = math.radians(12), 300.0
    ea, el = math.radians(32), 262.0
    tx, ty = ox + tl * math.cos(ta), oy - tl * math.sin(ta)
    ex, ey = ox + el * math.cos(ea), oy - el * math.sin(ea)
    par = el * math.cos(ea - ta)
    fx, fy = ox + par * math.cos(ta), oy - par * math.sin(ta)
    ux, uy = ox - 0.4 * el * math.cos(ea), oy + 0.4 * el * math.sin(ea)
    sx, sy = 16 * math.sin(ta), 16 * math.cos(ta)  # e_par drawn beside t, shifted below it
    return f"""<figure class="drawing">
<svg viewBox="0 70 560 250" role="img" aria-labelledby="vec-title vec-desc" class="vectors">
<title id="vec-title">The estimate against the truth</title>
<desc id="vec-desc">The truth t and an estimate e drawn from one point; e is split into e parallel,
its projection on the direction of t, and e perpendicular, across it. The recoil is u = -e.</desc>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7"
orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>
<line x1="{ox - 60 * math.cos(ta):.1f}" y1="{oy + 60 * math.sin(ta):.1f}"
 x2="{ox + 390 * math.cos(ta):.1f}" y2="{oy - 390 * math.sin(ta):.1f}" class="axis-t"/>
<line x1="{ox:.1f}" y1="{oy:.1f}" x2="{tx:.1f}" y2="{ty:.1f}" class="vec-t" marker-end="url(#arrow)"/>
<line x1="{ox:.1f}" y1="{oy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" class="vec-e" marker-end="url(#arrow)"/>
<line x1="{fx:.1f}" y1="{fy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" class="vec-perp" marker-end="url(#arrow)"/>
<line x1="{ox + sx:.1f}" y1="{oy + sy:.1f}" x2="{fx + sx:.1f}" y2="{fy + sy:.1f}" class="vec-par"
 marker-end="url(#arrow)"/>
<line x1="{ox:.1f}" y1="{oy:.1f}" x2="{ux:.1f}" y2="{uy:.1f}" class="vec-u" marker-end="url(#arrow)"/>
<text x="{tx - 10:.1f}" y="{ty + 34:.1f}" class="lab-t">t (truth)</text>
<text x="{ex - 110:.1f}" y="{ey - 8:.1f}" class="lab-e">e (estimate)</text>
<text x="{ex + 10:.1f}" y="{(ey + fy) / 2:.1f}" class="lab-perp">e⊥ = t̂ × e</text>
<text x="{(ox + fx) / 2 - 10:.1f}" y="{(oy + fy) / 2 + 44:.1f}" class="lab-par">e∥ = e · t̂</text>
<text x="{ux + 20:.1f}" y="{uy + 14:.1f}" class="lab-u">u = −e (recoil task)</text>
<circle cx="{ox:.1f}" cy="{oy:.1f}" r="3" class="origin"/>
</svg>
<figcaption>Each event's estimate <i>e</i> is projected on the direction t̂ of its truth
<i>t</i>: e∥ along it, e⊥ across it. The response compares e∥ with |t|; the residual
e/R<sub>k</sub> − t of S is the whole vector. In the recoil task the estimator runs on the
event without its selected dimuon and returns e′; the hadronic recoil is u = −e′, so u∥ = −e∥ and
u⊥ = −e⊥ with t = qT of the reconstructed dimuon.</figcaption>
</figure>"""


# --------------------------------------------------------------------------------------------
# the pages
# --------------------------------------------------------------------------------------------
def metrics_body(columns: list[dict[str, Any]]) -> str:
    """The metrics page: every figure's formula (from the scoring modules' docstrings), the
    drawing, how S and ties are defined, the calibrated figures, and which way is better.

    Parameters
    ----------
    columns
        The MET table's columns as the site shows them (``{key, label, tip, better}``).
    """
    from metbench.scoring import metrics, ranking
    from metbench.scoring.metrics import (
        FIGURES,
        HEADLINE_EDGES,
        MIN_BIN_EVENTS,
        MIN_MEAN_TRUTH,
        MIN_RESPONSE,
        ResponseCurve,
        fake_rate,
        fit_response_curve,
        pileup_extrapolation,
        pileup_fit,
        roc_auc,
    )
    from metbench.scoring.ranking import RANK_RULE
    from metbench.scoring.table import S_DEFINITION

    better = {"lower": "lower is better ↓", "higher": "higher is better ↑",
              "one": "closer to 1 is better"}  # fmt: skip
    column_rows = "".join(
        f"<tr><th scope='row'>{html.escape(c['label'])}</th><td>{html.escape(c['tip'])}</td>"
        f"<td>{html.escape(better.get(c['better'] or '', '—'))}</td></tr>"
        for c in columns
    )
    lower = ", ".join(
        html.escape(label + (f" [{unit}]" if unit else ""))
        for label, unit, low in FIGURES.values()
        if low
    )
    edges = ", ".join(f"{e:g}" for e in HEADLINE_EDGES) + ", ∞"
    sections = [
        ("In one line", f"<p class='definition'>{html.escape(S_DEFINITION)}</p>"
                        f"<p class='definition'>{html.escape(RANK_RULE)}</p>"),
        ("The columns of the tables",
         "<div class='table-scroll'><table class='doc'><thead><tr><th>column</th>"
         "<th>what it is</th><th>direction</th></tr></thead>"
         f"<tbody>{column_rows}</tbody></table></div>"
         f"<p><b>Lower is better</b> for {lower}. The response R is best at 1; the fake-MET AUC "
         "is best high. Intervals are 95% bootstrap intervals.</p>"),
        ("Components against the truth", vector_drawing()),
        ("Every figure (metbench.scoring.metrics)", rst_to_html(metrics.__doc__ or "", 4)),
        ("Constants",
         f"<ul><li>bins of S in |t| (or qT) [GeV]: {html.escape(edges)}</li>"
         f"<li>a bin enters S with at least {MIN_BIN_EVENTS} events</li>"
         f"<li>R is defined where ⟨|t|⟩ ≥ {MIN_MEAN_TRUTH:g} GeV; an entry whose R_k interval "
         f"reaches 0 or lies below {MIN_RESPONSE:g} in a bin of S gets no S (shown —)</li></ul>"),
        ("The calibrated figures",
         "<p>The calibrated S inverts a response curve measured on the validation split, so "
         "that it shows the resolution an analysis would get after a calibration of its own "
         "(results without validation predictions have none: —).</p>"
         + rst_to_html(_summary(fit_response_curve))
         + rst_to_html(_summary(ResponseCurve.calibrate))),
        ("Pileup dependence",
         rst_to_html(_summary(pileup_fit)) + rst_to_html(_summary(pileup_extrapolation))),
        ("Fake MET", rst_to_html(_summary(roc_auc)) + rst_to_html(_summary(fake_rate))),
        ("Ranks and ties (metbench.scoring.ranking)", rst_to_html(ranking.__doc__ or "", 4)),
    ]  # fmt: skip
    toc = "".join(
        f"<li><a href='#m{i}'>{html.escape(title)}</a></li>"
        for i, (title, _) in enumerate(sections)
    )
    body = "".join(
        f"<section id='m{i}'><h2>{html.escape(title)}</h2>{content}</section>"
        for i, (title, content) in enumerate(sections)
    )
    return (
        "<h1>How entries are scored</h1><p>What every figure on this site is, taken from the "
        "scoring code's own documentation. <b>Lower is better</b> for S and every resolution "
        f"(↓ in the table headers).</p><nav class='toc'><ol>{toc}</ol></nav>{body}"
    )


def _mu_text(mu: dict[str, Any]) -> str:
    if mu.get("kind") == "uniform":
        return f"μ uniform in [{mu['low']:g}, {mu['high']:g}]"
    if mu.get("kind") == "fixed":
        return f"μ = {mu['value']:g} (fixed)"
    return html.escape(str(mu))


def dataset_body(groups: list[dict[str, Any]]) -> str:
    """The dataset page: the presets, processes, pileup, detector, the datasets of these
    results (counts per process, the n_pu profile), what the published manifest hash pins, and
    pu200 as an extrapolation test.

    Parameters
    ----------
    groups
        :func:`metbench.leaderboard.data.site_data`'s groups (with their ``id``).
    """
    from metbench.data import published
    from metbench.data.generate import detector
    from metbench.data.generate.presets import PRESETS
    from metbench.data.generate.processes import PROCESSES
    from metbench.scoring.score import NO_INVISIBLE_PROCESSES, RECOIL_PROCESSES

    proc_rows = "".join(
        f"<tr><th scope='row'><code>{html.escape(p.name)}</code></th>"
        f"<td>{html.escape(p.description)}</td>"
        f"<td>{'fake MET' if p.name in NO_INVISIBLE_PROCESSES else 'MET'}"
        f"{', recoil' if p.name in RECOIL_PROCESSES else ''}</td></tr>"
        for p in PROCESSES.values()
    )
    preset_rows = []
    for spec in PRESETS.values():
        splits = " / ".join(f"{k} {v:g}" for k, v in spec.split_fractions.items())
        pinned = [
            f"seed {seed}: <code class='hash'>{html.escape(h)}</code>"
            for (name, seed), h in published.PUBLISHED_MANIFESTS.items()
            if name == spec.name
        ]
        preset_rows.append(
            f"<tr><th scope='row'><code>{html.escape(spec.name)}</code> v{html.escape(spec.version)}"
            f"</th><td>{len(spec.processes)} × {spec.events_per_process:,}</td>"
            f"<td>{_mu_text(spec.mu)}, vertex z σ = {spec.sigma_z:g} cm; pool of "
            f"{spec.pool_size:,} minimum-bias events</td><td>{html.escape(splits)}</td>"
            f"<td>{html.escape(spec.puppi_tune)}</td><td>{'<br>'.join(pinned) or 'not published'}"
            "</td></tr>"
        )
    trained = sorted(
        {float(spec.mu["high"]) for spec in PRESETS.values() if spec.mu.get("kind") == "uniform"}
    )
    pu200 = PRESETS.get("pu200")
    extrapolation = (
        f"<p><b>pu200 is an extrapolation test.</b> Its events have {_mu_text(pu200.mu)} and a "
        f"test split only ({html.escape(' / '.join(f'{k} {v:g}' for k, v in pu200.split_fractions.items()))}); "
        "the networks on this leaderboard were trained on the other presets, whose pileup reaches "
        f"μ = {', '.join(f'{t:g}' for t in trained)} at most. A figure on pu200 measures how an "
        "estimator carries to HL-LHC pileup, not how it does on the pileup it was tuned for; the "
        "pileup fit S² = a² + b² n_pu and its value at n_pu = 200 (on each entry's page) predict it "
        "from the lower pileup.</p>"
        if pu200 is not None
        else ""
    )
    sections = []
    for g in groups:
        d = g["dataset"]
        counts = g.get("counts") or {}
        rows = "".join(
            f"<tr><th scope='row'>{html.escape(str(k))}</th><td class='num'>{v:,.0f}</td></tr>"
            for k, v in (counts.get("process") or {}).items()
        )
        profile = "".join(
            f"<tr><th scope='row'>{html.escape(str(k))}</th><td class='num'>{v:,.0f}</td></tr>"
            for k, v in (counts.get("n_pu") or {}).items()
        )
        status = {True: "the published dataset (its manifest hash is the pinned one)",
                  False: "NOT the published dataset of its preset",
                  None: "a private dataset (not a published preset and seed)"}.get(
            d.get("pinned"), "not recorded")  # fmt: skip
        sections.append(
            f"<section id='ds-{html.escape(g['id'])}'><h3>{html.escape(d['name'])} "
            f"v{html.escape(str(d.get('version')))}, split {html.escape(d['split'])}</h3>"
            f"<p>{d.get('n_events') or 0:,} events in the split; manifest sha256 "
            f"<code class='hash'>{html.escape(d['manifest_sha256'])}</code>: {status}.</p>"
            + (
                "<div class='pair'><div class='table-scroll'><table class='doc'><caption>events "
                "per process (MET task)</caption><tbody>"
                f"{rows}</tbody></table></div>"
                if rows
                else "<div class='pair'>"
            )
            + (
                "<div class='table-scroll'><table class='doc'><caption>pileup profile: events per "
                f"true n_pu bin (MET task)</caption><tbody>{profile}</tbody></table></div>"
                if profile
                else ""
            )
            + "</div></section>"
        )
    detector_doc = (detector.__doc__ or "").split("\n\nUnits:")[0]
    return f"""<h1>The datasets</h1>
<p>Every entry is scored on the same events of one dataset split; figures of different datasets
are not comparable. The datasets are generated by <code>metbench data generate --preset NAME
--seed N</code>: Pythia 8 hard processes at √s = 13.6 TeV with premixed minimum-bias pileup, a fast
CMS-like detector and particle flow.</p>
<section><h2>Presets</h2><div class="table-scroll"><table class="doc"><thead><tr><th>preset</th>
<th>events (processes × per process)</th><th>pileup</th><th>splits</th><th>stored PUPPI tune</th>
<th>published manifest sha256</th></tr></thead><tbody>{"".join(preset_rows)}</tbody></table></div>
{extrapolation}</section>
<section><h2>Processes</h2><div class="table-scroll"><table class="doc"><thead><tr><th>process</th>
<th>content</th><th>scored in</th></tr></thead><tbody>{proc_rows}</tbody></table></div></section>
<section><h2>Detector</h2>{rst_to_html(detector_doc)}</section>
<section><h2>What the manifest hash pins</h2>{rst_to_html(published.__doc__ or "")}</section>
<section><h2>The datasets of these results</h2>{"".join(sections) or "<p>none</p>"}</section>
"""


def submit_body() -> str:
    """How to submit an entry (the commands of the CLI)."""
    from metbench.estimators import submission

    doc = rst_to_html(_summary(submission)) if submission.__doc__ else ""
    return f"""<h1>How to submit</h1>
<ol class="steps">
<li><p>Make a folder <code>submissions/&lt;name&gt;/</code> with a <code>metbench.toml</code>, your
code, your weights and a <code>README.md</code> (rendered on your entry's page as Markdown, raw
HTML off). An estimator is any class with <code>predict(batch) -&gt; (n, 2)</code>: MET px, py in
GeV.</p></li>
<li><p>Run it on the published dataset; it runs in a sandbox with no network and no truth, and
is scored by the one scoring implementation:</p>
<pre>metbench run submissions/&lt;name&gt; --dataset pu200 --results leaderboard/results</pre></li>
<li><p>Check that the results re-score to the recorded figures:</p>
<pre>metbench verify leaderboard/results</pre></li>
<li><p>Open a pull request with the folder and the results file beside its predictions; the site
is rebuilt (<code>metbench leaderboard build --strict</code>) after review.</p></li>
</ol>
<section><h2>The manifest (metbench.estimators.submission)</h2>{doc}</section>
<p>What the figures mean: <a href="metrics.html">metrics</a>; the events: <a
href="dataset.html">datasets</a>.</p>
"""


# --------------------------------------------------------------------------------------------
# README as Markdown
# --------------------------------------------------------------------------------------------
_LINKIFY: Final = re.compile(
    r"(?P<url>https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]])"
    r"|(?P<arxiv>\barXiv:\s?(?P<arxiv_id>\d{4}\.\d{4,5}(?:v\d+)?))"
    r"|(?P<doi>\b(?:doi:\s?)?(?P<doi_id>10\.\d{4,9}/[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]))",
    flags=re.IGNORECASE,
)


#: A GitHub repository written as ``owner/repo`` (owner: GitHub's user-name rule), a whole word:
#: not part of a path or URL. Linked in the paper field only (``render_markdown(github=True)``).
_GITHUB: Final = re.compile(
    r"(?<![\w./:@-])(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})"
    r"/(?P<repo>[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_-])?)(?![\w/@.-]*[\w/@-])"
)


def _github_reference(text: str, match: re.Match[str]) -> bool:
    """Whether an ``owner/repo`` match is taken as a repository: not a pair of acronyms or
    numbers (``CDF/D0``, ``W/Z``, ``1/2``: no lower-case letter in either part), not a pair of
    short words (``and/or``, ``px/py``: both at most 3 characters) and not a CMSSW package
    (``CMSSW RecoMET/METPUSubtraction``: the word before it is ``CMSSW``)."""
    owner, repo = match.group("owner"), match.group("repo")
    if not any(c.islower() for c in owner + repo) or not any(c.isalpha() for c in owner):
        return False
    if len(owner) <= 3 and len(repo) <= 3:
        return False
    before = text[: match.start()].rstrip().rsplit(None, 1)
    return not (before and before[-1].upper() == "CMSSW")


def _href(match: re.Match[str]) -> str:
    if "owner" in match.groupdict():
        return f"https://github.com/{match.group('owner')}/{match.group('repo')}"
    if match.group("url"):
        return match.group("url")
    if match.group("arxiv"):
        return f"https://arxiv.org/abs/{match.group('arxiv_id')}"
    return f"https://doi.org/{match.group('doi_id')}"


def _linkify_rule(state: Any) -> None:
    """Core rule: links for http(s) URLs, ``arXiv:NNNN.NNNNN`` and DOIs in text (outside links
    and code); links whose target is not http(s) or an in-page anchor become plain text."""
    from markdown_it.token import Token

    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        depth = 0
        for tok in block.children:
            if tok.type == "link_open":
                href = str(tok.attrGet("href") or "")
                if not re.match(r"https?://", href, flags=re.I):
                    tok.meta["dropped"] = True
                    continue
                tok.attrSet("rel", "noopener noreferrer")
                depth += 1
            elif tok.type == "link_close":
                if depth == 0:
                    continue  # the close of a dropped link
                depth -= 1
            if tok.type != "text" or depth > 0:
                children.append(tok)
                continue
            matches = list(_LINKIFY.finditer(tok.content))
            if state.env.get("github"):
                taken = [(m.start(), m.end()) for m in matches]
                matches += [
                    m for m in _GITHUB.finditer(tok.content)
                    if _github_reference(tok.content, m)
                    and not any(s < m.end() and m.start() < e for s, e in taken)
                ]  # fmt: skip
                matches.sort(key=lambda m: m.start())
            if not matches:
                children.append(tok)
                continue
            pos = 0
            for m in matches:
                if m.start() > pos:
                    children.append(_text(tok.content[pos : m.start()]))
                link = Token("link_open", "a", 1)
                link.attrSet("href", _href(m))
                link.attrSet("rel", "noopener noreferrer")
                children += [link, _text(m.group(0)), Token("link_close", "a", -1)]
                pos = m.end()
            if pos < len(tok.content):
                children.append(_text(tok.content[pos:]))
        block.children = children


def _text(content: str) -> Any:
    from markdown_it.token import Token

    tok = Token("text", "", 0)
    tok.content = content
    return tok


def _demote_headings(state: Any) -> None:
    """README headings sit under the page's own: ``#`` becomes ``<h3>``."""
    for tok in state.tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + 2)}"


def render_markdown(text: str, github: bool = False) -> str:
    """A README as HTML: CommonMark and tables, raw HTML off (shown as text), no images (the
    site loads nothing from the network), links only to http(s) (others become text) and
    http(s) URLs, arXiv identifiers and DOIs made links.

    Parameters
    ----------
    text
        Markdown from a submission (untrusted).
    github
        Also link GitHub repositories written as ``owner/repo`` to ``https://github.com/owner/repo``
        (for the paper field, a list of references; in prose ``and/or`` would be one).

    Returns
    -------
    str
        HTML whose every piece of the input is escaped by markdown-it.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").disable("image")
    md.core.ruler.push("metbench_linkify", _linkify_rule)
    md.core.ruler.push("metbench_headings", _demote_headings)
    return md.render(text, {"github": github})
