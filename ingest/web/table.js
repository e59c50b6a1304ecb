// The sensor table: one row per sensor, kept by id and updated in place. Sorting by a column
// that live updates change is redone lazily, at most once a second.

import { LABEL_ORDER, labelRank, labelText, losRank } from './labels.js';
import { ageOf, serverNow } from './model.js';
import { el, fmt1, fmtAge, fmtInt, sensorHref } from './format.js';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

// How each sortable column orders sensors; null values go last either way.
const SORT_KEYS = {
  id: (s) => s.id,
  road: (s) => s.road,
  label: (s) => (s.summary.label == null ? null : labelRank(s.summary.label, s.summary.los)),
  los: (s) => (s.summary.los == null ? null : losRank(s.summary.los)),
  flow: (s) => s.summary.flow,
  speed: (s) => s.summary.speed,
  occupancy: (s) => s.summary.occupancy,
  flags: (s) => (s.summary.flags.length ? s.summary.flags.length : null),
  age: (s) => (s.summary.oldestMs == null ? null : -s.summary.oldestMs),
};
const LIVE_KEYS = new Set(['label', 'los', 'flow', 'speed', 'occupancy', 'flags', 'age']);

function compare(a, b) {
  if (a == null) return b == null ? 0 : 1;
  if (b == null) return -1;
  if (typeof a === 'string') return collator.compare(a, b);
  return a - b;
}

export class SensorTable {
  constructor({ table, form, count }) {
    this.table = table;
    this.tbody = table.tBodies[0];
    this.form = form;
    this.count = count;
    this.rows = new Map();
    this.roads = new Set();
    this.visible = 0;
    this.sort = { key: 'id', dir: 1 };
    this.sortTimer = null;
    this.filter = this.readFilter();
    this.initHeaders();
    this.initFilters();
  }

  initHeaders() {
    for (const button of this.table.tHead.querySelectorAll('button[data-sort]')) {
      button.addEventListener('click', () => {
        const key = button.dataset.sort;
        this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : key === 'label' || key === 'flags' ? -1 : 1 };
        this.renderSortState();
        this.resort();
      });
    }
    this.renderSortState();
  }

  renderSortState() {
    for (const th of this.table.tHead.querySelectorAll('th')) {
      const key = th.querySelector('button[data-sort]')?.dataset.sort;
      if (!key) continue;
      th.setAttribute('aria-sort', key === this.sort.key ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
  }

  initFilters() {
    const labelSelect = this.form.elements.label;
    for (const key of LABEL_ORDER) labelSelect.append(el('option', { value: key }, labelText(key)));
    this.form.addEventListener('input', () => this.applyFilter());
    this.form.addEventListener('change', () => this.applyFilter());
    this.form.addEventListener('submit', (event) => event.preventDefault());
    this.form.addEventListener('reset', () => setTimeout(() => this.applyFilter()));
  }

  readFilter() {
    const f = this.form.elements;
    return {
      text: f.q.value.trim().toLowerCase(),
      road: f.road.value,
      label: f.label.value,
      los: f.los.value,
      flagged: f.flagged.checked,
      stale: f.stale.value,
    };
  }

  applyFilter() {
    this.filter = this.readFilter();
    const now = serverNow();
    for (const row of this.rows.values()) this.setVisible(row, this.matches(row.sensor, ageOf(row.sensor.summary, now).stale));
    this.renderCount();
  }

  matches(sensor, stale) {
    const f = this.filter;
    const s = sensor.summary;
    if (f.text && !sensor.id.toLowerCase().includes(f.text)) return false;
    if (f.road && sensor.road !== f.road) return false;
    if (f.label && (s.label ?? '') !== f.label) return false;
    if (f.los && s.los !== f.los) return false;
    if (f.flagged && s.flags.length === 0) return false;
    if (f.stale === 'stale' && !stale) return false;
    if (f.stale === 'fresh' && stale) return false;
    return true;
  }

  setVisible(row, visible) {
    if (row.visible === visible) return;
    row.visible = visible;
    row.tr.hidden = !visible;
    this.visible += visible ? 1 : -1;
    this.countDirty = true;
  }

  renderCount() {
    this.countDirty = false;
    const total = this.rows.size;
    this.count.textContent = total === 0
      ? 'No sensors yet.'
      : this.visible === total ? `${total} sensors` : `${this.visible} of ${total} sensors shown`;
  }

  noteRoad(road) {
    if (!road || this.roads.has(road)) return;
    this.roads.add(road);
    const select = this.form.elements.road;
    const options = [...this.roads].sort(collator.compare);
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '' }, 'all roads'), ...options.map((r) => el('option', { value: r }, r)));
    select.value = chosen;
  }

  /** Adds rows for new sensors in one go (the initial load), sorted. */
  addMany(sensors) {
    const fragment = document.createDocumentFragment();
    for (const sensor of sensors) {
      if (this.rows.has(sensor.id)) continue;
      fragment.append(this.createRow(sensor).tr);
    }
    this.tbody.append(fragment);
    this.resort();
    this.applyFilter();
  }

  createRow(sensor) {
    const tr = el('tr', { role: 'row', dataset: { sensor: sensor.id } });
    const link = el('a', { href: sensorHref(sensor.id) }, sensor.id);
    const sw = el('span', { className: 'swatch', 'aria-hidden': 'true' });
    const labelTextNode = el('span');
    const staleTag = el('span', { className: 'tag tag-stale' }, 'stale');
    const ageText = el('span');
    const cells = {
      road: el('td', { role: 'cell' }),
      label: el('td', { role: 'cell', className: 'col-label' }, sw, labelTextNode),
      los: el('td', { role: 'cell', className: 'col-los' }),
      flow: el('td', { role: 'cell', className: 'num' }),
      speed: el('td', { role: 'cell', className: 'num' }),
      occupancy: el('td', { role: 'cell', className: 'num' }),
      flags: el('td', { role: 'cell', className: 'col-flags' }),
      age: el('td', { role: 'cell', className: 'col-age' }, ageText, staleTag),
    };
    tr.append(el('th', { role: 'rowheader', scope: 'row' }, link), ...Object.values(cells));
    const row = { sensor, tr, cells, sw, labelTextNode, staleTag, ageText, shown: {}, visible: true, stale: null };
    this.rows.set(sensor.id, row);
    this.visible++;
    this.fill(row);
    return row;
  }

  /** Writes a row's cells, touching only those whose text changed. */
  fill(row) {
    const s = row.sensor.summary;
    const shown = row.shown;
    const set = (key, node, text) => {
      if (shown[key] !== text) {
        shown[key] = text;
        node.textContent = text;
      }
    };
    const label = s.label ?? 'unknown';
    if (shown.labelKey !== (s.label ?? null)) {
      shown.labelKey = s.label ?? null;
      row.tr.dataset.label = label;
      row.sw.dataset.label = label;
    }
    set('road', row.cells.road, row.sensor.road ?? '—');
    set('label', row.labelTextNode, s.label ? labelText(s.label) : 'no reading');
    set('los', row.cells.los, s.los ?? '—');
    set('flow', row.cells.flow, fmtInt(s.flow));
    set('speed', row.cells.speed, fmt1(s.speed));
    set('occupancy', row.cells.occupancy, fmt1(s.occupancy));
    set('flags', row.cells.flags, s.flags.length ? s.flags.join(', ') : '');
    this.fillAge(row, serverNow());
  }

  fillAge(row, now) {
    const { age, stale } = ageOf(row.sensor.summary, now);
    const text = fmtAge(age);
    if (row.shown.age !== text) {
      row.shown.age = text;
      row.ageText.textContent = text;
    }
    if (row.stale !== stale) {
      row.stale = stale;
      row.tr.classList.toggle('stale', stale);
      row.staleTag.hidden = !stale;
      if (stale) row.tr.dataset.stale = 'true';
      else delete row.tr.dataset.stale;
    }
    return stale;
  }

  /** A sensor's state changed: its row, in place (added when new). O(1) but for a later re-sort. */
  update(sensor) {
    let row = this.rows.get(sensor.id);
    if (!row) {
      row = this.createRow(sensor);
      this.tbody.append(row.tr);
      this.scheduleResort();
    } else {
      this.fill(row);
      if (LIVE_KEYS.has(this.sort.key)) this.scheduleResort();
    }
    this.noteRoad(sensor.road);
    this.setVisible(row, this.matches(sensor, row.stale));
    if (this.countDirty) this.renderCount();
  }

  /** Ages move with the clock; called every few seconds. */
  tick() {
    const now = serverNow();
    for (const row of this.rows.values()) {
      const before = row.stale;
      const stale = this.fillAge(row, now);
      if (before !== stale && this.filter.stale) this.setVisible(row, this.matches(row.sensor, stale));
    }
    if (this.countDirty) this.renderCount();
    if (this.sort.key === 'age') this.scheduleResort();
  }

  scheduleResort() {
    if (this.sortTimer) return;
    this.sortTimer = setTimeout(() => {
      this.sortTimer = null;
      this.resort();
    }, 1000);
  }

  resort() {
    const key = SORT_KEYS[this.sort.key] ?? SORT_KEYS.id;
    const dir = this.sort.dir;
    const rows = [...this.rows.values()].map((row) => ({ row, k: key(row.sensor) }));
    rows.sort((a, b) => {
      if (a.k == null || b.k == null) return compare(a.k, b.k) || collator.compare(a.row.sensor.id, b.row.sensor.id);
      return dir * compare(a.k, b.k) || collator.compare(a.row.sensor.id, b.row.sensor.id);
    });
    const focused = this.tbody.contains(document.activeElement) ? document.activeElement : null;
    let node = this.tbody.firstElementChild;
    for (const { row } of rows) {
      if (row.tr === node) {
        node = node.nextElementSibling;
        continue;
      }
      this.tbody.insertBefore(row.tr, node);
    }
    if (focused && document.activeElement !== focused) focused.focus({ preventScroll: true });
  }
}
