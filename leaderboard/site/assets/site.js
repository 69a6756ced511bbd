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
    if (k === "text") node.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
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

// Marks of an entry or a dataset ([{kind, label, title}], computed in Python): badges whose
// title explains them.
MB.marks = function (marks) {
  return (marks || []).map((m) => MB.el("span", { class: "mark mark-" + m.kind, title: m.title, text: m.label }));
};

MB.palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
  "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];

// A line chart with error bars: series = [{name, points: [{x, xLabel, y, low, high}]}].
// Hovering a point shows the entry, the bin and the value with its interval.
MB.chart = function (container, series, opts) {
  container.textContent = "";
  const W = 760, H = 380, L = 70, R = 170, T = 20, B = 70;
  const svg = MB.svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  // the y range follows the points (not their error bars), robust to a few wild bins
  // (e.g. sigma/R where the response goes to zero); bars beyond it are clipped
  const all = [];
  for (const s of series) for (const p of s.points) if (p.y !== null && Number.isFinite(p.y)) all.push(p.y);
  if (!opts.logY && all.length > 4) {
    const sorted = all.slice().sort((a, b) => a - b);
    const q = (f) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
    const lo = q(0.05), hi = q(0.95), span = hi - lo || Math.abs(hi) || 1;
    for (let i = 0; i < all.length; i++) all[i] = Math.min(Math.max(all[i], lo - 0.5 * span), hi + 0.5 * span);
  }
  if (!all.length) {
    container.appendChild(MB.el("p", { class: "empty", text: opts.empty || "nothing measured" }));
    return;
  }
  const xs = [];
  for (const s of series) for (const p of s.points) if (!xs.includes(p.x)) xs.push(p.x);
  xs.sort((a, b) => a - b);
  let ymin = Math.min(...all), ymax = Math.max(...all);
  if (!Number.isFinite(ymin)) { ymin = 0; ymax = 1; }
  if (opts.logY) { ymin = Math.log10(Math.max(ymin, 1e-9)); ymax = Math.log10(Math.max(ymax, 1e-9)); }
  const pad = (ymax - ymin) * 0.08 || 1;
  ymin -= pad; ymax += pad;
  const xmin = opts.logX ? Math.log10(xs[0]) : 0;
  const xmax = opts.logX ? Math.log10(xs[xs.length - 1]) : Math.max(xs.length - 1, 1);
  const sx = (x) => {
    const v = opts.logX ? Math.log10(x) : xs.indexOf(x);
    return L + (xmax === xmin ? 0.5 : (v - xmin) / (xmax - xmin)) * (W - L - R);
  };
  const sy = (y) => {
    const v = opts.logY ? Math.log10(Math.max(y, 1e-9)) : y;
    const frac = Math.min(Math.max((v - ymin) / (ymax - ymin), -0.02), 1.02);
    return T + (1 - frac) * (H - T - B);
  };
  svg.appendChild(MB.svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "frame" }));
  for (let i = 0; i <= 4; i++) {
    const v = ymin + (i / 4) * (ymax - ymin);
    const y = T + (1 - i / 4) * (H - T - B);
    svg.appendChild(MB.svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
    const t = MB.svg("text", { x: L - 6, y: y + 4, class: "tick", "text-anchor": "end" });
    t.textContent = MB.fmt(opts.logY ? Math.pow(10, v) : v, 2);
    svg.appendChild(t);
  }
  const labelOf = {};
  for (const s of series) for (const p of s.points) labelOf[p.x] = p.xLabel;
  for (const x of xs) {
    const t = MB.svg("text", { x: sx(x), y: H - B + 16, class: "tick", "text-anchor": "end", transform: `rotate(-35 ${sx(x)} ${H - B + 16})` });
    t.textContent = String(labelOf[x]);
    svg.appendChild(t);
  }
  const xl = MB.svg("text", { x: L + (W - L - R) / 2, y: H - 6, class: "axis-label", "text-anchor": "middle" });
  xl.textContent = opts.xLabel;
  svg.appendChild(xl);
  const yl = MB.svg("text", { x: 14, y: T + (H - T - B) / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 14 ${T + (H - T - B) / 2})` });
  yl.textContent = opts.yLabel;
  svg.appendChild(yl);
  const tip = MB.el("div", { class: "tooltip", hidden: "" });
  series.forEach((s, i) => {
    const color = MB.palette[i % MB.palette.length];
    const g = MB.svg("g", { class: "series", "data-entry": s.name, stroke: color, fill: color });
    const pts = s.points.filter((p) => p.y !== null && Number.isFinite(p.y));
    if (pts.length > 1) {
      g.appendChild(MB.svg("polyline", { points: pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "), fill: "none", class: "line" }));
    }
    for (const p of pts) {
      if (p.low !== null && p.high !== null && Number.isFinite(p.low) && Number.isFinite(p.high)) {
        g.appendChild(MB.svg("line", { x1: sx(p.x), x2: sx(p.x), y1: sy(p.low), y2: sy(p.high), class: "errorbar" }));
      }
      const c = MB.svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, class: "point" });
      c.addEventListener("mouseenter", (ev) => {
        tip.textContent = `${s.name} — ${opts.xName} ${p.xLabel}: ${MB.fmtCI({ value: p.y, low: p.low, high: p.high })}`;
        tip.hidden = false;
        const box = container.getBoundingClientRect();
        tip.style.left = `${ev.clientX - box.left + 12}px`;
        tip.style.top = `${ev.clientY - box.top - 10}px`;
      });
      c.addEventListener("mouseleave", () => { tip.hidden = true; });
      const title = MB.svg("title");
      title.textContent = `${s.name}: ${MB.fmt(p.y)}`;
      c.appendChild(title);
      g.appendChild(c);
    }
    svg.appendChild(g);
    const ly = T + 14 * i + 8;
    const legend = MB.svg("g", { class: "legend-item", "data-entry": s.name });
    legend.appendChild(MB.svg("rect", { x: W - R + 10, y: ly - 8, width: 10, height: 10, fill: color }));
    const lt = MB.svg("text", { x: W - R + 24, y: ly + 1, class: "legend" });
    lt.textContent = s.name;
    legend.appendChild(lt);
    legend.addEventListener("click", () => { g.classList.toggle("hidden"); legend.classList.toggle("off"); });
    svg.appendChild(legend);
  });
  container.appendChild(svg);
  container.appendChild(tip);
};

// A sortable table: columns = [{key, label, sort: (row) => number|string, cell: (row) => Node|string}].
MB.table = function (columns, rows, opts) {
  const table = MB.el("table", { class: "board" + (opts && opts.cls ? " " + opts.cls : "") });
  const thead = MB.el("thead");
  const tbody = MB.el("tbody");
  const state = { key: null, dir: 1 };
  const render = () => {
    tbody.textContent = "";
    let sorted = rows.slice();
    if (state.key !== null) {
      const col = columns.find((c) => c.key === state.key);
      sorted.sort((a, b) => {
        const va = col.sort(a), vb = col.sort(b);
        const na = va === null || va === undefined || Number.isNaN(va), nb = vb === null || vb === undefined || Number.isNaN(vb);
        if (na && nb) return 0;
        if (na) return 1;
        if (nb) return -1;
        return (va < vb ? -1 : va > vb ? 1 : 0) * state.dir;
      });
    }
    for (const row of sorted) {
      const tr = MB.el("tr", { "data-entry": row.entry });
      for (const col of columns) {
        const content = col.cell(row);
        const td = MB.el("td", { class: col.cls || "" });
        if (content instanceof Node) td.appendChild(content); else td.textContent = content;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
  };
  const headRow = MB.el("tr");
  for (const col of columns) {
    const th = MB.el("th", { "data-key": col.key, title: "click to sort", text: col.label });
    th.addEventListener("click", () => {
      state.dir = state.key === col.key ? -state.dir : 1;
      state.key = col.key;
      for (const other of headRow.children) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      render();
    });
    headRow.appendChild(th);
  }
  thead.appendChild(headRow);
  table.appendChild(thead);
  table.appendChild(tbody);
  render();
  return table;
};
