// metbench leaderboard: the front page. One dataset at a time, its data loaded on demand
// (data/<id>.js); the state of the table (dataset, task, selection, filters, sort, columns) and
// of the plots (figure, binning, the series hidden in the legends) lives in the URL's hash, so
// that a link brings back the same view.
"use strict";

(function () {
  const data = MB.data();
  const root = document.getElementById("groups");
  const plotFigures = ["S", "S_par", "S_perp", "response", "sigma_perp_over_r"];
  const binnings = { truth: "|t|: true |MET| or qT", n_pu: "true pileup n_pu", n_pv: "reconstructed vertices n_pv", process: "process" };
  const truthLabels = { met: "true |MET| [GeV]", recoil: "qT [GeV]" };
  const xLabel = (task, binning) => (binning === "truth" ? truthLabels[task] || "|t| [GeV]" : binnings[binning] || binning);
  const taskNames = { met: "MET vs generator MET", recoil: "Z→μμ hadronic recoil vs qT" };
  const DEFAULTS = { d: data.groups.length ? data.groups[0].id : "", task: "met", view: "all", sort: "", dir: "1", hide: "", kind: "", fw: "", truth: "", oracle: "0", twins: "0", q: "", fig: "S", bin: "truth", ptask: "met", off: "" };
  let group = null; // the dataset shown (its data/<id>.js)
  // columns the table starts without (the column chooser shows them)
  const OPTIONAL = new Set(["rms_par", "rms_perp", "tail_25", "tail_100", "params", "p99", "rss", "pu_slope", "seeds"]);
  DEFAULTS.hide = metColumns().map((c) => c.key).filter((k) => OPTIONAL.has(k)).join(",");
  const FIXED = ["rank", "entry", "S"]; // always shown, kept in view (sticky)
  let state = readHash();
  const charts = {};
  // the series hidden in the legends, one set for every chart of the page (in the hash: "off")
  const legendOff = new Set();

  function readLegend() {
    legendOff.clear();
    for (const name of state.off ? state.off.split(",") : []) legendOff.add(decodeURIComponent(name));
  }

  function onLegend() {
    state.off = [...legendOff].sort().map(encodeURIComponent).join(",");
    for (const c of Object.values(charts)) c.refresh();
    writeHash();
  }

  function chart(key, holder) {
    if (!charts[key]) {
      charts[key] = new MB.Chart(holder, key);
      charts[key].hidden = legendOff;
      charts[key].onLegend = onLegend;
    }
    charts[key].container = holder;
    return charts[key];
  }

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

  // the rows of the run itself (the table's columns); rows measured after it on another device
  // or machine (extra) are drawn in the plots beside them
  const ownRows = (entry) => (entry.throughput || []).filter((t) => !t.extra);
  const rowDevice = (t) => (/^cuda/.test(t.device || "") ? "GPU" : "CPU");

  // the batch size of the events/s column: the largest measured by most entries
  function speedBatch() {
    const counts = {};
    for (const e of Object.values(group ? group.entries : {})) {
      const b = ownRows(e).filter((t) => t.events_per_s);
      if (!b.length) continue;
      const largest = Math.max(...b.map((t) => t.batch_size));
      counts[largest] = (counts[largest] || 0) + 1;
    }
    const best = Object.entries(counts).sort((a, b) => b[1] - a[1] || Number(b[0]) - Number(a[0]))[0];
    return best ? Number(best[0]) : null;
  }

  // the throughput row of an entry shown in the table: at speedBatch(), else its largest batch
  function throughputRow(entry) {
    const b = ownRows(entry).filter((t) => t.events_per_s);
    if (!b.length) return null;
    const batch = speedBatch();
    return b.find((t) => t.batch_size === batch) || b.reduce((a, c) => (c.batch_size > a.batch_size ? c : a));
  }

  function throughputAt(entry) {
    const row = throughputRow(entry);
    return row ? row.events_per_s : null;
  }

  const isGpu = (entry) => /^cuda/.test(entry.throughput_device || "");

  // a throughput figure with what differs from the column's header: another batch, a GPU
  function speedCell(entry, key, digits) {
    const row = throughputRow(entry);
    if (!row || row[key] === null || row[key] === undefined) return "—";
    const notes = [];
    if (row.batch_size !== speedBatch()) notes.push(`batch ${row.batch_size}`);
    if (isGpu(entry)) notes.push("GPU");
    const span = MB.el("span", { class: "val", text: MB.fmt(row[key], digits) });
    if (notes.length) span.appendChild(MB.el("span", { class: "ci", text: ` (${notes.join(", ")})` }));
    return span;
  }

  function seedCell(spread) {
    if (!spread) return "—";
    return MB.el("span", { class: "val", title: `S over ${spread.n} seeds: min–max and standard deviation`, text: `${MB.fmt(spread.min, 1)}–${MB.fmt(spread.max, 1)}` }, [MB.el("span", { class: "ci", text: ` σ ${MB.fmt(spread.std, 2)}, ${spread.n} seeds${spread.budget ? ` at ${spread.budget} epochs` : ""}` })]);
  }

  const pileupSlope = (entry) => ((entry.pileup_fit || {}).S || {}).b || null;

  const select = MB.select;

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
    return key === "fake_rate" ? 4 : key === "response" || key.startsWith("tail") || key === "fake_auc" ? 3 : 1;
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
    const batch = group ? speedBatch() : null;
    const at = batch ? ` @ batch ${batch}` : "";
    const ent = (r) => group.entries[r.entry];
    cols.push({ key: "speed", label: "events/s" + at, tip: `events per second at batch size ${batch || "(the largest measured)"} (another batch or a GPU is noted in the cell; self-reported)`, better: "higher", sort: (r) => throughputAt(ent(r)), cell: (r) => speedCell(ent(r), "events_per_s", 0), cls: "num" });
    cols.push({ key: "params", label: "parameters", tip: "trainable parameters (— not reported or not trainable)", sort: (r) => ent(r).n_parameters, cell: (r) => (Number.isInteger(ent(r).n_parameters) ? ent(r).n_parameters.toLocaleString("en-US") : "—"), cls: "num" });
    cols.push({ key: "p99", label: "latency p99 [ms]" + at, tip: "99th percentile of the time of one call at the events/s column's batch size (self-reported)", better: "lower", sort: (r) => (throughputRow(ent(r)) || {}).p99_ms, cell: (r) => speedCell(ent(r), "p99_ms", 2), cls: "num" });
    cols.push({ key: "rss", label: "peak memory [MB]" + at, tip: "peak resident memory of the predicting process at the events/s column's batch size (self-reported)", better: "lower", sort: (r) => (throughputRow(ent(r)) || {}).peak_rss_mb, cell: (r) => speedCell(ent(r), "peak_rss_mb", 0), cls: "num" });
    cols.push({ key: "pu_slope", label: "pileup slope b [GeV]", tip: "b of the fit S² = a² + b²·n_pu over the n_pu bins (MET task; the entry's page has a and the extrapolation to n_pu = 200)", better: "lower", sort: (r) => (pileupSlope(ent(r)) || {}).value, cell: (r) => MB.ci(pileupSlope(ent(r)), 2), cls: "num" });
    cols.push({ key: "seeds", label: "S over seeds [GeV]", tip: "min–max and standard deviation of S over the trainings of the entry (results that differ only in parameters.seed); the row is the median training (— one training)", sort: (r) => (ent(r).seed_spread || {}).std, cell: (r) => seedCell(ent(r).seed_spread), cls: "num" });
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
  let compareLink = null;

  // the compare page with the first two entries shown (in the order shown)
  function updateCompare() {
    if (!compareLink) return;
    const shown = tableBox ? tableBox.rows() : [];
    const params = new URLSearchParams({ ds: group.id, task: state.task });
    if (shown[0]) params.set("a", shown[0].entry);
    if (shown[1]) params.set("b", shown[1].entry);
    compareLink.setAttribute("href", "compare.html#" + params.toString());
  }

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
      onSort: (key, dir) => { state.sort = key; state.dir = String(dir); writeHash(); updateCompare(); },
    });
    tableHolder.appendChild(tableBox);
    const status = `${rows.length} of ${view.rows.length} entries shown` + (collapsed ? ` (${collapsed} runtime twin${collapsed > 1 ? "s" : ""} collapsed)` : "");
    tableHolder.appendChild(MB.el("p", { class: "shown", role: "status", text: status }));
    const notes = view.id === "all" ? data.notes.slice() : ["ordered by S in this selection (ranks with paired intervals: the all-events view)"];
    for (const r of view.rows) if (r.reason && !r.oracle) notes.push(`${r.entry}: no S (${r.reason})`);
    if (group.met_source && group.met_source.length) notes.push("not in these tables, their MET is another entry's: " + group.met_source.join(", "));
    for (const n of notes) tableHolder.appendChild(MB.el("p", { class: "note", text: n }));
    for (const line of group.legend || []) tableHolder.appendChild(MB.el("p", { class: "legend", text: line }));
    updateCompare();
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
      if (c.key === "params") return e.n_parameters;
      if (c.key === "p99") return (throughputRow(e) || {}).p99_ms;
      if (c.key === "rss") return (throughputRow(e) || {}).peak_rss_mb;
      if (c.key === "pu_slope") return (pileupSlope(e) || {}).value;
      if (c.key === "seeds") return e.seed_spread ? e.seed_spread.std : null;
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
    compareLink = MB.el("a", { class: "compare-link", href: "compare.html", text: "compare two entries", title: "the first two entries shown, side by side: binned curves and paired differences" });
    return MB.el("div", { class: "controls tools" }, [
      MB.el("span", { class: "control" }, [MB.el("label", { for: "search", text: "search" }), search]),
      select("kind-filter", "kind", [["", "all"], ...uniq((e) => e.kind).map((k) => [k, k])], state.kind, (v) => set({ kind: v })),
      select("framework-filter", "framework", [["", "all"], ...uniq((e) => e.framework).map((k) => [k, k])], state.fw, (v) => set({ fw: v })),
      select("truth-filter", "uses truth", [["", "either"], ["no", "no"], ["yes", "yes"]], state.truth, (v) => set({ truth: v })),
      checkbox("hide-oracle", "hide oracle", state.oracle === "1", (v) => set({ oracle: v ? "1" : "0" })),
      hasTwins ? checkbox("collapse-twins", "collapse runtime twins", state.twins === "1", (v) => set({ twins: v ? "1" : "0" })) : MB.el("span"),
      chooser, csv, json, permalink, compareLink,
    ]);
  }

  function binnedSeries(task, binning, figure) {
    const series = [];
    Object.entries(group.entries).forEach(([name, e], i) => {
      const b = (e.plots[task] || {})[binning];
      if (!b || e.seed_of) return; // a repeated training: its median training stands for it
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
    const byDevice = { CPU: [], GPU: [] };
    const names = Object.keys(group.entries);
    for (const r of rows) {
      const e = group.entries[r.entry];
      const S = r.figures.S.value;
      if (r.oracle || S === null) continue;
      const pts = (e.throughput || []).filter((t) => t.events_per_s > 0).map((t) => { const device = rowDevice(t); return { x: t.events_per_s, xLabel: String(t.batch_size), y: S, low: null, high: null, device: device, label: `${device}${device === "GPU" ? ` (${t.device})` : ""}, batch ${t.batch_size}, ${MB.fmt(t.events_per_s, 0)} events/s, S` }; });
      if (!pts.length) continue;
      for (const p of pts) byDevice[p.device].push(p);
      series.push({ name: r.entry, style: names.indexOf(r.entry), points: pts });
    }
    if (!series.length) {
      holder.appendChild(MB.el("p", { class: "empty no-throughput", text: "These results have no throughput rows (they were run without a throughput measurement), so there is no plot of S against events/s for this dataset." }));
      return;
    }
    // a front per device: a GPU's events/s are not comparable with a CPU's
    const fronts = [];
    for (const [device, points] of Object.entries(byDevice)) {
      if (!points.length) continue;
      const front = MB.paretoFront(points);
      for (const p of front) p.front = true;
      front.device = device;
      fronts.push(front);
    }
    const devices = fronts.map((f) => f.device);
    const both = devices.length > 1;
    section.insertBefore(MB.el("p", { class: "legend pareto-legend", text: `One point per entry and batch size: the headline S (lower is better) against events/s (${devices.join(" and ")}, self-reported; higher is better). ` + (both ? "Filled points were measured on a CPU, hollow ones on a GPU; each device has its own Pareto front (outlined points and the line, dashed for the GPU): no other point of that device is both faster and better." : "Outlined points and the line are the Pareto front: no other point is both faster and better.") + " The oracle is left out (it uses truth)." }), holder);
    chart("pareto", holder).draw(series, { logX: true, lines: false, fronts: fronts, xLabel: `events/s (${devices.join(" / ")}, self-reported; log scale)`, xName: "events/s", yLabel: "S [GeV] (lower is better)" });
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
    const chartBox = MB.el("div", { class: "chart-holder", id: "chart-0" });
    const downloads = MB.el("p", { class: "downloads" });
    chart("binned", chartBox);
    const gi = data.groups.findIndex((g) => g.id === group.id);
    const renderChart = () => {
      const label = data.figures[state.fig] || data.figures.S;
      const lower = ["S", "S_par", "S_perp", "sigma_perp_over_r"].includes(state.fig);
      charts.binned.draw(binnedSeries(state.ptask, state.bin, state.fig), {
        xLabel: xLabel(state.ptask, state.bin), xName: state.bin, categorical: state.bin === "process",
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
    section.appendChild(chartBox);
    section.appendChild(downloads);
    renderChart();

    const tdevices = [...new Set(Object.values(group.entries).flatMap((e) => (e.throughput || []).map(rowDevice)))].sort();
    section.appendChild(MB.el("h3", { text: `Throughput versus batch size${tdevices.length ? ` (${tdevices.join(", ")})` : ""}` }));
    const tchart = MB.el("div", { class: "chart-holder throughput-chart" });
    section.appendChild(tchart);
    const tseries = [];
    Object.entries(group.entries).forEach(([name, e], i) => {
      if (e.seed_of) return;
      // one series per measurement: the run's own, and each added on another device or machine
      const measured = {};
      for (const t of (e.throughput || []).filter((t) => t.events_per_s)) {
        const key = t.extra ? `${name} (${rowDevice(t)}: ${t.device === "cpu" ? t.machine : t.device.replace(/^cuda:?/, "")})` : name;
        (measured[key] = measured[key] || []).push({ x: t.batch_size, xLabel: String(t.batch_size), y: t.events_per_s, low: null, high: null });
      }
      for (const [key, pts] of Object.entries(measured)) tseries.push({ name: key, style: i, points: pts });
    });
    chart("throughput", tchart).draw(tseries, { logX: true, logY: true, xLabel: "batch size [events]", xName: "batch", yLabel: "events/s ↑ better", empty: "These results have no throughput rows: no throughput was measured." });
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
    readLegend();
    for (const b of document.querySelectorAll(".dataset-button")) b.setAttribute("aria-pressed", String(b.dataset.group === state.d));
    showGroup();
  });
  readLegend();
  showGroup();
})();
