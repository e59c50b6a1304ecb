#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/<target>/: a few valid and
near-valid inputs each, in the input format the target's doc comment describes. Run from
anywhere; existing seeds of the same name are overwritten, others (kept crashes) left alone."""

import base64
import gzip
import json
import os
import struct

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

READING = {
    "sensor_id": "A1-north:loop/3",
    "observed_at": "2026-05-28T08:15:00Z",
    "interval_s": 60,
    "lane": 1,
    "vehicle_count": 23,
    "avg_speed_kmh": 87.5,
    "occupancy_pct": 11.2,
    "speed_limit_kmh": 100,
    "lanes": 2,
}


def text(value):
    return json.dumps(value, separators=(",", ":")).encode()


def write(target, name, data):
    directory = os.path.join(SEEDS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def readings():
    minimal = {"sensor_id": "s1", "observed_at": "2026-05-28T08:15:00+02:00", "vehicle_count": 0}
    write("reading", "full", text(READING))
    write("reading", "minimal", text(minimal))
    write("reading", "nulls", text({**minimal, "lane": None, "avg_speed_kmh": None}))
    write("reading", "out_of_range", text({**READING, "lane": 33, "occupancy_pct": 100.5,
                                           "vehicle_count": -1, "interval_s": 1e3}))
    write("reading", "repeated", b'{"sensor_id":"a","sensor_id":"b","observed_at":'
          b'"2026-05-28T08:15:00.1234567Z","vehicle_count":1}')
    write("reading", "leap_second", text({**minimal, "observed_at": "2016-12-31T23:59:60Z"}))
    write("reading", "future", text({**minimal, "observed_at": "2026-05-28T20:40:00Z"}))
    write("reading", "not_object", b"[1,2,3]")
    write("reading", "unknown_field", text({**minimal, "Lane": 2}))


def batches():
    other = {**READING, "sensor_id": "B7", "lane": None}
    array = text([READING, other, {"vehicle_count": "many"}, 7])
    ndjson = b"\n".join([text(READING), b"", b"  ", text(other), b"{not json", b"[]"])
    write("batch_split", "array", b"\x00" + array)
    write("batch_split", "array_empty", b"\x00[]")
    write("batch_split", "not_array", b"\x00" + text(READING))
    write("batch_split", "broken_array", b"\x00[" + text(READING) + b",")
    write("batch_split", "ndjson", b"\x01" + ndjson + b"\n")
    write("batch_split", "ndjson_crlf", b"\x01" + text(READING) + b"\r\n" + text(other))


def gzips():
    def head(mode, limit, chunk):
        return struct.pack("<BHB", mode, limit, chunk)

    body = text([READING] * 4)
    packed = gzip.compress(body, mtime=0)
    write("gzip", "valid", head(0, 4096, 7) + packed)
    write("gzip", "two_members", head(0, 4096, 64) + packed + gzip.compress(b"[]", mtime=0))
    write("gzip", "over_limit", head(0, 100, 16) + packed)
    write("gzip", "bomb", head(0, 1024, 255) + gzip.compress(b" " * 65536, mtime=0))
    write("gzip", "truncated", head(0, 4096, 5) + packed[:-5])
    write("gzip", "trailing_garbage", head(0, 4096, 9) + packed + b"garbage")
    write("gzip", "empty", head(0, 4096, 1))
    write("gzip", "plain", head(0x91, 4096, 3) + body)
    write("gzip", "plain_two_members", head(0x63, 4096, 11) + body)
    write("gzip", "plain_over_limit", head(0x01, 50, 200) + body)


def mcp_lines():
    def line(message):
        return text(message) + b"\n"

    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "classify", "arguments": {"event": READING}}}
    result = {"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": "{}"}], "structuredContent": {}, "isError": False}}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "seed", "version": "1"}}}
    server = b"".join([
        line(init),
        line({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        line(call),
        line({**call, "id": "c-2", "params": {"name": "classify_by_id", "arguments": {"id": 4},
                                             "_meta": {"progressToken": 9}}}),
        b"\xef\xbb\xbf" + text({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}) + b"\r\n",
        b"\n",
        b"not json\n",
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n',
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":3}}\n',
        b'{"jsonrpc":"2.0","id":12',
    ])
    write("mcp_lines", "server_session", b"\x00\x05" + server)
    write("mcp_lines", "server_call", b"\x00\x01" + line(call))
    write("mcp_lines", "server_params_first", b"\x00\x03" + text(
        {"params": call["params"], "id": 5, "jsonrpc": "2.0", "method": "tools/call"}) + b"\n")
    client = b"".join([
        line(result),
        line({**result, "id": "r", "result": {"content": [], "isError": True, "_meta": {}}}),
        line({"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "bad"}}),
        line({"jsonrpc": "2.0", "method": "notifications/progress",
              "params": {"progressToken": 1, "progress": 0.5}}),
        b'{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"image"}]}}\n',
    ])
    write("mcp_lines", "client_session", b"\x01\x09" + client)


def tool_args():
    site = {"lanes": 3, "speed_limit_kmh": 80, "free_flow_speed_kmh": 90.0,
            "effective_vehicle_length_m": 6.5, "time_zone": "Europe/Berlin"}
    earlier = [{**READING, "observed_at": f"2026-05-28T08:{m:02}:00Z", "avg_speed_kmh": 20.0 + m}
               for m in range(5, 15)]
    write("tool_args", "classify", b"\x00" + text({"event": READING, "history": earlier,
                                                   "site": site}))
    write("tool_args", "classify_minimal", b"\x00" + text({"event": {
        "sensor_id": "s", "observed_at": "2026-05-28T08:15:00Z", "vehicle_count": 900,
        "interval_s": 30, "occupancy_pct": 95.0}}))
    write("tool_args", "classify_bad", b"\x00" + text({"event": {"vehicle_count": -1},
                                                       "history": {}, "site": {"lanes": 0},
                                                       "extra": 1}))
    write("tool_args", "by_id", b"\x01" + text({"id": 42}))
    write("tool_args", "by_id_bad", b"\x01" + text({"id": 1.5}))
    write("tool_args", "batch", b"\x02" + text({
        "events": [READING, {**READING, "sensor_id": "B7"}, {"sensor_id": "x"}],
        "history": earlier,
        "stored_history": {"readings": 10, "minutes": 60},
        "sites": {"A1-north:loop/3": site, "bad id": {}},
        "stored_sites": True}))
    write("tool_args", "batch_bad", b"\x02" + text({
        "events": [], "stored_history": {"readings": 0, "minutes": 44641, "x": 1},
        "sites": [], "stored_sites": "yes"}))


def cursors():
    def token(raw):
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=")

    write("cursor", "valid", token("v1:1780000000123456:42"))
    write("cursor", "negative_time", token("v1:-1000000:1"))
    write("cursor", "extremes", token(f"v1:{2**63 - 1}:{-2**63}"))
    write("cursor", "plus_sign", token("v1:+5:+7"))
    write("cursor", "wrong_version", token("v2:1:1"))
    write("cursor", "extra_part", token("v1:1:1:1"))
    write("cursor", "padded", base64.urlsafe_b64encode(b"v1:1:1"))
    write("cursor", "not_base64", b"!!!")


def tokens():
    now = 1_780_000_000
    later = 4_102_444_800  # 2100: valid long after the seeds were written
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}
    claims = {"iss": "https://auth.example.com", "aud": "https://traffic.example.com/mcp",
              "sub": "agent-7", "iat": now, "exp": later, "scope": "traffic:read"}

    def signed(h, c):
        return b"\x00" + text(h) + b"\n" + text(c)

    write("jwt", "valid", signed(header, claims))
    write("jwt", "valid_scp_list", signed({"alg": "EdDSA"}, {
        **claims, "aud": ["https://other.example.com", claims["aud"]],
        "scp": ["traffic:classify", "traffic:read"], "nbf": now}))
    write("jwt", "expired", signed(header, {**claims, "exp": now}))
    write("jwt", "wrong_audience", signed(header, {**claims, "aud": claims["aud"] + "/"}))
    write("jwt", "issuer_array", signed(header, {**claims, "iss": [claims["iss"]]}))
    write("jwt", "no_exp", signed(header, {k: v for k, v in claims.items() if k != "exp"}))
    write("jwt", "ec_kid", signed({"alg": "ES256", "kid": "ec"}, claims))
    write("jwt", "hmac", signed({"alg": "HS256", "kid": "k1"}, claims))
    write("jwt", "unknown_kid", signed({**header, "kid": "k9"}, claims))
    write("jwt", "forged", b"\x02" + text(header) + b"\n" + text(claims) + b"\n" + b"A" * 86)
    write("jwt", "alg_none", b"\x02" + text({"alg": "none"}) + b"\n" + text(claims) + b"\n")
    write("jwt", "raw", b"\x01" + b"a.b.c")


if __name__ == "__main__":
    readings()
    batches()
    gzips()
    mcp_lines()
    tool_args()
    cursors()
    tokens()
