// metbench leaderboard: one entry's page.
"use strict";

(function () {
  const data = MB.data();
  const e = data.entry;
  const d = data.dataset;
  const cell = document.getElementById("dataset-cell");
  cell.textContent = `${d.name} v${d.version}, split ${d.split}, manifest ${d.manifest_sha256}`;
  for (const m of MB.marks(d.marks)) { cell.appendChild(document.createTextNode(" ")); cell.appendChild(m); }

  const tp = document.getElementById("throughput-table");
  tp.appendChild(MB.table(
    [
      { key: "b", label: "batch size", sort: (r) => r.batch_size, cell: (r) => String(r.batch_size), cls: "num" },
      { key: "eps", label: "events/s", sort: (r) => r.events_per_s, cell: (r) => MB.fmt(r.events_per_s, 0), cls: "num" },
      { key: "p50", label: "latency p50 [ms]", sort: (r) => r.p50_ms, cell: (r) => MB.fmt(r.p50_ms, 2), cls: "num" },
      { key: "p99", label: "latency p99 [ms]", sort: (r) => r.p99_ms, cell: (r) => MB.fmt(r.p99_ms, 2), cls: "num" },
      { key: "rss", label: "peak RSS [MB]", sort: (r) => r.peak_rss_mb, cell: (r) => MB.fmt(r.peak_rss_mb, 0), cls: "num" },
    ],
    e.throughput.map((t) => Object.assign({ entry: e.name }, t)),
  ));

  const holder = document.getElementById("binned");
  if (e.kinematics) {
    holder.appendChild(MB.el("h3", { text: "kinematic reconstruction (tt → bℓν bℓν)" }));
    const rows = Object.entries(e.kinematics).map(([name, f], i) => ({ entry: e.name, name: name, i: i, f: f }));
    holder.appendChild(MB.table(
      [
        { key: "figure", label: "figure", sort: (r) => r.name, cell: (r) => r.name },
        { key: "value", label: "value [95% CI]", sort: (r) => r.f.value, cell: (r) => MB.fmtCI(r.f, r.name.endsWith("window") ? 3 : 1), cls: "num" },
      ],
      rows,
    ));
  }
  for (const [task, binningsOf] of Object.entries(e.plots)) {
    for (const [binning, b] of Object.entries(binningsOf)) {
      holder.appendChild(MB.el("h3", { text: `${task}: in bins of ${binning}` }));
      const figs = ["n", "response", "S", "S_par", "S_perp", "sigma_perp_over_r"];
      const rows = b.labels.map((label, i) => {
        const row = { entry: e.name, label: label, i: i };
        for (const f of figs) row[f] = { value: b.figures[f].value[i], low: b.figures[f].low ? b.figures[f].low[i] : null, high: b.figures[f].high ? b.figures[f].high[i] : null };
        return row;
      });
      const columns = [{ key: "bin", label: binning, sort: (r) => r.i, cell: (r) => String(r.label) }];
      for (const f of figs) {
        const lab = data.figures[f];
        columns.push({ key: f, label: lab.label + (lab.unit ? ` [${lab.unit}]` : ""), sort: (r) => r[f].value, cell: (r) => (f === "n" ? MB.fmt(r[f].value, 0) : MB.fmtCI(r[f], f === "response" ? 3 : 1)), cls: "num" });
      }
      holder.appendChild(MB.table(columns, rows));
    }
  }
})();
