"""The leaderboard site driven in a real headless Chromium (Playwright): it loads without console
errors or network requests, sorts on a click, draws one series per entry, and shows text from
submissions as text."""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from metbench.leaderboard import build_site
from metbench.leaderboard.build import current_content_hashes, met_figure, verify_for_site
from metbench.leaderboard.data import site_data
from metbench.results import find_results, read_results
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


def open_page(browser, url, viewport=None):
    page = browser.new_page(viewport=viewport) if viewport else browser.new_page()
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


def _pu200() -> list[dict]:
    root = Path(__file__).resolve().parents[2] / "leaderboard" / "results"
    return [r for r in map(read_results, find_results([root])) if r["dataset"]["name"] == "pu200"]


def test_mplhep_figures_legend_outside_distinct_styles_and_clipped_points():
    """The paper figures: the legend right of the axes, 24 series in 24 (colour, marker, dash)
    styles grouped by kind, markers without lines on the process axis, a point beyond the y
    axis drawn as a triangle at the frame, the task's x label."""
    import matplotlib.pyplot as plt

    results = _pu200()
    copies = []
    for i in range(24 - len(results)):
        c = copy.deepcopy(results[i % len(results)])
        c["entry"]["name"] = f"copy-{i:02d}"
        copies.append(c)
    outlier = next(r for r in results if r["entry"]["name"] == "pf")
    outlier["scores"]["tasks"]["met"]["bins"]["truth"]["figures"]["rc_sigma"]["value"][-1] = 1e4
    group = site_data([*results, *copies])["groups"][0]
    kinds = {name: e["kind"] for name, e in group["entries"].items()}
    assert len(kinds) == 24 and len(set(kinds.values())) >= 3

    fig = met_figure(group, "truth", "S")
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # outside, on the right
    lines = [c.lines[0] for c in ax.containers]
    styles = {(ln.get_color(), ln.get_marker(), ln.get_linestyle()) for ln in lines}
    assert len(lines) == len(styles) == 24
    names = [t.get_text() for t in legend.get_texts()]
    series = [n for n in names if n in kinds]
    assert len(series) == 24
    order = [kinds[n] for n in series]  # grouped: each kind in one run, its header first
    assert len(set(order)) == sum(a != b for a, b in zip(["", *order], order, strict=False))
    for kind in set(order):
        assert names.index(f"{kind}:") == names.index(series[order.index(kind)]) - 1
    clipped = [ln for ln in ax.get_lines() if ln.get_gid() == "clipped"]
    lo, hi = ax.get_ylim()
    values = [
        v
        for e in group["entries"].values()
        for v in e["plots"]["met"]["truth"]["figures"]["S"]["value"]
        if v is not None and v == v
    ]
    beyond = [v for v in values if v > hi or v < lo]
    assert 1e4 in beyond and len(beyond) < len(values) / 4  # the axis follows the bulk
    assert len(clipped) == len(beyond)  # one triangle per point beyond the axis, none for others
    assert sorted(ln.get_marker() for ln in clipped) == sorted(
        "^" if v > hi else "v" for v in beyond
    )
    assert {ln.get_ydata()[0] for ln in clipped} <= {lo, hi}
    assert ax.get_xlabel() == "true |MET| [GeV]" and ax.get_ylabel().startswith("$S$")
    plt.close(fig)

    fig = met_figure(group, "process", "response")
    ax = fig.axes[0]
    lines = [c.lines[0] for c in ax.containers]
    assert lines and all(ln.get_linestyle() == "None" for ln in lines)  # categorical
    assert all(ln.get_marker() not in (None, "", "None") for ln in lines)
    assert ax.get_xlabel() == "process" and ax.get_ylabel() == "response $R$"
    plt.close(fig)
    fig = met_figure(group, "truth", "response", task="recoil")
    assert fig.axes[0].get_xlabel() == "qT [GeV]"
    plt.close(fig)
    assert met_figure(group, "no-such-binning", "S") is None


def test_hostile_submission_names_publish_nothing_from_outside_submissions(tmp_path, monkeypatch):
    """A results file whose ``entry.submission`` is a path (``../../x``, ``a/b``) is published
    without anything from outside ``submissions/``: no README, no manifest, no content hash of
    a folder there; ``current_content_hashes`` never joins such a name."""
    from metbench.estimators import submission

    outside = evil_submission(tmp_path)  # a loadable submission folder, outside submissions/
    (outside / "README.md").write_text("TOP-SECRET README outside submissions\n")
    submissions = tmp_path / "repo" / "submissions"
    submissions.mkdir(parents=True)
    shutil.copytree(outside, submissions / "evil")
    (submissions / "evil" / "README.md").write_text("# evil, inside\n")
    hostile = ["../../evil", "../../../" + str(outside).lstrip("/"), "evil/../../../evil"]
    assert (submissions / hostile[0]).resolve() == outside.resolve()  # it would be read
    loaded: list[Path] = []
    load = submission.load_submission

    def spy(folder, *args, **kwargs):
        loaded.append(Path(folder).resolve())
        return load(folder, *args, **kwargs)

    monkeypatch.setattr(submission, "load_submission", spy)
    hashes = current_content_hashes(submissions, {*hostile, "evil", "..", "a/b"})
    assert hashes.keys() == {"evil"} and loaded == [(submissions / "evil").resolve()]

    base = next(r for r in _pu200() if r["entry"]["name"] == "pf")
    docs = []
    for i, name in enumerate(hostile):
        doc = copy.deepcopy(base)
        doc["entry"]["name"] = f"hostile-{i}"
        doc["entry"]["submission"] = name
        docs.append(doc)
    checks = [{"status": "predictions", "detail": None}] * len(docs)
    index = build_site(docs, tmp_path / "site", submissions, verification=checks, figures=False)
    assert loaded == [(submissions / "evil").resolve()]  # the build joined no hostile name
    for path in index.parent.rglob("*"):
        if path.is_file():
            assert "TOP-SECRET" not in path.read_text(errors="replace"), path
    pages = sorted((index.parent / "entry").glob("*.html"))
    assert len(pages) == len(hostile)
    for page in pages:
        text = page.read_text()
        assert "No README found." in text and "mark-stale" not in text


def test_entry_pages_show_fake_met_per_process_and_the_calibrated_bins(tmp_path):
    """From three committed standard results: the fake-MET figures of every background process
    and the calibrated response, closure and RMS per bin, as in the results files; the
    per-event covariance's figures where the entry gives one (METNetSig), a line where not."""
    wanted = ("puppi.json", "metnet-torch-torch.json", "metnetsig-torch-torch.json")
    docs = [
        read_results(p)
        for p in find_results([Path("leaderboard/results")])
        if p.name in wanted and "standard" in str(p)
    ]
    assert len(docs) == 3
    index = build_site(docs, tmp_path / "site", Path("submissions"), figures=False)
    for doc in docs:
        name = doc["entry"]["name"]
        page = next((index.parent / "entry").glob(f"*-{name}-*.html")).read_text()
        groups = doc["scores"]["tasks"]["fake"]["groups"]
        assert (
            set(re.findall(r"<tr data-group='([^']+)'", page))
            == set(groups)
            >= {
                "all",
                "qcd_multijet",
                "z_mumu",
            }
        )
        for group, g in groups.items():
            row = re.search(rf"<tr data-group='{group}'>(.*?)</tr>", page)[1]
            rate = re.search(r"class='fake-rate'>([^<]+)", row)[1]
            assert rate.strip() == f"{g['fake_rate']['value']:.4f}"
            assert f"{g['n']:,}" in row
        for task in ("met", "recoil"):
            cal = doc["scores"]["tasks"][task]["calibrated"]
            if not cal["available"]:
                reason = html.escape(cal["reason"])
                assert f"data-task='{task}'>No calibrated figures: {reason}" in page
                continue
            table = re.search(
                rf"<table class='doc calibrated' data-task='{task}'>(.*?)</table>", page
            )
            rows = re.findall(r"<tr data-bin='([^']+)'>(.*?)</tr>", table[1])
            rms = cal["bins"]["figures"]["rms"]["value"]
            assert [label for label, _ in rows] == [
                label for label, v in zip(cal["bins"]["labels"], rms, strict=True) if v is not None
            ]
            label, row = rows[-1]
            k = cal["bins"]["labels"].index(label)
            closure = re.search(r"class='cal-closure'>([^<]+)", row)[1].strip()
            assert closure == f"{cal['bins']['figures']['closure']['value'][k]:.3f}"
            s = re.search(rf"class='cal-s' data-task='{task}'>([^<]+)", page)[1].strip()
            assert s == f"{cal['S']['value']:.1f}"
        # the training behind the weights, from the committed history (read here as JSON)
        training = html.unescape(re.search(r'<td id="training">([^<]*)<', page)[1])
        sub = doc["entry"]["submission"]
        if sub == "puppi":
            assert training == "none (not trainable)"
        else:
            history = json.loads(
                (Path("submissions") / sub / "weights" / f"{sub.split('-')[0]}.history.json")
                .read_text()
            )  # fmt: skip
            assert training.startswith(
                f"{history['epoch']} epochs, ended by early stopping; best epoch "
                f"{history['best_epoch']}, validation loss {history['best_val_loss']:.5g}; seed 1;"
            ), training
            hours = sum(e["seconds"] for e in history["history"]) / 3600
            assert f"{hours:.2f} h of epoch time" in training
            assert training.endswith(f"dataset {history['settings']['dataset']['key']}")
        covariance = doc["scores"].get("covariance")
        if covariance is None:
            assert "This entry gives no per-event covariance." in page
            continue
        for key in ("pull_width_1", "pull_width_2", "coverage_1sigma", "significance_auc"):
            cell = re.search(rf"class='cov-{key}'>([^<]+)<", page)[1]
            assert cell == f"{covariance[key]:.3f}"
