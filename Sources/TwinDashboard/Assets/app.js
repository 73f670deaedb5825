// HostTwin dashboard: the overview, host and forecast pages. The page's state lives in its URL (host,
// range, at, zoom, tab, filter, sort, compared moments); every request goes to the public HTTP API.
import { Chart, sparkline, formatValue, color } from './chart.js';

const main = document.getElementById('main');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// ---------- API ----------

// A server that requires tokens (`--auth required`, TLS) answers 401: the page asks for a token once and
// keeps it for this tab only (sessionStorage), sending it as `Authorization: Bearer`.
const TOKEN_KEY = 'hosttwin.token';
const authHeaders = () => { const t = sessionStorage.getItem(TOKEN_KEY); return t ? { Authorization: 'Bearer ' + t } : {}; };

/** Replaces the page with a token form; resolves never (the page reloads once a token is given). */
function askForToken(message) {
  main.innerHTML = `<form class="signin" id="signin"><h1>Sign in</h1><p>${esc(message)}</p>
    <label>Token <input id="token" type="password" autocomplete="off" spellcheck="false" required placeholder="htw_…"></label>
    <button type="submit">Sign in</button><p class="hint">Create one with <code>hosttwin token create --role reader</code>. It is kept for this tab only.</p></form>`;
  document.getElementById('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim());
    location.reload();
  });
  document.getElementById('token').focus();
}

let signinShown = false;

/** GET `path` with `params`; the Prometheus envelope's data, or the bare body for bare endpoints. */
async function api(path, params = {}, signal) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v != null) u.searchParams.set(k, v);
  const r = await fetch(u, { headers: { Accept: 'application/json', ...authHeaders() }, signal });
  if (r.status === 401) {
    // The first refusal of the page shows the form; requests refused with it (sent at the same time) leave
    // its message alone.
    if (!signinShown) {
      signinShown = true;
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken(had ? 'The token was refused (wrong, expired or revoked).' : 'This HostTwin server needs a token.');
    }
    throw new Error(path + ': a token is needed');
  }
  let body;
  try { body = await r.json(); } catch { throw new Error(path + ': HTTP ' + r.status); }
  if (!r.ok || body.status === 'error') throw new Error(path + ': ' + (body.error || 'HTTP ' + r.status));
  return body.status === 'success' ? body.data : body;
}

// On a hub, the host a page is about: the server confines every PromQL selector to its series (`host=`).
let scopeHost = null;

/** A PromQL range query as chart series: [{labels, points: [[ms, v]]}]; `host` overrides the page's. */
async function rangeQuery(query, start, end, step, signal, host = scopeHost) {
  // max_source_resolution=auto: at steps of 5 minutes or more the server reads the 1-minute rollups.
  const data = await api('/api/v1/query_range', { query, start: start / 1000, end: end / 1000, step: step + 's', max_source_resolution: 'auto', host }, signal);
  return data.result.map((r) => ({ labels: r.metric, points: r.values.map(([t, v]) => [t * 1000, parseFloat(v)]) }));
}

/** A PromQL instant query at `at` (ms, or null for now): [{labels, value}]. */
async function instantQuery(query, at, signal) {
  const data = await api('/api/v1/query', { query, time: at == null ? null : at / 1000, host: scopeHost }, signal);
  if (data.resultType === 'scalar') return [{ labels: {}, value: parseFloat(data.result[1]) }];
  return data.result.map((r) => ({ labels: r.metric, value: parseFloat(r.value[1]) }));
}

function showError(e) {
  if (e && e.name === 'AbortError') return;
  const el = document.getElementById('error');
  el.textContent = String(e && e.message || e);
  el.hidden = false;
  console.warn(e);
}

// ---------- Time ----------

const UNITS = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3 };

/** "1h30m" → ms, or null. */
export function parseDuration(s) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
  let total = 0, used = 0, m;
  while ((m = re.exec(s))) { total += parseFloat(m[1]) * UNITS[m[2]]; used += m[0].length; }
  return used > 0 && used === s.length ? total : null;
}

/** The CLI's time forms (RFC 3339, Unix seconds, `now`, `-2h`) → ms, or null when unreadable. */
export function parseTime(s, now = Date.now()) {
  if (s == null || s === '') return null;
  if (s === 'now') return now;
  if (s[0] === '-') { const d = parseDuration(s.slice(1)); return d == null ? null : now - d; }
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
  const t = Date.parse(s);
  return isNaN(t) ? null : t;
}

/** ms → RFC 3339 (UTC, whole seconds), the form written into URLs. */
const iso = (ms) => new Date(Math.round(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
/** ms → the value of a datetime-local input (local time, seconds). */
function localInput(ms) {
  const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
}
const fromLocalInput = (v) => { const t = new Date(v).getTime(); return isNaN(t) ? null : t; };
/** A duration in words: "40 s", "12 min", "5 h", "3 d". */
const span = (ms) => { const s = Math.max(0, Math.round(ms / 1000)); return s < 90 ? s + ' s' : s < 5400 ? Math.round(s / 60) + ' min' : s < 172800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d'; };
const ago = (t) => span(Date.now() - t);

// ---------- State in the URL ----------

const RANGES = ['5m', '15m', '1h', '6h', '24h', '7d', '30d', '90d'];

function readState() {
  const q = new URLSearchParams(location.search);
  const g = (k, d = null) => q.get(k) || d;
  return {
    host: g('host'), range: RANGES.includes(g('range')) ? g('range') : '1h', at: g('at'), from: g('from'), to: g('to'),
    tab: g('tab', 'processes'), q: g('q', ''), sort: g('sort', ''), diffFrom: g('diff_from'), diffTo: g('diff_to'),
    expr: g('expr'), horizon: g('horizon', '24h'),
  };
}

/** Changes the URL; re-renders the page unless `quiet`. */
function go(patch, { replace = false, quiet = false } = {}) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(patch)) { if (v == null || v === '') q.delete(k); else q.set(k, v); }
  const s = q.toString();
  history[replace ? 'replaceState' : 'pushState'](null, '', location.pathname + (s ? '?' + s : ''));
  if (!quiet) render();
}

// ---------- Page lifecycle ----------

let view = { id: 0, abort: new AbortController(), cleanup: [] };
let summaryCache = null;

/** Host facts, the stored span and whether the server is live (`run`) or serves stored data (`serve`). */
async function summary() {
  if (!summaryCache) summaryCache = api('/api/v1/summary').then((s) => ({ ...s, serve: !s.live }));
  return summaryCache;
}

let fleetCache = null;
/** The hosts a hub holds (`/api/v1/fleet`); empty on a single host's server. */
async function fleet() {
  if (!fleetCache) fleetCache = api('/api/v1/fleet').then((d) => d.hosts || []).catch(() => []);
  return fleetCache;
}

function setMode(text, cls) {
  const m = document.getElementById('mode');
  m.className = 'mode ' + cls;
  m.innerHTML = '<span class="dot"></span>';
  m.append(document.createTextNode(text));
}

function render() {
  for (const f of view.cleanup) f();
  view.abort.abort();
  view = { id: view.id + 1, abort: new AbortController(), cleanup: [] };
  document.getElementById('error').hidden = true;
  const st = readState();
  const page = { '/host': 'host', '/forecast': 'forecast', '/alerts': 'alerts' }[location.pathname] || 'overview';
  const keep = new URLSearchParams();
  for (const k of ['host', 'range', 'at']) if (st[k] && !(k === 'range' && st[k] === '1h')) keep.set(k, st[k]);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.href = (a.dataset.nav === 'overview' ? '/' : '/' + a.dataset.nav) + (keep.toString() ? '?' + keep : '');
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const run = { host: hostPage, forecast: forecastPage, alerts: alertsPage }[page] || overviewPage;
  run(st, view).catch(showError);
}

/** One live stream shared by the page; `onTick(message)` per committed tick. EventSource cannot send a
 * token, so with one the stream is read with fetch. */
function subscribe(v, onTick) {
  if (sessionStorage.getItem(TOKEN_KEY)) { streamWithToken(v, onTick); return; }
  if (!window.EventSource) return;
  const es = new EventSource('/api/v1/twin/live');
  es.addEventListener('tick', (e) => { try { onTick(JSON.parse(e.data)); } catch (err) { console.warn(err); } });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) setMode('Live stream ended', 'past'); };
  v.cleanup.push(() => es.close());
}

async function streamWithToken(v, onTick) {
  const stop = new AbortController();
  v.cleanup.push(() => stop.abort());
  try {
    const r = await fetch('/api/v1/twin/live', { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal: stop.signal });
    if (!r.ok || !r.body) return;
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data && /^event: tick$/m.test(event)) { try { onTick(JSON.parse(data)); } catch (err) { console.warn(err); } }
      }
    }
    setMode('Live stream ended', 'past');
  } catch (e) { if (e.name !== 'AbortError') console.warn(e); }
}

// ---------- Charts of the host page ----------

const FS = 'fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|proc|sysfs|nsfs|autofs"';
/** Filesystem use as df's Use%: used / (used + available), used = size − free. Blocks reserved for root count
 * as neither, so a disk with a large reserve is not shown fuller than df shows it (`hosttwin status` and the
 * API summary use the same definition). `m` maps a metric name to its selector (a range function around it). */
const fsUsed = (m) => `100 * (${m('node_filesystem_size_bytes')} - ${m('node_filesystem_free_bytes')}) / (${m('node_filesystem_size_bytes')} - ${m('node_filesystem_free_bytes')} + ${m('node_filesystem_avail_bytes')})`;
/** Host-level figures shared by the tiles, the overview card and the forecast presets (`w`: rate window). */
const HOST = {
  cpuBusy: (w) => `100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[${w}])))`,
  memoryUsed: '100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)',
  fullestFs: `max(${fsUsed((m) => `${m}{${FS}}`)})`,
  received: (w) => `sum(rate(node_network_receive_bytes_total{device!="lo"}[${w}]))`,
  sent: (w) => `sum(rate(node_network_transmit_bytes_total{device!="lo"}[${w}]))`,
};
/** Each chart: queries (window `w` → PromQL), how a series is named, the metrics whose anomalies it marks. */
const CHARTS = [
  { id: 'cpu', title: 'CPU by mode', unit: 'percent', headline: 'sum', metrics: ['node_cpu_seconds_total'],
    queries: [{ expr: (w) => `avg by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[${w}])) * 100`, name: (m) => m.mode }] },
  { id: 'memory', title: 'Memory', unit: 'bytes', metrics: ['node_memory_'],
    queries: [
      { expr: (w) => `avg_over_time(node_memory_MemTotal_bytes[${w}]) - avg_over_time(node_memory_MemAvailable_bytes[${w}])`, name: () => 'used' },
      { expr: (w) => `avg_over_time(node_memory_Cached_bytes[${w}]) + avg_over_time(node_memory_Buffers_bytes[${w}])`, name: () => 'cache + buffers' },
      { expr: (w) => `avg_over_time(node_memory_MemAvailable_bytes[${w}])`, name: () => 'available' },
    ] },
  { id: 'load', title: 'Load average', unit: '', metrics: ['node_load'],
    queries: ['1', '5', '15'].map((k) => ({ expr: (w) => `avg_over_time(node_load${k}[${w}])`, name: () => k + ' min' })) },
  { id: 'pressure', title: 'Pressure (PSI, share of time waiting)', unit: 'percent', metrics: ['node_pressure_'],
    queries: ['cpu', 'memory', 'io'].map((k) => ({ expr: (w) => `rate(node_pressure_${k}_waiting_seconds_total[${w}]) * 100`, name: () => k })) },
  { id: 'network', title: 'Network throughput', unit: 'bytes/s', headline: 'sum', metrics: ['node_network_'],
    queries: [
      { expr: HOST.received, name: () => 'received' },
      { expr: HOST.sent, name: () => 'sent' },
    ] },
  { id: 'disk', title: 'Disk throughput', unit: 'bytes/s', headline: 'sum', metrics: ['node_disk_'],
    queries: [
      { expr: (w) => `sum(rate(node_disk_read_bytes_total[${w}]))`, name: () => 'read' },
      { expr: (w) => `sum(rate(node_disk_written_bytes_total[${w}]))`, name: () => 'written' },
    ] },
  { id: 'filesystems', title: 'Filesystem use (as df: used / (used + available))', unit: 'percent', yMin: 0, headline: 'max', metrics: ['node_filesystem_'],
    queries: [{ expr: (w) => fsUsed((m) => `avg_over_time(${m}{${FS}}[${w}])`), name: (m) => m.mountpoint }] },
];

/** The step (s) that gives about one point per pixel, and the window the range functions look back. */
function stepFor(spanMs, width, start) {
  const step = Math.max(1, Math.ceil(spanMs / 1000 / width));
  // Beyond the raw retention the store answers from 1-minute rollups, so windows must span two minutes.
  const old = Date.now() - start > 6.5 * 86400e3;
  return { step, window: Math.max(step + 1, 4, old ? 150 : 0) + 's' };
}

/** The chart's series over [start, end]; `grid` keeps the step and window of an earlier load (live updates). */
async function loadChart(chart, spec, start, end, signal, grid = stepFor(end - start, chart.plotWidth, start)) {
  const { step, window } = grid;
  const parts = await Promise.all(spec.queries.map((q) => rangeQuery(q.expr(window), start, end, step, signal)));
  const series = [];
  // In query order, and by name within a query (the first series is the first query's).
  parts.forEach((rows, i) => series.push(...rows.map((r) => ({ name: spec.queries[i].name(r.labels) || '', points: r.points, gap: step * 3000 }))
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))));
  chart.host.dataset.query = spec.queries[0].expr(window);
  chart.host.dataset.step = String(step);
  return { series, step, window };
}

// ---------- Host page ----------

async function hostPage(st, v) {
  const [sum, hosts] = await Promise.all([summary(), fleet()]);
  if (v !== view) return;
  const member = hosts.find((h) => h.host === st.host);
  scopeHost = member ? member.host : null;
  // A hub's host page: the host's own series and entities; its facts are the pushed host entity's.
  const host = member ? { hostname: member.host, os: member.datacenter && 'datacenter ' + member.datacenter } : sum.host || {};
  // Over stored data only (`hosttwin serve`), "now" is the newest stored sample.
  const now = sum.serve && sum.stored ? Date.parse(sum.stored.to) : Date.now();
  const at = parseTime(st.at, now);
  const rangeMs = parseDuration(st.range);
  let end, start;
  const zoomed = st.from && st.to && parseTime(st.from) != null && parseTime(st.to) != null;
  if (zoomed) { start = parseTime(st.from, now); end = parseTime(st.to, now); }
  else if (at != null) { end = Math.min(now, at + rangeMs / 2); start = end - rangeMs; }
  else { end = now; start = now - rangeMs; }
  const live = at == null && !zoomed && !sum.serve;
  const storedFrom = sum.stored ? Date.parse(sum.stored.from) : now - 3600e3;

  document.title = (host.hostname || 'host') + ' · HostTwin';
  main.innerHTML = `
  <h1><span id="hostname">${esc(host.hostname || 'this host')}</span>
    <span class="muted">${esc([host.os, host.kernel, host.cpu_count && host.cpu_count + ' CPUs', host.memory_bytes && formatValue(host.memory_bytes, 'bytes')].filter(Boolean).join(' · '))}</span></h1>
  <section class="timebar panel" aria-label="Time range and time travel">
    <div class="ranges" role="group" aria-label="Range">${RANGES.map((r) => `<button type="button" data-range="${r}" aria-pressed="${!zoomed && st.range === r}">${r}</button>`).join('')}</div>
    <label for="slider" class="muted">As of</label>
    <input type="range" id="slider" min="${storedFrom}" max="${now}" step="1000" value="${at ?? now}" aria-valuetext="${esc(at == null ? 'now' : new Date(at).toLocaleString())}">
    <input type="datetime-local" id="at-input" step="1" aria-label="As of (date and time)" value="${localInput(at ?? now)}">
    <button type="button" class="btn" id="at-go">Go</button>
    <button type="button" class="btn" id="live-btn" ${live ? 'disabled' : ''}>Live</button>
    ${zoomed ? '<button type="button" class="btn" id="zoom-reset">Reset zoom</button>' : ''}
  </section>
  <div class="tiles" id="tiles" aria-live="off"></div>
  <div class="charts" id="charts"></div>
  <div class="tabs" role="tablist" aria-label="Entities">${TABS.map(([k, label]) => `<button type="button" role="tab" data-tab="${k}" aria-selected="${st.tab === k}">${label}</button>`).join('')}</div>
  <div class="tablebar"><input type="search" id="filter" placeholder="Filter rows" aria-label="Filter rows" value="${esc(st.q)}"><span id="rowcount" class="muted"></span></div>
  <div class="tablewrap" id="table" role="tabpanel"></div>
  <section class="changes panel" aria-labelledby="changes-h">
    <h2 id="changes-h">What changed</h2>
    <div class="tablebar">
      <label>From <input type="datetime-local" id="diff-from" step="1"></label>
      <label>To <input type="datetime-local" id="diff-to" step="1"></label>
      <button type="button" class="btn" id="diff-go">Compare</button>
    </div>
    <div id="diff" aria-live="polite"></div>
  </section>`;
  setMode(live ? 'Live' : at != null ? 'As of ' + new Date(at).toLocaleString() : zoomed ? 'Zoomed' : 'Stored data', live ? 'live' : 'past');

  // Time controls.
  for (const b of main.querySelectorAll('[data-range]')) b.onclick = () => go({ range: b.dataset.range, from: null, to: null });
  const slider = main.querySelector('#slider'), atInput = main.querySelector('#at-input');
  slider.oninput = () => { atInput.value = localInput(+slider.value); slider.setAttribute('aria-valuetext', new Date(+slider.value).toLocaleString()); };
  slider.onchange = () => { const t = +slider.value; go({ at: t >= Date.now() - 2000 ? null : iso(t), from: null, to: null }); };
  const applyAt = () => { const t = fromLocalInput(atInput.value); if (t == null) return showError(new Error('Not a date and time: ' + atInput.value)); go({ at: t >= Date.now() ? null : iso(t), from: null, to: null }); };
  main.querySelector('#at-go').onclick = applyAt;
  atInput.onkeydown = (e) => { if (e.key === 'Enter') applyAt(); };
  main.querySelector('#live-btn').onclick = () => go({ at: null, from: null, to: null });
  const reset = main.querySelector('#zoom-reset');
  if (reset) reset.onclick = () => go({ from: null, to: null });

  // Charts.
  const chartsEl = main.querySelector('#charts');
  const charts = CHARTS.map((spec) => {
    const el = document.createElement('section');
    el.id = 'chart-' + spec.id;
    chartsEl.append(el);
    const c = new Chart(el, { title: spec.title, unit: spec.unit, yMin: spec.yMin, headline: spec.headline,
      onZoom: (a, b) => a == null ? go({ from: null, to: null }) : go({ from: iso(a), to: iso(b) }) });
    c.setAt(at);
    return { spec, chart: c, grid: null, loading: false };
  });
  await Promise.all(charts.map(async (x) => {
    const asked = performance.now();
    const { series, step, window } = await loadChart(x.chart, x.spec, start, end, v.abort.signal);
    if (v !== view) return;
    x.grid = { step, window };
    x.chart.setData(series, start, end);
    x.chart.host.dataset.loadMs = (performance.now() - asked).toFixed(1); // query, transfer and draw
    // Milliseconds from navigation to the first chart with data (the page-weight check reads it).
    if (!document.body.dataset.firstDataMs) document.body.dataset.firstDataMs = performance.now().toFixed(0);
  })).catch(showError);
  main.dataset.chartsReady = '1';

  // Tiles, tables, the diff and anomaly markers.
  const tiles = () => loadTiles(main.querySelector('#tiles'), live ? null : (at ?? end), v).catch(showError);
  tiles();
  const table = new EntityTable(main, st, at, v);
  table.load().catch(showError);
  setupDiff(st, at ?? now, v);
  loadMarkers(charts, start, end, v).catch(showError);

  if (!live) return;
  // Live: each tick extends the charts whose step has passed, refreshes tiles and (throttled) the table.
  let lastTable = Date.now();
  subscribe(v, (msg) => {
    if (v !== view) return;
    const t = Date.parse(msg.time) || Date.now();
    const from = t - rangeMs;
    for (const x of charts) {
      const last = +(x.chart.host.dataset.lastTime || 0);
      if (!x.grid || x.loading || t - last < x.grid.step * 1000) continue;
      x.loading = true;
      loadChart(x.chart, x.spec, last + x.grid.step * 1000, t, v.abort.signal, x.grid)
        .then(({ series }) => { if (v === view) x.chart.append(series, from, t); })
        .catch(showError).finally(() => { x.loading = false; });
    }
    tiles();
    const kinds = new Set((msg.events || []).map((e) => e.kind));
    if (kinds.has(table.kind) && Date.now() - lastTable > 3000) { lastTable = Date.now(); table.load().catch(showError); }
  });
}

/** The headline numbers at `at` (null = now), from instant queries. */
async function loadTiles(el, at, v) {
  const q = {
    cpu: ['CPU busy', HOST.cpuBusy('1m'), 'percent'],
    mem: ['Memory used', HOST.memoryUsed, 'percent'],
    load: ['Load (1 min)', 'node_load1', ''],
    fs: ['Fullest filesystem (df Use%)', HOST.fullestFs, 'percent'],
    rx: ['Network in', HOST.received('1m'), 'bytes/s'],
    tx: ['Network out', HOST.sent('1m'), 'bytes/s'],
    swap: ['Swap used', 'node_memory_SwapTotal_bytes - node_memory_SwapFree_bytes', 'bytes'],
  };
  const vals = await Promise.all(Object.values(q).map(([, expr]) => instantQuery(expr, at, v.abort.signal).then((r) => r[0]?.value).catch(() => null)));
  if (v !== view) return;
  el.innerHTML = Object.entries(q).map(([k, [label, , unit]], i) =>
    `<div class="tile" data-tile="${k}" data-value="${vals[i] ?? ''}"><div class="k">${label}</div><div class="v">${formatValue(vals[i], unit)}</div></div>`).join('');
}

/** Anomaly markers on the charts, from the anomaly report over the shown window. */
async function loadMarkers(charts, start, end, v) {
  if (end - start > 8 * 86400e3) return;
  const rep = await api('/api/v1/twin/anomalies', { since: iso(start), to: iso(end), history: '6h' }, v.abort.signal);
  if (v !== view) return;
  for (const x of charts) {
    x.chart.setMarkers(rep.alerts.filter((a) => x.spec.metrics.some((m) => a.series.startsWith(m))).map((a) => ({ t: Date.parse(a.time), label: a.series })));
  }
}

// ---------- Entity tables ----------

const TABS = [['processes', 'Processes'], ['listening_ports', 'Listening ports'], ['connections', 'Connections'], ['mounts', 'Mounts'], ['services', 'Services'], ['packages', 'Packages']];
/** Preferred column order per kind (other attributes follow). */
const COLUMNS = {
  processes: ['pid', 'name', 'user', 'cpu', 'rss', 'state', 'ppid', 'command'],
  listening_ports: ['protocol', 'address', 'port', 'process', 'pid', 'uid'],
  connections: ['protocol', 'local_address', 'local_port', 'remote_address', 'remote_port', 'state', 'process', 'pid'],
  mounts: ['mountpoint', 'device', 'fstype', 'options', 'ro'],
  services: ['name', 'state', 'sub_state', 'description'],
  packages: ['name', 'version', 'architecture', 'manager'],
};
const HIDDEN = new Set(['kernel_thread', 'uid', 'start_time', 'root']);
const ROW_LIMIT = 500;

class EntityTable {
  constructor(root, st, at, v) {
    this.root = root; this.kind = st.tab; this.q = st.q; this.at = at; this.v = v; this.rows = [];
    const [col, dir] = (st.sort || '').split(':');
    this.sort = { col: col || (this.kind === 'processes' ? 'cpu' : ''), dir: dir === 'asc' ? 1 : dir === 'desc' ? -1 : (col ? 1 : -1) };
    for (const b of root.querySelectorAll('[data-tab]')) b.onclick = () => go({ tab: b.dataset.tab, sort: null, q: null });
    const tabs = [...root.querySelectorAll('[role=tab]')];
    tabs.forEach((b, i) => b.onkeydown = (e) => {
      const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (d) { const n = tabs[(i + d + tabs.length) % tabs.length]; n.focus(); n.click(); }
    });
    const filter = root.querySelector('#filter');
    filter.oninput = () => { this.q = filter.value; go({ q: this.q || null }, { replace: true, quiet: true }); this.draw(); };
  }

  async load() {
    const atParam = this.at == null ? null : iso(this.at);
    const data = await api('/api/v1/twin/entities/' + this.kind, { at: atParam }, this.v.abort.signal);
    let entities = data.entities;
    if (scopeHost) entities = entities.filter((e) => e.attributes.host === scopeHost).map((e) => ({ ...e, key: e.key.slice(scopeHost.length + 1) }));
    let rows = entities.map((e) => ({ key: e.key, since: e.valid_from, ...e.attributes }));
    if (this.kind === 'processes') rows = await this.withUsage(rows);
    if (this.v !== view) return;
    this.rows = rows;
    this.draw();
  }

  /** CPU % and resident memory of each process at the time shown, with the last hour as sparklines. */
  async withUsage(rows) {
    const at = this.at ?? Date.now(), start = at - 3600e3, step = 90;
    // Only the processes there at the time shown: an hour of a busy host's short-lived ones is most of the rest.
    const alive = ` and on (pid) hosttwin_process_resident_memory_bytes @ ${(at / 1000).toFixed(3)}`;
    const [cpu, rss] = await Promise.all([
      rangeQuery('rate(hosttwin_process_cpu_seconds_total[3m]) * 100' + alive, start, at, step, this.v.abort.signal),
      rangeQuery('hosttwin_process_resident_memory_bytes' + alive, start, at, step, this.v.abort.signal),
    ]).catch(() => [[], []]);
    const byPid = (list) => new Map(list.map((s) => [String(s.labels.pid), s.points]));
    const c = byPid(cpu), r = byPid(rss);
    const lastValue = (p) => p && p.length && at - p[p.length - 1][0] < 300e3 ? p[p.length - 1][1] : null;
    return rows.map((row) => {
      const pc = c.get(String(row.pid)), pr = r.get(String(row.pid));
      return { ...row, cpu: lastValue(pc), rss: lastValue(pr), _cpu: pc ? pc.map((p) => p[1]) : [], _rss: pr ? pr.map((p) => p[1]) : [] };
    });
  }

  columns() {
    const seen = new Set();
    for (const r of this.rows.slice(0, 200)) for (const k of Object.keys(r)) if (!k.startsWith('_') && !HIDDEN.has(k) && k !== 'key' && k !== 'since' && !(scopeHost && k === 'host')) seen.add(k);
    const pref = (COLUMNS[this.kind] || []).filter((k) => seen.has(k) || (this.kind === 'processes' && (k === 'cpu' || k === 'rss')));
    return [...pref, ...[...seen].filter((k) => !pref.includes(k)).sort(), 'since'];
  }

  draw() {
    const wrap = this.root.querySelector('#table'), count = this.root.querySelector('#rowcount');
    const cols = this.columns();
    const needle = this.q.toLowerCase();
    let rows = needle ? this.rows.filter((r) => cols.some((c) => String(r[c] ?? '').toLowerCase().includes(needle))) : this.rows.slice();
    const { col, dir } = this.sort;
    if (col) rows.sort((a, b) => {
      const x = a[col], y = b[col];
      if (x == null || x === '') return 1; if (y == null || y === '') return -1;
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true })) * dir;
    });
    count.textContent = rows.length + ' of ' + this.rows.length + (this.at == null ? ' now' : ' as of ' + new Date(this.at).toLocaleString()) + (rows.length > ROW_LIMIT ? ' (first ' + ROW_LIMIT + ' shown; filter to narrow)' : '');
    const label = { cpu: 'CPU %', rss: 'Memory (RSS)', since: 'Since' };
    const head = cols.map((c) => `<th scope="col" ${col === c ? `aria-sort="${dir > 0 ? 'ascending' : 'descending'}"` : ''}><button type="button" data-sort="${c}">${esc(label[c] || c.replace(/_/g, ' '))}</button></th>`).join('');
    const cell = (r, c) => {
      const v = r[c];
      if (c === 'cpu') return `<td class="num">${v == null ? '–' : v.toFixed(1)} ${sparkline(r._cpu || [])}</td>`;
      if (c === 'rss') return `<td class="num">${formatValue(v, 'bytes')} ${sparkline(r._rss || [])}</td>`;
      if (c === 'since') return `<td title="${esc(v)}">${!v ? '' : this.at == null ? ago(Date.parse(v)) + ' ago' : span(this.at - Date.parse(v)) + ' before'}</td>`;
      if (c === 'command' || c === 'options') return `<td class="wrap" title="${esc(v)}">${esc(String(v ?? '').length > 160 ? String(v).slice(0, 160) + '…' : v)}</td>`;
      return `<td${typeof v === 'number' ? ' class="num"' : ''}>${esc(v == null ? '' : v)}</td>`;
    };
    wrap.innerHTML = `<table data-kind="${this.kind}"><thead><tr>${head}</tr></thead><tbody>${rows.slice(0, ROW_LIMIT).map((r) => `<tr data-key="${esc(r.key)}">${cols.map((c) => cell(r, c)).join('')}</tr>`).join('')}</tbody></table>`
      + (rows.length ? '' : `<p class="pad muted">No ${esc(this.kind.replace(/_/g, ' '))}${needle ? ' match the filter' : ''}${this.at == null ? '' : ' at this time'}.</p>`);
    for (const b of wrap.querySelectorAll('[data-sort]')) b.onclick = () => {
      const c = b.dataset.sort;
      this.sort = { col: c, dir: this.sort.col === c ? -this.sort.dir : (c === 'cpu' || c === 'rss' ? -1 : 1) };
      go({ sort: c + ':' + (this.sort.dir > 0 ? 'asc' : 'desc') }, { replace: true, quiet: true });
      this.draw();
      wrap.querySelector(`[data-sort="${c}"]`)?.focus();
    };
  }
}

// ---------- What changed ----------

function setupDiff(st, defaultTo, v) {
  const fromEl = main.querySelector('#diff-from'), toEl = main.querySelector('#diff-to');
  const from = parseTime(st.diffFrom) ?? defaultTo - 3600e3, to = parseTime(st.diffTo) ?? defaultTo;
  fromEl.value = localInput(from); toEl.value = localInput(to);
  main.querySelector('#diff-go').onclick = () => {
    const a = fromLocalInput(fromEl.value), b = fromLocalInput(toEl.value);
    if (a == null || b == null) return showError(new Error('Choose two moments to compare'));
    go({ diff_from: iso(a), diff_to: iso(b) }, { replace: true, quiet: true });
    loadDiff(a, b, v).catch(showError);
  };
  loadDiff(from, to, v).catch(showError);
}

async function loadDiff(from, to, v) {
  const el = main.querySelector('#diff');
  const shown = 200; // of each kind: a twin younger than the window "gains" every package it holds
  const d = await api('/api/v1/twin/diff', { from: iso(from), to: iso(to), limit: shown }, v.abort.signal);
  if (v !== view) return;
  const groups = {};
  const add = (kind, html) => (groups[kind] ||= []).push(html);
  const name = (e) => esc(e.attributes?.name ?? e.attributes?.command ?? e.attributes?.mountpoint ?? '');
  for (const e of d.appeared) add(e.kind, `<li class="added">+ ${esc(e.key)} ${name(e)}</li>`);
  for (const e of d.disappeared) add(e.kind, `<li class="removed">− ${esc(e.key)} ${name(e)}</li>`);
  for (const e of d.changed) add(e.kind, `<li class="changed">~ ${esc(e.key)}: ${e.changes.map((c) => `${esc(c.attribute)} ${esc(JSON.stringify(c.old))} → ${esc(JSON.stringify(c.new))}`).join(', ')}</li>`);
  const kinds = Object.keys(groups).sort();
  const c = Object.values(d.counts), total = (f) => c.reduce((n, k) => n + k[f], 0);
  const of = (k) => { const n = d.counts[k] || {}; return (n.appeared || 0) + (n.changed || 0) + (n.disappeared || 0); };
  el.innerHTML = `<p class="muted">${total('appeared')} appeared, ${total('changed')} changed, ${total('disappeared')} disappeared between ${esc(new Date(from).toLocaleString())} and ${esc(new Date(to).toLocaleString())}.</p>`
    + kinds.map((k) => `<h3>${esc(k.replace(/_/g, ' '))} (${of(k)})</h3><ul>${groups[k].join('')}${of(k) > groups[k].length ? `<li class="muted">… ${of(k) - groups[k].length} more (<code>hosttwin diff</code> lists them all)</li>` : ''}</ul>`).join('');
}

// ---------- Overview ----------

async function overviewPage(st, v) {
  scopeHost = null;
  const [sum, hosts] = await Promise.all([summary(), fleet()]);
  if (v !== view) return;
  if (hosts.length) return fleetOverview(sum, hosts, v);
  setMode(sum.serve ? 'Stored data' : 'Live', sum.serve ? 'past' : 'live');
  const h = sum.host || {}, s = sum.summary;
  document.title = 'Overview · HostTwin';
  main.innerHTML = `<h1>Hosts</h1><div class="cards" id="cards"></div>`;
  const card = document.createElement('article');
  card.className = 'card';
  card.dataset.host = h.hostname || '';
  main.querySelector('#cards').append(card);
  const health = await api('/healthz', {}, v.abort.signal).catch(() => ({ status: 'unknown', collectors: [] }));
  const failing = (health.collectors || []).filter((c) => c.status === 'error');
  const hs = health.status !== 'ok' && health.status !== 'serve' ? ['bad', health.status] : failing.length ? ['degraded', failing.length + ' collector errors'] : ['ok', 'healthy'];
  const end = Date.now(), start = end - 3600e3, step = 60;
  const spark = async (expr) => (await rangeQuery(expr, start, end, step, v.abort.signal).catch(() => []))[0]?.points.map((p) => p[1]) || [];
  const [cpu, mem, fs, net] = await Promise.all([
    spark(HOST.cpuBusy('2m')),
    spark(HOST.memoryUsed),
    spark(HOST.fullestFs),
    spark(HOST.received('2m') + ' + ' + HOST.sent('2m')),
  ]);
  const anomalies = await api('/api/v1/twin/anomalies', { since: '-1h', history: '6h' }, v.abort.signal).catch(() => null);
  if (v !== view) return;
  const rate = anomalies && anomalies.rate.length ? anomalies.rate[anomalies.rate.length - 1].rate : null;
  const last = (a) => a.length ? a[a.length - 1] : null;
  const row = (label, value, series) => `<div class="row"><span class="muted">${label}</span><b>${value}</b>${sparkline(series, 140, 22)}</div>`;
  const link = '/host?host=' + encodeURIComponent(h.hostname || '');
  card.innerHTML = `<h2><a href="${link}">${esc(h.hostname || 'this host')}</a></h2>
    <p class="muted">${esc([h.os, h.kernel, h.cpu_count && h.cpu_count + ' CPUs'].filter(Boolean).join(' · '))}</p>
    <p><span class="health ${hs[0]}">${esc(hs[1])}</span> ${s ? `<span class="muted">· ${s.processes} processes · load ${s.load1}</span>` : ''}</p>
    ${row('CPU', formatValue(s ? s.cpu_percent : last(cpu), 'percent'), cpu)}
    ${row('Memory', formatValue(s ? s.memory_used_percent : last(mem), 'percent'), mem)}
    ${row('Disk', formatValue(last(fs), 'percent'), fs)}
    ${row('Network', formatValue(last(net), 'bytes/s'), net)}
    <div class="row"><span class="muted">Anomalies</span><b>${rate == null ? '–' : (rate * 100).toFixed(1) + ' %'}</b><span class="muted">${anomalies ? anomalies.alerts.length + ' alerts in the last hour' : ''}</span></div>`;
  if (!sum.serve) subscribe(v, (msg) => {
    const b = card.querySelectorAll('.row b');
    b[0].textContent = formatValue(msg.summary.cpu_percent, 'percent');
    b[1].textContent = formatValue(msg.summary.memory_used_percent, 'percent');
  });
}

/** A hub's overview: a card per host with its datacenter, lag, last contact, backlog, health and anomaly
 * rate (the failover scan, filled in when it returns), and its CPU and memory over the last hour. */
async function fleetOverview(sum, hosts, v) {
  setMode(sum.serve ? 'Fleet · stored and pushed data' : 'Fleet', 'live');
  document.title = 'Fleet · HostTwin';
  const dcs = [...new Set(hosts.map((h) => h.datacenter || '–'))].sort();
  main.innerHTML = `<h1>Hosts <span class="muted">${hosts.length} in ${dcs.length} datacenter${dcs.length === 1 ? '' : 's'}</span></h1>
    ${dcs.map((dc) => `<h2 class="dc">${esc(dc)}</h2><div class="cards" data-dc="${esc(dc)}"></div>`).join('')}`;
  const end = Date.now(), start = end - 3600e3, step = 60;
  const ago = (iso) => { if (!iso) return '–'; const s = (Date.now() - Date.parse(iso)) / 1000; return s < 90 ? s.toFixed(0) + ' s ago' : s < 5400 ? (s / 60).toFixed(0) + ' min ago' : new Date(iso).toLocaleString(); };
  const row = (label, value, series) => `<div class="row"><span class="muted">${label}</span><b>${value}</b>${series ? sparkline(series, 140, 22) : ''}</div>`;
  const cards = new Map();
  for (const h of hosts) {
    const card = document.createElement('article');
    card.className = 'card';
    card.dataset.host = h.host;
    main.querySelector(`.cards[data-dc="${CSS.escape(h.datacenter || '–')}"]`).append(card);
    cards.set(h.host, card);
    const lagBad = h.lag_seconds != null && h.lag_seconds > 60;
    card.innerHTML = `<h2><a href="/host?host=${encodeURIComponent(h.host)}">${esc(h.host)}</a></h2>
      <p><span class="health ${lagBad ? 'bad' : 'ok'}" data-health>${lagBad ? 'silent' : 'in contact'}</span>
        <span class="muted">· lag ${h.lag_seconds == null ? '–' : h.lag_seconds.toFixed(1) + ' s'} · last contact ${esc(ago(h.last_contact))} · backlog ${h.backlog_ticks ?? '–'} ticks</span></p>
      <div data-figures>${row('CPU', '…')}${row('Memory', '…')}</div>
      <div class="row"><span class="muted">Anomalies</span><b data-rate>…</b><span class="muted" data-warnings></span></div>`;
  }
  const spark = async (expr, host) => (await rangeQuery(expr, start, end, step, v.abort.signal, host).catch(() => []))[0]?.points.map((p) => p[1]) || [];
  const last = (a) => a.length ? a[a.length - 1] : null;
  await Promise.all(hosts.map(async (h) => {
    const [cpu, mem] = await Promise.all([spark(HOST.cpuBusy('2m'), h.host), spark(HOST.memoryUsed, h.host)]);
    if (v !== view) return;
    cards.get(h.host).querySelector('[data-figures]').innerHTML = row('CPU', formatValue(last(cpu), 'percent'), cpu) + row('Memory', formatValue(last(mem), 'percent'), mem);
  }));
  // The failover scan (seconds on a large hub) fills in health and anomaly rates when it returns.
  const scanned = await api('/api/v1/fleet', { warnings: 1 }, v.abort.signal).then((d) => d.hosts || []).catch(() => []);
  if (v !== view) return;
  for (const h of scanned) {
    const card = cards.get(h.host);
    if (!card) continue;
    const w = h.warnings || [];
    const badge = card.querySelector('[data-health]');
    badge.className = 'health ' + (w.some((x) => x.kind === 'silent') ? 'bad' : w.length ? 'degraded' : 'ok');
    badge.textContent = w.length ? w.length + ' warning' + (w.length === 1 ? '' : 's') : 'healthy';
    card.querySelector('[data-rate]').textContent = h.anomaly_rate == null ? '–' : (h.anomaly_rate * 100).toFixed(1) + ' %';
    card.querySelector('[data-warnings]').textContent = w.slice(0, 2).map((x) => x.kind + ': ' + x.evidence).join('; ');
  }
}

// ---------- Forecast and anomalies ----------

const PRESETS = [
  ['Root filesystem: available bytes', 'node_filesystem_avail_bytes{mountpoint="/"}', 'bytes'],
  ['Memory available', 'node_memory_MemAvailable_bytes', 'bytes'],
  ['CPU busy %', HOST.cpuBusy('5m'), 'percent'],
  ['Load (1 min)', 'node_load1', ''],
  ['Network received', HOST.received('5m'), 'bytes/s'],
];

async function forecastPage(st, v) {
  scopeHost = null;
  setMode('Forecast from stored history', 'live');
  document.title = 'Forecast · HostTwin';
  const expr = st.expr || PRESETS[0][1];
  const preset = PRESETS.find((p) => p[1] === expr);
  const unit = preset ? preset[2] : '';
  main.innerHTML = `
  <h1>Forecast and anomalies</h1>
  <section class="timebar panel" aria-label="Forecast">
    <label>Series <select id="preset">${PRESETS.map(([l, e]) => `<option value="${esc(e)}" ${e === expr ? 'selected' : ''}>${esc(l)}</option>`).join('')}<option value="" ${preset ? '' : 'selected'}>Custom PromQL…</option></select></label>
    <input id="expr" size="40" aria-label="PromQL expression" value="${esc(expr)}">
    <label>Horizon <select id="horizon">${['1h', '6h', '24h', '7d'].map((h) => `<option ${h === st.horizon ? 'selected' : ''}>${h}</option>`).join('')}</select></label>
    <button type="button" class="btn" id="fc-go">Forecast</button>
  </section>
  <div class="split">
    <section id="fc-chart"></section>
    <section class="panel"><h2 class="flush">Model</h2><div id="fc-info" class="muted">Fitting…</div></section>
  </div>
  <h2>Time to exhaustion</h2>
  <div class="tablewrap" id="exhaustion"><p class="pad muted">Forecasting…</p></div>
  <div class="split">
    <section><h2>Most anomalous series (last 6 h)</h2><div class="tablewrap" id="anomalous"><p class="pad muted">Scanning…</p></div></section>
    <section><h2>Early warnings</h2><div id="warnings" class="panel muted">Scanning…</div></section>
  </div>`;
  const presetEl = main.querySelector('#preset'), exprEl = main.querySelector('#expr');
  presetEl.onchange = () => { if (presetEl.value) { exprEl.value = presetEl.value; go({ expr: presetEl.value }); } else exprEl.focus(); };
  const submit = () => go({ expr: exprEl.value.trim() || null, horizon: main.querySelector('#horizon').value });
  main.querySelector('#fc-go').onclick = submit;
  exprEl.onkeydown = (e) => { if (e.key === 'Enter') submit(); };

  const chart = new Chart(main.querySelector('#fc-chart'), { title: 'History and forecast (80 % and 95 % intervals)', unit });
  const loadForecast = async () => {
    const horizonMs = parseDuration(st.horizon) || 86400e3;
    const historyMs = Math.min(Math.max(4 * horizonMs, 6 * 3600e3), Math.max(600e3, age));
    const fc = await api('/api/v1/twin/forecast', { query: expr, horizon: st.horizon, history: Math.round(historyMs / 1000) + 's' }, v.abort.signal);
    if (v !== view) return;
    const f = fc[0];
    if (!f) { main.querySelector('#fc-info').textContent = age < 3600e3 ? tooYoung : 'No stored data for this expression.'; return; }
    const step = f.step_seconds, lastT = Date.parse(f.last_time);
    const hist = await rangeQuery(expr, lastT - historyMs, lastT, step, v.abort.signal);
    const key = (f.metric.__name__ || '') + '{' + Object.entries(f.metric).filter(([k]) => k !== '__name__').map(([k, x]) => k + '="' + x + '"').join(', ') + '}';
    const h = hist.find((s) => JSON.stringify(Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== '__name__'))) === JSON.stringify(Object.fromEntries(Object.entries(f.metric).filter(([k]) => k !== '__name__')))) || hist[0];
    const pts = f.points.map((p) => [Date.parse(p[0]), ...p.slice(1).map(Number)]);
    const firstT = h && h.points.length ? h.points[0][0] : lastT;
    chart.setBands([
      { lo: pts.map((p) => [p[0], p[4]]), hi: pts.map((p) => [p[0], p[5]]), color: 'rgba(59,130,246,0.14)' },
      { lo: pts.map((p) => [p[0], p[2]]), hi: pts.map((p) => [p[0], p[3]]), color: 'rgba(59,130,246,0.26)' },
    ]);
    chart.setData([
      { name: 'observed', points: h ? h.points : [], color: color(0) },
      { name: 'forecast', points: [[lastT, f.last], ...pts.map((p) => [p[0], p[1]])], color: color(1), dashed: true },
    ], firstT, pts.length ? pts[pts.length - 1][0] : lastT + horizonMs);
    chart.setAt(lastT);
    main.querySelector('#fc-info').innerHTML = `<p class="wrap">${esc(key)}</p><p>Model: <b>${esc(f.model)}</b>, chosen on held-out recent history; one point every ${step} s.</p>
      <p>Now ${esc(formatValue(f.last, unit))}; in ${esc(st.horizon)}: ${esc(formatValue(pts[pts.length - 1]?.[1], unit))} (95 %: ${esc(formatValue(pts[pts.length - 1]?.[4], unit))} to ${esc(formatValue(pts[pts.length - 1]?.[5], unit))}).</p>`;
  };
  // The history a forecast reads: what is stored, up to 7 days (a young twin forecasts at 1-minute steps).
  const sum = await summary();
  const age = sum.stored ? Date.now() - Date.parse(sum.stored.from) : 7 * 86400e3;
  const history = Math.round(Math.min(7 * 86400e3, Math.max(600e3, age)) / 1000) + 's';
  const tooYoung = `No forecast yet: forecasts need a few minutes of stored history (this twin has ${span(age)}).`;
  const loadExhaustion = async () => {
    const ask = (label, query, unitOf) => api('/api/v1/twin/forecast', { query, horizon: '7d', history, below: 0 }, v.abort.signal)
      .then((r) => r.map((f) => ({ label: label(f.metric), f, unit: unitOf })));
    const rows = (await Promise.all([
      ask((m) => 'filesystem ' + m.mountpoint, `node_filesystem_avail_bytes{${FS}}`, 'bytes'),
      ask((m) => 'inodes ' + m.mountpoint, `node_filesystem_files_free{${FS}}`, ''),
      ask(() => 'memory', 'node_memory_MemAvailable_bytes', 'bytes'),
    ])).flat();
    if (v !== view) return;
    if (!rows.length) { main.querySelector('#exhaustion').innerHTML = `<p class="pad muted">${esc(tooYoung)}</p>`; return; }
    const when = (e) => !e || (!e.expected && !e.earliest) ? 'not within 7 d' : (e.expected ? 'in ' + span(Date.parse(e.expected) - Date.now()) : 'possibly') + (e.earliest ? ' (95 %: from ' + new Date(e.earliest).toLocaleString() + ')' : '');
    main.querySelector('#exhaustion').innerHTML = `<table><thead><tr><th scope="col">Resource</th><th scope="col" class="num">Available now</th><th scope="col">Runs out</th><th scope="col">Model</th></tr></thead><tbody>${
      rows.map((r) => `<tr data-resource="${esc(r.label)}"><td>${esc(r.label)}</td><td class="num">${esc(formatValue(r.f.last, r.unit))}</td><td>${esc(when(r.f.exhaustion))}</td><td>${esc(r.f.model)}</td></tr>`).join('')}</tbody></table>`;
  };
  const loadAnomalies = async () => {
    const rep = await api('/api/v1/twin/anomalies', { since: '-6h' }, v.abort.signal);
    if (v !== view) return;
    const rate = rep.rate.map((r) => r.rate * 100);
    main.querySelector('#anomalous').innerHTML = `<p class="pad muted">Host anomaly rate ${formatValue(rate[rate.length - 1], 'percent')} ${sparkline(rate, 160, 22)} · ${rep.series} series · ${rep.alerts.length} alerts${rep.host_anomalous.length ? ' · host turned anomalous at ' + rep.host_anomalous.map((t) => esc(new Date(t).toLocaleTimeString())).join(', ') : ''}</p>`
      + (rep.most_anomalous.length ? `<table><thead><tr><th scope="col">Series</th><th scope="col">Time</th><th scope="col" class="num">Score</th><th scope="col" class="num">Value</th></tr></thead><tbody>${
        rep.most_anomalous.map((a) => `<tr><td class="wrap">${esc(a.series)}</td><td>${esc(new Date(a.time).toLocaleString())}</td><td class="num">${a.score.toFixed(2)}</td><td class="num">${esc(formatValue(a.value, ''))}</td></tr>`).join('')}</tbody></table>`
        : '<p class="pad muted">No series alerted in the last 6 hours.</p>');
    main.querySelector('#warnings').innerHTML = rep.warnings.length
      ? '<ul>' + rep.warnings.map((w) => `<li><b>${esc(w.kind)}</b> ${esc(w.subject)}: ${esc(w.evidence)}</li>`).join('') + '</ul>'
      : 'No early warnings: no sustained pressure, rising error counters, growing processes, filling filesystems or restart loops.';
  };
  await Promise.all([loadForecast(), loadExhaustion(), loadAnomalies()].map((p) => p.catch(showError)));
}

window.addEventListener('popstate', render);
document.addEventListener('click', (e) => {
  // Same-page links navigate without reloading.
  const a = e.target.closest && e.target.closest('a[href^="/"]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || a.target) return;
  const u = new URL(a.href);
  if (!['/', '/host', '/forecast'].includes(u.pathname)) return;
  e.preventDefault();
  history.pushState(null, '', u.pathname + u.search);
  render();
  main.focus();
});
render();

/** Alerts: those pending and firing now (or as of `at`, from the stored alert events), the silences in force
 * then, the alert changes of the day before, the rules' health, and the remediation actions run with whether
 * their alert cleared. */
async function alertsPage(st, v) {
  scopeHost = null;
  document.title = 'Alerts · HostTwin';
  const at = st.at ? Date.parse(st.at) || null : null;
  setMode(at ? 'As of ' + iso(at) : 'Live', at ? 'past' : 'live');
  main.innerHTML = `<h1>Alerts${at ? ' <span class="muted">as of ' + esc(iso(at)) + '</span>' : ''}</h1>
    <section class="timebar panel" aria-label="Time"><label>As of <input id="al-at" type="datetime-local" step="1" value="${at ? new Date(at).toISOString().slice(0, 19) : ''}"></label>
      <button type="button" class="btn" id="al-go">Show</button> <button type="button" class="btn" id="al-now">Now</button> <span id="al-rules" class="muted"></span></section>
    <h2>Pending and firing</h2><div class="tablewrap" id="al-active"><p class="pad muted">Loading…</p></div>
    <h2>Silences</h2><div class="tablewrap" id="al-silences"><p class="pad muted">Loading…</p></div>
    <h2>Changes in the 24 h before</h2><div class="tablewrap" id="al-changes"><p class="pad muted">Loading…</p></div>
    <h2>Remediation</h2><div class="tablewrap" id="al-actions"><p class="pad muted">Loading…</p></div>`;
  main.querySelector('#al-go').onclick = () => { const x = main.querySelector('#al-at').value; go({ at: x ? new Date(x + 'Z').toISOString() : null }); };
  main.querySelector('#al-now').onclick = () => go({ at: null });
  const end = at || Date.now();
  const table = (head, rows, empty) => rows.length
    ? `<table><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`
    : `<p class="pad muted">${esc(empty)}</p>`;
  const labels = (l) => esc(Object.entries(l || {}).filter(([k]) => k !== 'alertname').map(([k, x]) => k + '=' + x).join(', '));
  const badge = (s) => `<span class="health ${s === 'firing' ? 'bad' : s === 'pending' ? 'degraded' : 'ok'}">${esc(s)}</span>`;
  const [alerts, events, rules, actions, silences] = await Promise.all([
    api('/api/v1/alerts', at ? { at: iso(at) } : {}, v.abort.signal).catch(() => ({ alerts: [] })),
    api('/api/v1/twin/events', { from: iso(end - 86400e3), to: iso(end), limit: 100000 }, v.abort.signal).catch(() => []),
    api('/api/v1/rules', {}, v.abort.signal).catch(() => ({ groups: [] })),
    api('/api/v1/twin/actions', { from: iso(end - 7 * 86400e3), to: iso(end) }, v.abort.signal).catch(() => ({ runs: [], deliveries: [] })),
    api('/api/v1/silences', { all: '1' }, v.abort.signal).catch(() => []),
  ]);
  if (v !== view) return;
  const all = rules.groups.flatMap((g) => g.rules);
  const bad = all.filter((r) => r.health === 'err');
  main.querySelector('#al-rules').textContent = `${all.length} rules in ${rules.groups.length} groups` + (bad.length ? ` · ${bad.length} failing: ` + bad.map((r) => r.name + ' (' + r.lastError + ')').join('; ') : ' · all healthy');
  main.querySelector('#al-active').innerHTML = table(['State', 'Alert', 'Since', 'Value', 'Labels', 'Summary'],
    alerts.alerts.map((a) => [badge(a.state), esc(a.labels.alertname), esc(a.activeAt), esc(formatValue(Number(a.value), '')), labels(a.labels), esc(a.annotations.summary || '')]),
    at ? 'No alert was pending or firing then.' : 'No alert is pending or firing.');
  // In force at the time shown, and those still to come when it is now.
  const shown = silences.filter((x) => x.ends > end && (x.starts <= end || !at)).sort((a, b) => a.starts - b.starts);
  main.querySelector('#al-silences').innerHTML = table(['Matchers', 'State', 'From', 'Until', 'By', 'Why'],
    shown.map((x) => [esc(x.matchers.join(' ')), badge(x.starts <= end ? 'active' : 'pending'), esc(iso(x.starts)), esc(iso(x.ends)), esc(x.author), esc(x.comment)]),
    at ? 'No silence was in force then.' : 'No silence is in force or planned (hosttwin silence add).');
  const changes = events.filter((e) => e.type === 'alert').reverse();
  main.querySelector('#al-changes').innerHTML = table(['Time', 'Change'], changes.map((e) => [esc(e.time), esc(e.message || '') + ' <span class="muted">' + esc(e.key || '') + '</span>']), 'No alert changed state.');
  main.querySelector('#al-actions').innerHTML = table(['Time', 'Action', 'Alert', 'Status', 'Took', 'Cleared'],
    actions.runs.slice().reverse().map((r) => [esc(r.time ? iso(r.time) : ''), esc(r.action) + (r.dryRun ? ' <span class="muted">(dry run)</span>' : ''), esc(r.alert), esc(r.status), esc(r.millis + ' ms'),
      r.cleared == null ? '<span class="muted">–</span>' : r.cleared ? badge('cleared') : badge('firing')]),
    'No remediation action ran.');
}
