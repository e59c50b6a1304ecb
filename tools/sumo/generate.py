#!/usr/bin/env python3
"""Simulate traffic with Eclipse SUMO and write sensor readings in smart-traffic's schema.

Two scenarios, both run headless:

* ``freeway_bottleneck``: 2 km of 3-lane freeway (120 km/h) dropping to 2 lanes for 1.5 km; demand
  ramps from light (900 veh/h) to well over the 2-lane capacity (5400 veh/h) and back, so a queue
  forms at the lane drop and spills back over the upstream detectors.
* ``signalised_grid``: a 4 x 4 grid of 2-lane streets (50 km/h, 250 m blocks) with fixed-time
  signals; random trips between the fringe edges ramp from 1200 to 7200 veh/h and back; loops sit
  60 m before each stop line.

Every detector site gets, per lane, an E1 induction loop (what a real loop reports: count,
time-mean speed, occupancy) and an E2 lane-area detector 100 m long centred on the loop. The E2's
vehicle-seconds on the area divided by interval x (length + vehicle length) (Edie's definition,
corrected for E2 counting a vehicle while any part of it overlaps the area) is the simulator's own
density (veh/km/ln): the independent reference the classifier's density and LOS are compared against.

Output: NDJSON, one line per E1 interval::

    {"scenario": "...", "reading": {...our reading schema...},
     "sim_density_veh_km_lane": 12.3, "sim_density_mean_vehicle_number": 15.9,
     "sim_mean_speed_kmh": 97.1}

Usage::

    python3 tools/sumo/generate.py --work-dir /tmp/sumo-run > /tmp/sumo-run/readings.ndjson

SUMO is found through the ``eclipse-sumo`` pip package (``import sumo``), else ``$SUMO_HOME/bin``,
else ``PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

PERIOD_S = 60  # detector aggregation interval = our reading's interval_s
VEHICLE_LENGTH_M = 5.0  # every simulated vehicle (SUMO's passenger default)
E2_LENGTH_M = 100.0  # default lane-area detector length, centred on the loop (--e2-length)
START = datetime(2026, 6, 1, 7, 0, 0, tzinfo=timezone.utc)  # simulation time 0, a weekday morning

# Demand schedules: (duration s, total veh/h) steps.
FREEWAY_DEMAND = [(600, q) for q in (900, 1800, 2700, 3600, 4500, 5400, 5400, 4500, 3600, 2700, 1800, 900)]
GRID_DEMAND = [(600, q) for q in (1200, 2400, 3600, 4800, 6000, 7200, 7200, 6000, 4800, 3600, 2400, 1200)]


def sumo_binary(name: str) -> str:
    """Path of a SUMO executable (sumo, netconvert, netgenerate)."""
    try:
        import sumo  # the eclipse-sumo wheel

        candidate = Path(sumo.SUMO_HOME) / "bin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    if os.environ.get("SUMO_HOME"):
        candidate = Path(os.environ["SUMO_HOME"]) / "bin" / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        sys.exit(f"cannot find SUMO's {name}: pip install eclipse-sumo, or set SUMO_HOME")
    return found


def run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def write(path: Path, root: ET.Element) -> Path:
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def lanes_of(net: Path) -> dict[str, list[tuple[str, float, float]]]:
    """Normal (non-internal) edges -> [(lane id, length m, speed m/s)] in lane-index order."""
    edges = {}
    for edge in ET.parse(net).getroot().iter("edge"):
        if edge.get("function"):  # internal, crossing, walkingarea
            continue
        edges[edge.get("id")] = [
            (lane.get("id"), float(lane.get("length")), float(lane.get("speed"))) for lane in edge.iter("lane")
        ]
    return edges


def detectors(sites: list[tuple[str, str, float]], net: Path, out_dir: Path, e2_length: float) -> tuple[Path, dict]:
    """E1 + E2 per lane at each (site id, edge, position). Returns the additional file and
    detector metadata keyed by E1 id."""
    edges = lanes_of(net)
    root = ET.Element("additional")
    meta = {}
    for site, edge, pos in sites:
        lanes = edges[edge]
        for index, (lane_id, length, speed) in enumerate(lanes):
            start = max(0.0, pos - e2_length / 2)
            end = min(length, pos + e2_length / 2)
            e1 = f"e1_{site}_{index}"
            ET.SubElement(root, "inductionLoop", id=e1, lane=lane_id, pos=f"{pos:.2f}",
                          period=str(PERIOD_S), file="e1.xml")
            ET.SubElement(root, "laneAreaDetector", id=f"e2_{site}_{index}", lane=lane_id,
                          pos=f"{start:.2f}", endPos=f"{end:.2f}", period=str(PERIOD_S), file="e2.xml")
            meta[e1] = {"sensor_id": site, "lane": index, "lanes": len(lanes),
                        "speed_limit_kmh": round(speed * 3.6), "e2": f"e2_{site}_{index}",
                        "e2_length_m": end - start}
    return write(out_dir / "detectors.add.xml", root), meta


def freeway(out_dir: Path, seed: int, e2_length: float) -> tuple[Path, Path, Path, dict, int]:
    nodes = ET.Element("nodes")
    for node_id, x in (("n0", 0), ("n1", 2000), ("n2", 3500)):
        ET.SubElement(nodes, "node", id=node_id, x=str(x), y="0")
    edges = ET.Element("edges")
    ET.SubElement(edges, "edge", id="up", attrib={"from": "n0", "to": "n1"}, numLanes="3", speed="33.33")
    ET.SubElement(edges, "edge", id="drop", attrib={"from": "n1", "to": "n2"}, numLanes="2", speed="33.33")
    net = out_dir / "freeway.net.xml"
    run([sumo_binary("netconvert"), "--node-files", str(write(out_dir / "freeway.nod.xml", nodes)),
         "--edge-files", str(write(out_dir / "freeway.edg.xml", edges)), "-o", str(net), "--no-warnings"])

    routes = ET.Element("routes")
    ET.SubElement(routes, "vType", id="car", vClass="passenger", length=str(VEHICLE_LENGTH_M), minGap="2.5", speedDev="0.1")
    begin = 0
    for i, (duration, veh_h) in enumerate(FREEWAY_DEMAND):
        ET.SubElement(routes, "flow", id=f"f{i}", type="car", begin=str(begin), end=str(begin + duration),
                      vehsPerHour=str(veh_h), attrib={"from": "up", "to": "drop"},
                      departLane="random", departSpeed="max")
        begin += duration
    route_file = write(out_dir / "freeway.rou.xml", routes)

    # Sites from far upstream to inside the 2-lane section: the queue grows back from x = 2000.
    sites = [(f"fwy_up_x{x}", "up", float(x)) for x in (400, 1000, 1500, 1900)]
    sites += [("fwy_drop_x2500", "drop", 500.0), ("fwy_drop_x3300", "drop", 1300.0)]
    add, meta = detectors(sites, net, out_dir, e2_length)
    return net, route_file, add, meta, begin


def grid(out_dir: Path, seed: int, e2_length: float) -> tuple[Path, Path, Path, dict, int]:
    net = out_dir / "grid.net.xml"
    run([sumo_binary("netgenerate"), "--grid", "--grid.number=4", "--grid.length=250",
         "--grid.attach-length=150", "--default.lanenumber=2", "--default.speed=13.89",
         "--tls.guess=true", "--no-turnarounds=true", "--seed", str(seed), "-o", str(net), "--no-warnings"])

    root = ET.parse(net).getroot()
    dead_ends = {j.get("id") for j in root.iter("junction") if j.get("type") == "dead_end"}
    normal = [e for e in root.iter("edge") if not e.get("function")]
    sources = sorted((e.get("id"), e.get("from")) for e in normal if e.get("from") in dead_ends)
    sinks = sorted((e.get("id"), e.get("to")) for e in normal if e.get("to") in dead_ends)

    rng = random.Random(seed)
    routes = ET.Element("routes")
    ET.SubElement(routes, "vType", id="car", vClass="passenger", length=str(VEHICLE_LENGTH_M), minGap="2.5", speedDev="0.1")
    trips, begin = [], 0.0
    for duration, veh_h in GRID_DEMAND:
        t = begin
        while True:
            t += rng.expovariate(veh_h / 3600.0)  # Poisson arrivals
            if t >= begin + duration:
                break
            origin, entry = rng.choice(sources)
            # Any fringe exit but the one the trip entered by.
            destination, _ = rng.choice([sink for sink in sinks if sink[1] != entry])
            trips.append((t, origin, destination))
        begin += duration
    for n, (t, origin, destination) in enumerate(trips):
        ET.SubElement(routes, "trip", id=f"t{n}", type="car", depart=f"{t:.2f}",
                      attrib={"from": origin, "to": destination}, departLane="best", departSpeed="max")
    route_file = write(out_dir / "grid.rou.xml", routes)

    edges = lanes_of(net)
    # Loops 60 m before the stop line (E2 from 110 m to 10 m before it): where red-phase queues
    # form, as with advance detectors.
    sites = [(f"grid_{edge}", edge, lanes[0][1] - 60.0) for edge, lanes in sorted(edges.items())
             if lanes and lanes[0][1] >= 120.0]
    add, meta = detectors(sites, net, out_dir, e2_length)
    return net, route_file, add, meta, int(begin)


def simulate(name: str, work: Path, seed: int, e2_length: float, step_length: float) -> list[dict]:
    out_dir = work / name
    out_dir.mkdir(parents=True, exist_ok=True)
    build = freeway if name == "freeway_bottleneck" else grid
    net, route_file, add, meta, end = build(out_dir, seed, e2_length)
    args = [sumo_binary("sumo"), "-n", str(net), "-r", str(route_file), "-a", str(add),
            "--begin", "0", "--end", str(end), "--seed", str(seed), "--step-length", str(step_length),
            "--no-step-log", "--no-warnings",
            "--duration-log.disable"]
    if name == "freeway_bottleneck":
        args += ["--time-to-teleport", "-1"]  # let the queue stand; nothing vanishes
    run(args)
    return readings(name, out_dir, meta)


def readings(name: str, out_dir: Path, meta: dict) -> list[dict]:
    e2 = {}
    for iv in ET.parse(out_dir / "e2.xml").getroot().iter("interval"):
        e2[(iv.get("id"), float(iv.get("begin")))] = iv
    lines = []
    for iv in ET.parse(out_dir / "e1.xml").getroot().iter("interval"):
        m = meta[iv.get("id")]
        begin, end = float(iv.get("begin")), float(iv.get("end"))
        count = int(iv.get("nVehContrib"))
        speed_ms = float(iv.get("speed"))
        reading = {
            "sensor_id": m["sensor_id"],
            "observed_at": (START + timedelta(seconds=end)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval_s": int(round(end - begin)),
            "lane": m["lane"],
            "vehicle_count": count,
            "occupancy_pct": round(min(100.0, max(0.0, float(iv.get("occupancy")))), 2),
            "speed_limit_kmh": m["speed_limit_kmh"],
            "lanes": m["lanes"],
        }
        if count > 0 and speed_ms >= 0:
            reading["avg_speed_kmh"] = round(speed_ms * 3.6, 1)
        area = e2.get((m["e2"], begin))
        if area is None:
            continue
        length_km = m["e2_length_m"] / 1000.0
        # Edie's density: vehicle-seconds on the area / (interval x length). E2 counts a vehicle
        # while any part of it overlaps the area, i.e. over length + vehicle length, so that is
        # the length to divide by (without it: +5 % on 100 m, +25 % on 20 m). E2's
        # meanVehicleNumber also counts whole simulation steps at entry and exit (+30 % at
        # 120 km/h, 1 s step, 100 m); it is kept only for comparison.
        density = float(area.get("sampledSeconds")) / (end - begin) / (length_km + VEHICLE_LENGTH_M / 1000.0)
        area_speed = float(area.get("meanSpeed"))
        lines.append({
            "scenario": name,
            "reading": reading,
            "sim_density_veh_km_lane": round(density, 3),
            "sim_density_mean_vehicle_number": round(float(area.get("meanVehicleNumber")) / length_km, 3),
            "sim_mean_speed_kmh": round(area_speed * 3.6, 1) if area_speed >= 0 else None,
        })
    lines.sort(key=lambda l: (l["reading"]["sensor_id"], l["reading"]["lane"], l["reading"]["observed_at"]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sumo-run"),
                        help="where networks and detector outputs go (default /tmp/sumo-run)")
    parser.add_argument("--scenario", choices=["all", "freeway_bottleneck", "signalised_grid"], default="all")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--e2-length", type=float, default=E2_LENGTH_M,
                        help="length in m of the reference lane-area detector centred on each loop (default 100)")
    parser.add_argument("--step-length", type=float, default=1.0,
                        help="simulation step in s (default 1.0, SUMO's); use 0.1 with short --e2-length")
    parser.add_argument("-o", "--output", type=Path, help="NDJSON file (default stdout)")
    args = parser.parse_args()

    names = ["freeway_bottleneck", "signalised_grid"] if args.scenario == "all" else [args.scenario]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    out = open(args.output, "w") if args.output else sys.stdout
    with out:
        for name in names:
            lines = simulate(name, args.work_dir, args.seed, args.e2_length, args.step_length)
            for line in lines:
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
            print(f"{name}: {len(lines)} readings", file=sys.stderr)


if __name__ == "__main__":
    main()
