// metbench leaderboard: one entry's page.
"use strict";

(function () {
  const data = MB.data();
  const e = data.entry;
  const d = data.dataset;
  const cell = document.getElementById("dataset-cell");
  cell.appendChild(MB.el("a", { href: `../dataset.html#ds-${d.id || ""}`, text: `${d.name} v${d.version}, split ${d.split}` }));
  cell.appendChild(document.createTextNode(", manifest "));
  cell.appendChild(MB.el("code", { class: "hash", text: d.manifest_sha256 }));
  for (const m of MB.marks(d.marks)) { cell.appendChild(document.createTextNode(" ")); cell.appendChild(m); }

  const tp = document.getElementById("throughput-table");
  if (!e.throughput.length) {
    tp.appendChild(MB.el("p", { class: "empty", text: "No throughput was measured for these results." }));
  } else {
    tp.appendChild(MB.table(
      [
        { key: "dev", label: "device", sort: (r) => r.device, cell: (r) => (/^cuda/.test(r.device || "") ? `GPU ${r.device.replace(/^cuda:?/, "")}`.trim() : "CPU"), sticky: "first" },
        { key: "m", label: "machine", sort: (r) => r.machine, cell: (r) => `${r.machine || "?"}${r.extra ? " (measured after the run)" : ""}` },
        { key: "b", label: "batch size", sort: (r) => r.batch_size, cell: (r) => String(r.batch_size), cls: "num" },
        { key: "eps", label: "events/s", better: "higher", sort: (r) => r.events_per_s, cell: (r) => MB.fmt(r.events_per_s, 0), cls: "num" },
        { key: "p50", label: "latency p50 [ms]", better: "lower", sort: (r) => r.p50_ms, cell: (r) => MB.fmt(r.p50_ms, 2), cls: "num" },
        { key: "p99", label: "latency p99 [ms]", better: "lower", sort: (r) => r.p99_ms, cell: (r) => MB.fmt(r.p99_ms, 2), cls: "num" },
        { key: "rss", label: "peak RSS [MB]", sort: (r) => r.peak_rss_mb, cell: (r) => MB.fmt(r.peak_rss_mb, 0), cls: "num" },
        { key: "gpu", label: "peak GPU memory [MB]", sort: (r) => r.peak_gpu_mb, cell: (r) => (r.peak_gpu_mb === null || r.peak_gpu_mb === undefined ? "—" : MB.fmt(r.peak_gpu_mb, 0)), cls: "num" },
      ],
      e.throughput.map((t) => Object.assign({ entry: e.name }, t)),
      { label: "throughput" },
    ));
  }

  // the binned curves as charts, one per task: a figure against a binning
  const chartsBox = document.getElementById("entry-charts");
  const plotFigures = ["S", "S_par", "S_perp", "response", "sigma_perp_over_r"];
  const lowerIsBetter = new Set(["S", "S_par", "S_perp", "sigma_perp_over_r"]);
  for (const [task, binningsOf] of Object.entries(e.plots)) {
    const choice = { fig: "S", bin: binningsOf.truth ? "truth" : Object.keys(binningsOf)[0] };
    const box = MB.el("div", { class: "chart-holder entry-chart", "data-task": task });
    const chart = new MB.Chart(box, `entry-${task}`);
    const draw = () => {
      const f = data.figures[choice.fig] || { label: choice.fig, unit: "" };
      chart.draw(MB.binnedSeries([[e.name, e, 0]], task, choice.bin, choice.fig), {
        xLabel: MB.binningLabel(task, choice.bin), xName: choice.bin, categorical: choice.bin === "process",
        yLabel: f.label + (f.unit ? ` [${f.unit}]` : "") + (lowerIsBetter.has(choice.fig) ? " ↓ better" : ""),
        empty: "too few events in these bins for this figure",
      });
    };
    chartsBox.appendChild(MB.el("h3", { text: task === "recoil" ? "Z→μμ recoil vs qT" : "MET vs generator MET" }));
    chartsBox.appendChild(MB.el("div", { class: "controls" }, [
      MB.select("entry-figure", "figure", plotFigures.filter((k) => Object.values(binningsOf).some((b) => b.figures[k])).map((k) => [k, (data.figures[k] || { label: k }).label]), choice.fig, (v) => { choice.fig = v; draw(); }),
      MB.select("entry-binning", "versus", Object.keys(binningsOf).map((k) => [k, MB.binningLabel(task, k)]), choice.bin, (v) => { choice.bin = v; draw(); }),
    ]));
    chartsBox.appendChild(box);
    draw();
  }

  const holder = document.getElementById("binned");
  if (e.kinematics) {
    holder.appendChild(MB.el("h3", { text: "kinematic reconstruction (tt → bℓν bℓν)" }));
    const byKey = Object.fromEntries(data.columns.kinematics.map((c) => [c.key, c]));
    const rows = Object.entries(e.kinematics).map(([key, f], i) => ({ entry: e.name, key: key, label: (byKey[key] || { label: key }).label, better: (byKey[key] || {}).better, i: i, f: f }));
    holder.appendChild(MB.table(
      [
        { key: "figure", label: "figure [unit]", sort: (r) => r.i, cell: (r) => MB.el("span", { title: r.key, text: r.label + (r.better === "lower" ? " ↓ better" : "") }), sticky: "first" },
        { key: "value", label: "value [95% CI]", sort: (r) => r.f.value, cell: (r) => MB.ci(r.f, r.key.endsWith("window") ? 3 : 1), cls: "num" },
      ],
      rows,
      { cls: "kinematics-rows", label: "kinematic reconstruction" },
    ));
  }
  const lowerBetter = new Set(["S", "S_par", "S_perp", "sigma_perp_over_r"]);
  for (const [task, binningsOf] of Object.entries(e.plots)) {
    for (const [binning, b] of Object.entries(binningsOf)) {
      holder.appendChild(MB.el("h3", { text: `${task}: in bins of ${binning}` }));
      const figs = ["n", "response", "S", "S_par", "S_perp", "sigma_perp_over_r"];
      const rows = b.labels.map((label, i) => {
        const row = { entry: e.name, label: label, i: i };
        for (const f of figs) row[f] = { value: b.figures[f].value[i], low: b.figures[f].low ? b.figures[f].low[i] : null, high: b.figures[f].high ? b.figures[f].high[i] : null };
        return row;
      });
      const columns = [{ key: "bin", label: binning, sort: (r) => r.i, cell: (r) => String(r.label), sticky: "first" }];
      for (const f of figs) {
        const lab = data.figures[f];
        columns.push({ key: f, label: lab.label + (lab.unit ? ` [${lab.unit}]` : ""), better: lowerBetter.has(f) ? "lower" : null, sort: (r) => r[f].value, cell: (r) => (f === "n" ? MB.fmt(r[f].value, 0) : MB.ci(r[f], f === "response" ? 3 : 1)), cls: "num" });
      }
      holder.appendChild(MB.table(columns, rows, { label: `${task} in bins of ${binning}` }));
    }
  }
})();
