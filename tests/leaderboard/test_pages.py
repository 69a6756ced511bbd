"""The leaderboard site as people use it (issue #18), in a real headless Chromium at a phone's
and a desktop's size: no page scrolls sideways, wide tables scroll in their own box with rank,
entry and S kept in view, no console errors, every link resolves, filters, sort and columns
round-trip through the permalink, downloads hold the rows shown, the keyboard reaches the
controls, the Pareto plot and its front, the charts' styles and legend, and the entry pages.

The site is built once for the module (without the mplhep figures) from the committed pu200
results and a copy of them posing as a second dataset with throughput rows (pf's on a GPU), a
runtime twin, an entry run with two seeds and a kinematics task.
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

import numpy as np
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
    # the manifest's onnx variant: the torch variant's parameters (seed, weights) but the runtime
    twin["entry"]["parameters"] = {**twin["entry"]["parameters"], "runtime": "onnx"}
    second.append(twin)
    gpu = next(r for r in second if r["entry"]["name"] == "pf")
    gpu["throughput"]["device"] = "cuda:0"
    for seed, shift in ((1, 0.0), (2, 3.0)):  # one entry, two seeds: S 3 GeV apart
        seeded = copy.deepcopy(next(r for r in second if r["entry"]["name"] == "chs"))
        seeded["entry"]["name"] = f"chs-seed{seed}"
        seeded["entry"]["parameters"] = {"seed": seed}
        s = seeded["scores"]["tasks"]["met"]["headline"]["S"]["value"] + shift
        seeded["scores"]["tasks"]["met"]["headline"]["S"]["value"] = s
        seeded["scores"]["headline"]["value"] = s
        second.append(seeded)
    for seed, shift in ((1, 1.0), (2, 4.0)):  # pf trained at a budget of 6 epochs: its spread
        short = copy.deepcopy(next(r for r in second if r["entry"]["name"] == "pf"))
        short["entry"]["name"] = f"pf-6ep-seed{seed}"
        short["entry"]["parameters"] = {"seed": seed, "training_epochs": 6}
        s = short["scores"]["tasks"]["met"]["headline"]["S"]["value"] + shift
        short["scores"]["tasks"]["met"]["headline"]["S"]["value"] = s
        short["scores"]["headline"]["value"] = s
        second.append(short)
    kin = next(r for r in second if r["entry"]["name"] == "puppi")
    f = {"value": 50.0, "low": 45.0, "high": 55.0}
    kin["scores"]["tasks"]["kinematics"] = {
        "n_events": 100,
        "figures": {k: dict(f) for k in ("nu_pz_rms", "nu_pz_bias", "nu_pz_sigma",
                                         "nu_px_sigma", "m_w_median", "m_w_width",
                                         "m_top_median", "m_top_width", "m_top_in_window")},
    }  # fmt: skip
    # puppi measured again after its run on a GPU (metbench run --throughput-only)
    kin["extra_throughput"] = [{
        "device": "cuda:NVIDIA H200", "measured_by": "child (self-reported)",
        "batches": [{"batch_size": b, "events_per_s": 5000.0 * b**0.5, "peak_gpu_mb": 900.0,
                     "latency_ms": {"p50": 1.0, "p99": 2.0}} for b in (1, 64)],
        "measured": "2026-12-04T20:00:00+00:00", "content_hash": "cd" * 32,
        "hardware": {"cpu": "Intel Xeon", "cores": 8},
    }]  # fmt: skip
    out = tmp_path_factory.mktemp("site2") / "site"
    index = build_site(
        committed + second, out, ROOT / "submissions", figures=False,
        speed=ROOT / "leaderboard" / "speed",
    )  # fmt: skip
    return index, second


def _pages(index: Path) -> list[Path]:
    out = index.parent
    return [index, out / "compare.html", out / "metrics.html", out / "dataset.html",
            out / "submit.html", out / "speed.html",
            *sorted((out / "entry").glob("*.html"))]  # fmt: skip


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
        "mini-abababababab-test.compare.js", "mini-abababababab-test.js",
        "pu200-37baec8534c2-test.compare.js", "pu200-37baec8534c2-test.js",
    ]  # fmt: skip
    assert all("compare" not in p.read_text()[:300] for p in (out / "data").glob("*t.js"))
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
        f"{index.as_uri()}#d={SECOND}&hide=",  # every column
        f"{index.parent.as_uri()}/compare.html#ds={SECOND}&task=recoil&a=pf&b=track",
    ]
    ids_of: dict[Path, list[str]] = {}
    links = 0
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("load")
        if url.startswith(index.as_uri()):
            _wait(page)
        if "compare.html" in url:
            page.wait_for_selector("table.compare-table")
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


@pytest.mark.parametrize("width,height", SIZES)
def test_filters_sort_and_columns_round_trip_through_the_permalink(built, browser, width, height):
    index, second = built
    size = {"width": width, "height": height}
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}", size)
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

    again, again_problems, _ = open_page(browser, url, size)
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
    plain, plain_problems, _ = open_page(browser, index.as_uri(), size)
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


@pytest.mark.parametrize("width,height", SIZES)
def test_keyboard_reaches_every_kind_of_control(built, browser, width, height):
    """Tabbing from the top reaches the dataset buttons, filters, search, column chooser,
    downloads, the compare link, sortable headers and legend buttons; Enter sorts, Space toggles
    a series."""
    index, _ = built
    size = {"width": width, "height": height}
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}", size)
    _wait(page)
    wanted = ("dataset-button", "kind-filter", "search", "hide-oracle", "download-csv",
              "compare-link", "sort|th", "legend-item", "legend-none", "mark")  # fmt: skip
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
    pts: dict[str, list] = {"cpu": [], "gpu": []}
    drawn = set()  # one series each
    for r in second:
        s = r["scores"]["tasks"]["met"]["headline"]["S"]["value"]
        if r["entry"]["category"] == "oracle" or s is None or r["entry"].get("met_source"):
            continue
        if r["entry"]["name"] == "chs-seed2" or "-6ep-" in r["entry"]["name"]:
            continue  # not ranked: their median training, or pf's full training, is shown
        for block in [r["throughput"], *r.get("extra_throughput", [])]:
            device = "gpu" if block["device"].startswith("cuda") else "cpu"
            pts[device] += [(b["events_per_s"], s) for b in block["batches"]]
        drawn.add(r["entry"]["name"])
    # a front per device: the GPU's events/s do not compete with the CPUs'
    fronts = {
        d: [p for p in ps if not any(q != p and q[0] >= p[0] and q[1] <= p[1] for q in ps)]
        for d, ps in pts.items()
    }
    assert len(pts["gpu"]) == 4 and fronts["gpu"]  # pf's and puppi's extra row, batch 1 and 64
    chart = page.locator(".pareto-chart")
    # all but the oracle, chs-seed2 (a repeated training: chs-seed1, the median, stands for it),
    # pf's trainings at a budget (pf stands for them) and entries without an S on this dataset
    n_series = len(drawn)
    assert 0 < n_series <= len({r["entry"]["name"] for r in second}) - 4
    assert chart.locator("svg g.series[data-entry='chs-seed2']").count() == 0
    for r in second:  # an entry without an S has no point to draw
        if r["scores"]["tasks"]["met"]["headline"]["S"]["value"] is None:
            name = r["entry"]["name"]
            assert chart.locator(f"svg g.series[data-entry='{name}']").count() == 0
    assert chart.locator("svg g.series").count() == n_series
    assert chart.locator("svg.chart .point").count() == len(pts["cpu"]) + len(pts["gpu"])
    assert chart.locator("svg.chart .point.device-gpu").count() == len(pts["gpu"])
    assert chart.locator("g.series[data-entry='pf'] .point.device-cpu").count() == 0
    puppi = chart.locator("g.series[data-entry='puppi']")  # its run's CPU rows and its GPU row
    assert puppi.locator(".point.device-cpu").count() == puppi.locator(".point.device-gpu").count()
    assert puppi.locator(".point.device-gpu").count() == 2
    assert chart.locator("svg.chart .on-front").count() == sum(map(len, fronts.values()))
    lines = chart.locator("svg polyline.front-line")
    assert lines.count() == sum(len(f) > 1 for f in fronts.values())
    assert "GPU" in chart.locator("svg .axis-label").first.text_content()
    assert "hollow ones on a GPU" in page.locator("p.pareto-legend").inner_text()
    assert "(CPU, GPU)" in page.locator("h3", has_text="Throughput versus batch size").inner_text()
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
    # its throughput: the run's rows (CPU) and the GPU rows measured after the run
    rows = kpage.locator("#throughput-table tbody tr").all_inner_texts()
    gpu = [r for r in rows if "GPU NVIDIA H200" in r]
    assert len(rows) == 4 and len(gpu) == 2
    assert all("Intel Xeon, 8 cores (measured after the run)" in r and "900" in r for r in gpu)
    assert all("measured after the run" not in r for r in rows if r not in gpu)
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


def test_paper_field_links_github_repositories_and_nothing_else():
    """``owner/repo`` is a GitHub link in the paper field (not in READMEs, where "and/or" is
    prose); acronym pairs, short word pairs, CMSSW packages and paths are not; raw HTML stays
    text."""
    text = (
        "M. Leigh, mattcleigh/METNetwork; Yonsei-HEP-COSMO/DeeLeMa. CDF/D0 and/or; "
        "CMSSW RecoMET/METPUSubtraction; weights/a/b.pt; https://example.org/x/y "
        "<a href='javascript:x'>slowmoyang/KSC-RnD-2024-Transformer4MET</a>"
    )
    out = render_markdown(text, github=True)
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs == [
        "https://github.com/mattcleigh/METNetwork",
        "https://github.com/Yonsei-HEP-COSMO/DeeLeMa",
        "https://example.org/x/y",
        "https://github.com/slowmoyang/KSC-RnD-2024-Transformer4MET",
    ]
    assert "&lt;a href=" in out and "<a href='javascript" not in out
    assert 'href="https://github.com' not in render_markdown(text)  # READMEs: off


def _paired(second: list[dict], a: str, b: str) -> tuple[float, float, float]:
    """S(B) - S(A) and the 95% interval of the paired replica differences, from the results."""
    head = {r["entry"]["name"]: r["scores"]["tasks"]["met"]["headline"] for r in second}
    diff = np.asarray(head[b]["replicas"]) - np.asarray(head[a]["replicas"])
    low, high = np.quantile(diff[np.isfinite(diff)], [0.025, 0.975])
    return head[b]["S"]["value"] - head[a]["S"]["value"], float(low), float(high)


def test_compare_view_overlays_curves_and_pairs_the_differences(built, browser):
    """compare.html#ds=…&a=…&b=… shows both entries' binned curves and S(B) − S(A) with the
    interval of the paired bootstrap differences; swapping negates it; the view round-trips
    through the hash; the main table and the entry pages link to it."""
    index, second = built
    url = (
        f"{index.parent.as_uri()}/compare.html#ds={SECOND}&task=met&a=pf&b=deepmet-keras-resolution"
    )
    page, problems, requests = open_page(browser, url)
    page.wait_for_selector("table.compare-table")
    assert any(u.endswith(f"data/{SECOND}.compare.js") for u in requests)
    assert page.locator("select.a-select").input_value() == "pf"
    assert page.locator("select.b-select").input_value() == "deepmet-keras-resolution"
    value, low, high = _paired(second, "pf", "deepmet-keras-resolution")
    cell = page.locator("table.compare-table tbody tr").first.locator("td.c-diff").inner_text()
    assert cell == f"{value:.2f} [{low:.2f}, {high:.2f}]"
    verdict = page.locator("table.compare-table tbody tr").first.locator("td.c-verdict")
    expected = "B better" if high < 0 else "A better" if low > 0 else "no significant"
    assert verdict.inner_text().startswith(expected)
    # a secondary figure: the difference of the values, without an interval
    rows = {r["entry"]["name"]: r for r in second}
    r_diff = (
        rows["deepmet-keras-resolution"]["scores"]["tasks"]["met"]["overall"]["response"]["value"]
        - rows["pf"]["scores"]["tasks"]["met"]["overall"]["response"]["value"]
    )
    response = page.locator("table.compare-table tbody tr[data-entry='response']")
    assert response.locator("td.c-diff").inner_text() == f"{r_diff:.4f}"
    charts = page.locator(".compare-chart")
    assert charts.count() == 4
    for k in range(4):
        drawn = charts.nth(k).locator("svg g.series")
        if drawn.count():
            names = drawn.evaluate_all("gs => gs.map(g => g.dataset.entry)")
            assert names == ["pf", "deepmet-keras-resolution"]
    assert "true |MET| [GeV]" in charts.first.locator("svg .axis-label").first.text_content()
    page.locator("button.swap").click()
    page.wait_for_function("location.hash.includes('a=deepmet-keras-resolution')")
    cell = page.locator("table.compare-table tbody tr").first.locator("td.c-diff").inner_text()
    assert cell == f"{-value:.2f} [{-high:.2f}, {-low:.2f}]"
    again, again_problems, _ = open_page(browser, page.url)
    again.wait_for_selector("table.compare-table")
    assert again.locator("select.a-select").input_value() == "deepmet-keras-resolution"
    assert again.locator("td.c-diff").first.inner_text() == cell
    # linked from the table (the first two rows shown) and from every entry page
    front, front_problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(front)
    shown = _names(front)
    href = front.locator("a.compare-link").get_attribute("href")
    state = dict(p.split("=", 1) for p in unquote(href.split("#", 1)[1]).split("&"))
    assert state == {"ds": SECOND, "task": "met", "a": shown[0], "b": shown[1]}
    entry = next(
        p
        for p in (index.parent / "entry").glob("g1-pf-*.html")
        if re.fullmatch(r"g1-pf-[0-9a-f]+\.html", p.name)  # not pf-6ep-seed1's
    )
    link = re.search(r'class="compare-link" href="([^"]+)"', entry.read_text())[1]
    assert html.unescape(link) == f"../compare.html#ds={SECOND}&a=pf"
    assert problems == again_problems == front_problems == []


def test_entry_page_charts_pileup_fit_and_github_links(built, browser):
    """An entry page draws its binned curves (SVG, the site's chart), shows the pileup fit
    S² = a² + b²·n_pu with its extrapolation to n_pu = 200, and links owner/repo to GitHub."""
    index, second = built
    doc = next(r for r in second if r["entry"]["name"] == "metnet-torch-torch")
    path = next((index.parent / "entry").glob("g1-metnet-torch-torch-*.html"))
    page, problems, _ = open_page(browser, path.as_uri())
    charts = page.locator("#entry-charts .entry-chart")
    tasks = doc["scores"]["tasks"]
    assert charts.count() == sum("bins" in tasks.get(t, {}) for t in ("met", "recoil")) == 2
    met = page.locator("#entry-charts .entry-chart[data-task='met']")
    assert met.locator("svg g.series[data-entry='metnet-torch-torch']").count() == 1
    labels = met.locator("svg .axis-label").all_text_contents()
    assert labels[0] == "true |MET| [GeV]" and labels[1].startswith("S [GeV]")
    recoil = page.locator("#entry-charts .entry-chart[data-task='recoil'] svg .axis-label")
    assert recoil.first.text_content() == "qT [GeV]"
    page.locator("select.entry-binning").first.select_option("process")
    assert met.locator("svg .point").count() == len(
        doc["scores"]["tasks"]["met"]["bins"]["process"]["labels"]
    )
    assert met.locator("svg polyline.line").count() == 0  # categorical: markers only
    fit = doc["scores"]["tasks"]["met"]["pileup_fit"]["S"]
    row = page.locator("table.pileup-fit tr[data-figure='S']")
    ex = fit["extrapolated"]
    assert row.locator("td.fit-extrapolated").inner_text() == (
        f"{ex['value']:.1f} [{ex['low']:.1f}, {ex['high']:.1f}]"
    )
    assert row.locator("td.fit-b").inner_text().startswith(f"{fit['b']['value']:.2f}")
    assert row.locator("td.fit-at").inner_text() == "200"
    github = page.locator("td.paper a[href='https://github.com/mattcleigh/METNetwork']")
    assert github.inner_text() == "mattcleigh/METNetwork"
    assert problems == []


def test_column_chooser_columns_legend_state_and_axis_labels(built, browser):
    """The optional columns (RMS∥/⊥, the other tails, parameters, latency p99, peak memory,
    pileup slope, S over seeds) show the results' figures; events/s names its batch size; the
    series hidden in a legend are in the permalink and come back from it, in every chart."""
    index, second = built
    page, problems, _ = open_page(browser, f"{index.as_uri()}#d={SECOND}")
    _wait(page)
    optional = ["rms_par", "rms_perp", "tail_25", "tail_100", "params", "p99", "rss",
                "pu_slope", "seeds"]  # fmt: skip
    assert not set(optional) & set(_headers(page))  # hidden until chosen
    page.locator("details.columns summary").click()
    for key in optional:
        page.locator(f"input.column-toggle[data-key='{key}']").check()
    assert set(optional) <= set(_headers(page))
    assert "hide=" in page.url
    speed = page.locator("table.met-table thead th[data-key='speed']").inner_text()
    assert "@ batch 64" in speed
    rows = {r["entry"]["name"]: r for r in second}
    table = page.locator("table.met-table")

    def cell(entry: str, key: str) -> str:
        return table.locator(f"tbody tr[data-entry='{entry}'] .c-{key}").inner_text()

    met = rows["puppi"]["scores"]["tasks"]["met"]
    assert cell("puppi", "rms_par").startswith(f"{met['overall']['rms_par']['value']:.1f} [")
    assert cell("puppi", "tail_100").startswith(f"{met['overall']['tail_100']['value']:.3f} [")
    assert cell("puppi", "pu_slope").startswith(f"{met['pileup_fit']['S']['b']['value']:.2f} [")
    assert cell("metnet-torch-torch", "params") == "283,138" and cell("pf", "params") == "—"
    assert cell("puppi", "p99") == "2.00" and cell("puppi", "rss") == "300"
    assert "GPU" in cell("pf", "speed")
    s = [rows[f"chs-seed{k}"]["scores"]["headline"]["value"] for k in (1, 2)]
    spread = cell("chs-seed1", "seeds")
    assert spread.startswith(f"{min(s):.1f}–{max(s):.1f}") and "2 seeds" in spread
    assert f"σ {np.std(s, ddof=1):.2f}" in spread
    assert cell("chs", "seeds") == "—" and cell("puppi", "seeds") == "—"
    s = [rows[f"pf-6ep-seed{k}"]["scores"]["headline"]["value"] for k in (1, 2)]
    assert cell("pf", "seeds").startswith(f"{min(s):.1f}–{max(s):.1f}")  # its budget group's
    assert "2 seeds at 6 epochs" in cell("pf", "seeds")
    assert table.locator("tbody tr[data-entry='pf-6ep-seed1']").count() == 0
    # the x label names the task's |t|
    assert page.locator("#chart-0 svg .axis-label").first.text_content() == "true |MET| [GeV]"
    page.locator("select.plot-task").select_option("recoil")
    assert page.locator("#chart-0 svg .axis-label").first.text_content() == "qT [GeV]"
    # legend state: hidden series in the hash, back from it, in every chart
    page.locator("#chart-0 .legend-item[data-entry='puppi']").click()
    assert page.locator("#chart-0 .legend-item[data-entry='chs-seed2']").count() == 0
    assert table.locator("tbody tr[data-entry='chs-seed2']").count() == 0
    page.locator("#chart-0 .legend-item[data-entry='chs-seed1']").click()
    assert "off=" in page.url
    assert page.locator(".pareto-chart svg g.series[data-entry='puppi']").evaluate(
        "g => g.classList.contains('hidden')"
    )
    again, again_problems, _ = open_page(browser, page.url)
    _wait(again)
    for name in ("puppi", "chs-seed1"):
        item = again.locator(f"#chart-0 .legend-item[data-entry='{name}']")
        assert item.get_attribute("aria-pressed") == "false"
        hidden = again.locator(f".pareto-chart svg g.series[data-entry='{name}']")
        assert hidden.evaluate("g => getComputedStyle(g).display") == "none"
    assert again.locator("#chart-0 .legend-item[aria-pressed='false']").count() == 2
    assert set(optional) <= set(_headers(again))
    again.locator("#chart-0 .legend-all").click()
    assert "off=" not in again.url
    assert problems == again_problems == []
