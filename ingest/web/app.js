// The dashboard: initial load, one live stream for the page, DOM work batched per animation
// frame, and routing by URL hash (#/ the overview, #/sensors/<id> a sensor).

import { EventStream, getJson, sensorPath, url } from './api.js';
import { showError } from './banner.js';
import { el, sensorHref } from './format.js';
import { LABEL_ORDER, installLabelStyles, labelText, markerSvg, swatch } from './labels.js';
import { SensorMap } from './map.js';
import { Network, laneFromEvent, laneFromState, setLane, setServerTime } from './model.js';
import { SensorPage } from './sensor.js';
import { StatusStrip } from './status.js';
import { SensorTable } from './table.js';
import { Timeline } from './timeline.js';

const FRAME_BUDGET_MS = 8;
// Updates are applied in an animation frame, at most this often: each frame that changes the
// page costs layout and compositing over a thousand markers and rows, whatever it changes.
const MIN_FLUSH_INTERVAL_MS = 250;
const MEASURE = 'dashboard-update';
const MEASURE_START = 'dashboard-update:start';

const $ = (selector) => document.querySelector(selector);
const report = (error, context) => showError(error, context);

// Nothing may end up uncaught: what slips through goes to the banner.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  if (event.reason?.name !== 'AbortError') report(event.reason, 'Unexpected');
});

function metaContent(name) {
  const value = document.querySelector(`meta[name="${name}"]`)?.content?.trim() ?? '';
  return value.startsWith('{{') ? '' : value; // the page served without substitution
}

installLabelStyles();
for (const key of LABEL_ORDER) {
  const li = el('li', { dataset: { label: key } });
  li.innerHTML = markerSvg(key); // built from the constant label table
  li.append(labelText(key));
  $('#map-legend').append(li);
}

const network = new Network();
const overview = $('#overview');
const status = new StatusStrip($('#status'), { onError: report });
const table = new SensorTable({ table: $('#sensor-table'), form: $('#filters'), count: $('#table-count') });
const timeline = new Timeline($('#timeline'));
const mapNote = $('#map-note');
const map = new SensorMap($('#map'), {
  tiles: metaContent('tiles'),
  attribution: metaContent('tiles-attribution'),
  onPlain: () => {
    mapNote.hidden = false;
  },
});

/** Sensors without a location, beside the map. */
class UnlocatedList {
  constructor(list, count) {
    this.list = list;
    this.count = count;
    this.items = new Map();
  }

  upsert(sensor) {
    let item = this.items.get(sensor.id);
    if (sensor.location) {
      if (item) {
        item.li.remove();
        this.items.delete(sensor.id);
        this.renderCount();
      }
      return;
    }
    const label = sensor.summary.label ?? 'unknown';
    if (!item) {
      const sw = swatch(label);
      const text = el('span', { className: 'unlocated-label' });
      const li = el('li', { dataset: { sensor: sensor.id } }, el('a', { href: sensorHref(sensor.id) }, sensor.id), ' ', sw, text);
      item = { li, sw, text, label: undefined };
      this.items.set(sensor.id, item);
      this.list.append(li);
      this.renderCount();
    }
    if (item.label !== sensor.summary.label) {
      item.label = sensor.summary.label;
      item.li.dataset.label = label;
      item.sw.dataset.label = label;
      item.text.textContent = sensor.summary.label ? labelText(sensor.summary.label) : 'no reading';
    }
  }

  renderCount() {
    this.count.textContent = String(this.items.size);
    this.list.closest('section').hidden = this.items.size === 0;
  }
}
const unlocated = new UnlocatedList($('#unlocated-list'), $('#unlocated-count'));

const page = new SensorPage($('#sensor-page'), network, {
  onError: report,
  onSensor: (sensor) => queueSensor(sensor.id),
});

// ---- Batched DOM updates ----

let loaded = false;
const dirty = new Set();
const pendingTransitions = [];
let frame = 0;
let waiting = 0;
let lastFlush = 0;
let measured = 0;

function schedule() {
  if (!loaded || frame || waiting) return;
  const wait = lastFlush + MIN_FLUSH_INTERVAL_MS - performance.now();
  if (wait <= 0) {
    frame = requestAnimationFrame(flush);
  } else {
    waiting = setTimeout(() => {
      waiting = 0;
      frame = requestAnimationFrame(flush);
    }, wait);
  }
}

function queueSensor(id) {
  dirty.add(id);
  schedule();
}

function applySensor(sensor) {
  map.upsert(sensor);
  table.update(sensor);
  unlocated.upsert(sensor);
}

function flush() {
  frame = 0;
  const start = performance.now();
  lastFlush = start;
  for (const id of dirty) {
    dirty.delete(id);
    const sensor = network.sensors.get(id);
    if (!sensor) continue;
    performance.mark(MEASURE_START);
    applySensor(sensor);
    performance.measure(MEASURE, MEASURE_START);
    measured++;
    // A burst (a reset, a reconnect's replay) is spread over frames.
    if (performance.now() - start > FRAME_BUDGET_MS) break;
  }
  performance.clearMarks(MEASURE_START);
  if (pendingTransitions.length) {
    for (const t of pendingTransitions.splice(0)) timeline.add(t);
  }
  // The measures are for the tests and profiling; do not let them grow without bound.
  if (measured > 20_000) {
    performance.clearMeasures(MEASURE);
    measured = 0;
  }
  if (dirty.size) {
    // The rest of a burst follows in the next frame.
    frame = requestAnimationFrame(flush);
  }
}

// ---- The stream ----

const unknownSensors = new Set();

async function fetchNewSensor(id) {
  if (unknownSensors.has(id)) return;
  unknownSensors.add(id);
  try {
    const detail = await getJson(sensorPath(id));
    network.applyListing({ sensor_id: id, metadata: detail.metadata, lanes: detail.lanes });
    queueSensor(id);
  } catch (error) {
    report(error, `Sensor ${id}`);
  }
}

function onClassified(event) {
  const lane = laneFromEvent(event);
  if (!lane) return;
  const known = network.sensors.has(event.sensor_id);
  const sensor = network.get(event.sensor_id);
  if (setLane(sensor, lane)) {
    sensor.refresh();
    queueSensor(sensor.id);
  }
  if (!known && loaded) fetchNewSensor(sensor.id);
  if (page.active) page.onClassified(event);
}

async function reloadState() {
  try {
    const state = await getJson('/v1/state');
    applyState(state);
    for (const id of network.sensors.keys()) dirty.add(id);
    schedule();
  } catch (error) {
    report(error, 'State');
  }
}

function applyState(state) {
  setServerTime(state.at);
  for (const item of state.items ?? []) {
    const sensor = network.get(item.sensor_id);
    if (!sensor.meta && (item.road || item.location)) sensor.meta = { road: item.road ?? null, location: item.location ?? null };
    setLane(sensor, laneFromState(item));
  }
  for (const sensor of network.sensors.values()) sensor.refresh();
}

const stream = new EventStream('/v1/stream', {
  onStatus: (state) => status.setStream(state),
  onError: (error) => report(error, 'Live stream'),
  onEvent: (type, data) => {
    switch (type) {
      case 'classified':
        onClassified(data);
        break;
      case 'transition':
        pendingTransitions.push(data);
        if (pendingTransitions.length > 500) pendingTransitions.splice(0, pendingTransitions.length - 500);
        schedule();
        break;
      case 'reset':
        reloadState();
        break;
      default:
        break; // 'dropped' is handled by the stream itself: it resumes from the last id
    }
  },
});

// ---- Initial load ----

async function loadSensors() {
  const items = [];
  let after = null;
  for (;;) {
    const pageOfSensors = await getJson(url('/v1/sensors', { limit: 1000, after }));
    items.push(...(pageOfSensors.items ?? []));
    const next = pageOfSensors.next_after;
    if (!next || next === after) break;
    after = next;
  }
  return items;
}

async function loadTransitions() {
  try {
    const answer = await getJson(url('/v1/transitions', { order: 'desc', limit: 100 }));
    return answer.items ?? [];
  } catch (error) {
    report(error, 'Transitions');
    return [];
  }
}

async function initialLoad() {
  for (let attempt = 0; ; attempt++) {
    try {
      const [sensors, state, transitions] = await Promise.all([loadSensors(), getJson('/v1/state'), loadTransitions()]);
      for (const item of sensors) network.applyListing(item);
      applyState(state);
      const all = [...network.sensors.values()];
      table.addMany(all);
      for (const sensor of all) {
        map.upsert(sensor);
        unlocated.upsert(sensor);
        table.noteRoad(sensor.road);
      }
      map.loaded();
      timeline.load(transitions);
      dirty.clear();
      loaded = true;
      schedule();
      document.body.dataset.ready = 'true';
      return;
    } catch (error) {
      report(error, 'Loading the network');
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000 * 2 ** attempt, 30_000)));
    }
  }
}

// ---- Routing ----

let firstRoute = true;
function route() {
  // Skip links name an element of the page, not a view: focus it and stay.
  const anchor = /^#([A-Za-z][\w-]*)$/.exec(location.hash);
  const target = anchor && document.getElementById(anchor[1]);
  if (target && !firstRoute) {
    if (!target.hasAttribute('tabindex')) target.tabIndex = -1;
    target.focus();
    return;
  }
  const match = /^#\/sensors\/(.+)$/.exec(location.hash);
  const nav = document.querySelectorAll('nav a[data-route]');
  if (match) {
    let id = match[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      // keep it as written
    }
    overview.hidden = true;
    page.show(id);
    for (const a of nav) a.removeAttribute('aria-current');
    if (!firstRoute) $('#sensor-title').focus();
  } else {
    page.hide();
    overview.hidden = false;
    document.title = 'Smart traffic · live';
    for (const a of nav) {
      if (a.dataset.route === 'overview') a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    map.shown();
    if (!firstRoute) $('#overview-title').focus();
  }
  firstRoute = false;
}

window.addEventListener('hashchange', route);
route();
status.start();
stream.start();
initialLoad();
setInterval(() => {
  if (!loaded) return;
  table.tick();
  page.tick();
}, 5000);
