// The slotbus web view: polls /api/view every second and tails over
// Server-Sent Events (/events). Everything is drawn with textContent: record
// data and names come from peers and are never taken as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const view = { paused: false, tail: null, rows: 0 };
const MAX_TAIL_ROWS = 200;

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function count(n) {
  if (n === undefined || n === null) return "–";
  if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function duration(ms) {
  if (ms === undefined || ms === null) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function replaceRows(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows);
}

function drawTotals(v) {
  const s = v.stats || {};
  $("host-name").textContent = v.hosts && v.hosts.host ? v.hosts.host : "";
  $("t-connections").textContent = count(s.connections);
  $("t-slots").textContent = count(s.slot_count);
  $("t-writes").textContent = count(s.writes);
  const last = v.history.length ? v.history[v.history.length - 1] : null;
  $("t-write-rate").textContent = last ? count(last.writes) : "–";
  $("t-delivery-rate").textContent = last ? count(last.deliveries) : "–";
  $("t-depth").textContent = count(s.depth);
  $("t-held").textContent = count(s.held_writers);
  $("t-dropped").textContent = count(s.dropped);
  $("t-rss").textContent = s.rss_bytes ? bytes(s.rss_bytes) : "–";
  $("t-uptime").textContent = duration(s.uptime_ms);
  const state = $("state");
  state.textContent = v.fresh ? "live" : "stale: " + (v.problem || "no figures");
  state.className = v.fresh ? "state" : "state bad";
}

function drawChart(history) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth * ratio, h = canvas.clientHeight * ratio;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  if (history.length < 2) return;
  const keys = [["writes", "#2f6fdf"], ["deliveries", "#2a8a4a"], ["dropped", "#c9501c"]];
  let top = 1;
  for (const p of history) for (const [k] of keys) top = Math.max(top, p[k]);
  const pad = 18 * ratio;
  g.font = (11 * ratio) + "px system-ui";
  g.fillStyle = "#6b7383";
  g.fillText(count(top) + "/s", 4 * ratio, 12 * ratio);
  const n = history.length;
  for (const [k, color] of keys) {
    g.strokeStyle = color;
    g.lineWidth = 1.5 * ratio;
    g.beginPath();
    history.forEach((p, i) => {
      const x = (i / (n - 1)) * (w - 2) + 1;
      const y = h - 2 - (p[k] / top) * (h - pad);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  }
}

function drawSlots(v) {
  // A tree: each slot under the components of its path, a row for each
  // component not shown yet (the listing comes in tree order).
  const rows = [];
  let shown = [];
  for (const s of v.slots) {
    const parts = s.path.split("\\");
    let common = 0;
    while (common < parts.length - 1 && common < shown.length && shown[common] === parts[common]) ++common;
    for (let i = common; i < parts.length - 1; ++i) {
      const tr = document.createElement("tr");
      tr.className = "branch";
      const name = cell(tr, parts[i] + "\\", "name");
      name.style.paddingLeft = (0.6 + i * 1.2) + "em";
      name.colSpan = 9;
      rows.push(tr);
    }
    shown = parts;
    const tr = document.createElement("tr");
    tr.dataset.name = s.name;
    if (s.held_writers) tr.classList.add("held");
    if (s.slow) tr.classList.add("slow");
    const name = cell(tr, parts[parts.length - 1], "name");
    name.style.paddingLeft = (0.6 + (parts.length - 1) * 1.2) + "em";
    name.title = s.name;
    const budget = cell(tr, "");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    const used = s.byte_budget ? Math.min(1, s.queued_bytes / s.byte_budget) : 0;
    fill.style.width = (used * 100).toFixed(1) + "%";
    if (used > 0.9) bar.classList.add("full");
    bar.appendChild(fill);
    budget.appendChild(bar);
    budget.appendChild(document.createTextNode(count(s.depth) + " · " + bytes(s.queued_bytes) + " / " + bytes(s.byte_budget)));
    const o = s.owner || {};
    cell(tr, o.plugin ? "plugin " + o.plugin : (o.client || "pid " + o.pid) + " (uid " + o.uid + ")");
    cell(tr, s.readers);
    const subs = s.subscriptions || [];
    const more = (s.subscriptions_total || subs.length) - subs.length;
    cell(tr, subs.join(" ") + (more > 0 ? " +" + more + " more" : ""), "name");
    cell(tr, s.held_writers ? s.held_writers + " for " + duration(s.held_ms) : "0");
    cell(tr, count(s.dropped) + (s.slow ? " (slow)" : ""));
    cell(tr, count(s.rate_in));
    cell(tr, count(s.rate_out));
    rows.push(tr);
  }
  replaceRows("slots", rows);
  $("slots-note").textContent = v.slots.length + (v.slots_cut ? "+ (the first shown)" : "") + " slots";
}

function drawPlugins(v) {
  const list = (v.plugins && v.plugins.plugins) || [];
  const rows = list.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.name = p.name;
    cell(tr, p.name, "name");
    cell(tr, p.state);
    cell(tr, p.pid || "–");
    cell(tr, p.restarts);
    cell(tr, p.state === "running" ? duration(p.uptime_ms) : "–");
    const e = p.last_exit;
    cell(tr, !e ? "–" : e.signal !== undefined ? "signal " + e.signal : "status " + e.code);
    const logs = cell(tr, "");
    const lines = p.log || [];
    if (lines.length) {
      const d = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = lines[lines.length - 1].line;
      const pre = document.createElement("pre");
      pre.textContent = lines.map((l) => new Date(l.at_ms).toLocaleTimeString() + "  " + l.line).join("\n");
      d.append(summary, pre);
      logs.appendChild(d);
    }
    return tr;
  });
  replaceRows("plugins", rows);
  $("plugins-note").textContent = v.plugins && v.plugins.plugins_dir ? "from " + v.plugins.plugins_dir : "no plugins directory";
}

function drawHosts(v) {
  const h = v.hosts || {};
  const peers = h.peers || [];
  const discovered = (h.broadcast && h.broadcast.hosts) || [];
  $("hosts-section").hidden = !peers.length && !discovered.length;
  replaceRows("links", peers.map((p) => {
    const tr = document.createElement("tr");
    cell(tr, p.host, "name");
    cell(tr, p.state);
    cell(tr, p.address || p.connected_to || "");
    cell(tr, count(p.records_out));
    cell(tr, count(p.records_in));
    cell(tr, p.round_trip_us !== undefined ? (p.round_trip_us / 1000).toFixed(2) + " ms" : "–");
    cell(tr, p.last_error || "");
    return tr;
  }));
  replaceRows("discovered", discovered.map((d) => {
    const tr = document.createElement("tr");
    cell(tr, d.host, "name");
    cell(tr, d.domain);
    cell(tr, d.address);
    cell(tr, d.link_port || "–");
    cell(tr, count(d.records));
    cell(tr, duration(d.lease_left_ms));
    return tr;
  }));
}

function drawClosed(v) {
  const closed = ((v.connections && v.connections.closed) || []).slice().reverse();
  replaceRows("closed", closed.map((c) => {
    const tr = document.createElement("tr");
    cell(tr, c.id);
    cell(tr, c.identity, "name");
    cell(tr, c.client);
    cell(tr, new Date(c.closed_at_ms).toLocaleTimeString());
    cell(tr, c.reason);
    return tr;
  }));
}

async function refresh() {
  try {
    const r = await fetch("/api/view", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const v = await r.json();
    drawTotals(v);
    drawChart(v.history);
    drawSlots(v);
    drawPlugins(v);
    drawHosts(v);
    drawClosed(v);
  } catch (e) {
    const state = $("state");
    state.textContent = "the view is unreachable: " + e.message;
    state.className = "state bad";
  }
}

function addTailRow(e) {
  const tr = document.createElement("tr");
  tr.dataset.seq = e.seq;
  cell(tr, new Date(e.at_ms).toLocaleTimeString());
  cell(tr, e.name, "name");
  cell(tr, e.envelope ? e.type : "(not an envelope)");
  cell(tr, e.source || "");
  cell(tr, bytes(e.size));
  cell(tr, e.data, "data").title = e.data;
  const body = $("tail").tBodies[0];
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > MAX_TAIL_ROWS) body.deleteRow(body.rows.length - 1);
}

function startTail() {
  if (view.tail) view.tail.close();
  const form = new FormData($("tail-filter"));
  const q = new URLSearchParams();
  for (const k of ["pattern", "type", "source"]) if (form.get(k)) q.set(k, form.get(k));
  $("tail").tBodies[0].replaceChildren();
  $("tail-missed").textContent = "";
  const es = new EventSource("/events?" + q.toString());
  view.tail = es;
  $("tail-state").textContent = "connecting…";
  es.onopen = () => { $("tail-state").textContent = "tailing " + (q.get("pattern") || "**"); };
  es.onerror = () => { $("tail-state").textContent = "reconnecting…"; };
  es.addEventListener("record", (m) => { if (!view.paused) addTailRow(JSON.parse(m.data)); });
  es.addEventListener("missed", (m) => {
    const d = JSON.parse(m.data);
    $("tail-missed").textContent = "missed: " + d.here + " here (this page too slow), " + d.bus + " by the bus (the tail's inbox full)";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("tail-filter").addEventListener("submit", (e) => { e.preventDefault(); startTail(); });
  $("tail-pause").addEventListener("click", () => {
    view.paused = !view.paused;
    $("tail-pause").textContent = view.paused ? "resume" : "pause";
  });
  refresh();
  setInterval(refresh, 1000);
  startTail();
});
