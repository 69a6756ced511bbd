"""The leaderboard site driven in a real headless Chromium (Playwright): it loads without console
errors or network requests, sorts on a click, draws one series per entry, and shows text from
submissions as text."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from metbench.leaderboard import build_site
from metbench.leaderboard.build import verify_for_site
from metbench.results import find_results
from tests.commands import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api")
if CHROMIUM is None:
    if os.environ.get("METBENCH_REQUIRE_BROWSER"):
        raise RuntimeError("METBENCH_REQUIRE_BROWSER is set but Debian's chromium is not installed")
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

EVIL = "<script>window.__pwned=1</script>"


def evil_submission(root: Path) -> Path:
    folder = root / "evil"
    folder.mkdir()
    (folder / "model.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Estimator:
                def __init__(self, note=""):
                    pass

                def predict(self, batch):
                    pt, phi = batch.feature("pt"), batch.feature("phi")
                    return -np.stack([(pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)], 1)
            """
        )
    )
    (folder / "metbench.toml").write_text(
        textwrap.dedent(
            """
            name = "evil"
            entry = "model:Estimator"
            framework = "numpy"
            paper = "<img src=x onerror='window.__pwned=2'>"
            authors = ["<b>bold</b>"]
            description = "<script>window.__pwned=3</script>"
            trainable = false
            batch_size = 64
            """
        )
    )
    (folder / "README.md").write_text(f"# evil\n\n{EVIL}\n")
    return folder


@pytest.fixture(scope="module")
def site(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    results = root / "results"
    speed = ["--throughput-duration", "0.05", "--batch-sizes", "1,8", "--n-boot", "200"]
    for sub in ("submissions/pf", "submissions/puppi", "submissions/oracle"):
        r = cli("run", sub, "--dataset", tiny_dataset, "--results", results, *speed)
        assert r.returncode == 0, r.stderr
    evil = evil_submission(root)
    r = cli(
        "run",
        evil,
        "--dataset",
        tiny_dataset,
        "--results",
        results,
        "--param",
        f"note={EVIL}",
        *speed,
    )
    assert r.returncode == 0, r.stderr
    # verified as `metbench leaderboard build` does (the tiny dataset is here: all re-scored)
    docs, marks, failures = verify_for_site([results])
    assert failures == [] and {m["status"] for m in marks} == {"verified"}
    assert len(docs) == len(find_results([results]))
    for doc in docs:  # pf ran unsandboxed; the dataset is not the published one
        sandboxed = doc["entry"]["name"] != "pf"
        doc["isolation"] = {
            "sandbox": "bubblewrap" if sandboxed else "none",
            "sandboxed": sandboxed,
        }
        doc["dataset"]["pinned"] = False
    submissions = root / "subs"
    shutil.copytree(Path("submissions"), submissions)
    shutil.copytree(evil, submissions / "evil")
    index = build_site(docs, root / "out", submissions, verification=marks)
    return index, docs


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page()
    problems, requests = [], []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda req: requests.append(req.url))
    page.on("dialog", lambda d: problems.append(f"dialog {d.message}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems, requests


def test_front_page_loads_offline_without_errors(site, browser):
    index, docs = site
    page, problems, requests = open_page(browser, index.as_uri())
    assert problems == []
    assert requests and all(u.startswith("file://") for u in requests), requests
    rows = page.locator("table.met-table tbody tr")
    assert rows.count() == len(docs)
    assert page.evaluate("window.__pwned") is None


def test_click_sorts_the_table(site, browser):
    index, _ = site
    page, problems, _ = open_page(browser, index.as_uri())

    def column(header):
        table = page.locator("table.met-table").first
        headers = table.locator("thead th").all_inner_texts()
        k = headers.index(header)
        cells = table.locator(f"tbody tr td:nth-child({k + 1})").all_inner_texts()
        return [float(c.split(" ")[0]) for c in cells]

    header = page.locator("table.met-table thead th").filter(has_text=re.compile(r"^R$")).first
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    up = column("R")
    assert up == sorted(up) and len(set(up)) > 1
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    down = column("R")
    assert down == sorted(down, reverse=True)
    assert problems == []


def test_plot_has_one_series_per_entry_and_hover_names_it(site, browser):
    index, docs = site
    page, problems, _ = open_page(browser, index.as_uri())
    # the tiny dataset has no |t| bin with the 20 events S needs: plot the response
    page.locator("select.figure-select").first.select_option("response")
    series = page.locator("#chart-0 svg g.series")
    assert series.count() == len(docs)
    page.locator("select.binning-select").first.select_option("n_pv")  # too few events for S:
    page.locator("select.binning-select").first.select_option("truth")  # nothing drawn, no error
    assert page.locator("#chart-0 svg g.series").count() == len(docs)
    top = page.locator("#chart-0 svg g.series").last  # drawn last: not covered by another
    name = top.get_attribute("data-entry")
    top.locator(".point").last.hover()
    tip = page.locator("#chart-0 .tooltip")
    assert tip.is_visible() and tip.inner_text().startswith(name)
    throughput = page.locator(".throughput-chart svg g.series")
    assert throughput.count() == len(docs)  # every entry measured at batch 1 and 8
    assert problems == []


def test_text_from_submissions_is_shown_as_text(site, browser):
    index, docs = site
    evil_name = next(d["entry"]["name"] for d in docs if d["entry"]["submission"] == "evil")
    assert EVIL in evil_name
    page, problems, _ = open_page(browser, index.as_uri())
    assert page.locator("table.met-table a", has_text=EVIL).count() == 1
    link = page.locator("table.met-table a", has_text=EVIL).get_attribute("href")
    entry_page, entry_problems, requests = open_page(browser, (index.parent / link).as_uri())
    assert entry_page.locator("#entry-name").inner_text() == evil_name
    assert EVIL in entry_page.locator("div.readme").inner_text()  # Markdown, raw HTML off
    assert entry_page.locator("div.readme script").count() == 0
    assert "<b>bold</b>" in entry_page.inner_text("table.meta")
    assert entry_page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__pwned") is None
    assert problems == [] and entry_problems == []
    assert all(u.startswith("file://") for u in requests)


def test_marks_unsandboxed_unpinned_and_verified(site, browser):
    """The entry run without a sandbox is marked "unsandboxed" (in the table and on its page),
    the dataset "unpinned", every re-scored result "verified", each with its explanation."""
    index, docs = site
    page, problems, _ = open_page(browser, index.as_uri())
    table = page.locator("table.met-table").first
    unsandboxed = table.locator("tbody .mark-unsandboxed")
    assert unsandboxed.count() == 1
    assert unsandboxed.inner_text() == "unsandboxed"
    assert "without a sandbox" in unsandboxed.get_attribute("title")
    assert table.locator("tbody tr[data-entry='pf'] .mark-unsandboxed").count() == 1
    assert table.locator("tbody .mark-verified").count() == len(docs)
    heading = page.locator("section.group h2 .mark-unpinned")
    assert heading.inner_text() == "unpinned"
    assert "not the published one" in heading.get_attribute("title")
    legend = " ".join(page.locator(".table-holder p.legend").all_inner_texts())
    assert "unsandboxed: " in legend and "verified: " in legend and "unpinned: " in legend
    link = table.locator("tbody tr[data-entry='pf'] a").get_attribute("href")
    entry_page, entry_problems, _ = open_page(browser, (index.parent / link).as_uri())
    assert entry_page.locator("header .mark-unsandboxed").inner_text() == "unsandboxed"
    assert entry_page.locator("header .mark-verified").count() == 1
    assert entry_page.locator("#dataset-cell .mark-unpinned").inner_text() == "unpinned"
    assert "unsandboxed: " in entry_page.locator("header").inner_text()
    other = table.locator("tbody tr[data-entry='oracle'] a").get_attribute("href")
    other_page, other_problems, _ = open_page(browser, (index.parent / other).as_uri())
    assert other_page.locator(".mark-unsandboxed").count() == 0
    assert problems == [] and entry_problems == [] and other_problems == []


def test_downloads_exist(site):
    index, docs = site
    out = index.parent
    assert len(list((out / "results").glob("*.json"))) == len(docs)
    csv_file = next((out / "results").glob("*.csv"))
    header = csv_file.read_text().splitlines()[0]
    assert header == "task,binning,bin,figure,value,low,high"
    data = json.loads((out / "results" / csv_file.with_suffix(".json").name).read_text())
    assert data["schema"] == "metbench-results"
    assert list((out / "figures").glob("*.png")) and list((out / "figures").glob("*.pdf"))
