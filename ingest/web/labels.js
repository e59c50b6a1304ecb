// Labels and how they are told apart: colour, marker shape, fill pattern and a short text,
// so no label depends on colour alone.
//
// Contrast ratios (WCAG 2.x, relative luminance):
//   label text #0d1117 on its fill: free_flow #56d364 9.82, moderate #e3b341 9.72,
//     heavy #f0883e 7.48, congested #f85149 5.65, unknown #8b949e 6.15 (all ≥ 4.5)
//   fills on the page background #0d1117: the same ratios (non-text, ≥ 3 required)
//   marker outline #0d1117 on light map tiles (#f2efe9): 16.49
//   text #e6edf3 on background #0d1117 16.02, on panels #161b22 14.64
//   muted text #9da7b3 on #0d1117 7.76, on #161b22 7.09, on table stripes #1f2630 6.25
//   text #e6edf3 on table header/stripes #1f2630 12.90
//   links #79c0ff on #161b22 8.89, on #1f2630 7.83, on #0d1117 9.73; focus ring #ffd33d on #161b22 12.06
//   stale tag #e3b341 on #161b22 8.89, on #1f2630 7.83; status glyphs ok/warn/bad on #161b22 8.98/8.89/5.16
//   error text #ffa198 on #161b22 8.90; banner text #e6edf3 on #5a1e1e 10.84

export const INK = '#0d1117';

/** Severity as the server ranks the worst lane: unknown ties with free_flow. */
export const LABELS = {
  free_flow: { name: 'free flow', short: 'FF', colour: '#56d364', shape: 'circle', pattern: 'solid', severity: 0 },
  moderate: { name: 'moderate', short: 'MD', colour: '#e3b341', shape: 'square', pattern: 'stripes', severity: 1 },
  heavy: { name: 'heavy', short: 'HV', colour: '#f0883e', shape: 'triangle', pattern: 'dots', severity: 2 },
  congested: { name: 'congested', short: 'CG', colour: '#f85149', shape: 'octagon', pattern: 'crosshatch', severity: 3 },
  unknown: { name: 'unknown', short: '?', colour: '#8b949e', shape: 'diamond', pattern: 'dashes', severity: 0 },
};

/** Display order, least to most severe. */
export const LABEL_ORDER = ['free_flow', 'moderate', 'heavy', 'congested', 'unknown'];

const LOS_RANK = { A: 1, B: 2, C: 3, D: 4, E: 5, F: 6 };

export const labelInfo = (label) => LABELS[label] ?? LABELS.unknown;
export const losRank = (los) => LOS_RANK[los] ?? 0;

/** Sort key of a label for "worst first" ordering. */
export const labelRank = (label, los) => (label == null ? -1 : labelInfo(label).severity * 10 + losRank(los));

/**
 * The worst of a sensor's lanes ({label, los}), as the server picks it: highest (severity, LOS), the later
 * lane on a tie.
 */
export function worstLane(lanes) {
  let worst = null;
  let best = -Infinity;
  for (const lane of lanes) {
    const rank = labelInfo(lane.label).severity * 10 + losRank(lane.los);
    if (rank >= best) {
      best = rank;
      worst = lane;
    }
  }
  return worst;
}

// Marker outlines in a 32×32 box; the text sits at (16, textY).
const SHAPES = {
  circle: { svg: '<circle cx="16" cy="16" r="13"/>', textY: 20.5 },
  square: { svg: '<rect x="4" y="4" width="24" height="24" rx="2"/>', textY: 20.5 },
  triangle: { svg: '<path d="M16 2 L30.5 29 L1.5 29 Z"/>', textY: 25 },
  octagon: { svg: '<path d="M10.6 3 H21.4 L29 10.6 V21.4 L21.4 29 H10.6 L3 21.4 V10.6 Z"/>', textY: 20.5 },
  diamond: { svg: '<path d="M16 1.5 L30.5 16 L16 30.5 L1.5 16 Z"/>', textY: 20.5 },
};

/** The marker's inner SVG for a label; its root carries the label so CSS can dash unknown. */
export function markerSvg(label) {
  const info = labelInfo(label);
  const shape = SHAPES[info.shape];
  const size = info.short.length > 1 ? 10.5 : 14;
  return `<svg viewBox="0 0 32 32" width="32" height="32" aria-hidden="true" focusable="false">`
    + `<g class="shape" fill="${info.colour}" stroke="${INK}" stroke-width="2"${info.pattern === 'dashes' ? ' stroke-dasharray="3 2"' : ''}>${shape.svg}</g>`
    + `<text x="16" y="${shape.textY}" text-anchor="middle" font-size="${size}" font-weight="700" fill="${INK}">${info.short}</text></svg>`;
}

// CSS backgrounds drawing each pattern over the colour (swatches, legend).
function cssPattern(info) {
  const ink = 'rgba(13,17,23,.55)';
  switch (info.pattern) {
    case 'stripes':
      return `repeating-linear-gradient(45deg, ${ink} 0 2px, transparent 2px 6px), ${info.colour}`;
    case 'dots':
      return `radial-gradient(${ink} 1.4px, transparent 1.6px) 0 0 / 5px 5px, ${info.colour}`;
    case 'crosshatch':
      return `repeating-linear-gradient(45deg, ${ink} 0 1.5px, transparent 1.5px 5px), repeating-linear-gradient(-45deg, ${ink} 0 1.5px, transparent 1.5px 5px), ${info.colour}`;
    case 'dashes':
      return `repeating-linear-gradient(90deg, ${ink} 0 3px, transparent 3px 6px) 0 50% / 100% 2px no-repeat, ${info.colour}`;
    default:
      return info.colour;
  }
}

/** Installs `.swatch[data-label=…]` rules made from the table above. */
export function installLabelStyles(doc = document) {
  const rules = LABEL_ORDER.map((key) => `.swatch[data-label="${key}"]{background:${cssPattern(LABELS[key])}}`);
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(rules.join('\n'));
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  } catch {
    const style = doc.createElement('style');
    style.textContent = rules.join('\n');
    doc.head.append(style);
  }
}

/** A canvas pattern (colour plus texture) for a label, cached per context. */
const canvasPatterns = new WeakMap();
export function canvasPattern(ctx, label, alpha = 1) {
  let cache = canvasPatterns.get(ctx);
  if (!cache) canvasPatterns.set(ctx, (cache = new Map()));
  const key = `${label}:${alpha}`;
  if (cache.has(key)) return cache.get(key);
  const info = labelInfo(label);
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const t = tile.getContext('2d');
  t.globalAlpha = alpha;
  t.fillStyle = info.colour;
  t.fillRect(0, 0, 8, 8);
  t.globalAlpha = alpha * 0.55;
  t.strokeStyle = INK;
  t.fillStyle = INK;
  t.lineWidth = 1.5;
  t.beginPath();
  switch (info.pattern) {
    case 'stripes':
      t.moveTo(0, 8); t.lineTo(8, 0); t.moveTo(-2, 2); t.lineTo(2, -2); t.moveTo(6, 10); t.lineTo(10, 6);
      t.stroke();
      break;
    case 'dots':
      t.arc(4, 4, 1.6, 0, Math.PI * 2);
      t.fill();
      break;
    case 'crosshatch':
      t.moveTo(0, 8); t.lineTo(8, 0); t.moveTo(0, 0); t.lineTo(8, 8);
      t.stroke();
      break;
    case 'dashes':
      t.fillRect(0, 3, 4, 2);
      break;
    default:
      break;
  }
  const pattern = ctx.createPattern(tile, 'repeat');
  cache.set(key, pattern);
  return pattern;
}

/** A swatch element: colour and pattern, hidden from assistive tech (the text says it). */
export function swatch(label) {
  const el = document.createElement('span');
  el.className = 'swatch';
  el.dataset.label = label ?? 'unknown';
  el.setAttribute('aria-hidden', 'true');
  return el;
}

/** A label badge: swatch plus the label's short code and name. */
export function labelBadge(label) {
  const el = document.createElement('span');
  el.className = 'label-badge';
  el.append(swatch(label), document.createTextNode(labelText(label)));
  return el;
}

export const labelText = (label) => (label == null ? '—' : `${labelInfo(label).short} ${labelInfo(label).name}`);
