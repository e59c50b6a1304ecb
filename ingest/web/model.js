// The network as the page knows it: each sensor's metadata and its lanes' latest
// classification, and what the table and the map show of it.

import { worstLane } from './labels.js';

/** Server time minus client time, from the state's `at`; ages are counted on the server's clock. */
let skewMs = 0;
export const serverNow = () => Date.now() + skewMs;
export function setServerTime(iso) {
  const t = Date.parse(iso);
  if (Number.isFinite(t)) skewMs = t - Date.now();
}

const laneKey = (lane) => (lane == null ? 'all' : String(lane));

export class Sensor {
  constructor(id) {
    this.id = id;
    this.meta = null;
    this.lanes = new Map();
    this.summary = summarise(this);
  }

  get location() {
    const loc = this.meta?.location;
    return loc && Number.isFinite(loc.lat) && Number.isFinite(loc.lon) ? loc : null;
  }

  get road() {
    return this.meta?.road ?? null;
  }

  /** Lanes in the server's order: a whole carriageway before lane 0. */
  orderedLanes() {
    return [...this.lanes.values()].sort((a, b) => (a.lane ?? -1) - (b.lane ?? -1));
  }

  refresh() {
    this.summary = summarise(this);
    return this.summary;
  }
}

/** A lane state from a `/v1/state` or `/v1/sensors` lane item. */
export function laneFromState(item) {
  return {
    lane: item.lane ?? null,
    eventId: item.event_id,
    observedAt: item.observed_at,
    observedMs: Date.parse(item.observed_at),
    intervalS: item.interval_s,
    vehicles: item.vehicle_count ?? null,
    speed: item.avg_speed_kmh ?? null,
    occupancy: item.occupancy_pct ?? null,
    label: item.label,
    los: item.level_of_service ?? null,
    flow: item.flow_veh_h_lane ?? null,
    density: item.density_veh_km_lane ?? null,
    confidence: item.confidence ?? null,
    flags: item.flags ?? [],
  };
}

/** A lane state from a classified event (the stream's `classified` data). */
export function laneFromEvent(event) {
  if (!event.classification) return null;
  // A state item holds the reading's fields and its classification's side by side.
  return laneFromState({ ...event, ...event.classification, event_id: event.id });
}

/**
 * Sets a lane's state unless it is older than what the lane shows: a late reading never moves
 * the state now. Returns whether anything changed.
 */
export function setLane(sensor, lane, force = false) {
  const key = laneKey(lane.lane);
  const current = sensor.lanes.get(key);
  if (!force && current && lane.observedMs < current.observedMs) return false;
  sensor.lanes.set(key, lane);
  return true;
}

function summarise(sensor) {
  const lanes = sensor.orderedLanes();
  const worst = worstLane(lanes);
  let flowSum = 0;
  let flowN = 0;
  let speedWeighted = 0;
  let speedWeight = 0;
  let speedSum = 0;
  let speedN = 0;
  let occSum = 0;
  let occN = 0;
  let oldest = Infinity;
  let staleAt = Infinity;
  const flags = new Set();
  for (const l of lanes) {
    if (l.flow != null) { flowSum += l.flow; flowN++; }
    if (l.speed != null) {
      speedSum += l.speed; speedN++;
      if (l.vehicles > 0) { speedWeighted += l.speed * l.vehicles; speedWeight += l.vehicles; }
    }
    if (l.occupancy != null) { occSum += l.occupancy; occN++; }
    for (const f of l.flags) flags.add(f);
    if (l.observedMs < oldest) oldest = l.observedMs;
    const due = l.observedMs + 3 * l.intervalS * 1000;
    if (due < staleAt) staleAt = due;
  }
  return {
    label: worst?.label ?? null,
    los: worst?.los ?? null,
    // Per lane means; speed weighted by vehicles as the series does.
    flow: flowN ? flowSum / flowN : null,
    speed: speedWeight ? speedWeighted / speedWeight : speedN ? speedSum / speedN : null,
    occupancy: occN ? occSum / occN : null,
    flags: [...flags].sort(),
    oldestMs: Number.isFinite(oldest) ? oldest : null,
    staleAtMs: Number.isFinite(staleAt) ? staleAt : null,
  };
}

/** Age in seconds of the sensor's oldest lane, and whether any lane is stale. */
export function ageOf(summary, now = serverNow()) {
  if (summary.oldestMs == null) return { age: null, stale: false };
  return { age: Math.max(0, (now - summary.oldestMs) / 1000), stale: now > summary.staleAtMs };
}

export class Network {
  constructor() {
    this.sensors = new Map();
  }

  get(id) {
    let sensor = this.sensors.get(id);
    if (!sensor) {
      sensor = new Sensor(id);
      this.sensors.set(id, sensor);
    }
    return sensor;
  }

  /** A `/v1/sensors` item: metadata and lanes. */
  applyListing(item) {
    const sensor = this.get(item.sensor_id);
    sensor.meta = item.metadata ?? null;
    for (const lane of item.lanes ?? []) setLane(sensor, laneFromState(lane));
    sensor.refresh();
    return sensor;
  }
}
