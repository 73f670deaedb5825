// HostTwin's chart module: time series drawn on a canvas, with hover values, drag to zoom, keyboard
// cursor, a marker line at the as-of time, anomaly markers and forecast bands. No dependencies.

const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];

/** Formats `v` in `unit`: "bytes", "bytes/s", "percent", or "" (plain, SI suffixes). */
export function formatValue(v, unit) {
  if (v == null || !isFinite(v)) return '–';
  if (unit === 'percent') return v.toFixed(Math.abs(v) < 10 ? 1 : 0) + ' %';
  if (unit === 'bytes' || unit === 'bytes/s') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0, x = Math.abs(v);
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    const s = (v < 0 ? '-' : '') + x.toFixed(x < 10 && i > 0 ? 1 : 0) + ' ' + units[i];
    return unit === 'bytes/s' ? s + '/s' : s;
  }
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

/**
 * The value axis over [lo, hi] (lo < hi): ticks a whole step apart, the step 1, 2, 2.5 or 5 times a power
 * of ten (of the unit the largest value is shown in: KiB, MiB, ... for bytes; k, M, G plain), about four
 * steps in all, the axis widened to whole steps; each label with as many decimals as the step needs (in
 * exponent form when every value is below 0.0001), so no two read the same: rounding each value on its own had shown "1 B/s"
 * three times on a quiet network.
 * Returns `{ values, labels }`, lowest first.
 */
export function axisTicks(lo, hi, unit) {
  const bytes = unit === 'bytes' || unit === 'bytes/s', top = Math.max(Math.abs(lo), Math.abs(hi));
  const names = bytes ? ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] : ['', 'k', 'M', 'G'];
  let i = 0, scale = 1;
  if (bytes) while (top / scale >= 1024 && i < names.length - 1) { scale *= 1024; i++; }
  else if (unit !== 'percent' && top >= 1e4) for (i = 1, scale = 1e3; top / scale >= 1e3 && i < names.length - 1; i++) scale *= 1e3;
  const raw = (hi - lo) / scale / 4;
  let e = Math.floor(Math.log10(raw)), m = [1, 2, 2.5, 5].find((c) => raw / 10 ** e <= c) ?? 10;
  if (m === 10) { m = 1; e++; }
  const step = m * 10 ** e * scale, decimals = Math.max(0, -e + (m === 2.5 ? 1 : 0));
  const values = [];
  for (let k = Math.floor(lo / step); values.length < 12; k++) { values.push(k * step); if (k * step >= hi) break; }
  const suffix = unit === 'percent' ? ' %' : bytes ? ' ' + names[i] + (unit === 'bytes/s' ? '/s' : '') : names[i];
  const label = top / scale < 1e-4 ? (v) => (v ? v.toExponential(m === 2.5 ? 1 : 0) : '0') : (v) => v.toFixed(Math.min(decimals, 20));
  return { values, labels: values.map((v) => label(v / scale) + suffix) };
}

/** "14:05:09" or "Nov 29 14:05" depending on the span shown. */
export function formatTime(ms, spanMs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const hm = p(d.getHours()) + ':' + p(d.getMinutes());
  if (spanMs <= 3 * 3600e3) return hm + ':' + p(d.getSeconds());
  if (spanMs <= 2 * 86400e3) return hm;
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric' }) + ' ' + hm;
}

/** A colour square for legends (styled through the CSSOM: the page's policy forbids inline style attributes). */
function swatch(c) { const i = document.createElement('i'); i.style.background = c; return i; }

/** Colour of the i-th series. */
export function color(i) { return PALETTE[i % PALETTE.length]; }

/** Draws `values` as a small line into an inline SVG string (for table cells and cards). */
export function sparkline(values, width = 80, height = 20, stroke = 'currentColor') {
  const v = values.filter((x) => isFinite(x));
  if (v.length < 2) return '<svg class="spark" width="' + width + '" height="' + height + '" aria-hidden="true"></svg>';
  let lo = Math.min(...v), hi = Math.max(...v);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pts = values.map((x, i) => isFinite(x) ? (i * (width - 2) / (values.length - 1) + 1).toFixed(1) + ',' + (height - 1 - (x - lo) * (height - 2) / (hi - lo)).toFixed(1) : null)
    .filter(Boolean).join(' ');
  return '<svg class="spark" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + ' ' + height + '" aria-hidden="true"><polyline fill="none" stroke="' + stroke + '" stroke-width="1.5" points="' + pts + '"/></svg>';
}

/**
 * A time-series chart in `host` (an element). Series: [{name, points: [[ms, value], ...]}]. Bands (forecast
 * intervals): [{lo: [[ms, v]], hi: [[ms, v]], color}]. `onZoom(from, to)` is called after a drag (null, null
 * on double-click or Escape). The element carries data-points, data-last-time and data-last-value for tests
 * and tools, and `lastDrawMs` is the time the last draw took.
 */
export class Chart {
  constructor(host, { title, unit = '', onZoom = null, yMin = null, yMax = null, headline = 'first' } = {}) {
    this.host = host; this.unit = unit; this.onZoom = onZoom; this.yMin = yMin; this.yMax = yMax; this.headline = headline;
    this.series = []; this.bands = []; this.markers = []; this.at = null; this.from = 0; this.to = 1;
    this.cursor = null; this.drag = null; this.lastDrawMs = 0;
    host.classList.add('chart');
    host.innerHTML = '';
    const head = document.createElement('div'); head.className = 'chart-head';
    head.innerHTML = '<h3></h3><span class="chart-value"></span>';
    head.querySelector('h3').textContent = title;
    this.valueEl = head.querySelector('.chart-value');
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', title + ' chart; arrow keys move the cursor, Escape resets the zoom');
    this.tip = document.createElement('div'); this.tip.className = 'chart-tip'; this.tip.hidden = true;
    this.tip.setAttribute('role', 'status');
    this.legend = document.createElement('div'); this.legend.className = 'chart-legend';
    const wrap = document.createElement('div'); wrap.className = 'chart-canvas';
    wrap.append(this.canvas, this.tip);
    host.append(head, wrap, this.legend);
    this.listen();
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(wrap);
  }

  /** Width of the plot in CSS pixels: the number of points worth asking the server for. */
  get plotWidth() { return Math.max(50, Math.floor(this.canvas.clientWidth || this.host.clientWidth || 600) - 68); }

  setData(series, from, to) {
    this.series = series; this.from = from; this.to = to;
    this.renderLegend(); this.draw();
  }
  setBands(bands) { this.bands = bands || []; this.draw(); }
  /** Anomaly markers: [{t, label}]. */
  setMarkers(markers) { this.markers = markers || []; this.draw(); }
  /** The as-of time (ms) to mark with a line, or null. */
  setAt(at) { this.at = at; this.draw(); }

  /** Adds newer points (live) and drops those before `from`. */
  append(series, from, to) {
    for (const s of series) {
      const mine = this.series.find((x) => x.name === s.name);
      if (!mine) { this.series.push(s); continue; }
      const last = mine.points.length ? mine.points[mine.points.length - 1][0] : -Infinity;
      for (const p of s.points) if (p[0] > last) mine.points.push(p);
    }
    for (const s of this.series) { let k = 0; while (k < s.points.length && s.points[k][0] < from) k++; if (k) s.points.splice(0, k); }
    this.from = from; this.to = to;
    this.renderLegend(); this.draw();
  }

  renderLegend() {
    this.legend.innerHTML = '';
    this.series.forEach((s, i) => {
      const item = document.createElement('span');
      item.append(swatch(s.color || color(i)), document.createTextNode(s.name));
      this.legend.append(item);
    });
  }

  scales(w, h) {
    let lo = Infinity, hi = -Infinity;
    const take = (pts) => { for (const p of pts) { const v = p[1]; if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } } };
    for (const s of this.series) take(s.points);
    for (const b of this.bands) { take(b.lo); take(b.hi); }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (this.yMin != null) lo = Math.min(lo, this.yMin);
    if (this.yMax != null) hi = Math.max(hi, this.yMax);
    if (lo > 0 && lo < hi * 0.5) lo = 0;
    if (hi === lo) hi = lo + 1;
    const ticks = axisTicks(lo, hi, this.unit);
    lo = ticks.values[0]; hi = ticks.values[ticks.values.length - 1];
    const pad = { l: 64, r: 4, t: 6, b: 18 };
    const x = (t) => pad.l + (t - this.from) * (w - pad.l - pad.r) / Math.max(1, this.to - this.from);
    const y = (v) => pad.t + (hi - v) * (h - pad.t - pad.b) / (hi - lo);
    const t = (px) => this.from + (px - pad.l) * (this.to - this.from) / (w - pad.l - pad.r);
    return { lo, hi, x, y, t, pad, ticks };
  }

  draw() {
    const started = performance.now();
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(this.host);
    const fg = css.getPropertyValue('--muted').trim() || '#888', grid = css.getPropertyValue('--grid').trim() || '#8883';
    const s = this.scales(w, h);
    // Grid and axes.
    g.font = '11px system-ui, sans-serif'; g.fillStyle = fg; g.strokeStyle = grid; g.lineWidth = 1;
    g.textAlign = 'right'; g.textBaseline = 'middle';
    s.ticks.values.forEach((v, i) => {
      const yy = Math.round(s.y(v)) + 0.5;
      g.beginPath(); g.moveTo(s.pad.l, yy); g.lineTo(w - s.pad.r, yy); g.stroke();
      g.fillText(s.ticks.labels[i], s.pad.l - 4, yy);
    });
    g.textAlign = 'center'; g.textBaseline = 'top';
    const span = this.to - this.from;
    const ticks = Math.max(1, Math.min(4, Math.floor((w - s.pad.l) / 110)));
    for (let i = 0; i <= ticks; i++) {
      const t = this.from + span * i / ticks;
      g.textAlign = i === 0 ? 'left' : i === ticks ? 'right' : 'center';
      g.fillText(formatTime(t, span), i === ticks ? w - s.pad.r : s.x(t), h - s.pad.b + 4);
    }
    // Bands (forecast intervals), then lines.
    for (const b of this.bands) {
      if (!b.lo.length) continue;
      g.beginPath();
      b.lo.forEach((p, i) => i ? g.lineTo(s.x(p[0]), s.y(p[1])) : g.moveTo(s.x(p[0]), s.y(p[1])));
      for (let i = b.hi.length - 1; i >= 0; i--) g.lineTo(s.x(b.hi[i][0]), s.y(b.hi[i][1]));
      g.closePath(); g.fillStyle = b.color; g.fill();
    }
    g.save();
    g.beginPath(); g.rect(s.pad.l, 0, w - s.pad.l - s.pad.r, h); g.clip();
    this.series.forEach((ser, i) => {
      g.strokeStyle = ser.color || color(i); g.lineWidth = 1.5; g.setLineDash(ser.dashed ? [4, 3] : []);
      g.beginPath();
      let pen = false, prevT = null;
      const gap = ser.gap || Infinity;
      for (const [t, v] of ser.points) {
        if (!isFinite(v)) { pen = false; continue; }
        if (prevT != null && t - prevT > gap) pen = false;
        const px = s.x(t), py = s.y(v);
        if (pen) g.lineTo(px, py); else { g.moveTo(px, py); pen = true; }
        prevT = t;
      }
      g.stroke();
    });
    g.setLineDash([]);
    // Anomaly markers: small triangles on the time axis.
    g.fillStyle = '#ef4444';
    for (const m of this.markers) {
      if (m.t < this.from || m.t > this.to) continue;
      const px = s.x(m.t);
      g.beginPath(); g.moveTo(px, h - s.pad.b); g.lineTo(px - 4, h - s.pad.b - 7); g.lineTo(px + 4, h - s.pad.b - 7); g.closePath(); g.fill();
    }
    // The as-of line.
    if (this.at != null && this.at >= this.from && this.at <= this.to) {
      const px = Math.round(s.x(this.at)) + 0.5;
      g.strokeStyle = css.getPropertyValue('--accent').trim() || '#e11d48'; g.lineWidth = 2;
      g.beginPath(); g.moveTo(px, s.pad.t); g.lineTo(px, h - s.pad.b); g.stroke();
    }
    // Drag selection and cursor.
    if (this.drag && this.drag.x1 != null) {
      g.fillStyle = 'rgba(59,130,246,0.15)';
      g.fillRect(Math.min(this.drag.x0, this.drag.x1), s.pad.t, Math.abs(this.drag.x1 - this.drag.x0), h - s.pad.t - s.pad.b);
    }
    if (this.cursor != null) {
      const px = Math.round(s.x(this.cursor)) + 0.5;
      g.strokeStyle = fg; g.lineWidth = 1;
      g.beginPath(); g.moveTo(px, s.pad.t); g.lineTo(px, h - s.pad.b); g.stroke();
    }
    g.restore();
    const first = this.series.find((x) => x.points.length);
    const last = first ? first.points[first.points.length - 1] : null;
    this.host.dataset.points = String(this.series.reduce((n, x) => n + x.points.length, 0));
    if (last) { this.host.dataset.lastTime = String(last[0]); this.host.dataset.lastValue = String(last[1]); }
    // The figure in the corner: the first series' newest value, or the sum or maximum of every series' newest.
    const newest = this.series.filter((x) => x.points.length).map((x) => x.points[x.points.length - 1][1]);
    const head = this.headline === 'sum' ? newest.reduce((a, b) => a + b, 0) : this.headline === 'max' ? Math.max(...newest) : last && last[1];
    this.valueEl.textContent = newest.length ? formatValue(head, this.unit) : '';
    this.lastDrawMs = performance.now() - started;
    this.host.dataset.drawMs = this.lastDrawMs.toFixed(2);
  }

  /** The point of each series nearest to time `t`. */
  valuesAt(t) {
    return this.series.map((ser, i) => {
      const p = ser.points;
      if (!p.length) return null;
      let lo = 0, hi = p.length - 1;
      while (lo < hi) { const m = (lo + hi) >> 1; if (p[m][0] < t) lo = m + 1; else hi = m; }
      if (lo > 0 && Math.abs(p[lo - 1][0] - t) < Math.abs(p[lo][0] - t)) lo--;
      return { name: ser.name, color: ser.color || color(i), t: p[lo][0], v: p[lo][1] };
    }).filter(Boolean);
  }

  showTip(t, px) {
    this.cursor = t;
    const vals = this.valuesAt(t);
    if (!vals.length) { this.tip.hidden = true; this.draw(); return; }
    this.tip.innerHTML = '';
    const head = document.createElement('b'); head.textContent = new Date(vals[0].t).toLocaleString(); this.tip.append(head);
    for (const v of vals) {
      const row = document.createElement('div');
      row.append(swatch(v.color), document.createTextNode(v.name + ': ' + formatValue(v.v, this.unit)));
      row.dataset.value = String(v.v); row.dataset.time = String(v.t);
      this.tip.append(row);
    }
    this.tip.hidden = false;
    const w = this.canvas.clientWidth;
    this.tip.style.left = Math.min(Math.max(0, px + 12), Math.max(0, w - this.tip.offsetWidth)) + 'px';
    this.draw();
  }

  hideTip() { this.cursor = null; this.tip.hidden = true; this.draw(); }

  listen() {
    const c = this.canvas;
    const local = (e) => e.clientX - c.getBoundingClientRect().left;
    c.addEventListener('pointerdown', (e) => { this.drag = { x0: local(e), x1: null }; c.setPointerCapture(e.pointerId); });
    c.addEventListener('pointermove', (e) => {
      const x = local(e), s = this.scales(c.clientWidth, c.clientHeight);
      if (this.drag) this.drag.x1 = x;
      this.showTip(s.t(x), x);
    });
    c.addEventListener('pointerup', (e) => {
      const d = this.drag; this.drag = null;
      if (d && d.x1 != null && Math.abs(d.x1 - d.x0) > 6 && this.onZoom) {
        const s = this.scales(c.clientWidth, c.clientHeight);
        const a = s.t(Math.min(d.x0, d.x1)), b = s.t(Math.max(d.x0, d.x1));
        this.onZoom(Math.round(a), Math.round(b));
      }
      this.draw();
    });
    c.addEventListener('pointerleave', () => { if (!this.drag) this.hideTip(); });
    c.addEventListener('dblclick', () => this.onZoom && this.onZoom(null, null));
    c.addEventListener('blur', () => this.hideTip());
    c.addEventListener('keydown', (e) => {
      const span = this.to - this.from, s = this.scales(c.clientWidth, c.clientHeight);
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        const t = Math.min(this.to, Math.max(this.from, (this.cursor ?? this.to) + (e.key === 'ArrowLeft' ? -1 : 1) * span / 50));
        this.showTip(t, s.x(t)); e.preventDefault();
      } else if (e.key === 'Escape' && this.onZoom) { this.onZoom(null, null); }
      else if ((e.key === '+' || e.key === '=') && this.onZoom) {
        const mid = this.cursor ?? (this.from + span / 2); this.onZoom(Math.round(mid - span / 4), Math.round(mid + span / 4));
      }
    });
  }
}
