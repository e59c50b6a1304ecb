// Numbers, times and ages as the page writes them.

const num0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const num1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium', hourCycle: 'h23' });

export const fmtInt = (v) => (v == null || !Number.isFinite(v) ? '—' : num0.format(v));
export const fmt1 = (v) => (v == null || !Number.isFinite(v) ? '—' : num1.format(v));
export const fmtTime = (iso) => {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? time.format(t) : '—';
};
export const fmtDateTime = (iso) => {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? dateTime.format(t) : '—';
};

export function fmtAge(seconds) {
  if (seconds == null) return '—';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

export function fmtSeconds(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds / 60)} min`;
}

export const laneName = (lane) => (lane == null ? 'all lanes' : `lane ${lane}`);

export const sensorHref = (id) => `#/sensors/${encodeURIComponent(id)}`;

/** A small element builder: el('td', {className: 'x'}, 'text', child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && !k.startsWith('aria')) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}
