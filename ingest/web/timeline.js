// The incident timeline: label transitions, newest first, the live ones prepended.

import { labelBadge } from './labels.js';
import { el, fmtDateTime, fmtTime, laneName, sensorHref } from './format.js';

const keyOf = (t) => `${t.previous_event_id}>${t.event_id}`;

export class Timeline {
  constructor(list, { max = 200 } = {}) {
    this.list = list;
    this.max = max;
    this.items = new Map();
    this.empty = el('li', { className: 'timeline-empty' }, 'No label changes in the last hour.');
    this.list.append(this.empty);
  }

  /** The initial page, newest first. */
  load(transitions) {
    const fragment = document.createDocumentFragment();
    for (const t of transitions) {
      if (t.retracted || this.items.has(keyOf(t))) continue;
      fragment.append(this.item(t));
    }
    this.list.append(fragment);
    this.trim();
  }

  /** A `transition` from the stream. */
  add(t) {
    const key = keyOf(t);
    const existing = this.items.get(key);
    if (t.retracted) {
      if (existing) this.retract(existing);
      return;
    }
    if (existing) return;
    const li = this.item(t);
    this.list.prepend(li);
    this.trim();
  }

  retract(li) {
    li.dataset.retracted = 'true';
    li.classList.add('retracted');
    if (!li.querySelector('.tag-retracted')) li.append(el('span', { className: 'tag tag-retracted' }, 'retracted'));
  }

  item(t) {
    const li = el('li', {
      dataset: {
        sensor: t.sensor_id,
        lane: t.lane == null ? 'all' : String(t.lane),
        fromLabel: t.from_label,
        toLabel: t.to_label,
        eventId: String(t.event_id),
      },
    });
    const parts = [
      el('time', { dateTime: t.at, title: fmtDateTime(t.at) }, fmtTime(t.at)),
      el('a', { href: sensorHref(t.sensor_id), className: 'tl-sensor' }, t.sensor_id),
      el('span', { className: 'tl-lane' }, laneName(t.lane)),
      el('span', { className: 'tl-change' },
        labelBadge(t.from_label),
        el('span', { className: 'arrow', 'aria-label': 'to' }, '→'),
        labelBadge(t.to_label)),
    ];
    if (t.late) parts.push(el('span', { className: 'tag tag-late', title: 'made by a reading that arrived after later ones' }, 'late'));
    li.append(...parts);
    li.timelineKey = keyOf(t);
    this.items.set(li.timelineKey, li);
    this.empty.remove();
    return li;
  }

  trim() {
    while (this.items.size > this.max) {
      const last = this.list.lastElementChild;
      if (!last || last === this.empty) break;
      last.remove();
      this.items.delete(last.timelineKey);
    }
  }
}
