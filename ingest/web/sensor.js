// The sensor page: its site, its lanes now with flags, the latest classification's reasons,
// and a chart of flow, speed and occupancy with each bucket's label as a band behind it.

/* global uPlot */
import { ApiError, getJson, sensorPath, url } from './api.js';
import { LABEL_ORDER, canvasPattern, labelBadge, labelInfo, labelText, swatch } from './labels.js';
import { ageOf, serverNow } from './model.js';
import { el, fmt1, fmtAge, fmtDateTime, fmtInt, laneName } from './format.js';

const WINDOWS = {
  '6h': { hours: 6, bucket: '5m', name: '6 h' },
  '24h': { hours: 24, bucket: '5m', name: '24 h' },
  '7d': { hours: 24 * 7, bucket: '1h', name: '7 d' },
};
const SERIES_MIN_INTERVAL_MS = 2000;
const CHART_HEIGHT = 380;
const COLOURS = { flow: '#79c0ff', speed: '#d2a8ff', occupancy: '#e6edf3', axis: '#9da7b3', grid: 'rgba(157,167,179,.14)' };

function validZone(tz) {
  if (!tz) return null;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: tz });
    return tz;
  } catch {
    return null;
  }
}

export class SensorPage {
  constructor(root, network, { onError, onSensor }) {
    this.root = root;
    this.network = network;
    this.onError = onError;
    this.onSensor = onSensor;
    this.id = null;
    this.windowKey = '24h';
    this.latest = null;
    this.buckets = [];
    this.plot = null;
    this.zone = null;
    this.controller = null;
    this.seriesTimer = null;
    this.seriesInFlight = false;
    this.seriesAgain = false;
    this.lastSeriesAt = 0;

    this.title = root.querySelector('#sensor-title');
    this.message = root.querySelector('#sensor-message');
    this.meta = root.querySelector('#sensor-meta');
    this.lanesBody = root.querySelector('#lanes-table tbody');
    this.reasonsFor = root.querySelector('#reasons-for');
    this.reasons = root.querySelector('#reasons');
    this.chart = root.querySelector('#series-chart');
    this.chartNote = root.querySelector('#series-note');
    this.legend = root.querySelector('#series-legend');
    this.picker = root.querySelector('#window-picker');

    this.picker.addEventListener('change', (event) => {
      if (event.target.name !== 'window' || !WINDOWS[event.target.value]) return;
      this.windowKey = event.target.value;
      this.lastSeriesAt = 0;
      this.loadSeries();
    });
    for (const key of LABEL_ORDER) {
      this.legend.append(el('li', {}, swatch(key), labelText(key)));
    }
    new ResizeObserver(() => {
      requestAnimationFrame(() => this.resize());
    }).observe(this.chart);
  }

  get active() {
    return this.id != null;
  }

  async show(id) {
    if (this.id === id) return;
    this.hide();
    this.id = id;
    this.controller = new AbortController();
    this.root.dataset.sensor = id;
    this.root.hidden = false;
    this.title.textContent = `Sensor ${id}`;
    document.title = `${id} · Smart traffic`;
    this.message.hidden = true;
    this.latest = null;
    this.meta.replaceChildren();
    this.lanesBody.replaceChildren();
    this.reasons.replaceChildren();
    this.reasonsFor.textContent = 'Loading…';
    this.chart.dataset.loaded = 'false';
    delete this.chart.dataset.points;
    this.picker.elements.window.value = this.windowKey;
    const signal = this.controller.signal;
    try {
      const detail = await getJson(sensorPath(id), { signal });
      if (this.id !== id) return;
      const sensor = this.network.applyListing({ sensor_id: id, metadata: detail.metadata, lanes: detail.lanes });
      this.onSensor(sensor);
      this.zone = validZone(detail.metadata?.time_zone);
      this.renderMeta(detail);
      this.renderLanes();
      this.setLatest(detail.latest);
    } catch (error) {
      if (error?.name === 'AbortError' || this.id !== id) return;
      this.reasonsFor.textContent = '';
      this.message.hidden = false;
      this.message.textContent = error instanceof ApiError && error.status === 404
        ? `No sensor “${id}”: it has neither readings nor metadata.`
        : `The sensor could not be loaded: ${error.detail || error.message}`;
      if (!(error instanceof ApiError && error.status === 404)) this.onError(error, `Sensor ${id}`);
      return;
    }
    this.loadSeries();
  }

  hide() {
    this.controller?.abort();
    this.controller = null;
    clearTimeout(this.seriesTimer);
    this.seriesTimer = null;
    // The previous sensor's chart must not redraw (and report itself loaded) under the next one.
    this.plot?.destroy();
    this.plot = null;
    this.buckets = [];
    this.points = null;
    this.seriesAgain = false;
    this.id = null;
    this.root.hidden = true;
    delete this.root.dataset.sensor;
  }

  renderMeta(detail) {
    const m = detail.metadata ?? {};
    const loc = m.location;
    const rows = [
      ['Name', m.name],
      ['Road', m.road],
      ['Direction', m.direction],
      ['Place', loc ? `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : null],
      ['Lanes', m.lanes != null ? String(m.lanes) : null],
      ['Speed limit', m.speed_limit_kmh != null ? `${m.speed_limit_kmh} km/h` : null],
      ['Free-flow speed', m.free_flow_speed_kmh != null ? `${m.free_flow_speed_kmh} km/h` : null],
      ['Effective vehicle length', m.effective_vehicle_length_m != null ? `${m.effective_vehicle_length_m} m` : null],
      ['Time zone', m.time_zone],
      ['Metadata updated', detail.metadata_updated_at ? fmtDateTime(detail.metadata_updated_at) : null],
    ];
    const always = new Set(['Road', 'Place', 'Lanes']);
    const nodes = [];
    for (const [term, value] of rows) {
      if (value == null && !always.has(term)) continue;
      nodes.push(el('div', {}, el('dt', {}, term), el('dd', {}, value ?? '—')));
    }
    if (!detail.metadata) nodes.push(el('div', {}, el('dt', {}, 'Metadata'), el('dd', {}, 'none stored')));
    this.meta.replaceChildren(...nodes);
  }

  renderLanes() {
    const sensor = this.network.sensors.get(this.id);
    if (!sensor) return;
    const now = serverNow();
    const rows = sensor.orderedLanes().map((l) => {
      const { age, stale } = ageOf({ oldestMs: l.observedMs, staleAtMs: l.observedMs + 3 * l.intervalS * 1000 }, now);
      const tr = el('tr', { dataset: { lane: l.lane == null ? 'all' : String(l.lane), label: l.label } });
      tr.classList.toggle('stale', stale);
      tr.append(
        el('th', { scope: 'row' }, laneName(l.lane)),
        el('td', { className: 'col-label' }, labelBadge(l.label)),
        el('td', { className: 'col-los' }, l.los ?? '—'),
        el('td', { className: 'num' }, fmtInt(l.flow)),
        el('td', { className: 'num' }, fmt1(l.speed)),
        el('td', { className: 'num' }, fmt1(l.occupancy)),
        el('td', { className: 'num' }, fmt1(l.density)),
        el('td', { className: 'num' }, l.confidence == null ? '—' : l.confidence.toFixed(2)),
        el('td', { className: 'col-flags' }, l.flags.length ? l.flags.join(', ') : '—'),
        el('td', { className: 'col-age' }, el('time', { dateTime: l.observedAt, title: fmtDateTime(l.observedAt) }, fmtAge(age)),
          stale ? el('span', { className: 'tag tag-stale' }, 'stale') : null),
      );
      return tr;
    });
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colSpan: 10 }, 'No classified reading yet.')));
    this.lanesBody.replaceChildren(...rows);
  }

  setLatest(event) {
    this.latest = event ?? null;
    if (!event) {
      this.reasonsFor.textContent = 'No reading yet.';
      this.reasons.replaceChildren();
      return;
    }
    const c = event.classification;
    const head = `${laneName(event.lane)}, observed ${fmtDateTime(event.observed_at)}`;
    if (!c) {
      this.reasonsFor.textContent = `${head}: waiting for its classification (${event.status}).`;
      this.reasons.replaceChildren();
      return;
    }
    this.reasonsFor.replaceChildren(
      `${head}: `,
      labelBadge(c.label),
      ` LOS ${c.level_of_service ?? '—'}, confidence ${c.confidence?.toFixed(2) ?? '—'}`,
      c.flags?.length ? `, flags ${c.flags.join(', ')}` : '',
    );
    this.reasons.replaceChildren(...(c.reasons ?? []).map((r) => el('li', {}, r)));
  }

  /** A classified event from the stream (the network already holds it). */
  onClassified(event) {
    if (event.sensor_id !== this.id) return;
    this.renderLanes();
    if (!this.latest || Date.parse(event.observed_at) >= Date.parse(this.latest.observed_at)) this.setLatest(event);
    this.scheduleSeries();
  }

  /** At most one series request every 2 s, the last one always made. */
  scheduleSeries() {
    if (this.seriesTimer) return;
    const wait = Math.max(0, this.lastSeriesAt + SERIES_MIN_INTERVAL_MS - Date.now());
    this.seriesTimer = setTimeout(() => {
      this.seriesTimer = null;
      this.loadSeries();
    }, wait);
  }

  async loadSeries() {
    if (!this.id) return;
    if (this.seriesInFlight) {
      this.seriesAgain = true;
      return;
    }
    const id = this.id;
    const key = this.windowKey;
    const win = WINDOWS[key];
    this.seriesInFlight = true;
    this.lastSeriesAt = Date.now();
    try {
      const from = new Date(serverNow() - win.hours * 3600_000).toISOString();
      const series = await getJson(url(`${sensorPath(id)}/series`, { bucket: win.bucket, from }), { signal: this.controller?.signal });
      if (this.id !== id || this.windowKey !== key) return; // the next request is due
      this.zone = validZone(series.time_zone) ?? this.zone;
      this.draw(series.buckets ?? []);
    } catch (error) {
      if (error?.name !== 'AbortError' && this.id === id) this.onError(error, `Series of ${id}`);
    } finally {
      this.seriesInFlight = false;
      if (this.seriesAgain && this.id) {
        this.seriesAgain = false;
        this.scheduleSeries();
      }
    }
  }

  draw(buckets) {
    const rows = buckets.map((b) => {
      const start = Date.parse(b.start) / 1000;
      const end = Date.parse(b.end) / 1000;
      return { start, end, label: b.classified > 0 ? b.label : null, readings: b.readings, b };
    });
    this.buckets = rows;
    const data = [
      rows.map((r) => (r.start + r.end) / 2),
      rows.map((r) => r.b.flow_veh_h_lane ?? null),
      rows.map((r) => r.b.mean_speed_kmh ?? null),
      rows.map((r) => r.b.mean_occupancy_pct ?? null),
    ];
    const points = rows.filter((r) => r.readings > 0).length;
    this.points = points;
    this.chartNote.textContent = points
      ? `${points} of ${rows.length} buckets (${WINDOWS[this.windowKey].bucket}) with readings${this.zone ? `; times in ${this.zone}` : ''}.`
      : `No readings in the last ${WINDOWS[this.windowKey].name}.`;
    if (this.plot && this.plot.zone === this.zone) {
      this.plot.setData(data);
    } else {
      this.plot?.destroy();
      this.plot = new uPlot(this.options(), data, this.chart);
      this.plot.zone = this.zone;
    }
  }

  options() {
    const zone = this.zone;
    const axis = { stroke: COLOURS.axis, grid: { stroke: COLOURS.grid, width: 1 }, ticks: { stroke: COLOURS.grid, width: 1 }, font: '14px system-ui, sans-serif', labelFont: '14px system-ui, sans-serif' };
    const value = (digits) => (u, v) => (v == null ? '—' : digits ? fmt1(v) : fmtInt(v));
    const opts = { hourCycle: 'h23', ...(zone ? { timeZone: zone } : {}) };
    const hm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', ...opts });
    const day = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', ...opts });
    const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', ...opts });
    // 24-hour clock in the sensor's zone; the day under the first tick and under each midnight.
    const timeTicks = (u, splits) => {
      let lastDay = null;
      return splits.map((ts) => {
        const d = new Date(ts * 1000);
        const dayText = day.format(d);
        const text = hm.format(d);
        const label = dayText !== lastDay ? `${text}\n${dayText}` : text;
        lastDay = dayText;
        return label;
      });
    };
    return {
      width: this.width(),
      height: CHART_HEIGHT,
      cursor: { drag: { x: true, y: false } },
      scales: {
        x: { time: true, range: () => this.xRange() },
        flow: { range: (u, min, max) => [0, Math.max(100, (max ?? 0) * 1.1)] },
        right: { range: (u, min, max) => [0, Math.max(100, (max ?? 0) * 1.1)] },
      },
      series: [
        { label: 'Time', value: (u, ts) => (ts == null ? '—' : full.format(new Date(ts * 1000))) },
        { label: 'Flow veh/h/ln', scale: 'flow', stroke: COLOURS.flow, width: 2.5, value: value(0), spanGaps: false },
        { label: 'Speed km/h', scale: 'right', stroke: COLOURS.speed, width: 2.5, dash: [8, 4], value: value(1), spanGaps: false },
        { label: 'Occupancy %', scale: 'right', stroke: COLOURS.occupancy, width: 2, dash: [2, 4], value: value(1), spanGaps: false },
      ],
      axes: [
        { ...axis, values: timeTicks, size: 56 },
        { ...axis, scale: 'flow', label: 'veh/h/ln', size: 70 },
        { ...axis, scale: 'right', side: 1, label: 'km/h · %', grid: { show: false }, size: 60 },
      ],
      hooks: {
        drawClear: [(u) => this.drawBands(u)],
        draw: [() => {
          this.chart.dataset.points = String(this.points ?? 0);
          this.chart.dataset.loaded = 'true';
        }],
      },
    };
  }

  xRange() {
    const rows = this.buckets;
    if (!rows.length) {
      const now = serverNow() / 1000;
      return [now - WINDOWS[this.windowKey].hours * 3600, now];
    }
    return [rows[0].start, rows[rows.length - 1].end];
  }

  // Each bucket's label: a faint tint over the plot's height and a patterned strip at its foot.
  drawBands(u) {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const strip = Math.round(14 * (window.devicePixelRatio || 1));
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const r of this.buckets) {
      if (!r.label) continue;
      const x0 = u.valToPos(r.start, 'x', true);
      const x1 = u.valToPos(r.end, 'x', true);
      ctx.globalAlpha = 0.13;
      ctx.fillStyle = labelInfo(r.label).colour;
      ctx.fillRect(x0, top, x1 - x0, height - strip);
      ctx.globalAlpha = 1;
      ctx.fillStyle = canvasPattern(ctx, r.label);
      ctx.fillRect(x0, top + height - strip, x1 - x0, strip);
    }
    ctx.restore();
  }

  width() {
    return Math.max(320, Math.floor(this.chart.clientWidth || 800));
  }

  resize() {
    if (!this.plot || !this.id) return;
    const width = this.width();
    if (Math.abs(width - this.plot.width) > 1) this.plot.setSize({ width, height: CHART_HEIGHT });
  }

  /** Ages in the lanes table move with the clock. */
  tick() {
    if (this.id) this.renderLanes();
  }
}
