#!/usr/bin/env python3
"""The soak's observer (tools/bench/soak.sh runs it; standard library only, matplotlib for the plot).

    soak.py run    --url URL --db DATABASE_URL --pid NAME=PID... --seconds N --out DIR ...
    soak.py report --out DIR --plot PNG ...

`run` keeps SSE clients on /v1/stream, polls the read side every second, posts a trickle of
single readings, and every INTERVAL seconds writes a sample (samples.csv): resident memory and
open descriptors of each process, the PostgreSQL backends' private memory, readings received,
stored and classified (from /metrics), the queue and its oldest pending reading, the lag of the
readings received in the interval before, the size of events, classifications and queue (the
partitioned tables summed over their partitions) and the errors so far. Its load stops by itself
after SECONDS; it then samples on until the queue is empty and every SSE client has caught up
(at most DRAIN seconds, default 120), measures the lag of each third of the run from the
database, and writes summary.json. Only 127.0.0.1.

`report` judges the plateau (the rules are in soak.sh's header and printed), prints the verdict,
plots samples.csv, and exits 1 when the soak failed.
"""

import argparse
import csv
import http.client
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

MIB = 1024 * 1024


# --- the service and the database ---------------------------------------------------------


def local_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "127.0.0.1":
        sys.exit(f"soak.py talks to 127.0.0.1 only, not {parts.hostname}")
    return parts.hostname, parts.port or 80


def psql(db, sql):
    """Rows of SQL's last statement, as lists of strings."""
    out = subprocess.run(["psql", db, "-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines() if line]


METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(host, port):
    """The /metrics text as {(name, labels): value}."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status != 200:
            raise RuntimeError(f"/metrics answered {resp.status}")
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        m = METRIC.match(line)
        if m:
            values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return values


def metric_sum(values, name, keep=lambda labels: True):
    return sum(v for (n, labels), v in values.items() if n == name and keep(labels))


def non_2xx(labels):
    m = re.search(r'status="(\d+)"', labels)
    return bool(m) and not m.group(1).startswith("2")


def proc_status(pid, field):
    """A /proc/PID/status field in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return 0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def children_named(pid, name):
    """Pids of PID's direct children whose command is NAME (a classifier over MCP_COMMAND)."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                for child in f.read().split():
                    with open(f"/proc/{child}/comm") as c:
                        if c.read().strip() == name:
                            found.append(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


# --- the load: SSE clients, read-side polls, single POSTs ----------------------------------


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.sse_events = 0
        self.sse_classified = []
        self.sse_transitions = 0
        self.sse_disconnects = 0
        self.sse_dropped = 0
        self.sse_resets = 0
        self.sse_delays_ms = []
        self.read_requests = 0
        self.read_errors = 0
        self.read_ms = []
        self.singles = 0
        self.single_errors = 0
        self.notes = []

    def note(self, text):
        with self.lock:
            if len(self.notes) < 50:
                self.notes.append(f"{time.strftime('%H:%M:%S')} {text}")


class SseClient(threading.Thread):
    """One client on /v1/stream, reconnecting with Last-Event-ID; a disconnect or a dropped
    stream is an error. One classified event in 50 is parsed for its delay since
    classified_at."""

    def __init__(self, index, host, port, counters, stop):
        super().__init__(daemon=True, name=f"sse-{index}")
        self.index, self.host, self.port = index, host, port
        self.counters, self.stop = counters, stop
        self.connected = threading.Event()
        self.last_id = None
        self.conn = None
        with counters.lock:
            counters.sse_classified.append(0)

    def close(self):
        conn = self.conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        while not self.stop.is_set():
            try:
                self.stream()
                if not self.stop.is_set():
                    raise RuntimeError("the stream ended")
            except Exception as e:  # noqa: BLE001 - every failure counts as a disconnect
                if self.stop.is_set():
                    break
                with self.counters.lock:
                    self.counters.sse_disconnects += 1
                self.counters.note(f"sse client {self.index}: {e!r}")
                time.sleep(2)  # the stream's advised retry

    def stream(self):
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request("GET", "/v1/stream", headers=headers)
            resp = self.conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"/v1/stream answered {resp.status}")
            self.connected.set()
            pending = b""
            seen = 0
            while not self.stop.is_set():
                chunk = resp.read1(1 << 16)
                if not chunk:
                    return
                frames = (pending + chunk).split(b"\n\n")
                pending = frames.pop()
                classified = transitions = 0
                for frame in frames:
                    if not frame.startswith(b"id: "):
                        if frame.startswith(b"event: dropped"):
                            with self.counters.lock:
                                self.counters.sse_dropped += 1
                            self.counters.note(f"sse client {self.index}: dropped")
                        elif frame.startswith(b"event: reset"):
                            with self.counters.lock:
                                self.counters.sse_resets += 1
                        continue
                    head, _, rest = frame.partition(b"\n")
                    self.last_id = head[4:].decode()
                    if rest.startswith(b"event: classified"):
                        classified += 1
                        seen += 1
                        if seen % 50 == 0:
                            self.delay(rest)
                    elif rest.startswith(b"event: transition"):
                        transitions += 1
                if classified or transitions:
                    with self.counters.lock:
                        self.counters.sse_events += classified + transitions
                        self.counters.sse_classified[self.index] += classified
                        self.counters.sse_transitions += transitions
        finally:
            self.conn.close()

    def delay(self, rest):
        _, _, data = rest.partition(b"\ndata: ")
        try:
            at = json.loads(data)["classified_at"]
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            ms = (datetime.now(timezone.utc) - when).total_seconds() * 1000
        except (ValueError, KeyError, TypeError):
            return
        with self.counters.lock:
            self.counters.sse_delays_ms.append(ms)


def rfc3339(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


class Reader(threading.Thread):
    """Every second: the sensor listing, a random sensor's series and summary, the network's
    state, the last hour's transitions and the newest events. A non-2xx answer or a failed
    request is a read-side error."""

    def __init__(self, host, port, counters, stop):
        super().__init__(daemon=True, name="reader")
        self.host, self.port, self.counters, self.stop = host, port, counters, stop
        self.sensors = []

    def get(self, conn, path):
        started = time.monotonic()
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            ok = 200 <= resp.status < 300
            if not ok:
                self.counters.note(f"GET {path}: {resp.status} {body[:200]!r}")
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            ok, body = False, b""
            self.counters.note(f"GET {path}: {e!r}")
        with self.counters.lock:
            self.counters.read_requests += 1
            self.counters.read_ms.append((time.monotonic() - started) * 1000)
            if not ok:
                self.counters.read_errors += 1
        return body if ok else None

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        tick = time.monotonic()
        while not self.stop.is_set():
            listing = self.get(conn, "/v1/sensors?limit=1000")
            if listing:
                try:
                    self.sensors = [s["sensor_id"] for s in json.loads(listing)["items"]] or self.sensors
                except (ValueError, KeyError):
                    pass
            if self.sensors:
                sensor = urllib.parse.quote(random.choice(self.sensors), safe="")
                self.get(conn, f"/v1/sensors/{sensor}/series?bucket=5m")
                self.get(conn, f"/v1/sensors/{sensor}")
            self.get(conn, "/v1/state")
            self.get(conn, "/v1/transitions?limit=1000")
            self.get(conn, "/v1/events?limit=100")
            tick += 1.0
            self.stop.wait(max(0.0, tick - time.monotonic()))
        conn.close()


class Trickle(threading.Thread):
    """Single POSTs at RATE readings/s until the deadline: SENSORS sensors of two lanes each,
    the lanes in turn, so that each reports every LANES/RATE seconds (its counting interval,
    rounded to whole seconds), values on the free-flow branch of a fundamental diagram with
    Poisson counts."""

    SENSORS = 20

    def __init__(self, host, port, rate, deadline, counters, stop):
        super().__init__(daemon=True, name="trickle")
        self.host, self.port, self.rate, self.deadline = host, port, rate, deadline
        self.counters, self.stop = counters, stop

    def run(self):
        if self.rate <= 0:
            return
        lanes = [(f"SOAK-T-{s:03d}", lane) for s in range(self.SENSORS) for lane in (0, 1)]
        interval = max(1, round(len(lanes) / self.rate))
        rng = random.Random(7)
        demand = {key: rng.uniform(600, 1600) for key in lanes}  # veh/h/lane
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        started = time.monotonic()
        n = 0
        while not self.stop.is_set():
            due = started + n / self.rate
            if due >= self.deadline:
                break
            self.stop.wait(max(0.0, due - time.monotonic()))
            sensor, lane = lanes[n % len(lanes)]
            # Stamped when sent: the end of the lane's counting interval.
            at = datetime.now(timezone.utc)
            flow = demand[(sensor, lane)] * rng.uniform(0.9, 1.1)
            speed = 118 - 0.006 * flow + rng.gauss(0, 3)
            count = poisson(rng, flow * interval / 3600)
            reading = {
                "sensor_id": sensor, "lane": lane, "observed_at": rfc3339(at),
                "interval_s": interval, "vehicle_count": count,
                "avg_speed_kmh": round(speed, 1),
                "occupancy_pct": round(min(100.0, flow / speed * 0.65), 2),
                "speed_limit_kmh": 120, "lanes": 2,
            }
            n += 1
            try:
                conn.request("POST", "/v1/events", json.dumps(reading),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status in (200, 201)
                if not ok:
                    self.counters.note(f"POST /v1/events: {resp.status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                ok = False
                self.counters.note(f"POST /v1/events: {e!r}")
            with self.counters.lock:
                self.counters.singles += 1
                if not ok:
                    self.counters.single_errors += 1
        conn.close()


def poisson(rng, mean):
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- sampling --------------------------------------------------------------------------------


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(q * len(ordered))) - 1)]


SIZES_SQL = """
SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('events')),
       (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('classifications')),
       pg_total_relation_size('queue'),
       (SELECT coalesce(max(id), 0) FROM events)"""

# The oldest pending reading is the one with the lowest id (ids follow arrival), looked up
# alone: a join of the whole queue could scan every partition of events.
QUEUE_SQL = """
SELECT (SELECT count(*) FROM queue WHERE NOT failed), (SELECT count(*) FROM queue WHERE failed),
       coalesce((SELECT extract(epoch FROM now() - e.received_at)
                   FROM (SELECT event_id, observed_at FROM queue WHERE NOT failed
                          ORDER BY event_id LIMIT 1) q
                   JOIN LATERAL (SELECT received_at FROM events e
                                  WHERE e.id = q.event_id AND e.observed_at = q.observed_at) e ON TRUE), 0)"""


def lag_sql(lo, hi):
    """Lag (ms) of the readings with ids in (lo, hi]: received to classified, or to now for
    one still waiting (a lower bound)."""
    return f"""
WITH l AS (
    SELECT extract(epoch FROM coalesce(c.classified_at, clock_timestamp()) - e.received_at) * 1000 AS ms,
           c.event_id IS NOT NULL AS done
      FROM events e LEFT JOIN classifications c ON c.event_id = e.id AND c.observed_at = e.observed_at
     WHERE e.id > {int(lo)} AND e.id <= {int(hi)})
SELECT count(*), count(*) FILTER (WHERE done),
       coalesce(round(avg(ms)::numeric, 1), 0),
       coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0),
       coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0),
       coalesce(round(max(ms)::numeric, 1), 0)
  FROM l"""


def pg_backends_kib(db):
    """The private memory (RssAnon) of the database's other backends, and how many there are."""
    rows = psql(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
    sizes = [proc_status(int(r[0]), "RssAnon") for r in rows]
    sizes = [s for s in sizes if s is not None]
    return (sum(sizes) if sizes else "", len(sizes))


def run(args):
    host, port = local_url(args.url)
    procs = dict(p.split("=", 1) for p in args.pid)
    os.makedirs(args.out, exist_ok=True)
    counters = Counters()
    stop_load = threading.Event()
    stop_watch = threading.Event()

    sse = [SseClient(i, host, port, counters, stop_watch) for i in range(args.sse)]
    for client in sse:
        client.start()
    for client in sse:
        if not client.connected.wait(30):
            sys.exit("an SSE client could not connect")

    base = scrape(host, port)
    base_received = metric_sum(base, "smart_traffic_readings_total")
    base_stored = metric_sum(base, "smart_traffic_readings_total", lambda l: 'outcome="accepted"' in l)
    base_classified = metric_sum(base, "smart_traffic_classification_lag_seconds_count")
    base_non2xx = metric_sum(base, "smart_traffic_http_requests_total", non_2xx)
    ids = [int(psql(args.db, "SELECT coalesce(max(id), 0) FROM events")[0][0])]
    started = time.monotonic()
    deadline = started + args.seconds
    reader = Reader(host, port, counters, stop_load)
    trickle = Trickle(host, port, args.single_rate, deadline, counters, stop_load)
    reader.start()
    trickle.start()
    with open(os.path.join(args.out, "ready"), "w") as f:
        f.write(str(time.time()))

    names = list(procs) + [child.replace("-", "_") for child in args.child]
    columns = ["t_s", "phase"]
    for name in names:
        columns += [f"rss_{name}_kib", f"fds_{name}"]
    columns += ["pg_backends_rss_anon_kib", "pg_backends",
                "readings_received", "readings_stored", "readings_classified",
                "received_per_s", "classified_per_s",
                "queue_pending", "queue_failed", "oldest_pending_s",
                "lag_readings", "lag_classified", "lag_mean_ms", "lag_p50_ms", "lag_p99_ms", "lag_max_ms",
                "events_bytes", "classifications_bytes", "queue_bytes", "max_event_id",
                "read_requests", "read_p99_ms", "sse_events", "sse_delay_p99_ms", "single_posts",
                "http_non2xx", "single_errors", "read_errors", "sse_disconnects", "sse_dropped",
                "errors"]
    out = open(os.path.join(args.out, "samples.csv"), "w", newline="")
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()

    last = {"t": 0.0, "received": 0.0, "classified": 0.0}
    drain_until = None
    k = 0
    print(f"soak: {args.seconds} s of load, a sample every {args.interval} s", flush=True)
    try:
        while True:
            k += 1
            due = started + k * args.interval
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            t = now - started
            phase = "load" if now <= deadline + 0.5 else "drain"
            if phase == "drain" and not stop_load.is_set():
                stop_load.set()
                drain_until = now + args.drain
            row = {"t_s": round(t, 1), "phase": phase}
            for name, pid in procs.items():
                row[f"rss_{name}_kib"] = proc_status(pid, "VmRSS")
                row[f"fds_{name}"] = fd_count(pid)
            for child in args.child:
                kids = children_named(procs["ingest"], child)
                key = child.replace("-", "_")
                row[f"rss_{key}_kib"] = sum(proc_status(p, "VmRSS") or 0 for p in kids) if kids else ""
                row[f"fds_{key}"] = sum(fd_count(p) or 0 for p in kids) if kids else ""
            row["pg_backends_rss_anon_kib"], row["pg_backends"] = pg_backends_kib(args.db)

            m = scrape(host, port)
            received = metric_sum(m, "smart_traffic_readings_total") - base_received
            classified = metric_sum(m, "smart_traffic_classification_lag_seconds_count") - base_classified
            span = t - last["t"]
            row["readings_received"] = int(received)
            row["readings_stored"] = int(metric_sum(m, "smart_traffic_readings_total",
                                                    lambda l: 'outcome="accepted"' in l) - base_stored)
            row["readings_classified"] = int(classified)
            row["received_per_s"] = round((received - last["received"]) / span)
            row["classified_per_s"] = round((classified - last["classified"]) / span)
            last.update(t=t, received=received, classified=classified)

            pending, failed, oldest = psql(args.db, QUEUE_SQL)[0]
            row["queue_pending"], row["queue_failed"] = int(pending), int(failed)
            row["oldest_pending_s"] = round(float(oldest), 3)
            ev, cl, qu, max_id = psql(args.db, SIZES_SQL)[0]
            row["events_bytes"], row["classifications_bytes"], row["queue_bytes"] = int(ev), int(cl), int(qu)
            row["max_event_id"] = int(max_id)
            # The readings received in the interval before this one: classified by now.
            ids.append(int(max_id))
            lo, hi = (ids[-3], ids[-2]) if len(ids) >= 3 else (ids[0], ids[0])
            n, done, mean, p50, p99, worst = psql(args.db, lag_sql(lo, hi))[0]
            row.update(lag_readings=int(n), lag_classified=int(done))
            if int(n):
                row.update(lag_mean_ms=float(mean), lag_p50_ms=float(p50), lag_p99_ms=float(p99),
                           lag_max_ms=float(worst))

            with counters.lock:
                row["read_requests"] = counters.read_requests
                read_p99 = percentile(counters.read_ms, 0.99)
                counters.read_ms = []
                row["read_p99_ms"] = round(read_p99, 1) if read_p99 is not None else ""
                row["sse_events"] = counters.sse_events
                delay = percentile(counters.sse_delays_ms, 0.99)
                counters.sse_delays_ms = []
                row["sse_delay_p99_ms"] = round(delay, 1) if delay is not None else ""
                row["single_posts"] = counters.singles
                row["single_errors"] = counters.single_errors
                row["read_errors"] = counters.read_errors
                row["sse_disconnects"] = counters.sse_disconnects
                row["sse_dropped"] = counters.sse_dropped
            row["http_non2xx"] = int(metric_sum(m, "smart_traffic_http_requests_total", non_2xx) - base_non2xx)
            row["errors"] = (row["http_non2xx"] + row["single_errors"] + row["read_errors"]
                             + row["sse_disconnects"] + row["sse_dropped"])
            writer.writerow(row)
            out.flush()
            print(f"t={t:5.0f}s {phase:5} rss={row['rss_ingest_kib'] // 1024 if row['rss_ingest_kib'] else '-'}MiB "
                  f"fds={row['fds_ingest']} in={row['received_per_s']}/s out={row['classified_per_s']}/s "
                  f"pending={pending} lag_p99={p99}ms events={int(ev) // MIB}MiB queue={int(qu) // 1024}KiB "
                  f"errors={row['errors']}", flush=True)
            if phase == "drain":
                # Done once nothing arrives or waits and every SSE client has caught up.
                with counters.lock:
                    streamed = min(counters.sse_classified, default=classified)
                quiet = row["received_per_s"] == 0 and int(pending) == 0 and streamed >= classified
                if quiet or now >= drain_until:
                    break
    finally:
        stop_load.set()
        stop_watch.set()
        for client in sse:
            client.close()
        out.close()

    summary = {
        "seconds": args.seconds, "interval": args.interval, "sse_clients": args.sse,
        "single_rate": args.single_rate, "processes": names,
        "sse_classified_per_client": counters.sse_classified,
        "sse_transitions": counters.sse_transitions, "sse_resets": counters.sse_resets,
        "classified_during_run": int(last["classified"]),
        "notes": counters.notes,
        "thirds": thirds_lag(args, os.path.join(args.out, "samples.csv"), ids[0]),
        "final": final_counts(args.db),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def load_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def third_bounds(rows, seconds):
    """The load samples of the first, middle and last third of the run."""
    load = [r for r in rows if r["phase"] == "load"]
    cut = [seconds / 3, 2 * seconds / 3]
    return [[r for r in load if float(r["t_s"]) <= cut[0]],
            [r for r in load if cut[0] < float(r["t_s"]) <= cut[1]],
            [r for r in load if float(r["t_s"]) > cut[1]]]


def thirds_lag(args, path, start_id):
    """The lag of every reading received in each third, from the database (exact)."""
    result = []
    lo = start_id
    for part in third_bounds(load_rows(path), args.seconds):
        if not part:
            result.append(None)
            continue
        hi = int(part[-1]["max_event_id"])
        n, done, mean, p50, p99, worst = psql(args.db, lag_sql(lo, hi))[0]
        result.append({"readings": int(n), "classified": int(done), "mean_ms": float(mean),
                       "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(worst)})
        lo = hi
    return result


def final_counts(db):
    stored, classified, queued, failed = psql(db, """
SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM classifications),
       (SELECT count(*) FROM queue WHERE NOT failed), (SELECT count(*) FROM queue WHERE failed)""")[0]
    return {"events": int(stored), "classifications": int(classified),
            "queue_pending": int(queued), "queue_failed": int(failed)}


# --- the verdict and the plot ----------------------------------------------------------------

RULES = """rules: (1) each process's mean RSS over the last third within +10 % (at least +4 MiB) of the
middle third's; (2) open fds: the last third's highest within +10 % (at least +8) of the middle
third's; (3) lag p99 of the readings received in the last third at most 1.5x the middle third's
(at least +250 ms); (4) the queue table's largest size in the last third within +50 % (at least
+1 MiB) of the middle third's; (5) readings received at >= 95 % of the offered rate in the
middle and last thirds; (6) every reading classified when the load stopped and the queue
drained (nothing pending or failed); (7) zero errors: non-2xx answers, failed requests of any
client (the simulator's included), SSE disconnects or dropped streams, read-side errors, ERROR
lines in ingest's log; (8) the live stream keeps up: each SSE client received every reading
classified while it was connected, and the mean of the stream's delay p99 (classified_at to
received) over the last third is at most 1.5x the middle third's (at least +250 ms)."""


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def num(row, key):
    value = row.get(key, "")
    return float(value) if value not in ("", None) else None


def report(args):
    rows = load_rows(os.path.join(args.out, "samples.csv"))
    with open(os.path.join(args.out, "summary.json")) as f:
        summary = json.load(f)
    seconds = summary["seconds"]
    first, middle, last = third_bounds(rows, seconds)
    failures, lines = [], []

    def check(ok, text):
        lines.append(("ok   " if ok else "FAIL ") + text)
        if not ok:
            failures.append(text)

    if not middle or not last:
        sys.exit("too few samples for thirds")
    for name in summary["processes"]:
        key = f"rss_{name}_kib"
        mid = mean(num(r, key) for r in middle)
        end = mean(num(r, key) for r in last)
        if mid is None or end is None:
            continue
        allowed = mid + max(0.10 * mid, 4 * 1024)
        check(end <= allowed, f"RSS {name}: middle {mid / 1024:.1f} MiB, last {end / 1024:.1f} MiB "
                              f"({(end / mid - 1) * 100:+.1f} %), allowed {allowed / 1024:.1f}")
        key = f"fds_{name}"
        mid = max((num(r, key) or 0) for r in middle)
        end = max((num(r, key) or 0) for r in last)
        allowed = mid + max(0.10 * mid, 8)
        check(end <= allowed, f"fds {name}: middle max {mid:.0f}, last max {end:.0f}, allowed {allowed:.0f}")
    lag = summary["thirds"]
    if lag[1] and lag[2]:
        allowed = max(1.5 * lag[1]["p99_ms"], lag[1]["p99_ms"] + 250)
        check(lag[2]["p99_ms"] <= allowed,
              f"lag p99: middle {lag[1]['p99_ms']:.0f} ms, last {lag[2]['p99_ms']:.0f} ms, allowed {allowed:.0f} "
              f"(means {lag[1]['mean_ms']:.0f} / {lag[2]['mean_ms']:.0f} ms)")
    mid = max(num(r, "queue_bytes") for r in middle)
    end = max(num(r, "queue_bytes") for r in last)
    allowed = max(1.5 * mid, mid + MIB)
    check(end <= allowed, f"queue table: middle max {mid / MIB:.2f} MiB, last max {end / MIB:.2f} MiB, "
                          f"allowed {allowed / MIB:.2f}")
    for label, part in (("middle", middle), ("last", last)):
        rate = mean(num(r, "received_per_s") for r in part)
        check(rate >= 0.95 * args.offered,
              f"received {label} third: {rate:.0f} readings/s of {args.offered} offered")
    final = summary["final"]
    check(final["queue_pending"] == 0 and final["queue_failed"] == 0 and final["events"] == final["classifications"],
          f"all classified: {final['events']} stored, {final['classifications']} classified, "
          f"{final['queue_pending']} pending, {final['queue_failed']} failed")
    end = rows[-1]
    sim_failed = args.sim_failed
    errors = {k: int(end[k]) for k in ("http_non2xx", "single_errors", "read_errors", "sse_disconnects", "sse_dropped")}
    errors["simulator_failed_requests"] = sim_failed
    errors["ingest_log_errors"] = args.log_errors
    check(sum(errors.values()) == 0, "errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    sse = summary["sse_classified_per_client"]
    made = summary["classified_during_run"]
    check(min(sse) >= made, f"SSE clients received {min(sse)}–{max(sse)} classified events each "
                            f"of {made} classified while connected ({min(sse) / max(made, 1) * 100:.1f} %)")
    delay_mid = mean(num(r, "sse_delay_p99_ms") for r in middle)
    delay_end = mean(num(r, "sse_delay_p99_ms") for r in last)
    if delay_mid is not None and delay_end is not None:
        allowed = max(1.5 * delay_mid, delay_mid + 250)
        check(delay_end <= allowed, f"stream delay p99: middle {delay_mid:.0f} ms, last {delay_end:.0f} ms, "
                                    f"allowed {allowed:.0f}")

    print(RULES)
    for line in lines:
        print(line)
    received = int(end["readings_received"])
    classified = int(end["readings_classified"])
    print(f"SSE transitions received, all clients: {summary['sse_transitions']}")
    for note in summary["notes"][:10]:
        print("note:", note)
    table(rows, first, middle, last, summary)
    plot(rows, summary, args.plot, args.offered)
    verdict = "PASS" if not failures else "FAIL"
    peak = max(num(r, "rss_ingest_kib") or 0 for r in rows) / 1024
    print(f"soak verdict: {verdict} — {seconds} s at {args.offered} readings/s offered: {received} received, "
          f"{classified} classified; ingest RSS peak {peak:.0f} MiB; lag p99 middle/last "
          f"{lag[1]['p99_ms']:.0f}/{lag[2]['p99_ms']:.0f} ms; errors {sum(errors.values())}"
          + ("" if not failures else f"; failed: {'; '.join(failures)}"))
    return 0 if not failures else 1


def table(rows, first, middle, last, summary):
    """Start, middle and end of the run, one row per measure (markdown)."""
    load = [r for r in rows if r["phase"] == "load"]
    begin = next((r for r in load if int(r["lag_readings"]) > 0), load[0])
    picks = [("start", begin), ("middle", middle[len(middle) // 2]), ("end", load[-1])]
    print("| measure | " + " | ".join(f"{n} ({float(r['t_s']):.0f} s)" for n, r in picks) + " |")
    print("| --- |" + " ---: |" * len(picks))

    def line(label, f):
        print(f"| {label} | " + " | ".join(f(r) for _, r in picks) + " |")

    for name in summary["processes"]:
        line(f"RSS {name}, MiB", lambda r, n=name: f"{(num(r, f'rss_{n}_kib') or 0) / 1024:.1f}")
        line(f"open fds {name}", lambda r, n=name: f"{num(r, f'fds_{n}') or 0:.0f}")
    line("PostgreSQL backends' private memory, MiB", lambda r: f"{(num(r, 'pg_backends_rss_anon_kib') or 0) / 1024:.1f}")
    line("lag p50 / p99 of the readings received in the 10 s before, ms", lambda r: f"{num(r, 'lag_p50_ms'):.0f} / {num(r, 'lag_p99_ms'):.0f}")
    line("queue pending / oldest, s", lambda r: f"{num(r, 'queue_pending'):.0f} / {num(r, 'oldest_pending_s'):.2f}")
    line("events, MiB", lambda r: f"{num(r, 'events_bytes') / MIB:.1f}")
    line("classifications, MiB", lambda r: f"{num(r, 'classifications_bytes') / MIB:.1f}")
    line("queue, MiB", lambda r: f"{num(r, 'queue_bytes') / MIB:.2f}")
    line("readings received / classified", lambda r: f"{int(r['readings_received']):,} / {int(r['readings_classified']):,}".replace(",", " "))
    line("errors", lambda r: r["errors"])
    lag = summary["thirds"]
    print("| lag of the third's readings, mean / p50 / p99 / max, ms | "
          + " | ".join(f"{t['mean_ms']:.0f} / {t['p50_ms']:.0f} / {t['p99_ms']:.0f} / {t['max_ms']:.0f}" if t else "-"
                       for t in lag) + " |")


def plot(rows, summary, path, offered):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [float(r["t_s"]) / 60 for r in rows]
    seconds = summary["seconds"]
    fig, axes = plt.subplots(5, 2, figsize=(12, 14), sharex=True)
    fig.suptitle(f"Soak: {seconds / 60:g} min at {offered} readings/s offered, "
                 f"{summary['sse_clients']} SSE clients, reads every second", fontsize=13)

    def series(key, scale=1.0):
        return [(num(r, key) / scale) if num(r, key) is not None else float("nan") for r in rows]

    panels = [
        ("Resident memory (VmRSS)", "MiB",
         [(f"rss_{n}_kib", 1024, n) for n in summary["processes"]]
         + [("pg_backends_rss_anon_kib", 1024, "PostgreSQL backends (private)")]),
        ("Classification lag of the readings received in each 10 s", "ms",
         [("lag_p50_ms", 1, "p50"), ("lag_p99_ms", 1, "p99"), ("lag_max_ms", 1, "max")]),
        ("Table size, indexes included (events, classifications)", "MiB",
         [("events_bytes", MIB, "events (all day partitions)"),
          ("classifications_bytes", MIB, "classifications (all day partitions)")]),
        ("Queue table size, indexes included", "MiB", [("queue_bytes", MIB, "queue")]),
        ("Queue: readings pending", "readings", [("queue_pending", 1, "pending")]),
        ("Throughput", "readings/s", [("received_per_s", 1, "received"), ("classified_per_s", 1, "classified")]),
        ("Open file descriptors", "fds", [(f"fds_{n}", 1, n) for n in summary["processes"]]),
        ("Read-side requests (polled every second), p99 latency", "ms", [("read_p99_ms", 1, "p99")]),
        ("Live stream: classified to received by an SSE client, p99", "s",
         [("sse_delay_p99_ms", 1000, "p99 (one event in 50)")]),
        ("Errors (cumulative)", "count",
         [("http_non2xx", 1, "non-2xx answers"), ("read_errors", 1, "read-side errors"),
          ("sse_disconnects", 1, "SSE disconnects"), ("single_errors", 1, "single POST errors")]),
    ]
    interval = summary["interval"] / 60
    for ax, (title, unit, lines) in zip(axes.flat, panels):
        for key, scale, label in lines:
            # A sample's lag is that of the readings received in the interval before it.
            x = [v - interval for v in t] if key.startswith("lag_") else t
            ax.plot(x, series(key, scale), label=label, linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.axvspan(seconds / 3 / 60, 2 * seconds / 3 / 60, color="tab:blue", alpha=0.05)
        ax.axvspan(2 * seconds / 3 / 60, seconds / 60, color="tab:orange", alpha=0.07)
        ax.axvline(seconds / 60, color="grey", linestyle="--", linewidth=0.8)
        ax.set_ylim(bottom=0, top=None if ax.get_ylim()[1] > 1 else 1)
        ax.legend(fontsize=8, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("time since the load started, min\n(shaded: the middle and last thirds compared; dashed: the load stops)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    try:  # a palette of 128 colours: a third of the bytes, no visible change
        from PIL import Image

        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=128)
        small.save(path, optimize=True)
    except ImportError:
        pass
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--url", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--pid", action="append", default=[], help="NAME=PID of a process to watch")
    p.add_argument("--child", action="append", default=[], help="a child of ingest to watch, by command name")
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--interval", type=int, default=10)
    p.add_argument("--drain", type=int, default=120)
    p.add_argument("--sse", type=int, default=4)
    p.add_argument("--single-rate", type=float, default=20)
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--out", required=True)
    p.add_argument("--plot", required=True)
    p.add_argument("--offered", type=int, required=True)
    p.add_argument("--sim-failed", type=int, default=0)
    p.add_argument("--log-errors", type=int, default=0)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
