// The status strip: readiness and the classifier link (/v1/ready), queue depth and
// classification lag (/metrics), polled every 5 s; and the stream's connection state.

import { ApiError, apiFetch } from './api.js';
import { fmtInt, fmtSeconds } from './format.js';

const POLL_MS = 5000;

/** Prometheus text exposition → [{name, labels, value}]. */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

export class StatusStrip {
  constructor(root, { onError }) {
    this.fields = {};
    for (const node of root.querySelectorAll('[data-field]')) this.fields[node.dataset.field] = node;
    this.onError = onError;
    this.lag = null; // {sum, count} at the previous poll
    this.timer = null;
  }

  set(field, text, state, title) {
    const node = this.fields[field];
    if (!node) return;
    if (node.textContent !== text) node.textContent = text;
    if (state) node.dataset.state = state;
    else delete node.dataset.state;
    if (title) node.title = title;
    else node.removeAttribute('title');
  }

  setStream(state) {
    const states = { live: 'ok', connecting: 'warn', reconnecting: 'warn' };
    this.set('stream', state, states[state] ?? 'bad');
  }

  start() {
    const loop = async () => {
      await Promise.allSettled([this.pollReady(), this.pollMetrics()]);
      this.timer = setTimeout(loop, POLL_MS);
    };
    loop();
  }

  async pollReady() {
    try {
      const ready = await (await apiFetch('/v1/ready')).json();
      const c = ready.classifier ?? {};
      const states = { connected: 'ok', idle: 'warn', paused: 'warn', down: 'bad' };
      const title = [
        c.transport && `transport ${c.transport}`,
        c.workers != null && `${c.workers} workers`,
        c.last_error && `last error: ${c.last_error}`,
        ready.redis && `redis ${ready.redis}`,
        ready.database && `database ${ready.database}`,
      ].filter(Boolean).join(' · ');
      this.set('classifier', c.state ?? 'unknown', states[c.state] ?? 'warn', title);
    } catch (error) {
      const notReady = error instanceof ApiError && error.status === 503;
      this.set('classifier', notReady ? 'not ready' : 'unreachable', 'bad', error.detail || error.message);
      if (!notReady) this.onError(error, 'Readiness');
    }
  }

  async pollMetrics() {
    let samples;
    try {
      samples = parsePrometheus(await (await apiFetch('/metrics', { accept: 'text/plain' })).text());
    } catch (error) {
      this.set('queue', '—', 'bad');
      this.set('lag', '—', 'bad');
      this.onError(error, 'Metrics');
      return;
    }
    const queue = {};
    let sum = null;
    let count = null;
    for (const s of samples) {
      if (s.name === 'smart_traffic_queue_events') queue[s.labels.status] = s.value;
      else if (s.name === 'smart_traffic_classification_lag_seconds_sum') sum = (sum ?? 0) + s.value;
      else if (s.name === 'smart_traffic_classification_lag_seconds_count') count = (count ?? 0) + s.value;
    }
    const pending = queue.pending ?? 0;
    const processing = queue.processing ?? 0;
    const failed = queue.failed ?? 0;
    const backlog = pending + processing;
    this.set(
      'queue',
      `${fmtInt(pending)} pending · ${fmtInt(processing)} processing${failed ? ` · ${fmtInt(failed)} failed` : ''}`,
      failed > 0 || backlog > 10_000 ? 'bad' : backlog > 1000 ? 'warn' : 'ok',
      `classified ${fmtInt(queue.classified ?? 0)}`,
    );
    if (sum == null || count == null) {
      this.set('lag', 'n/a', 'warn', 'the lag histogram is not exported');
      return;
    }
    const before = this.lag;
    this.lag = { sum, count };
    let mean = null;
    let window = 'since start';
    if (before && count >= before.count) {
      const dc = count - before.count;
      if (dc > 0) mean = (sum - before.sum) / dc;
      window = `over the last ${POLL_MS / 1000} s (${fmtInt(dc)} classified)`;
    } else if (count > 0) {
      mean = sum / count;
    }
    if (mean == null) {
      this.set('lag', 'idle', 'ok', 'nothing classified since the last poll');
    } else {
      this.set('lag', fmtSeconds(mean), mean > 10 ? 'bad' : mean > 2 ? 'warn' : 'ok', `mean classification lag ${window}`);
    }
  }
}
