// metbench leaderboard: shared helpers (no network, no external library).
// Text from submissions is only ever inserted with textContent / setAttribute.
"use strict";

const MB = {};

MB.data = function () {
  return JSON.parse(document.getElementById("site-data").textContent);
};

MB.el = function (tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children || []) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
};

MB.svg = function (tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
};

MB.fmt = function (v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  const d = digits === undefined ? (Math.abs(v) < 10 ? 3 : 1) : digits;
  return Number(v).toFixed(d);
};

MB.fmtCI = function (f, digits) {
  if (!f || f.value === null || f.value === undefined) return "—";
  let s = MB.fmt(f.value, digits);
  if (f.low !== null && f.low !== undefined) s += " [" + MB.fmt(f.low, digits) + ", " + MB.fmt(f.high, digits) + "]";
  return s;
};

// A value with its interval as a node: "47.9 [45.9, 49.4]", the interval in a span.ci (set on
// its own line on narrow screens).
MB.ci = function (f, digits) {
  if (!f || f.value === null || f.value === undefined) return "—";
  const span = MB.el("span", { class: "val", text: MB.fmt(f.value, digits) });
  if (f.low !== null && f.low !== undefined && f.high !== null && f.high !== undefined) {
    span.appendChild(MB.el("span", { class: "ci", text: " [" + MB.fmt(f.low, digits) + ", " + MB.fmt(f.high, digits) + "]" }));
  }
  return span;
};

// A labelled <select> of options [[value, text]]; onChange(value) on each change.
MB.select = function (cls, label, options, value, onChange) {
  const id = `${cls}-${Math.random().toString(36).slice(2, 8)}`;
  const s = MB.el("select", { class: cls, id: id });
  for (const [v, text] of options) s.appendChild(MB.el("option", { value: v, text: text }));
  s.value = options.some(([v]) => v === value) ? value : options.length ? options[0][0] : "";
  s.addEventListener("change", () => onChange(s.value));
  return MB.el("span", { class: "control" }, [MB.el("label", { for: id, text: label }), s]);
};

// The x label of a binning per task (the |t| bins are true |MET| or the dimuon qT).
MB.binningLabel = function (task, binning) {
  if (binning === "truth") return task === "recoil" ? "qT [GeV]" : "true |MET| [GeV]";
  return { n_pu: "true pileup interactions n_pu", n_pv: "reconstructed vertices n_pv", process: "process" }[binning] || binning;
};

// The series of one binned figure of entries [[name, entry, style]] in a task and binning.
MB.binnedSeries = function (entries, task, binning, figure) {
  const series = [];
  for (const [name, e, style] of entries) {
    const b = ((e.plots || {})[task] || {})[binning];
    if (!b || !b.figures[figure]) continue;
    const f = b.figures[figure];
    series.push({
      name: name, style: style,
      points: b.labels.map((label, k) => ({ x: k, xLabel: label, y: f.value[k], low: f.low ? f.low[k] : null, high: f.high ? f.high[k] : null })),
    });
  }
  return series;
};

// Marks of an entry or a dataset ([{kind, label, title}], computed in Python): badges whose
// title explains them (focusable, so that a keyboard reaches the explanation too).
MB.marks = function (marks) {
  return (marks || []).map((m) => MB.el("span", { class: "mark mark-" + m.kind, title: m.title, text: m.label, tabindex: "0" }));
};

// Per-dataset data: data/<id>.js calls MB.receive(id, group); MB.load inserts that script once
// (a <script> works from file://, where fetch() of a local file does not).
MB.groups = {};
MB.waiting = {};
MB.receive = function (id, group) {
  MB.groups[id] = group;
  for (const fn of MB.waiting[id] || []) fn(group);
  delete MB.waiting[id];
};
MB.load = function (id, src, done, failed) {
  if (MB.groups[id]) { done(MB.groups[id]); return; }
  if (MB.waiting[id]) { MB.waiting[id].push(done); return; }
  MB.waiting[id] = [done];
  const s = MB.el("script", { src: src });
  s.addEventListener("error", () => { delete MB.waiting[id]; s.remove(); if (failed) failed(); });
  document.head.appendChild(s);
};

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------
MB.betterText = { lower: "↓ better", higher: "↑ better", one: "best at 1", zero: "best at 0" };

// A sortable table in its own scrolling box: columns = [{key, label, tip, better, sort: (row) =>
// number|string, cell: (row) => Node|string, cls, sticky: "rank"|"entry"|"head"}]. Headers are
// buttons; opts.sort = {key, dir} starts sorted; opts.onSort(key, dir) hears each click.
MB.table = function (columns, rows, opts) {
  opts = opts || {};
  const wrap = MB.el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": opts.label || "table" });
  const table = MB.el("table", { class: "board" + (opts.cls ? " " + opts.cls : "") });
  if (opts.caption) table.appendChild(MB.el("caption", { class: "visually-hidden", text: opts.caption }));
  const thead = MB.el("thead");
  const tbody = MB.el("tbody");
  const state = { key: opts.sort ? opts.sort.key : null, dir: opts.sort ? opts.sort.dir : 1 };
  const headRow = MB.el("tr");
  const cellClass = (col) => [col.cls || "", col.sticky ? "sticky sticky-" + col.sticky : "", "c-" + col.key].join(" ").trim();
  const render = () => {
    tbody.textContent = "";
    const sorted = rows.slice();
    const col = columns.find((c) => c.key === state.key);
    if (col) {
      sorted.sort((a, b) => {
        const va = col.sort(a), vb = col.sort(b);
        const na = va === null || va === undefined || Number.isNaN(va), nb = vb === null || vb === undefined || Number.isNaN(vb);
        if (na && nb) return 0;
        if (na) return 1;
        if (nb) return -1;
        return (va < vb ? -1 : va > vb ? 1 : 0) * state.dir;
      });
    }
    for (const th of headRow.children) {
      if (th.dataset.key === state.key) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    for (const row of sorted) {
      const tr = MB.el("tr", { "data-entry": row.entry });
      for (const c of columns) {
        const content = c.cell(row);
        const header = c.sticky === "entry" || c.sticky === "first"; // the row's name
        const td = MB.el(header ? "th" : "td", { class: cellClass(c) });
        if (header) td.setAttribute("scope", "row");
        if (content instanceof Node) td.appendChild(content); else td.textContent = content;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    if (!sorted.length) {
      tbody.appendChild(MB.el("tr", {}, [MB.el("td", { colspan: String(columns.length), class: "empty", text: opts.empty || "no rows" })]));
    }
  };
  for (const c of columns) {
    const th = MB.el("th", { "data-key": c.key, scope: "col", class: cellClass(c), title: c.tip || null });
    const button = MB.el("button", { type: "button", class: "sort", title: (c.tip ? c.tip + " — " : "") + "sort by this column" }, [c.label]);
    if (c.better && MB.betterText[c.better] && c.better !== "one") {
      button.appendChild(MB.el("span", { class: "better better-" + c.better, text: " " + MB.betterText[c.better] }));
    }
    button.addEventListener("click", () => {
      state.dir = state.key === c.key ? -state.dir : 1;
      state.key = c.key;
      render();
      if (opts.onSort) opts.onSort(state.key, state.dir);
    });
    th.appendChild(button);
    headRow.appendChild(th);
  }
  thead.appendChild(headRow);
  table.appendChild(thead);
  table.appendChild(tbody);
  render();
  wrap.appendChild(table);
  wrap.rows = () => {
    // the rows in their displayed order (for downloads)
    const order = [...tbody.querySelectorAll("tr[data-entry]")].map((tr) => tr.dataset.entry);
    return order.map((name) => rows.find((r) => r.entry === name));
  };
  return wrap;
};

// Download text as a file (a Blob: works from file:// and offline).
MB.download = function (name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type: type }));
  const a = MB.el("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
};

MB.csvCell = function (v) {
  if (v === null || v === undefined) return "";
  const s = String(v);
  // a leading = + - @ would be a formula in a spreadsheet: quote it as text
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? "'" + s : s;
  return /[",\n\r]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
};

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------
// 8 colours (Okabe-Ito and two darker), 6 markers, 4 dashes: series i takes colour i % 8,
// marker i % 6 and dash i % 4, so 24 series have 24 different combinations.
MB.palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#332288", "#7a7a00"];
MB.markers = ["circle", "square", "triangle", "diamond", "down", "cross"];
MB.dashes = ["", "6 3", "2 2", "8 3 2 3"];
MB.style = function (i) {
  return { color: MB.palette[i % MB.palette.length], marker: MB.markers[i % MB.markers.length], dash: MB.dashes[i % MB.dashes.length] };
};

MB.marker = function (kind, x, y, r, attrs) {
  const a = Object.assign({}, attrs || {});
  let node;
  if (kind === "circle") node = MB.svg("circle", Object.assign(a, { cx: x, cy: y, r: r }));
  else if (kind === "square") node = MB.svg("rect", Object.assign(a, { x: x - r * 0.85, y: y - r * 0.85, width: r * 1.7, height: r * 1.7 }));
  else {
    const shapes = {
      triangle: [[0, -1.15], [1, 0.75], [-1, 0.75]],
      down: [[0, 1.15], [1, -0.75], [-1, -0.75]],
      diamond: [[0, -1.2], [1, 0], [0, 1.2], [-1, 0]],
      cross: [[-0.35, -1], [0.35, -1], [0.35, -0.35], [1, -0.35], [1, 0.35], [0.35, 0.35], [0.35, 1], [-0.35, 1], [-0.35, 0.35], [-1, 0.35], [-1, -0.35], [-0.35, -0.35]],
    };
    const pts = (shapes[kind] || shapes.diamond).map(([dx, dy]) => `${(x + dx * r).toFixed(1)},${(y + dy * r).toFixed(1)}`).join(" ");
    node = MB.svg("polygon", Object.assign(a, { points: pts }));
  }
  node.classList.add("point", "m-" + kind);
  return node;
};

// Round tick values: steps of 1, 2, 2.5 or 5 times a power of ten.
MB.ticks = function (lo, hi, n) {
  if (!(hi > lo)) return { values: [lo], digits: 2 };
  const raw = (hi - lo) / (n || 5);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const values = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) values.push(k === 0 ? 0 : k * step);
  const m = step / mag;
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (Math.abs(m - Math.round(m)) > 1e-9 ? 1 : 0));
  return { values: values, digits: Math.min(digits, 6) };
};

MB.logTicks = function (lo, hi) {
  // lo, hi in log10 units; decades, and 2 and 5 when the range is short
  const values = [];
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const m of hi - lo < 2.5 ? [1, 2, 5] : [1]) {
      const v = Math.log10(m) + k;
      if (v >= lo - 1e-9 && v <= hi + 1e-9) values.push(v);
    }
  }
  return values;
};

MB.fmtTick = function (v) {
  if (v >= 1e6 || (v > 0 && v < 1e-3)) return v.toExponential(0).replace("e+", "e");
  return String(Math.round(v * 1e6) / 1e6);
};

// A chart with error bars and an HTML legend. new MB.Chart(container) keeps which series are
// hidden by name (chart.hidden, a Set that charts may share), so the legend's state survives when
// the figure or the binning changes; chart.onLegend() hears each change of it.
// series = [{name, style: index, points: [{x, xLabel, y, low, high, label, device}]}];
// opts = {xLabel, yLabel, xName, logX, logY, categorical, lines, fronts: [[point], ...], empty};
// a point with device "GPU" is drawn hollow; the second front's line is dashed.
MB.Chart = function (container, title) {
  this.container = container;
  this.title = title || "chart";
  this.hidden = new Set();
  this.onLegend = null;
  this.sync = null;
  MB.charts.push(this);
};

// Show and hide the drawn series and legend buttons as chart.hidden says (after another chart
// sharing the set changed it).
MB.Chart.prototype.refresh = function () {
  if (this.sync && this.container.isConnected) this.sync();
};

MB.Chart.prototype.draw = function (series, opts) {
  this.series = series;
  this.opts = opts;
  const container = this.container;
  container.textContent = "";
  this.width = container.clientWidth;
  // drawn at the container's own width (text keeps its size on a phone)
  const W = Math.round(Math.max(340, Math.min(760, container.clientWidth || 760))), H = W < 520 ? 330 : 380;
  const L = 64, R = 16, T = 16, B = opts.logX ? 50 : 78;
  const pw = W - L - R, ph = H - T - B;
  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
  const ys = [];
  for (const s of series) for (const p of s.points) if (finite(p.y) && (!opts.logY || p.y > 0)) ys.push(p.y);
  if (!ys.length) {
    container.appendChild(MB.el("p", { class: "empty", text: opts.empty || "nothing measured" }));
    return;
  }
  // the y range follows the bulk of the points (not their error bars): points beyond it are
  // drawn as arrows at the frame's edge (marked "clipped")
  const sorted = ys.slice().sort((a, b) => a - b);
  let ymin = sorted[0], ymax = sorted[sorted.length - 1];
  if (!opts.logY && sorted.length > 4) {
    const q = (f) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
    const lo = q(0.05), hi = q(0.95), span = hi - lo || Math.abs(hi) || 1;
    ymin = Math.max(ymin, lo - 0.5 * span);
    ymax = Math.min(ymax, hi + 0.5 * span);
  }
  if (opts.logY) { ymin = Math.log10(ymin); ymax = Math.log10(ymax); }
  const pad = (ymax - ymin) * 0.08 || (opts.logY ? 0.3 : Math.abs(ymax) * 0.1 || 1);
  ymin -= pad; ymax += pad;
  let yticks;
  if (opts.logY) yticks = MB.logTicks(ymin, ymax).map((v) => ({ at: v, text: MB.fmtTick(Math.pow(10, v)) }));
  else {
    const t = MB.ticks(ymin, ymax, 5);
    yticks = t.values.map((v) => ({ at: v, text: v.toFixed(t.digits) }));
  }
  const xs = [];
  for (const s of series) for (const p of s.points) if (!xs.includes(p.x)) xs.push(p.x);
  xs.sort((a, b) => a - b);
  const numeric = opts.logX;
  let xmin = numeric ? Math.log10(xs[0]) : 0;
  let xmax = numeric ? Math.log10(xs[xs.length - 1]) : Math.max(xs.length - 1, 1);
  if (numeric) { const xp = (xmax - xmin) * 0.06 || 0.3; xmin -= xp; xmax += xp; }
  const sx = (x) => {
    const v = numeric ? Math.log10(x) : xs.indexOf(x);
    if (!numeric && xs.length === 1) return L + pw / 2;
    return L + (numeric ? (v - xmin) / (xmax - xmin) : (v + 0.5) / (xmax + 1)) * pw;
  };
  const yfrac = (y) => ((opts.logY ? Math.log10(Math.max(y, 1e-12)) : y) - ymin) / (ymax - ymin);
  const sy = (y) => T + (1 - Math.min(Math.max(yfrac(y), 0), 1)) * ph;
  const svg = MB.svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${opts.yLabel} versus ${opts.xLabel}` });
  svg.appendChild(MB.svg("rect", { x: L, y: T, width: pw, height: ph, class: "frame" }));
  for (const t of yticks) {
    const y = T + (1 - (t.at - ymin) / (ymax - ymin)) * ph;
    svg.appendChild(MB.svg("line", { x1: L, x2: L + pw, y1: y, y2: y, class: "grid" }));
    const text = MB.svg("text", { x: L - 6, y: y + 4, class: "tick ytick", "text-anchor": "end" });
    text.textContent = t.text;
    svg.appendChild(text);
  }
  const labelOf = {};
  for (const s of series) for (const p of s.points) labelOf[p.x] = p.xLabel;
  let xticks = xs;
  if (numeric) xticks = MB.logTicks(xmin, xmax).map((v) => Math.pow(10, v));
  // categorical labels are rotated: one every ~24 px at most (some skipped on a phone)
  const every = numeric ? 1 : Math.max(1, Math.ceil(xs.length / Math.max(4, Math.floor(pw / 24))));
  xticks.forEach((x, i) => {
    if (i % every) return;
    const px = sx(x);
    svg.appendChild(MB.svg("line", { x1: px, x2: px, y1: T + ph, y2: T + ph + 4, class: "tickmark" }));
    const text = MB.svg("text", { x: px, y: T + ph + 16, class: "tick xtick", "text-anchor": numeric ? "middle" : "end", transform: numeric ? "" : `rotate(-35 ${px} ${T + ph + 16})` });
    text.textContent = numeric ? MB.fmtTick(x) : String(labelOf[x]);
    svg.appendChild(text);
  });
  const xl = MB.svg("text", { x: L + pw / 2, y: H - 6, class: "axis-label", "text-anchor": "middle" });
  xl.textContent = opts.xLabel;
  svg.appendChild(xl);
  const yl = MB.svg("text", { x: 14, y: T + ph / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 14 ${T + ph / 2})` });
  yl.textContent = opts.yLabel;
  svg.appendChild(yl);
  const tip = MB.el("div", { class: "tooltip", hidden: true });
  const show = (ev, text) => {
    tip.textContent = text;
    tip.hidden = false;
    const box = container.getBoundingClientRect();
    const left = Math.min(ev.clientX - box.left + 12, box.width - 160);
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${ev.clientY - box.top - 28}px`;
  };
  const lines = opts.lines !== undefined ? opts.lines : !opts.categorical;
  const groups = {};
  const fronts = opts.fronts || (opts.front ? [opts.front] : []);
  fronts.forEach((front, k) => {
    if (front.length < 2) return;
    const pts = front.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
    svg.appendChild(MB.svg("polyline", { points: pts, class: "front-line" + (k ? " front-line-2" : ""), fill: "none", "data-device": front.device || null }));
  });
  for (const s of series) {
    const st = MB.style(s.style);
    const g = MB.svg("g", { class: "series", "data-entry": s.name, stroke: st.color, fill: st.color });
    if (this.hidden.has(s.name)) g.classList.add("hidden");
    const pts = s.points.filter((p) => finite(p.y) && (!opts.logY || p.y > 0));
    if (lines && pts.length > 1) {
      g.appendChild(MB.svg("polyline", { points: pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "), fill: "none", class: "line", "stroke-dasharray": st.dash }));
    }
    for (const p of pts) {
      const px = sx(p.x), py = sy(p.y);
      if (finite(p.low) && finite(p.high)) {
        g.appendChild(MB.svg("line", { x1: px, x2: px, y1: sy(p.low), y2: sy(p.high), class: "errorbar" }));
      }
      const f = yfrac(p.y);
      const text = `${s.name} — ${p.label || `${opts.xName} ${p.xLabel}`}: ${MB.fmtCI({ value: p.y, low: p.low, high: p.high })}`;
      let node;
      if (f < 0 || f > 1) {
        // beyond the axis: an arrow at the edge, pointing where the point is
        node = MB.marker(f > 1 ? "triangle" : "down", px, py + (f > 1 ? 6 : -6), 6, { class: "clipped" });
        node.classList.add("clipped");
        const t = MB.svg("title");
        t.textContent = `${text} (beyond the axis: clipped)`;
        node.appendChild(t);
      } else {
        node = MB.marker(st.marker, px, py, 4.5, p.device === "GPU" ? { fill: "#fff" } : {});
        if (p.front) node.classList.add("on-front");
        if (p.device) node.classList.add("device-" + p.device.toLowerCase());
        const t = MB.svg("title");
        t.textContent = text;
        node.appendChild(t);
      }
      node.addEventListener("mouseenter", (ev) => show(ev, node.classList.contains("clipped") ? text + " (clipped)" : text));
      node.addEventListener("mouseleave", () => { tip.hidden = true; });
      g.appendChild(node);
    }
    svg.appendChild(g);
    groups[s.name] = g;
  }
  const figure = MB.el("div", { class: "chart-figure" }, [svg, tip]);
  container.appendChild(figure);
  container.appendChild(this.legend(series, groups));
};

// Every chart drawn, redrawn at its new width when the window is resized.
MB.charts = [];
window.addEventListener("resize", () => {
  clearTimeout(MB.resizing);
  MB.resizing = setTimeout(() => {
    for (const c of MB.charts) {
      if (c.series && c.container.isConnected && c.width !== c.container.clientWidth) c.draw(c.series, c.opts);
    }
  }, 150);
});

MB.Chart.prototype.legend = function (series, groups) {
  const box = MB.el("div", { class: "legend-box", role: "group", "aria-label": "series shown" });
  const items = [];
  const sync = () => {
    for (const [name, button] of items) {
      const off = this.hidden.has(name);
      button.setAttribute("aria-pressed", off ? "false" : "true");
      button.classList.toggle("off", off);
      if (groups[name]) groups[name].classList.toggle("hidden", off);
    }
  };
  this.sync = sync;
  const changed = () => { sync(); if (this.onLegend) this.onLegend(); };
  const all = MB.el("button", { type: "button", class: "legend-all", text: "all" });
  all.addEventListener("click", () => { for (const s of series) this.hidden.delete(s.name); changed(); });
  const none = MB.el("button", { type: "button", class: "legend-none", text: "none" });
  none.addEventListener("click", () => { for (const s of series) this.hidden.add(s.name); changed(); });
  box.appendChild(all);
  box.appendChild(none);
  for (const s of series) {
    const st = MB.style(s.style);
    const swatch = MB.svg("svg", { viewBox: "0 0 30 12", width: "30", height: "12", class: "swatch", "aria-hidden": "true" });
    swatch.appendChild(MB.svg("line", { x1: 1, x2: 29, y1: 6, y2: 6, stroke: st.color, "stroke-width": 1.6, "stroke-dasharray": st.dash }));
    const mark = MB.marker(st.marker, 15, 6, 4, { fill: st.color, stroke: st.color });
    mark.classList.remove("point");
    swatch.appendChild(mark);
    const button = MB.el("button", { type: "button", class: "legend-item", "data-entry": s.name, title: "show or hide " + s.name }, [swatch, MB.el("span", { text: s.name })]);
    button.addEventListener("click", () => {
      if (this.hidden.has(s.name)) this.hidden.delete(s.name); else this.hidden.add(s.name);
      changed();
    });
    items.push([s.name, button]);
    box.appendChild(button);
  }
  sync();
  return box;
};

// The non-dominated points (higher x and lower y are better), sorted by x.
MB.paretoFront = function (points) {
  const front = points.filter((p) => !points.some((q) => q !== p && q.x >= p.x && q.y <= p.y && (q.x > p.x || q.y < p.y)));
  return front.sort((a, b) => a.x - b.x);
};
