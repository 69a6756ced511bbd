// metbench leaderboard: two entries of one dataset and task side by side. The dataset's data
// (data/<id>.js: tables and binned figures) and its differences (data/<id>.compare.js, computed
// at build time) are loaded when it is shown; the view (dataset, task, A, B) lives in the URL's
// hash: compare.html#ds=<dataset>&task=met&a=<entry>&b=<entry>.
"use strict";

(function () {
  const data = MB.data();
  const root = document.getElementById("compare");
  const taskNames = { met: "MET vs generator MET", recoil: "Z→μμ hadronic recoil vs qT" };
  // the curves overlaid: [figure, binning]
  const CURVES = [["S", "truth"], ["response", "truth"], ["S", "process"], ["S", "n_pu"]];
  const lowerIsBetter = new Set(["S", "S_par", "S_perp", "sigma_perp_over_r"]);
  let state = readHash();
  const charts = {};

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return { ds: params.get("ds") || "", task: params.get("task") || "", a: params.get("a") || "", b: params.get("b") || "" };
  }

  function hashOf(s) {
    const params = new URLSearchParams();
    for (const k of ["ds", "task", "a", "b"]) if (s[k]) params.set(k, s[k]);
    return params.toString();
  }

  function writeHash() {
    const h = hashOf(state);
    try { history.replaceState(null, "", location.href.replace(/#.*$/, "") + "#" + h); } catch (e) { location.hash = h; }
    const link = document.getElementById("compare-permalink");
    if (link) link.setAttribute("href", "#" + h);
  }

  // B - A of every figure: {figures: [keys], S: [value, low, high] paired, d: [value]} or null
  function difference(pairs, a, b) {
    if (pairs[a] && pairs[a][b]) return { sign: 1, diff: pairs[a][b] };
    if (pairs[b] && pairs[b][a]) return { sign: -1, diff: pairs[b][a] };
    return null;
  }

  const neg = (v) => (v === null || v === undefined ? null : -v);

  function verdict(f) {
    if (f.low === null || f.low === undefined) return "no paired interval";
    if (f.low > 0) return "A better (lower S)";
    if (f.high < 0) return "B better (lower S)";
    return "no significant difference (interval contains 0)";
  }

  function render(group, compare) {
    root.textContent = "";
    const tasks = Object.keys(compare.tasks);
    if (!tasks.length) { root.appendChild(MB.el("p", { class: "empty", text: "No MET table for this dataset." })); return; }
    if (!tasks.includes(state.task)) state.task = tasks[0];
    const rows = ((group.tasks[state.task] || []).find((v) => v.id === "all") || { rows: [] }).rows;
    const names = rows.map((r) => r.entry);
    if (!names.includes(state.a)) state.a = names[0] || "";
    if (!names.includes(state.b) || state.b === state.a) state.b = names.find((n) => n !== state.a) || "";
    writeHash();
    const rerender = () => { writeHash(); render(group, compare); };

    const d = group.dataset;
    root.appendChild(MB.el("h2", { text: `${d.name} v${d.version} — split ${d.split}, ${d.n_events} events` }));
    const swap = MB.el("button", { type: "button", class: "swap", text: "swap A and B" });
    swap.addEventListener("click", () => { [state.a, state.b] = [state.b, state.a]; rerender(); });
    const options = names.map((n) => [n, n]);
    root.appendChild(MB.el("div", { class: "controls" }, [
      MB.select("dataset-select", "dataset", data.groups.map((g) => [g.id, `${g.dataset.name} (${g.dataset.split})`]), group.id, (v) => { state = { ds: v, task: "", a: "", b: "" }; writeHash(); show(); }),
      MB.select("task-select", "task", tasks.map((t) => [t, taskNames[t] || t]), state.task, (v) => { state.task = v; rerender(); }),
      MB.select("a-select", "A", options, state.a, (v) => { state.a = v; rerender(); }),
      MB.select("b-select", "B", options, state.b, (v) => { state.b = v; rerender(); }),
      swap,
      MB.el("a", { id: "compare-permalink", href: "#" + hashOf(state), text: "permalink", title: "a link to this comparison" }),
    ]));
    if (!state.a || !state.b) { root.appendChild(MB.el("p", { class: "empty", text: "This task has fewer than two entries." })); return; }
    const links = MB.el("p", { class: "entry-links" });
    for (const [which, name] of [["A", state.a], ["B", state.b]]) {
      const e = group.entries[name];
      if (which === "B") links.appendChild(document.createTextNode(" · "));
      links.appendChild(document.createTextNode(which + ": "));
      links.appendChild(MB.el("a", { href: e.page, text: name }));
      for (const m of MB.marks(e.marks)) { links.appendChild(document.createTextNode(" ")); links.appendChild(m); }
    }
    root.appendChild(links);

    // the table of differences
    const found = difference(compare.tasks[state.task].pairs, state.a, state.b);
    const keys = compare.tasks[state.task].figures;
    const byKey = Object.fromEntries(data.columns.met.map((c) => [c.key, c]));
    const rowA = rows.find((r) => r.entry === state.a), rowB = rows.find((r) => r.entry === state.b);
    const level = Math.round(100 * compare.confidence);
    const table = keys.map((k, i) => {
      let diff = { value: null, low: null, high: null };
      if (found) {
        if (k === "S") {
          const [v, lo, hi] = found.diff.S;
          diff = found.sign > 0 ? { value: v, low: lo, high: hi } : { value: neg(v), low: neg(hi), high: neg(lo) };
        } else {
          diff = { value: found.sign > 0 ? found.diff.d[i] : neg(found.diff.d[i]), low: null, high: null };
        }
      }
      const c = byKey[k] || { label: k, tip: k, better: null };
      return { entry: k, key: k, i: i, label: c.label, tip: c.tip, better: c.better, a: rowA.figures[k], b: rowB.figures[k], diff: diff };
    }).filter((r) => (r.a && r.a.value !== null) || (r.b && r.b.value !== null));
    const digits = (k) => (k === "fake_rate" ? 4 : k === "response" || k.startsWith("tail") || k === "fake_auc" ? 3 : 1);
    root.appendChild(MB.el("h3", { text: "Differences of the figures: B − A" }));
    root.appendChild(MB.table([
      { key: "figure", label: "figure", sort: (r) => r.i, cell: (r) => MB.el("span", { title: r.tip, text: r.label + (r.better && MB.betterText[r.better] && r.better !== "one" ? " " + MB.betterText[r.better] : "") }), sticky: "first" },
      { key: "a", label: `A: ${state.a}`, sort: (r) => (r.a || {}).value, cell: (r) => MB.ci(r.a, digits(r.key)), cls: "num" },
      { key: "b", label: `B: ${state.b}`, sort: (r) => (r.b || {}).value, cell: (r) => MB.ci(r.b, digits(r.key)), cls: "num" },
      { key: "diff", label: `B − A [${level}% paired interval]`, tip: "the figure of B minus that of A; the interval (S only) from the shared bootstrap resamples", sort: (r) => r.diff.value, cell: (r) => MB.ci(r.diff, digits(r.key) + 1), cls: "num" },
      { key: "verdict", label: "paired verdict", sort: (r) => r.i, cell: (r) => (r.key === "S" ? verdict(r.diff) : "— (no replicas recorded)") },
    ], table, { cls: "compare-table", label: "differences B − A" }));
    root.appendChild(MB.el("p", { class: "note", text: `S(B) − S(A) with the ${level}% interval of the paired bootstrap differences (the rule that ranks the table: A ranks ahead of B only if it lies above 0). The results store the bootstrap replicas of S only: the other differences have no interval.` }));

    // the binned curves overlaid
    root.appendChild(MB.el("h3", { text: "Binned curves" }));
    const pair = [[state.a, group.entries[state.a], 0], [state.b, group.entries[state.b], 1]];
    CURVES.forEach(([figure, binning], k) => {
      const f = data.figures[figure] || { label: figure, unit: "" };
      const title = `${f.label} versus ${MB.binningLabel(state.task, binning).replace(/ \[GeV\]$/, "")}`;
      root.appendChild(MB.el("h4", { text: title }));
      const box = MB.el("div", { class: "chart-holder compare-chart", "data-figure": figure, "data-binning": binning });
      root.appendChild(box);
      charts[k] = charts[k] || new MB.Chart(box, title);
      charts[k].container = box;
      charts[k].draw(MB.binnedSeries(pair, state.task, binning, figure), {
        xLabel: MB.binningLabel(state.task, binning), xName: binning, categorical: binning === "process",
        yLabel: f.label + (f.unit ? ` [${f.unit}]` : "") + (lowerIsBetter.has(figure) ? " ↓ better" : ""),
        empty: "too few events in these bins for this figure",
      });
    });
  }

  function show() {
    const meta = data.groups.find((g) => g.id === state.ds) || data.groups[0];
    if (!meta) { root.textContent = "No results."; return; }
    state.ds = meta.id;
    root.textContent = "";
    root.appendChild(MB.el("p", { class: "loading", text: `Loading ${meta.dataset.name}…` }));
    const failed = () => {
      root.textContent = "";
      root.appendChild(MB.el("p", { class: "error", text: `The data of ${meta.dataset.name} could not be loaded.` }));
    };
    MB.load(meta.id, meta.script, (group) => {
      MB.load(meta.id + ".compare", meta.compare_script, (compare) => render(group, compare), failed);
    }, failed);
  }

  window.addEventListener("hashchange", () => {
    const next = readHash();
    if (hashOf(next) === hashOf(state)) return;
    state = next;
    show();
  });
  show();
})();
