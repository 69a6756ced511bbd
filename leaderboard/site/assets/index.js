// metbench leaderboard: the front page.
"use strict";

(function () {
  const data = MB.data();
  const root = document.getElementById("groups");
  const plotFigures = ["S", "S_par", "S_perp", "response", "sigma_perp_over_r"];
  const binnings = { truth: "true |MET| or qT [GeV]", n_pu: "true pileup n_pu", n_pv: "reconstructed vertices n_pv", process: "process" };

  function throughputAt(entry) {
    const b = (entry.throughput || []).filter((t) => t.events_per_s);
    if (!b.length) return null;
    return b.reduce((a, c) => (c.batch_size > a.batch_size ? c : a)).events_per_s;
  }

  function select(options, onChange, cls) {
    const s = MB.el("select", { class: cls || "" });
    for (const [value, label] of options) s.appendChild(MB.el("option", { value: value, text: label }));
    s.addEventListener("change", () => onChange(s.value));
    return s;
  }

  function entryCell(group, name) {
    const e = group.entries[name];
    const a = MB.el("a", { href: e.page, text: name });
    const span = MB.el("span", {}, [a]);
    if (e.uses_truth && e.uses_truth.length && e.kind !== "oracle") span.appendChild(MB.el("span", { class: "note", text: " (truth-matched inputs)" }));
    for (const m of MB.marks(e.marks)) { span.appendChild(document.createTextNode(" ")); span.appendChild(m); }
    return span;
  }

  function metTable(group, task, view) {
    const columns = [
      { key: "rank", label: "rank", sort: (r) => (r.rank === null ? 1e9 : r.rank), cell: (r) => r.rank_label, cls: "num" },
      { key: "entry", label: "entry", sort: (r) => r.entry, cell: (r) => entryCell(group, r.entry) },
      { key: "kind", label: "kind", sort: (r) => group.entries[r.entry].kind, cell: (r) => MB.el("span", { class: "kind kind-" + group.entries[r.entry].kind, text: group.entries[r.entry].kind }) },
    ];
    for (const [key, label] of Object.entries(data.table_figures)) {
      const digits = key === "response" || key.startsWith("tail") || key === "fake_auc" ? 3 : 1;
      columns.push({ key: key, label: label, sort: (r) => r.figures[key].value, cell: (r) => MB.fmtCI(r.figures[key], digits), cls: "num" });
    }
    columns.push({ key: "n", label: "events", sort: (r) => r.n, cell: (r) => MB.fmt(r.n, 0), cls: "num" });
    columns.push({ key: "speed", label: "events/s (CPU)", sort: (r) => throughputAt(group.entries[r.entry]), cell: (r) => MB.fmt(throughputAt(group.entries[r.entry]), 0), cls: "num" });
    const v = group.tasks[task].find((x) => x.id === view) || group.tasks[task][0];
    return MB.table(columns, v.rows, { cls: "met-table" });
  }

  function kinematicsTable(group) {
    const columns = [
      { key: "rank", label: "rank", sort: (r) => (r.rank === null ? 1e9 : r.rank), cell: (r) => r.rank_label, cls: "num" },
      { key: "entry", label: "entry", sort: (r) => r.entry, cell: (r) => entryCell(group, r.entry) },
    ];
    for (const [key, label] of Object.entries(data.kinematic_figures)) {
      columns.push({ key: key, label: label, sort: (r) => r.figures[key].value, cell: (r) => MB.fmtCI(r.figures[key], key.endsWith("window") ? 3 : 1), cls: "num" });
    }
    columns.push({ key: "n", label: "events", sort: (r) => r.n, cell: (r) => String(r.n), cls: "num" });
    return MB.table(columns, group.kinematics, { cls: "kinematics-table" });
  }

  function binnedSeries(group, task, binning, figure) {
    const series = [];
    for (const [name, e] of Object.entries(group.entries)) {
      const b = (e.plots[task] || {})[binning];
      if (!b) continue;
      const f = b.figures[figure];
      series.push({
        name: name,
        points: b.labels.map((label, i) => ({ x: i, xLabel: label, y: f.value[i], low: f.low ? f.low[i] : null, high: f.high ? f.high[i] : null })),
      });
    }
    return series;
  }

  data.groups.forEach((group, gi) => {
    const d = group.dataset;
    const section = MB.el("section", { class: "group" });
    const heading = MB.el("h2", { text: `${d.name} v${d.version} — split ${d.split}, ${d.n_events} events (manifest ${d.manifest_sha256.slice(0, 12)})` });
    for (const m of MB.marks(d.marks)) { heading.appendChild(document.createTextNode(" ")); heading.appendChild(m); }
    section.appendChild(heading);
    const legend = () => (group.legend || []).map((line) => MB.el("p", { class: "legend", text: line }));

    // MET tables
    const tasks = Object.keys(group.tasks);
    let task = tasks[0];
    let view = "all";
    const tableHolder = MB.el("div", { class: "table-holder" });
    const viewSelect = MB.el("span");
    const renderTable = () => {
      tableHolder.textContent = "";
      tableHolder.appendChild(metTable(group, task, view));
      const v = group.tasks[task].find((x) => x.id === view) || group.tasks[task][0];
      const notes = v.id === "all" ? data.notes.slice() : ["ordered by S in this selection (ranks with paired intervals: the all-events view)"];
      for (const r of v.rows) if (r.reason && !r.oracle) notes.push(`${r.entry}: no S (${r.reason})`);
      if (group.met_source && group.met_source.length) notes.push("not in these tables, their MET is another entry's: " + group.met_source.join(", "));
      for (const n of notes) tableHolder.appendChild(MB.el("p", { class: "note", text: n }));
      for (const line of legend()) tableHolder.appendChild(line);
    };
    const renderViews = () => {
      viewSelect.textContent = "";
      viewSelect.appendChild(select(group.tasks[task].map((v) => [v.id, v.label]), (value) => { view = value; renderTable(); }, "view-select"));
    };
    const controls = MB.el("div", { class: "controls" }, [
      MB.el("label", { text: "task " }), select(tasks.map((t) => [t, t === "met" ? "MET vs generator MET" : "Z→μμ hadronic recoil vs qT"]), (value) => { task = value; view = "all"; renderViews(); renderTable(); }, "task-select"),
      MB.el("label", { text: " events " }), viewSelect,
    ]);
    section.appendChild(MB.el("h3", { text: "MET regression" }));
    section.appendChild(controls);
    section.appendChild(tableHolder);
    renderViews();
    renderTable();

    if (group.kinematics.length) {
      section.appendChild(MB.el("h3", { text: "Kinematic reconstruction: tt → bℓν bℓν neutrinos" }));
      section.appendChild(kinematicsTable(group));
    }

    // binned plots
    section.appendChild(MB.el("h3", { text: "Response and resolution in bins" }));
    let figure = plotFigures[0], binning = "truth", plotTask = "met";
    const chart = MB.el("div", { class: "chart-holder", id: `chart-${gi}` });
    const downloads = MB.el("p", { class: "downloads" });
    const renderChart = () => {
      const label = data.figures[figure];
      MB.chart(chart, binnedSeries(group, plotTask, binning, figure), {
        xLabel: binnings[binning], xName: binning, yLabel: label.label + (label.unit ? ` [${label.unit}]` : ""),
      });
      downloads.textContent = "";
      const stem = `g${gi}_met_${figure}_vs_${binning}`;
      const files = (data.downloads || {})[stem];
      if (files && plotTask === "met") {
        downloads.appendChild(MB.el("span", { text: "for papers (mplhep): " }));
        downloads.appendChild(MB.el("a", { href: files.png, download: "", text: "PNG" }));
        downloads.appendChild(MB.el("span", { text: " · " }));
        downloads.appendChild(MB.el("a", { href: files.pdf, download: "", text: "PDF" }));
      }
    };
    section.appendChild(MB.el("div", { class: "controls" }, [
      MB.el("label", { text: "task " }), select(tasks.map((t) => [t, t]), (v) => { plotTask = v; renderChart(); }, "plot-task"),
      MB.el("label", { text: " figure " }), select(plotFigures.map((f) => [f, data.figures[f].label]), (v) => { figure = v; renderChart(); }, "figure-select"),
      MB.el("label", { text: " versus " }), select(Object.entries(binnings), (v) => { binning = v; renderChart(); }, "binning-select"),
    ]));
    section.appendChild(chart);
    section.appendChild(downloads);
    renderChart();

    // throughput
    section.appendChild(MB.el("h3", { text: "Throughput versus batch size (CPU)" }));
    const tchart = MB.el("div", { class: "chart-holder throughput-chart" });
    const tseries = [];
    for (const [name, e] of Object.entries(group.entries)) {
      const pts = (e.throughput || []).filter((t) => t.events_per_s).map((t) => ({ x: t.batch_size, xLabel: String(t.batch_size), y: t.events_per_s, low: null, high: null }));
      if (pts.length) tseries.push({ name: name, points: pts });
    }
    section.appendChild(tchart);
    MB.chart(tchart, tseries, { logX: true, logY: true, xLabel: "batch size [events]", xName: "batch", yLabel: "events/s", empty: "no throughput measured for these results" });
    root.appendChild(section);
  });
})();
