"""The leaderboard site as people use it (issue #18), in a real headless Chromium at a phone's
and a desktop's size: no page scrolls sideways, wide tables scroll in their own box with rank,
entry and S kept in view, no console errors, every link resolves, filters, sort and columns
round-trip through the permalink, downloads hold the rows shown, the keyboard reaches the
controls, the Pareto plot and its front, the charts' styles and legend, and the entry pages.

The site is built once for the module (without the mplhep figures) from the committed pu200
results and a copy of them posing as a second dataset with throughput rows, a runtime twin and a
kinematics task.
"""

from __future__ import annotations

import copy
import csv
import html
import io
import itertools
import json
import math
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from metbench.data.published import PUBLISHED_MANIFESTS
from metbench.leaderboard import build_site
from metbench.leaderboard.pages import figure_definitions, render_markdown
from metbench.results import find_results, read_results
from metbench.scoring.ranking import RANK_RULE
from metbench.scoring.table import S_DEFINITION
from tests.leaderboard import test_build as test_leaderboard

ROOT = Path(__file__).resolve().parents[2]
browser = test_leaderboard.browser  # the module's Chromium fixture, shared
open_page = test_leaderboard.open_page
SIZES = ((390, 844), (1400, 900))
SECOND = "mini-abababababab-test"


def _with_throughput(doc: dict, i: int) -> dict:
    c = copy.deepcopy(doc)
    c["dataset"].update(name="mini", manifest_sha256="ab" * 32, n_events=2040, pinned=None)
    c["throughput"] = {
        "device": "cpu",
        "batches": [
            {"batch_size": b, "events_per_s": 100.0 * (i + 1) * b**0.5,
             "latency_ms": {"p50": 1.0, "p99": 2.0}, "peak_rss_mb": 300.0}
            for b in (1, 64)
        ],
    }  # fmt: skip
    return c


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(index, second)``: the site, and the documents of the second dataset."""
    committed = [
        r
        for r in map(read_results, find_results([ROOT / "leaderboard" / "results"]))
        if r["dataset"]["name"] == "pu200"  # whatever other datasets are committed beside it
    ]
    assert committed
    # the first dataset without throughput rows (the Pareto plot says so), whatever was measured
    committed = [{**r, "throughput": None} for r in committed]
    second = [_with_throughput(r, i) for i, r in enumerate(committed)]
    twin = next(copy.deepcopy(r) for r in second if r["entry"]["name"] == "metnet-torch-torch")
    twin["entry"]["name"] = "metnet-torch-onnx"
    twin["entry"]["parameters"] = {"runtime": "onnx", "weights_file": "weights/metnet.onnx"}
    second.append(twin)
    kin = next(r for r in second if r["entry"]["name"] == "puppi")
    f = {"value": 50.0, "low": 45.0, "high": 55.0}
    kin["scores"]["tasks"]["kinematics"] = {
        "n_events": 100,
        "figures": {k: dict(f) for k in ("nu_pz_rms", "nu_pz_bias", "nu_pz_sigma",
                                         "nu_px_sigma", "m_w_median", "m_w_width",
                                         "m_top_median", "m_top_width", "m_top_in_window")},
    }  # fmt: skip
    out = tmp_path_factory.mktemp("site2") / "site"
    index = build_site(
        committed + second, out, ROOT / "submissions", figures=False,
        speed=ROOT / "leaderboard" / "speed",
    )  # fmt: skip
    return index, second


def _pages(index: Path) -> list[Path]:
    out = index.parent
    return [index, out / "metrics.html", out / "dataset.html", out / "submit.html",
            out / "speed.html", *sorted((out / "entry").glob("*.html"))]  # fmt: skip


def _wait(page) -> None:
    page.wait_for_selector("section.group table.met-table")


def test_front_page_is_small_and_loads_each_dataset_on_demand(built, browser):
    """index.html and its assets stay under 1 MB: each dataset's tables and plots are in
    data/<id>.js, loaded (as a script: file:// has no fetch) when that dataset is shown."""
    index, _ = built
    out = index.parent
    size = index.stat().st_size + sum(p.stat().st_size for p in (out / "assets").iterdir())
    assert size < 1_000_000
    embedded = json.loads(
        re.search(r'id="site-data" type="application/json">(.*?)</script>', index.read_text())[1]
    )
    assert [g["id"] for g in embedded["groups"]] == ["pu200-37baec8534c2-test", SECOND]
    assert all("entries" not in g and "tasks" not in g for g in embedded["groups"])
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "mini-abababababab-test.js", "pu200-37baec8534c2-test.js",
    ]  # fmt: skip
    page, problems, requests = open_page(browser, index.as_uri())
    _wait(page)
    assert not any(SECOND in u for u in requests)  # not loaded until asked for
    page.locator(f"button.dataset-button[data-group='{SECOND}']").click()
    page.wait_for_selector(f"section.group[data-group='{SECOND}'] table.met-table")
    assert any(u.endswith(f"data/{SECOND}.js") for u in requests)
    assert f"d={SECOND}" in page.evaluate("location.hash")
    assert problems == []


def _check_links(page, url: str, ids_of: dict[Path, list[str]]) -> int:
    """Every link of the page (after its script ran) is a local file that exists (with an
    element of the fragment's id), an in-page permalink, or an http(s) address; nothing else
    (no javascript:, no data:). Returns the number of links."""
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    assert hrefs, url
    for href in hrefs:
        parsed = urlparse(href)
        if parsed.scheme in ("http", "https"):
            continue
        assert parsed.scheme == "file", (url, href)
        target = Path(unquote(parsed.path))
        assert target.is_file(), (url, href)
        fragment = unquote(parsed.fragment)
        if fragment and "=" not in fragment:  # "#d=…&kind=…" is the index's permalink state
            if target not in ids_of:
                text = target.read_text(encoding="utf-8")
                ids_of[target] = re.findall(r"""id=["']([^"']+)["']""", text)
            assert fragment in ids_of[target], (url, href)
    return len(hrefs)


@pytest.mark.parametrize("width,height", SIZES)
def test_every_page_fits_the_screen_without_errors_and_its_links_resolve(
    built,
    browser,
    width,
    height,
):
    """On every page at 390×844 and 1400×900 the document is no wider than the screen, no
    console error is logged and every link resolves; the MET table scrolls in its own box with
    rank, entry and S in view (sticky) while the other columns move."""
    index, _ = built
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    urls = [p.as_uri() for p in _pages(index)] + [
        f"{index.as_uri()}#d={SECOND}",
        f"{index.as_uri()}#task=recoil&ptask=recoil&bin=process&fig=response",
    ]
    ids_of: dict[Path, list[str]] = {}
    links = 0
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("load")
        if url.startswith(index.as_uri()):
            _wait(page)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (url, width, overflow)
        links += _check_links(page, url, ids_of)
    assert problems == [] and links > 100

    page.goto(index.as_uri())
    _wait(page)
    box = page.locator("section.group .table-scroll").first
    if width < 600:
        assert box.evaluate("b => b.scrollWidth > b.clientWidth + 100")  # wide: it scrolls
    heads = {k: box.locator(f"thead th[data-key='{k}']") for k in ("rank", "entry", "S", "kind")}
    before = {k: h.bounding_box()["x"] for k, h in heads.items()}
    box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    after = {k: h.bounding_box()["x"] for k, h in heads.items()}
    if box.evaluate("b => b.scrollLeft") > 0:
        assert after["rank"] == before["rank"] and after["entry"] == before["entry"]
        assert after["S"] == before["S"]
        assert after["kind"] < before["kind"]  # the column after S scrolled under them
    page.close()


def _names(page) -> list[str]:
    return page.locator("table.met-table tbody tr[data-entry]").evaluate_all(
        "rows => rows.map(r => r.dataset.entry)"
    )


def _headers(page) -> list[str]:
    return page.locator("table.met-table thead th").evaluate_all(
        "ths => ths.map(t => t.dataset.key)"
    )


def test_filters_sort_and_columns_round_trip_through_the_permalink(built, browser):
    index, second = built
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(page)
    everyone = _names(page)
    assert "metnet-torch-onnx" in everyone and "metnet-torch-torch" in everyone
    page.locator("input.collapse-twins").check()
    assert len(_names(page)) == len(everyone) - 1  # one of the two runtime twins
    assert "1 runtime twin collapsed" in page.locator("p.shown").inner_text()
    page.locator("select.kind-filter").select_option("baseline")
    page.locator("input.search").fill("PU")  # case-insensitive: puppi, puppi-stored
    assert sorted(_names(page)) == ["puppi", "puppi-stored"]
    page.locator("input.search").fill("")
    page.locator("input.hide-oracle").check()
    baselines = _names(page)
    kinds = {r["entry"]["name"]: r["entry"]["category"] for r in second}
    assert baselines and all(kinds[n] == "baseline" for n in baselines)
    assert "oracle" not in baselines
    page.locator("details.columns summary").click()
    page.locator("input.column-toggle[data-key='S_par']").uncheck()
    page.locator("input.column-toggle[data-key='kind']").uncheck()
    page.locator("table.met-table thead th[data-key='response'] button").click()
    page.locator("table.met-table thead th[data-key='response'] button").click()
    shown, headers = _names(page), _headers(page)
    assert (
        "S_par" not in headers and "kind" not in headers and headers[:3] == ["rank", "entry", "S"]
    )
    url = page.url
    assert "#" in url and "kind=baseline" in url and "sort=response" in url and "dir=-1" in url

    again, again_problems, _ = open_page(browser, url)
    _wait(again)
    assert _names(again) == shown and _headers(again) == headers
    assert again.locator("select.kind-filter").input_value() == "baseline"
    assert again.locator("input.hide-oracle").is_checked()
    assert again.locator("input.collapse-twins").is_checked()
    th = again.locator("table.met-table thead th[data-key='response']")
    assert th.get_attribute("aria-sort") == "descending"
    assert not again.locator("input.column-toggle[data-key='S_par']").is_checked()
    r = again.locator("table.met-table tbody tr td.c-response").all_inner_texts()
    values = [float(t.split()[0]) for t in r]
    assert values == sorted(values, reverse=True)
    # a hash typed into the same page (hashchange) is applied too
    again.evaluate(f"location.hash = '#d={SECOND}&truth=yes'")
    again.wait_for_function("document.querySelectorAll('table.met-table tbody tr').length === 1")
    assert _names(again) == ["oracle"]  # the one entry that reads truth
    assert again.locator("select.truth-filter").input_value() == "yes"
    # the default view has no hash state at all
    plain, plain_problems, _ = open_page(browser, index.as_uri())
    _wait(plain)
    assert "oracle" in _names(plain) and "kind" in _headers(plain)
    assert problems == again_problems == plain_problems == []


def test_download_holds_the_rows_and_columns_shown(built, browser):
    index, _ = built
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}&kind=ML&hide=n,kind")
    _wait(page)
    shown = _names(page)
    assert shown
    with page.expect_download() as info:
        page.locator("button.download-csv").click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0][:5] == ["rank", "entry", "S", "S_low", "S_high"]
    assert "n" not in rows[0] and "kind" not in rows[0] and "S_par" in rows[0]
    assert [r[1] for r in rows[1:]] == shown
    with page.expect_download() as info:
        page.locator("button.download-json").click()
    doc = json.loads(Path(info.value.path()).read_text())
    assert [r["entry"] for r in doc["rows"]] == shown and doc["filters"]["kind"] == "ML"
    assert doc["dataset"]["name"] == "mini"
    assert problems == []


def test_keyboard_reaches_every_kind_of_control(built, browser):
    """Tabbing from the top reaches the dataset buttons, filters, search, column chooser,
    downloads, sortable headers and legend buttons; Enter sorts, Space toggles a series."""
    index, _ = built
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(page)
    wanted = ("dataset-button", "kind-filter", "search", "hide-oracle", "download-csv",
              "sort|th", "legend-item", "legend-none", "mark")  # fmt: skip
    reached: set[str] = set()
    for _ in range(400):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                """() => { const a = document.activeElement;
                 return a.className + '|' + (a.closest('th') ? 'th' : '') + '|' + a.tagName; }"""
            )
        )
        if all(w in " ".join(reached) for w in wanted):
            break
    text = " ".join(reached)
    for w in wanted:
        assert w in text, w
    sort = page.locator("table.met-table th[data-key='S_perp'] button")
    sort.focus()
    page.keyboard.press("Enter")
    assert page.locator("table.met-table th[data-key='S_perp']").get_attribute("aria-sort")
    item = page.locator("#chart-0 .legend-item").first
    item.focus()
    page.keyboard.press("Space")
    assert item.get_attribute("aria-pressed") == "false"
    name = item.get_attribute("data-entry")
    assert (
        page.locator(f"#chart-0 svg g.series[data-entry='{name}']").evaluate(
            "g => getComputedStyle(g).display"
        )
        == "none"
    )
    assert problems == []


def test_pareto_plot_front_and_missing_throughput(built, browser):
    index, second = built
    page, problems, _ = open_page(browser, index.as_uri())
    _wait(page)
    assert "no throughput rows" in page.locator("section.group .pareto-chart").inner_text()
    assert page.locator(".pareto-chart svg").count() == 0

    page, problems2, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(page)
    pts = []
    for r in second:
        s = r["scores"]["tasks"]["met"]["headline"]["S"]["value"]
        if r["entry"]["category"] == "oracle" or s is None or r["entry"].get("met_source"):
            continue
        pts += [(b["events_per_s"], s) for b in r["throughput"]["batches"]]
    front = [p for p in pts if not any(q != p and q[0] >= p[0] and q[1] <= p[1] for q in pts)]
    chart = page.locator(".pareto-chart")
    n_series = len({r["entry"]["name"] for r in second}) - 1  # all but the oracle
    assert chart.locator("svg g.series").count() == n_series
    assert chart.locator("svg.chart .point").count() == len(pts)
    assert chart.locator("svg.chart .on-front").count() == len(front) >= 1
    assert chart.locator("svg polyline.front-line").count() == (1 if len(front) > 1 else 0)
    assert problems == problems2 == []


def test_chart_styles_legend_state_ticks_and_clipping(built, browser):
    index, _ = built
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(page)
    combos = page.evaluate("[...Array(24).keys()].map(i => JSON.stringify(MB.style(i)))")
    assert len(set(combos)) == 24
    styles = page.locator("#chart-0 svg g.series").evaluate_all(
        """gs => gs.map(g => g.getAttribute('stroke') + (g.querySelector('.line') ?
             g.querySelector('.line').getAttribute('stroke-dasharray') : '') +
             g.querySelector('.point:not(.clipped)').getAttribute('class'))"""
    )
    assert len(set(styles)) == len(styles) > 8
    # legend: none hides every series, and stays so when the figure changes
    page.locator("#chart-0 .legend-none").click()
    page.locator("select.figure-select").select_option("response")
    assert page.locator("#chart-0 svg g.series:not(.hidden)").count() == 0
    assert page.locator("#chart-0 .legend-item[aria-pressed='true']").count() == 0
    page.locator("#chart-0 .legend-all").click()
    assert page.locator("#chart-0 svg g.series.hidden").count() == 0
    # rounded ticks, evenly spaced
    ticks = [float(t) for t in page.locator("#chart-0 svg .ytick").all_text_contents()]
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(ticks) >= 3 and len(steps) == 1
    step = steps.pop()
    assert f"{step / 10 ** math.floor(math.log10(step)):.6g}" in ("1", "2", "2.5", "5")
    # process is categorical: markers only
    page.locator("select.binning-select").select_option("process")
    assert page.locator("#chart-0 svg.chart .point").count() > 0
    assert page.locator("#chart-0 svg polyline.line").count() == 0
    # a point beyond the axis is drawn at the edge and marked clipped
    clipped = page.evaluate(
        """() => { const div = document.createElement('div'); document.body.appendChild(div);
           const pts = [...Array(30).keys()].map((i) => ({x: i, xLabel: String(i), y: 5 + i % 3}));
           pts.push({x: 30, xLabel: '30', y: 1000});
           new MB.Chart(div).draw([{name: 'a', style: 0, points: pts}],
                                  {xLabel: 'x', yLabel: 'y', xName: 'x'});
           return [div.querySelectorAll('.clipped').length,
                   div.querySelector('.clipped title').textContent]; }"""
    )
    assert clipped[0] == 1 and "clipped" in clipped[1]
    assert problems == []


def test_entry_pages_headline_readme_parameters_and_other_datasets(built, browser):
    index, _ = built
    out = index.parent
    counts = {}
    for path in sorted((out / "entry").glob("*.html")):
        text = path.read_text()
        cell = re.search(r'id="n-parameters">([^<]*)<', text)[1]
        assert cell != "None" and "None" not in cell, path.name
        counts[path.stem] = cell
    assert any(re.fullmatch(r"283,138 \(self-reported\)", c) for c in counts.values())
    pf = next(p for p in sorted((out / "entry").glob("g0-pf-*.html")))
    assert counts[pf.stem] == "none (not trainable)"
    page, problems, _ = open_page(browser, pf.as_uri())
    standing = page.locator("#headline .standing[data-task='met']")
    assert re.search(r"rank \d+ =? ?of \d+", standing.locator(".rank").inner_text())
    assert standing.locator("dt").first.inner_text().startswith("S [GeV]")
    assert "↓ better" in standing.locator("dt").first.inner_text()
    readme = page.locator("div.readme")
    assert readme.locator("h3, h4").count() >= 1  # Markdown rendered, headings demoted
    assert page.locator("div.readme script").count() == 0
    other = page.locator("#elsewhere a")
    assert other.count() == 1 and "mini" in other.inner_text()
    assert (pf.parent / other.get_attribute("href")).resolve().name.startswith("g1-pf-")
    puppi = next(p for p in sorted((out / "entry").glob("g1-puppi-*.html")))
    kpage, kproblems, _ = open_page(browser, puppi.as_uri())
    labels = kpage.locator("table.kinematics-rows tbody th").all_inner_texts()
    assert labels[0].startswith("RMS(ν pz) [GeV]") and not any("nu_pz" in t for t in labels)
    assert problems == kproblems == []


def test_explanatory_pages_take_their_text_from_the_scoring_code(built):
    index, _ = built
    out = index.parent
    metrics = (out / "metrics.html").read_text()
    for text in (S_DEFINITION, RANK_RULE):
        assert html.escape(text) in metrics
    assert "<svg" in metrics and "e∥ = e · t̂" in metrics
    assert "lower is better ↓" in metrics and "R = &lt;e_par&gt; / &lt;|t|&gt;" in metrics
    dataset = (out / "dataset.html").read_text()
    for digest in PUBLISHED_MANIFESTS.values():
        assert digest in dataset
    assert "extrapolation test" in dataset and "h_zz_4nu" in dataset
    assert "ds-pu200-37baec8534c2-test" in dataset
    assert "metbench run submissions/" in (out / "submit.html").read_text()
    assert figure_definitions()["response"] == "R = <e_par> / <|t|> (a ratio of means)"


def test_readme_markdown_is_escaped_and_links_only_arxiv_doi_and_http():
    text = (
        "# Title\n\n<script>alert(1)</script> <b>bold</b>\n\n"
        "![img](https://example.org/x.png) [js](javascript:alert(1)) [rel](weights/a.pt) "
        "[ok](https://example.org/ok) arXiv:1802.08168, doi:10.1140/epjc/s10052-018-6288-9 "
        "and https://github.com/a/b.\n\n`arXiv:1111.11111`\n"
    )
    out = render_markdown(text)
    assert "<h3>Title</h3>" in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;bold&lt;/b&gt;" in out
    assert "<img" not in out and "<script" not in out
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs == [
        "https://example.org/x.png",
        "https://example.org/ok",
        "https://arxiv.org/abs/1802.08168",
        "https://doi.org/10.1140/epjc/s10052-018-6288-9",
        "https://github.com/a/b",
    ]
    assert "javascript" not in " ".join(hrefs) and "<code>arXiv:1111.11111</code>" in out
