// app.js: the acoro monitor's pages (cluster, node, server) from one
// index.html: the view comes from location.pathname, the data from the
// server's event stream (/api/events), drawn by this file alone (no library).
// Every value from the server reaches the page as text (textContent,
// createElement): a job argument that holds markup stays text.
"use strict";
(function () {
  const WINDOW = 300; // seconds of history the charts show, at most
  const STALE_MS = 10000; // no event for this long: the stream is dead, reopen it
  const RETRY_MAX_MS = 15000;
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f6fde", "#d9534f", "#3a9d5d", "#e08a1e", "#8e5cc9", "#1aa3a3", "#c2417f", "#6b7a8f"];

  const route = parseRoute(location.pathname);
  let state = null; // the last /api/status JSON
  let skew = 0; // server clock minus this browser's, in seconds
  let samples = []; // {t, rate, done, cpu: {location: idle%}}
  let es = null;
  let lastEvent = 0;
  let retryTimer = 0;
  let retryMs = 1000;
  const sort = { key: "name", dir: 1 };
  const terminating = new Set(); // job ids asked to end, until they are gone
  const colorOf = new Map(); // node location -> chart colour, stable

  function $(id) { return document.getElementById(id); }

  function parseRoute(path) {
    const m = /^\/(node|server)\/(.+)$/.exec(path);
    if (!m) return { kind: "cluster" };
    let arg = m[2];
    try { arg = decodeURIComponent(arg); } catch (e) { /* shown as it came */ }
    return { kind: m[1], arg: arg };
  }

  // el("td", {className: "n"}, "text", child...): strings become text nodes.
  function el(tag, props) {
    const e = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        if (k === "dataset") Object.assign(e.dataset, props.dataset);
        else e[k] = props[k];
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fmtInt(v) { return isNum(v) ? Math.round(v).toLocaleString("en-US") : "–"; }

  function fmtBytes(v) {
    if (!isNum(v)) return "–";
    const units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + " " + units[i];
  }

  function fmtPct(v) { return isNum(v) ? v.toFixed(1) + " %" : "–"; }

  function fmtRate(v) { return isNum(v) ? (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) : "–"; }

  function serverNow() { return Date.now() / 1000 + skew; }

  function fmtAgo(t) {
    if (!isNum(t) || t <= 0) return "never";
    const s = Math.max(0, serverNow() - t);
    if (s < 2) return "just now";
    if (s < 60) return Math.floor(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // A text node kept current by the one-second tick.
  function ago(t) {
    const s = el("span", { className: "ago", title: isNum(t) ? new Date(t * 1000).toLocaleString() : "" }, fmtAgo(t));
    s.dataset.t = String(t);
    return s;
  }

  function badge(status) {
    return el("span", { className: "badge " + (/^[a-z]+$/.test(status) ? status : "other") }, String(status || "?"));
  }

  function nodeHref(n) { return "/node/" + encodeURIComponent(n); }
  function serverHref(loc) { return "/server/" + encodeURIComponent(loc); }

  function showMessage(text) {
    const m = $("message");
    m.textContent = text || "";
    m.hidden = !text;
  }

  function setConn(what) {
    const c = $("conn");
    if (c.textContent !== what) c.textContent = what;
    c.className = "conn " + what;
  }

  function nodeOf(loc) {
    if (!state) return null;
    return (state.nodes || []).find((n) => n.location === loc) || null;
  }

  function nodeLabel(loc) {
    const n = nodeOf(loc);
    return n && n.name ? n.name : loc;
  }

  function crumbs(parts) {
    const nav = $("crumbs");
    nav.replaceChildren();
    parts.forEach((p, i) => {
      if (i > 0) nav.appendChild(el("span", { className: "sep" }, "›"));
      nav.appendChild(p.href ? el("a", { href: p.href }, p.text) : el("span", null, p.text));
    });
  }

  // ---- the cluster page

  const KEYS = {
    name: (n) => String(n.name || n.location || ""),
    location: (n) => String(n.location || ""),
    status: (n) => String(n.status || ""),
    servers: (n) => n.servers,
    cpu: (n) => n.avail && n.avail.cpu,
    memory: (n) => n.avail && n.avail.memory,
    disk: (n) => n.avail && n.avail.disk,
    swap: (n) => n.avail && n.avail.swap,
    jobs: (n) => n.jobs,
    done: (n) => n.done,
    updated: (n) => n.updated,
  };

  function compare(a, b) {
    const f = KEYS[sort.key] || KEYS.name;
    const x = f(a), y = f(b);
    const xm = x === undefined || x === null, ym = y === undefined || y === null;
    if (xm || ym) return xm === ym ? 0 : xm ? 1 : -1; // missing values last either way
    let r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "en", { numeric: true });
    if (r === 0 && sort.key !== "location") r = KEYS.location(a).localeCompare(KEYS.location(b));
    return r * sort.dir;
  }

  function renderCluster() {
    const j = state.jobs || {};
    for (const k of ["submitted", "running", "done", "failed", "requeued"]) {
      const v = fmtInt(j[k]);
      const e = $("jobs-" + k);
      if (e.textContent !== v) e.textContent = v;
    }
    $("rate").textContent = fmtRate(state.rate);
    const nodes = (state.nodes || []).slice().sort(compare);
    const rows = nodes.map((n) => {
      const a = n.avail || {};
      const tr = el("tr", { className: "st-" + String(n.status) },
        el("td", null, el("a", { href: nodeHref(n.location) }, String(n.name || n.location || "?"))),
        el("td", { className: "mono" }, String(n.location || "")),
        el("td", null, badge(n.status)),
        el("td", { className: "n" }, fmtInt(n.servers)),
        el("td", { className: "n" }, fmtPct(a.cpu)),
        el("td", { className: "n" }, fmtBytes(a.memory)),
        el("td", { className: "n" }, fmtBytes(a.disk)),
        el("td", { className: "n" }, fmtBytes(a.swap)),
        el("td", { className: "n" }, fmtInt(n.jobs)),
        el("td", { className: "n" }, fmtInt(n.done)),
        el("td", { className: "n" }, ago(n.updated)));
      tr.dataset.location = String(n.location);
      return tr;
    });
    $("nodes").tBodies[0].replaceChildren(...rows);
    $("no-nodes").hidden = nodes.length > 0;
    // an acoro-node's own monitor lists the computations it serves
    const comps = Array.isArray(state.computations) ? state.computations : null;
    $("computations-part").hidden = !comps;
    // whose jobs go from the clients straight to the servers: it counts none
    document.body.classList.toggle("node-monitor", !!comps);
    if (comps) {
      $("computations").tBodies[0].replaceChildren(...comps.map((c) => el("tr", null,
        el("td", { className: "n" }, String(c.id)),
        el("td", null, String(c.name)),
        el("td", { className: "mono" }, String(c.client)),
        el("td", { className: "n" }, fmtInt(c.servers)))));
    }
    for (const th of $("nodes").tHead.rows[0].cells) {
      const on = th.dataset.key === sort.key;
      th.setAttribute("aria-sort", on ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    }
    drawCpuLegend();
  }

  function setupSorting() {
    for (const th of $("nodes").tHead.rows[0].cells) {
      th.tabIndex = 0;
      const go = () => {
        if (sort.key === th.dataset.key) sort.dir = -sort.dir;
        else { sort.key = th.dataset.key; sort.dir = 1; }
        if (state) renderCluster();
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    }
  }

  // ---- charts: SVG drawn here, x the last WINDOW seconds of server time

  const W = 600, H = 200, M = { l: 44, r: 10, t: 10, b: 22 };

  // A step of 1, 2 or 5 times a power of ten that cuts 0..v in at most 5.
  function niceStep(v) {
    if (!(v > 0)) return 0.5;
    const raw = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function fmtTick(v) { return String(Number(v.toFixed(3))); }

  // The time shown: the last WINDOW seconds, or less while the history is
  // shorter (at least a minute), so that a new computation fills the chart.
  function timeSpan() {
    const now = samples.length ? Math.max(samples[samples.length - 1].t, serverNow() - 1) : serverNow();
    const have = samples.length ? now - samples[0].t : 0;
    const span = have > 240 ? WINDOW : have > 120 ? 240 : have > 60 ? 120 : 60;
    return { now: now, span: span, tick: span > 120 ? 60 : span > 60 ? 30 : 10 };
  }

  function fmtAgoTick(s) {
    if (s === 0) return "now";
    return s % 60 === 0 ? "-" + s / 60 + " min" : "-" + s + " s";
  }

  // series: [{color, points: [[t, v], ...]}]; ymax fixed (CPU %) or null (from the data)
  function drawChart(box, series, ymax, fill) {
    const ts = timeSpan();
    const span = ts.span, t0 = ts.now - span;
    let top = ymax, step = ymax / 4;
    if (ymax === null) {
      let m = 0;
      for (const s of series) for (const p of s.points) if (p[0] >= t0 && p[1] > m) m = p[1];
      step = niceStep(m);
      top = m > 0 ? Math.ceil(m / step - 1e-9) * step : 2; // nothing done yet: 0 to 2 jobs/s
    }
    const x = (t) => M.l + ((t - t0) / span) * (W - M.l - M.r);
    const y = (v) => H - M.b - (Math.max(0, Math.min(v, top)) / top) * (H - M.t - M.b);
    const parts = [];
    for (let i = 0, v = 0; v <= top + 1e-9 && i < 12; i++, v = i * step) {
      parts.push(svg("line", { x1: M.l, x2: W - M.r, y1: y(v), y2: y(v), class: i === 0 ? "axis-line" : "grid-line" }));
      parts.push(svg("text", { x: M.l - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmtTick(v)));
    }
    for (let s = 0; s <= span; s += ts.tick) {
      const xx = x(t0 + s);
      parts.push(svg("line", { x1: xx, x2: xx, y1: M.t, y2: H - M.b, class: "grid-line" }));
      parts.push(svg("text", { x: xx, y: H - 6, class: "tick", "text-anchor": s === 0 ? "start" : s === span ? "end" : "middle" },
        fmtAgoTick(span - s)));
    }
    let drawn = 0;
    for (const s of series) {
      const pts = s.points.filter((p) => p[0] >= t0 - 2 && isNum(p[1]));
      if (pts.length === 0) continue;
      drawn++;
      const line = pts.map((p) => x(Math.max(p[0], t0)).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
      if (fill) {
        const base = y(0).toFixed(1);
        const first = x(Math.max(pts[0][0], t0)).toFixed(1), last = x(pts[pts.length - 1][0]).toFixed(1);
        parts.push(svg("polygon", { points: first + "," + base + " " + line + " " + last + "," + base, class: "area", fill: s.color }));
      }
      parts.push(svg("polyline", { points: line, class: "series", stroke: s.color }));
    }
    if (!drawn) parts.push(svg("text", { x: W / 2, y: H / 2, class: "nodata", "text-anchor": "middle" }, "waiting for data"));
    box.replaceChildren(...parts);
  }

  function colorFor(loc) {
    if (!colorOf.has(loc)) colorOf.set(loc, COLORS[colorOf.size % COLORS.length]);
    return colorOf.get(loc);
  }

  function drawCharts() {
    if (route.kind !== "cluster") return;
    drawChart($("rate-chart"), [{ color: COLORS[0], points: samples.map((s) => [s.t, s.rate]) }], null, true);
    const byNode = new Map();
    for (const s of samples) {
      for (const loc of Object.keys(s.cpu || {})) {
        if (!byNode.has(loc)) byNode.set(loc, []);
        byNode.get(loc).push([s.t, s.cpu[loc]]);
      }
    }
    const series = [];
    for (const [loc, points] of byNode) series.push({ color: colorFor(loc), points: points });
    drawChart($("cpu-chart"), series, 100, false);
    drawCpuLegend();
  }

  function drawCpuLegend() {
    const seen = new Set();
    for (const s of samples) for (const loc of Object.keys(s.cpu || {})) seen.add(loc);
    const items = [];
    for (const loc of seen) {
      const sw = el("span", { className: "swatch" });
      sw.style.background = colorFor(loc);
      items.push(el("li", null, sw, nodeLabel(loc)));
    }
    $("cpu-legend").replaceChildren(...items);
  }

  function addSample(s) {
    if (!s || !isNum(s.t)) return;
    samples.push({ t: s.t, rate: s.rate, done: s.done, cpu: s.cpu || {} });
    const cut = s.t - WINDOW - 5;
    while (samples.length && samples[0].t < cut) samples.shift();
    drawCharts();
  }

  // The snapshot's history: a list of samples, or columns of them.
  function takeHistory(h) {
    samples = [];
    if (Array.isArray(h)) {
      for (const s of h) if (s && isNum(s.t)) samples.push({ t: s.t, rate: s.rate, done: s.done, cpu: s.cpu || {} });
    } else if (h && Array.isArray(h.t)) {
      h.t.forEach((t, i) => {
        const cpu = {};
        for (const loc of Object.keys(h.cpu || {})) if (Array.isArray(h.cpu[loc])) cpu[loc] = h.cpu[loc][i];
        samples.push({ t: t, rate: (h.rate || [])[i], done: (h.done || [])[i], cpu: cpu });
      });
    }
    samples.sort((a, b) => a.t - b.t);
  }

  // ---- the node page

  function findNode() {
    return (state.nodes || []).find((n) => n.location === route.arg) ||
      (state.nodes || []).find((n) => n.name === route.arg) || null;
  }

  function fact(dl, k, v) {
    dl.appendChild(el("dt", null, k));
    dl.appendChild(el("dd", null, v));
  }

  function jobText(j) { return "#" + j.id + " " + String(j.fn) + "(" + String(j.args === undefined ? "" : j.args) + ")"; }

  function renderNode() {
    const n = findNode();
    const name = n ? String(n.name || n.location) : route.arg;
    $("node-name").textContent = name;
    document.title = "node " + name + " · acoro monitor";
    crumbs([{ text: "cluster", href: "/" }, { text: name }]);
    $("node-status").replaceWith(Object.assign(badge(n ? n.status : "unknown"), { id: "node-status" }));
    const dl = $("node-facts");
    dl.replaceChildren();
    if (!n) {
      fact(dl, "status", "no node of this computation is named so");
    } else {
      const a = n.avail || {};
      fact(dl, "address", String(n.location));
      fact(dl, "servers", fmtInt(n.servers));
      fact(dl, "CPU idle", fmtPct(a.cpu));
      fact(dl, "memory", fmtBytes(a.memory));
      fact(dl, "disk", fmtBytes(a.disk));
      fact(dl, "swap", fmtBytes(a.swap));
      fact(dl, "running", fmtInt(n.jobs));
      fact(dl, "done", fmtInt(n.done));
      fact(dl, "updated", ago(n.updated));
    }
    const loc = n ? n.location : route.arg;
    const servers = (state.servers || []).filter((s) => s.node === loc)
      .sort((a, b) => String(a.location).localeCompare(String(b.location), "en", { numeric: true }));
    const rows = servers.map((s) => {
      const jobs = s.jobs || [];
      const list = el("ul", { className: "joblist" }, ...jobs.map((j) => el("li", { title: jobText(j) }, jobText(j))));
      const tr = el("tr", null,
        el("td", null, el("a", { href: serverHref(s.location), className: "mono" }, String(s.location))),
        el("td", null, badge(s.status)),
        el("td", { className: "n" }, fmtInt(jobs.length)),
        el("td", { className: "n" }, fmtInt(s.done)),
        el("td", null, jobs.length ? list : el("span", { className: "dim" }, "idle")));
      tr.dataset.location = String(s.location);
      return tr;
    });
    $("servers").tBodies[0].replaceChildren(...rows);
    $("no-servers").hidden = rows.length > 0;
  }

  // ---- the server page

  function renderServer() {
    const s = (state.servers || []).find((x) => x.location === route.arg) || null;
    $("server-location").textContent = route.arg;
    document.title = "server " + route.arg + " · acoro monitor";
    const nodeLoc = s ? s.node : null;
    crumbs([{ text: "cluster", href: "/" }].concat(nodeLoc ? [{ text: nodeLabel(nodeLoc), href: nodeHref(nodeLoc) }] : [])
      .concat([{ text: route.arg }]));
    $("server-status").replaceWith(Object.assign(badge(s ? s.status : "unknown"), { id: "server-status" }));
    const dl = $("server-facts");
    dl.replaceChildren();
    if (!s) {
      fact(dl, "status", "no server of this computation is at this address");
    } else {
      fact(dl, "node", el("a", { href: nodeHref(nodeLoc) }, nodeLabel(nodeLoc)));
      fact(dl, "running", fmtInt((s.jobs || []).length));
      fact(dl, "done", fmtInt(s.done));
    }
    const jobs = s ? (s.jobs || []).slice().sort((a, b) => a.id - b.id) : [];
    const live = new Set(jobs.map((j) => j.id));
    for (const id of terminating) if (!live.has(id)) terminating.delete(id);
    const rows = jobs.map((j) => {
      const asked = terminating.has(j.id);
      const btn = el("button", { type: "button", className: "terminate", disabled: asked || s.status !== "up" },
        asked ? "terminating…" : "Terminate");
      btn.addEventListener("click", () => terminate(j, btn));
      const tr = el("tr", null,
        el("td", { className: "n" }, fmtInt(j.id)),
        el("td", { className: "mono" }, String(j.fn)),
        el("td", { className: "mono args" }, String(j.args === undefined ? "" : j.args)),
        el("td", null, ago(j.started)),
        el("td", { className: "act" }, btn));
      tr.dataset.job = String(j.id);
      return tr;
    });
    $("jobs").tBodies[0].replaceChildren(...rows);
    $("no-jobs").hidden = rows.length > 0;
  }

  async function terminate(j, btn) {
    if (!window.confirm("Terminate job " + j.id + ", " + String(j.fn) + "(" + String(j.args) + ")?")) return;
    btn.disabled = true;
    btn.textContent = "terminating…";
    terminating.add(j.id);
    let why = null;
    try {
      const r = await fetch("/api/terminate", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": state ? String(state.csrf) : "" },
        body: JSON.stringify({ job: j.id }),
      });
      if (r.status !== 200) why = r.status + " " + (await r.text()).slice(0, 200);
    } catch (e) {
      why = String(e.message || e);
    }
    if (why) {
      terminating.delete(j.id);
      btn.disabled = false;
      btn.textContent = "Terminate";
      showMessage("job " + j.id + " was not terminated: " + why);
    } else {
      showMessage("");
    }
  }

  // ---- state and the event stream

  function render() {
    if (!state) return;
    if (isNum(state.time)) skew = state.time - Date.now() / 1000;
    $("comp-name").textContent = String(state.name || "");
    if (route.kind === "node") renderNode();
    else if (route.kind === "server") renderServer();
    else {
      document.title = String(state.name || "computation") + " · acoro monitor";
      crumbs([{ text: "cluster" }]);
      renderCluster();
    }
    const u = $("updated");
    u.replaceWith(Object.assign(ago(state.time), { id: "updated" }));
  }

  function parse(data) {
    try { return JSON.parse(data); } catch (e) { return null; }
  }

  function seen() { lastEvent = Date.now(); }

  function connect() {
    clearTimeout(retryTimer);
    if (es) es.close();
    lastEvent = Date.now();
    es = new EventSource("/api/events");
    es.addEventListener("snapshot", (ev) => {
      seen();
      const d = parse(ev.data);
      if (!d) return;
      retryMs = 1000;
      takeHistory(d.history);
      state = d;
      setConn("live");
      showMessage("");
      render();
      drawCharts();
    });
    es.addEventListener("status", (ev) => {
      seen();
      const d = parse(ev.data);
      if (d) { state = d; render(); }
    });
    es.addEventListener("sample", (ev) => { seen(); addSample(parse(ev.data)); });
    es.onmessage = seen;
    es.onerror = () => {
      setConn("reconnecting");
      // EventSource retries by itself unless the answer was not a stream
      // (a 401, a server that restarted as something else): then this does.
      if (es.readyState === EventSource.CLOSED) retry();
    };
  }

  function retry() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(async () => {
      try {
        const r = await fetch("/api/status", { credentials: "same-origin" });
        if (r.status === 401) showMessage("The monitor refuses this browser (401): open its address with the token again.");
      } catch (e) { /* down: try again */ }
      connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }

  function tick() {
    for (const e of document.querySelectorAll(".ago")) {
      const v = fmtAgo(Number(e.dataset.t));
      if (e.textContent !== v) e.textContent = v;
    }
    if (es && es.readyState !== EventSource.CLOSED && Date.now() - lastEvent > STALE_MS) {
      setConn("reconnecting");
      connect(); // samples come every second: this stream is stuck
    }
  }

  $(route.kind + "-view").hidden = false;
  document.body.dataset.view = route.kind;
  if (route.kind === "cluster") {
    setupSorting();
    drawCharts();
  }
  connect();
  setInterval(tick, 1000);
})();
