// The map: one focusable marker per located sensor, shaped, coloured and lettered by its worst
// lane's label, updated in place. Without tiles (none configured, or they fail) the markers
// stand on a plain background with a faint graticule.

/* global L */
import { labelInfo, labelText, markerSvg, swatch } from './labels.js';
import { el, fmtInt, sensorHref } from './format.js';

const STEPS = [30, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001];

function tooltipContent(sensor) {
  const s = sensor.summary;
  const box = el('div', { className: 'map-tip' });
  box.append(
    el('strong', {}, sensor.id),
    sensor.road ? el('span', {}, ` · ${sensor.road}`) : null,
    el('br'),
    swatch(s.label),
    ` ${labelText(s.label)}`,
    el('br'),
    `LOS ${s.los ?? '—'} · ${fmtInt(s.flow)} veh/h/ln`,
  );
  return box;
}

/**
 * The configured attribution as HTML with nothing in it but text and http(s) links. Parsed by
 * hand: an HTML parser would report any inline handler in it under the page's content policy.
 */
function attributionHtml(text) {
  const decode = (html) => {
    const area = document.createElement('textarea');
    area.innerHTML = html.replace(/<[^>]*>/g, ''); // a textarea's content is text, never elements
    return area.value;
  };
  const out = document.createElement('span');
  const link = /<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>(.*?)<\/a\s*>/gis;
  let last = 0;
  for (const m of text.matchAll(link)) {
    out.append(decode(text.slice(last, m.index)));
    const href = decode(m[1] ?? m[2] ?? '');
    const label = decode(m[3]);
    out.append(/^https?:\/\//i.test(href) ? el('a', { href, rel: 'noopener', target: '_blank' }, label) : label);
    last = m.index + m[0].length;
  }
  out.append(decode(text.slice(last)));
  return out.innerHTML;
}

// The marker's visible code comes first in its name, so that speech input can say what it sees.
const ariaLabel = (sensor, label) =>
  `${labelInfo(label).short} ${sensor.id}: ${sensor.summary.label ? labelInfo(sensor.summary.label).name : 'no reading'}, LOS ${sensor.summary.los ?? 'none'}`;

export class SensorMap {
  constructor(container, { tiles, attribution, onPlain }) {
    this.container = container;
    this.markers = new Map();
    this.fitted = false;
    this.dataLoaded = false;
    this.plain = false;
    this.onPlain = onPlain ?? (() => {});
    // 3D-transformed markers each get a compositor layer; with a thousand of them compositing
    // costs more per frame than the live updates. 2D positioning only loses zoom animation.
    L.Browser.any3d = false;
    this.map = L.map(container, {
      zoomControl: true,
      attributionControl: true,
      worldCopyJump: true,
      preferCanvas: false,
      minZoom: 1,
      maxZoom: 19,
    });
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    this.map.setView([20, 0], 2);
    this.layer = L.layerGroup().addTo(this.map);
    this.graticule = L.layerGroup();
    // The grid lines share one canvas rather than an SVG path each.
    this.gridRenderer = L.canvas({ padding: 0.2 });
    this.tileTemplate = tiles;
    this.tileAttribution = attribution;
    // Tiles come once the view is fitted to the sensors: no world tiles to throw away.
    if (!tiles) this.goPlain();
    this.map.on('moveend', () => this.drawGraticule());
    // Zoomed far out, markers shrink to their shapes so that dense networks stay legible.
    const scale = () => container.classList.toggle('markers-small', this.map.getZoom() <= 9);
    this.map.on('zoomend', scale);
    scale();
  }

  attachTiles() {
    if (!this.tileTemplate || this.tiles || this.plain) return;
    let loaded = 0;
    this.tiles = L.tileLayer(this.tileTemplate, { attribution: attributionHtml(this.tileAttribution || ''), maxZoom: 19 });
    this.tiles.on('tileload', () => { loaded++; });
    // Fall back only when no tile at all could be loaded; one missing tile is no reason.
    this.tiles.on('tileerror', () => {
      if (loaded === 0) this.goPlain();
    });
    this.tiles.addTo(this.map);
  }

  goPlain() {
    if (this.plain) return;
    this.plain = true;
    if (this.tiles) {
      // Not tiles.off(): the layer's own 'remove' listener unbinds it from the map.
      this.map.removeLayer(this.tiles);
      this.tiles = null;
    }
    this.container.classList.add('map-plain');
    this.graticule.addTo(this.map);
    this.drawGraticule();
    this.onPlain();
  }

  drawGraticule() {
    if (!this.plain) return;
    const size = this.map.getSize();
    if (!size.x || !size.y) return;
    this.graticule.clearLayers();
    const b = this.map.getBounds();
    const south = Math.max(b.getSouth(), -85);
    const north = Math.min(b.getNorth(), 85);
    const west = b.getWest();
    const east = b.getEast();
    const span = Math.max(north - south, (east - west) / 2);
    const step = STEPS.find((s) => span / s >= 4) ?? STEPS[STEPS.length - 1];
    const style = { renderer: this.gridRenderer, interactive: false, weight: 1, color: '#9da7b3', opacity: 0.22 };
    for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
      L.polyline([[lat, west], [lat, east]], style).addTo(this.graticule);
    }
    const lines = (east - west) / step;
    if (lines < 200) {
      for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
        L.polyline([[south, lon], [north, lon]], style).addTo(this.graticule);
      }
    }
  }

  /** Adds, moves or restyles a sensor's marker; O(1) when nothing but its state changed. */
  upsert(sensor) {
    const loc = sensor.location;
    let entry = this.markers.get(sensor.id);
    if (!loc) {
      if (entry) this.remove(sensor.id);
      return;
    }
    const label = sensor.summary.label ?? 'unknown';
    if (!entry) {
      const marker = L.marker([loc.lat, loc.lon], {
        icon: L.divIcon({ className: 'sensor-marker', html: markerSvg(label), iconSize: [32, 32], iconAnchor: [16, 16] }),
        keyboard: true,
        riseOnHover: true,
      });
      marker.bindTooltip(() => tooltipContent(sensor), { direction: 'top', offset: [0, -14], className: 'sensor-tip' });
      marker.on('click', () => { location.hash = sensorHref(sensor.id); });
      marker.addTo(this.layer);
      const node = marker.getElement();
      // Leaflet makes the icon focusable (role button); Enter and Space open it like a click.
      node.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          location.hash = sensorHref(sensor.id);
        }
      });
      node.dataset.sensor = sensor.id;
      node.dataset.label = label;
      node.setAttribute('aria-label', ariaLabel(sensor, label));
      entry = { marker, node, label, lat: loc.lat, lon: loc.lon };
      this.markers.set(sensor.id, entry);
      return;
    }
    if (entry.lat !== loc.lat || entry.lon !== loc.lon) {
      entry.marker.setLatLng([loc.lat, loc.lon]);
      entry.lat = loc.lat;
      entry.lon = loc.lon;
    }
    if (entry.label !== label) {
      entry.node.innerHTML = markerSvg(label);
      entry.node.dataset.label = label;
      entry.label = label;
    }
    entry.node.setAttribute('aria-label', ariaLabel(sensor, label));
    if (entry.marker.isTooltipOpen()) entry.marker.setTooltipContent(() => tooltipContent(sensor));
  }

  remove(id) {
    const entry = this.markers.get(id);
    if (!entry) return;
    this.layer.removeLayer(entry.marker);
    this.markers.delete(id);
  }

  isVisible() {
    return this.container.offsetParent !== null;
  }

  /** The first load is done: fit the view to it, when the map is on screen. */
  loaded() {
    this.dataLoaded = true;
    this.fit();
  }

  /** Fits the view to the markers once the map is on screen. */
  fit(force = false) {
    if (!this.dataLoaded || (this.fitted && !force)) return;
    if (!this.isVisible()) return;
    this.map.invalidateSize(false);
    const points = [...this.markers.values()].map((e) => [e.lat, e.lon]);
    if (points.length) {
      this.fitted = true;
      this.fitSize = this.map.getSize();
      if (points.length === 1) this.map.setView(points[0], 13);
      else this.map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 15 });
    }
    this.attachTiles();
    this.drawGraticule();
  }

  shown() {
    this.map.invalidateSize(false);
    // Refit when the map came back at another size (the window changed meanwhile).
    if (!this.fitted || !this.map.getSize().equals(this.fitSize)) this.fit(true);
    this.drawGraticule();
  }
}
