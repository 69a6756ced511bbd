// metbench leaderboard: the front page. One dataset at a time, its data loaded on demand
// (data/<id>.js); the state of the table (dataset, task, selection, filters, sort, columns) and
// of the plots lives in the URL's hash, so that a link brings back the same view.
"use strict";

(function () {
  const data = MB.data();
  const root = document.getElementById("groups");
  const plotFigures = ["S", "S_par", "S_perp", "response", "sigma_perp_over_r"];
  const binnings = { truth: "true |MET| or qT [GeV]", n_pu: "true pileup n_pu", n_pv: "reconstructed vertices n_pv", process: "process" };
  const taskNames = { met: "MET vs generator MET", recoil: "Z→μμ hadronic recoil vs qT" };
  const DEFAULTS = { d: data.groups.length ? data.groups[0].id : "", task: "met", view: "all", sort: "", dir: "1", hide: "", kind: "", fw: "", truth: "", oracle: "0", twins: "0", q: "", fig: "S", bin: "truth", ptask: "met" };
  const FIXED = ["rank", "entry", "S"]; // always shown, kept in view (sticky)
  let state = readHash();
  let group = null;
  const charts = {};

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const s = Object.assign({}, DEFAULTS);
    for (const k of Object.keys(DEFAULTS)) if (params.has(k)) s[k] = params.get(k);
    return s;
  }

  function hashOf(s) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(s)) if (v !== DEFAULTS[k]) params.set(k, v);
    return params.toString();
  }

  function writeHash() {
    const h = hashOf(state);
    const url = location.href.replace(/#.*$/, "") + (h ? "#" + h : "");
    try { history.replaceState(null, "", url); } catch (e) { location.hash = h; }
    const link = document.getElementById("permalink");
    if (link) link.setAttribute("href", "#" + h);
  }

  function set(changes, redraw) {
    Object.assign(state, changes);
    writeHash();
    (redraw || renderTable)();
  }

  function throughputAt(entry) {
    const b = (entry.throughput || []).filter((t) => t.events_per_s);
    if (!b.length) return null;
    return b.reduce((a, c) => (c.batch_size > a.batch_size ? c : a)).events_per_s;
  }

  function select(cls, label, options, value, onChange) {
    const id = `${cls}-${Math.random().toString(36).slice(2, 8)}`;
    const s = MB.el("select", { class: cls, id: id });
    for (const [v, text] of options) s.appendChild(MB.el("option", { value: v, text: text }));
    s.value = options.some(([v]) => v === value) ? value : options.length ? options[0][0] : "";
    s.addEventListener("change", () => onChange(s.value));
    return MB.el("span", { class: "control" }, [MB.el("label", { for: id, text: label }), s]);
  }

  function checkbox(cls, label, checked, onChange) {
    const box = MB.el("input", { type: "checkbox", class: cls });
    box.checked = checked;
    box.addEventListener("change", () => onChange(box.checked));
    return MB.el("label", { class: "control check" }, [box, " " + label]);
  }

  function entryCell(name) {
    const e = group.entries[name];
    const span = MB.el("span", { class: "entry-cell" }, [MB.el("a", { href: e.page, text: name })]);
    if (e.uses_truth && e.uses_truth.length && e.kind !== "oracle") span.appendChild(MB.el("span", { class: "note", text: " (truth-matched inputs)" }));
    for (const m of MB.marks(e.marks)) { span.appendChild(document.createTextNode(" ")); span.appendChild(m); }
    return span;
  }

  function digitsOf(key) {
    return key === "response" || key.startsWith("tail") || key === "fake_auc" ? 3 : 1;
  }

  // every column of the MET table, in order; the first three are kept in view
  function metColumns() {
    const cols = [
      { key: "rank", label: "rank", tip: "paired-bootstrap rank (= a tie, ref: the oracle, —: no S)", sort: (r) => (r.rank === null ? 1e9 : r.rank), cell: (r) => r.rank_label, cls: "num", sticky: "rank" },
      { key: "entry", label: "entry", tip: "the entry (its page: README, figures, downloads)", sort: (r) => r.entry, cell: (r) => entryCell(r.entry), sticky: "entry" },
    ];
    for (const c of data.columns.met) {
      const col = Object.assign({}, c, { sort: (r) => r.figures[c.key].value, cell: (r) => MB.ci(r.figures[c.key], digitsOf(c.key)), cls: "num" });
      if (c.key === "S") col.sticky = "head";
      cols.push(col);
      if (c.key === "S") cols.push({ key: "kind", label: "kind", tip: "baseline, ML, reference, oracle or submission", sort: (r) => group.entries[r.entry].kind, cell: (r) => MB.el("span", { class: "kind kind-" + group.entries[r.entry].kind, text: group.entries[r.entry].kind }) });
    }
    cols.push({ key: "framework", label: "framework", tip: "what the entry runs on", sort: (r) => group.entries[r.entry].framework, cell: (r) => group.entries[r.entry].framework });
    cols.push({ key: "n", label: "events", tip: "events in this selection", sort: (r) => r.n, cell: (r) => MB.fmt(r.n, 0), cls: "num" });
    cols.push({ key: "speed", label: "events/s", tip: "events per second at the largest batch size measured (CPU, self-reported)", better: "higher", sort: (r) => throughputAt(group.entries[r.entry]), cell: (r) => MB.fmt(throughputAt(group.entries[r.entry]), 0), cls: "num" });
    return cols;
  }

  function hidden() {
    return new Set(state.hide ? state.hide.split(",") : []);
  }

  function currentView() {
    const views = group.tasks[state.task] || group.tasks[Object.keys(group.tasks)[0]];
    return views.find((v) => v.id === state.view) || views[0];
  }

  function filteredRows(view) {
    const q = state.q.trim().toLowerCase();
    let rows = view.rows.filter((r) => {
      const e = group.entries[r.entry];
      if (state.kind && e.kind !== state.kind) return false;
      if (state.fw && e.framework !== state.fw) return false;
      const truth = (e.uses_truth || []).length > 0;
      if (state.truth === "no" && truth) return false;
      if (state.truth === "yes" && !truth) return false;
      if (state.oracle === "1" && e.kind === "oracle") return false;
      if (q && !`${r.entry} ${e.description} ${e.framework} ${e.kind} ${e.category}`.toLowerCase().includes(q)) return false;
      return true;
    });
    let collapsed = 0;
    if (state.twins === "1") {
      const seen = new Set();
      rows = rows.filter((r) => {
        const twin = group.entries[r.entry].twin;
        if (!twin) return true;
        if (seen.has(twin)) { collapsed++; return false; }
        seen.add(twin);
        return true;
      });
    }
    return { rows: rows, collapsed: collapsed };
  }

  const tableHolder = MB.el("div", { class: "table-holder" });
  let tableBox = null;

  function renderTable() {
    if (!group) return;
    tableHolder.textContent = "";
    const view = currentView();
    const hide = hidden();
    const columns = metColumns().filter((c) => !hide.has(c.key) || FIXED.includes(c.key));
    const { rows, collapsed } = filteredRows(view);
    const sort = state.sort ? { key: state.sort, dir: Number(state.dir) || 1 } : null;
    tableBox = MB.table(columns, rows, {
      cls: "met-table", label: `${taskNames[state.task] || state.task}, ${view.label}`, sort: sort,
      empty: "no entry matches these filters",
      onSort: (key, dir) => { state.sort = key; state.dir = String(dir); writeHash(); },
    });
    tableHolder.appendChild(tableBox);
    const status = `${rows.length} of ${view.rows.length} entries shown` + (collapsed ? ` (${collapsed} runtime twin${collapsed > 1 ? "s" : ""} collapsed)` : "");
    tableHolder.appendChild(MB.el("p", { class: "shown", role: "status", text: status }));
    const notes = view.id === "all" ? data.notes.slice() : ["ordered by S in this selection (ranks with paired intervals: the all-events view)"];
    for (const r of view.rows) if (r.reason && !r.oracle) notes.push(`${r.entry}: no S (${r.reason})`);
    if (group.met_source && group.met_source.length) notes.push("not in these tables, their MET is another entry's: " + group.met_source.join(", "));
    for (const n of notes) tableHolder.appendChild(MB.el("p", { class: "note", text: n }));
    for (const line of group.legend || []) tableHolder.appendChild(MB.el("p", { class: "legend", text: line }));
  }

  function download(kind) {
    const view = currentView();
    const hide = hidden();
    const cols = metColumns().filter((c) => !hide.has(c.key) || FIXED.includes(c.key));
    const rows = tableBox ? tableBox.rows() : [];
    const figureKeys = new Set(data.columns.met.map((c) => c.key));
    const stem = `metbench-${group.id}-${state.task}-${view.id.replace(/[^A-Za-z0-9_.-]+/g, "_")}`;
    const value = (r, c) => {
      const e = group.entries[r.entry];
      if (c.key === "rank") return r.rank_label;
      if (c.key === "entry") return r.entry;
      if (c.key === "kind") return e.kind;
      if (c.key === "framework") return e.framework;
      if (c.key === "n") return r.n;
      if (c.key === "speed") return throughputAt(e);
      return null;
    };
    if (kind === "json") {
      const out = {
        dataset: group.dataset, task: state.task, selection: view.id,
        filters: { kind: state.kind, framework: state.fw, uses_truth: state.truth, hide_oracle: state.oracle === "1", collapse_twins: state.twins === "1", search: state.q },
        columns: cols.map((c) => c.key),
        rows: rows.map((r) => {
          const o = {};
          for (const c of cols) o[c.key] = figureKeys.has(c.key) ? r.figures[c.key] : value(r, c);
          return o;
        }),
      };
      MB.download(stem + ".json", "application/json", JSON.stringify(out, null, 1));
      return;
    }
    const header = [];
    for (const c of cols) {
      if (figureKeys.has(c.key)) header.push(c.key, c.key + "_low", c.key + "_high");
      else header.push(c.key);
    }
    const lines = [header.map(MB.csvCell).join(",")];
    for (const r of rows) {
      const cells = [];
      for (const c of cols) {
        if (figureKeys.has(c.key)) { const f = r.figures[c.key]; cells.push(f.value, f.low, f.high); }
        else cells.push(value(r, c));
      }
      lines.push(cells.map(MB.csvCell).join(","));
    }
    MB.download(stem + ".csv", "text/csv", lines.join("\n") + "\n");
  }

  function tools() {
    const entries = Object.values(group.entries);
    const uniq = (f) => [...new Set(entries.map(f))].sort();
    const search = MB.el("input", { type: "search", class: "search", id: "search", placeholder: "name, description…", value: state.q });
    search.addEventListener("input", () => set({ q: search.value }));
    const chooser = MB.el("details", { class: "columns" }, [MB.el("summary", { text: "columns" })]);
    const hide = hidden();
    for (const c of metColumns()) {
      if (FIXED.includes(c.key)) continue;
      const box = MB.el("input", { type: "checkbox", class: "column-toggle", "data-key": c.key });
      box.checked = !hide.has(c.key);
      box.addEventListener("change", () => {
        const h = hidden();
        if (box.checked) h.delete(c.key); else h.add(c.key);
        set({ hide: metColumns().map((x) => x.key).filter((k) => h.has(k)).join(",") });
      });
      chooser.appendChild(MB.el("label", { class: "check" }, [box, " " + c.label]));
    }
    const csv = MB.el("button", { type: "button", class: "download-csv", text: "download CSV" });
    csv.addEventListener("click", () => download("csv"));
    const json = MB.el("button", { type: "button", class: "download-json", text: "download JSON" });
    json.addEventListener("click", () => download("json"));
    const permalink = MB.el("a", { id: "permalink", href: "#" + hashOf(state), text: "permalink", title: "a link to this view (dataset, task, selection, filters, sort, columns)" });
    const hasTwins = entries.some((e) => e.twin);
    return MB.el("div", { class: "controls tools" }, [
      MB.el("span", { class: "control" }, [MB.el("label", { for: "search", text: "search" }), search]),
      select("kind-filter", "kind", [["", "all"], ...uniq((e) => e.kind).map((k) => [k, k])], state.kind, (v) => set({ kind: v })),
      select("framework-filter", "framework", [["", "all"], ...uniq((e) => e.framework).map((k) => [k, k])], state.fw, (v) => set({ fw: v })),
      select("truth-filter", "uses truth", [["", "either"], ["no", "no"], ["yes", "yes"]], state.truth, (v) => set({ truth: v })),
      checkbox("hide-oracle", "hide oracle", state.oracle === "1", (v) => set({ oracle: v ? "1" : "0" })),
      hasTwins ? checkbox("collapse-twins", "collapse runtime twins", state.twins === "1", (v) => set({ twins: v ? "1" : "0" })) : MB.el("span"),
      chooser, csv, json, permalink,
    ]);
  }

  function binnedSeries(task, binning, figure) {
    const series = [];
    Object.entries(group.entries).forEach(([name, e], i) => {
      const b = (e.plots[task] || {})[binning];
      if (!b) return;
      const f = b.figures[figure];
      series.push({
        name: name, style: i,
        points: b.labels.map((label, k) => ({ x: k, xLabel: label, y: f.value[k], low: f.low ? f.low[k] : null, high: f.high ? f.high[k] : null })),
      });
    });
    return series;
  }

  function paretoSection(section) {
    section.appendChild(MB.el("h3", { id: "pareto-heading", text: "Resolution against speed" }));
    const holder = MB.el("div", { class: "chart-holder pareto-chart" });
    section.appendChild(holder);
    const rows = ((group.tasks.met || []).find((v) => v.id === "all") || { rows: [] }).rows;
    const series = [];
    const points = [];
    const names = Object.keys(group.entries);
    for (const r of rows) {
      const e = group.entries[r.entry];
      const S = r.figures.S.value;
      if (r.oracle || S === null) continue;
      const pts = (e.throughput || []).filter((t) => t.events_per_s > 0).map((t) => ({ x: t.events_per_s, xLabel: String(t.batch_size), y: S, low: null, high: null, label: `batch ${t.batch_size}, ${MB.fmt(t.events_per_s, 0)} events/s, S` }));
      if (!pts.length) continue;
      points.push(...pts);
      series.push({ name: r.entry, style: names.indexOf(r.entry), points: pts });
    }
    if (!series.length) {
      holder.appendChild(MB.el("p", { class: "empty no-throughput", text: "These results have no throughput rows (they were run without a throughput measurement), so there is no plot of S against events/s for this dataset." }));
      return;
    }
    const front = MB.paretoFront(points);
    for (const p of front) p.front = true;
    section.insertBefore(MB.el("p", { class: "legend", text: "One point per entry and batch size: the headline S (lower is better) against events/s (CPU, self-reported; higher is better). Outlined points and the line are the Pareto front: no other point is both faster and better. The oracle is left out (it uses truth)." }), holder);
    charts.pareto = charts.pareto || new MB.Chart(holder, "pareto");
    charts.pareto.container = holder;
    charts.pareto.draw(series, { logX: true, lines: false, front: front, xLabel: "events/s (CPU, self-reported; log scale)", xName: "events/s", yLabel: "S [GeV] (lower is better)" });
  }

  function renderGroup() {
    root.textContent = "";
    const d = group.dataset;
    const section = MB.el("section", { class: "group", "data-group": group.id });
    root.appendChild(section); // in the page first: the charts are drawn at their own width
    const heading = MB.el("h2", { text: `${d.name} v${d.version} — split ${d.split}, ${d.n_events} events (manifest ${d.manifest_sha256.slice(0, 12)})` });
    for (const m of MB.marks(d.marks)) { heading.appendChild(document.createTextNode(" ")); heading.appendChild(m); }
    section.appendChild(heading);
    section.appendChild(MB.el("p", {}, [MB.el("a", { href: `dataset.html#ds-${group.id}`, text: "about this dataset" })]));

    const tasks = Object.keys(group.tasks);
    if (!tasks.includes(state.task)) state.task = tasks[0];
    section.appendChild(MB.el("h3", { text: "MET regression" }));
    if (tasks.length) {
      const viewHolder = MB.el("span");
      const renderViews = () => {
        viewHolder.textContent = "";
        viewHolder.appendChild(select("view-select", "events", group.tasks[state.task].map((v) => [v.id, v.label]), state.view, (v) => set({ view: v })));
      };
      section.appendChild(MB.el("div", { class: "controls" }, [
        select("task-select", "task", tasks.map((t) => [t, taskNames[t] || t]), state.task, (v) => { set({ task: v, view: "all" }, () => { renderViews(); renderTable(); }); }),
        viewHolder,
      ]));
      renderViews();
      section.appendChild(tools());
      section.appendChild(tableHolder);
      renderTable();
    } else {
      section.appendChild(MB.el("p", { class: "empty", text: "No MET table for this dataset." }));
    }

    if (group.kinematics.length) {
      section.appendChild(MB.el("h3", { text: "Kinematic reconstruction: tt → bℓν bℓν neutrinos" }));
      const cols = [
        { key: "rank", label: "rank", sort: (r) => (r.rank === null ? 1e9 : r.rank), cell: (r) => r.rank_label, cls: "num", sticky: "rank" },
        { key: "entry", label: "entry", sort: (r) => r.entry, cell: (r) => entryCell(r.entry), sticky: "entry" },
      ];
      data.columns.kinematics.forEach((c, i) => cols.push(Object.assign({}, c, { sort: (r) => r.figures[c.key].value, cell: (r) => MB.ci(r.figures[c.key], c.key.endsWith("window") ? 3 : 1), cls: "num", sticky: i === 0 ? "head" : undefined })));
      cols.push({ key: "n", label: "events", sort: (r) => r.n, cell: (r) => String(r.n), cls: "num" });
      section.appendChild(MB.table(cols, group.kinematics, { cls: "kinematics-table", label: "kinematic reconstruction" }));
    }

    paretoSection(section);

    section.appendChild(MB.el("h3", { text: "Response and resolution in bins" }));
    const chart = MB.el("div", { class: "chart-holder", id: "chart-0" });
    const downloads = MB.el("p", { class: "downloads" });
    charts.binned = charts.binned || new MB.Chart(chart, "binned");
    charts.binned.container = chart;
    const gi = data.groups.findIndex((g) => g.id === group.id);
    const renderChart = () => {
      const label = data.figures[state.fig] || data.figures.S;
      const lower = ["S", "S_par", "S_perp", "sigma_perp_over_r"].includes(state.fig);
      charts.binned.draw(binnedSeries(state.ptask, state.bin, state.fig), {
        xLabel: binnings[state.bin] || state.bin, xName: state.bin, categorical: state.bin === "process",
        yLabel: label.label + (label.unit ? ` [${label.unit}]` : "") + (lower ? " ↓ better" : ""),
        empty: "too few events in these bins for this figure",
      });
      downloads.textContent = "";
      const files = (data.downloads || {})[`g${gi}_met_${state.fig}_vs_${state.bin}`];
      if (files && state.ptask === "met") {
        downloads.append("for papers (mplhep): ", MB.el("a", { href: files.png, download: "", text: "PNG" }), " · ", MB.el("a", { href: files.pdf, download: "", text: "PDF" }));
      }
    };
    section.appendChild(MB.el("div", { class: "controls" }, [
      select("plot-task", "task", tasks.map((t) => [t, t]), state.ptask, (v) => set({ ptask: v }, renderChart)),
      select("figure-select", "figure", plotFigures.map((f) => [f, data.figures[f].label]), state.fig, (v) => set({ fig: v }, renderChart)),
      select("binning-select", "versus", Object.entries(binnings), state.bin, (v) => set({ bin: v }, renderChart)),
    ]));
    section.appendChild(chart);
    section.appendChild(downloads);
    renderChart();

    section.appendChild(MB.el("h3", { text: "Throughput versus batch size (CPU)" }));
    const tchart = MB.el("div", { class: "chart-holder throughput-chart" });
    section.appendChild(tchart);
    const tseries = [];
    Object.entries(group.entries).forEach(([name, e], i) => {
      const pts = (e.throughput || []).filter((t) => t.events_per_s).map((t) => ({ x: t.batch_size, xLabel: String(t.batch_size), y: t.events_per_s, low: null, high: null }));
      if (pts.length) tseries.push({ name: name, style: i, points: pts });
    });
    charts.throughput = charts.throughput || new MB.Chart(tchart, "throughput");
    charts.throughput.container = tchart;
    charts.throughput.draw(tseries, { logX: true, logY: true, xLabel: "batch size [events]", xName: "batch", yLabel: "events/s ↑ better", empty: "These results have no throughput rows: no throughput was measured." });
  }

  function showGroup() {
    const meta = data.groups.find((g) => g.id === state.d) || data.groups[0];
    if (!meta) { root.textContent = "No results."; return; }
    state.d = meta.id;
    root.textContent = "";
    root.appendChild(MB.el("p", { class: "loading", text: `Loading ${meta.dataset.name}…` }));
    MB.load(meta.id, meta.script, (g) => { group = g; renderGroup(); }, () => {
      root.textContent = "";
      root.appendChild(MB.el("p", { class: "error", text: `The data of ${meta.dataset.name} (${meta.script}) could not be loaded.` }));
    });
  }

  // the dataset chooser
  if (data.groups.length > 1) {
    const nav = MB.el("div", { class: "controls datasets", role: "group", "aria-label": "dataset" }, [MB.el("span", { class: "label", text: "dataset: " })]);
    for (const g of data.groups) {
      const d = g.dataset;
      const b = MB.el("button", { type: "button", class: "dataset-button", "data-group": g.id, "aria-pressed": String(g.id === state.d), text: `${d.name} (${d.split}, ${d.n_events} events, ${g.n_entries} entries)` });
      b.addEventListener("click", () => {
        for (const other of nav.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === b));
        state.d = g.id; state.view = "all";
        writeHash();
        showGroup();
      });
      nav.appendChild(b);
    }
    root.parentNode.insertBefore(nav, root);
  }

  window.addEventListener("hashchange", () => {
    const next = readHash();
    if (hashOf(next) === hashOf(state)) return;
    state = next;
    for (const b of document.querySelectorAll(".dataset-button")) b.setAttribute("aria-pressed", String(b.dataset.group === state.d));
    showGroup();
  });
  showGroup();
})();
