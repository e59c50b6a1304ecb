"""An agent's session with mcp-classifier through the official MCP Python SDK: resources,
resource templates, completions, prompts and the query tools, over stdio or Streamable HTTP.

    python tests/mcp_agent.py --stdio "mcp-classifier stdio --database-url …" --sensor A1-north --road A1
    python tests/mcp_agent.py --http http://127.0.0.1:18080/mcp --sensor A1-north --road A1
    python tests/mcp_agent.py --http … --bearer ACCESS_TOKEN --sensor A1-north --road A1

The database must hold the sensor (with the road in its metadata) and one classified reading.
Prints one PASS/FAIL line per check; exits 1 when any failed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

try:
    from mcp.client.streamable_http import streamable_http_client as http_client
except ImportError:  # mcp 1.x
    from mcp.client.streamable_http import streamablehttp_client as http_client

failed = 0


def check(ok: bool, what: str, detail: object = "") -> None:
    global failed
    failed += 0 if ok else 1
    print(f"{'PASS' if ok else 'FAIL'}  {what}{': ' + str(detail)[:300] if detail else ''}", flush=True)


def dump(model: object) -> dict:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[attr-defined]


async def session_checks(session: ClientSession, sensor: str, road: str) -> None:
    init = await session.initialize()
    caps = dump(init.capabilities)
    check(all(k in caps for k in ("resources", "prompts", "completions")), "capabilities", caps)

    listed = dump(await session.list_resources())
    uris = [r["uri"] for r in listed["resources"]]
    check("traffic://network/state" in uris, "resources/list names the network state", uris[:3])
    check(f"traffic://sensors/{sensor}" in uris, "resources/list names the sensor", uris[:3])
    templates = dump(await session.list_resource_templates())
    check(
        [t["uriTemplate"] for t in templates["resourceTemplates"]] == ["traffic://sensors/{sensor_id}"],
        "resources/templates/list",
        templates,
    )
    network = dump(await session.read_resource("traffic://network/state"))
    state = json.loads(network["contents"][0]["text"])
    check(state["summary"]["lanes"] >= 1, "resources/read traffic://network/state", state["summary"])
    own = dump(await session.read_resource(f"traffic://sensors/{sensor}"))
    info = json.loads(own["contents"][0]["text"])
    check(info["sensor_id"] == sensor and info["metadata"]["road"] == road, "resources/read the sensor", info)
    try:
        await session.read_resource("traffic://sensors/nobody")
        check(False, "resources/read of an unknown sensor is an error")
    except Exception as exc:  # the SDK raises its JSON-RPC error type
        check("-32002" in repr(exc) or "no resource" in str(exc), "resources/read of an unknown sensor is an error", exc)

    ids = dump(await session.complete(
        types.ResourceTemplateReference(type="ref/resource", uri="traffic://sensors/{sensor_id}"),
        {"name": "sensor_id", "value": sensor[:2]},
    ))
    check(sensor in ids["completion"]["values"], "completion/complete sensor_id", ids)
    roads = dump(await session.complete(
        types.PromptReference(type="ref/prompt", name="corridor_report"),
        {"name": "road", "value": road[:1]},
    ))
    check(road in roads["completion"]["values"], "completion/complete road", roads)

    prompts = dump(await session.list_prompts())
    names = [p["name"] for p in prompts["prompts"]]
    check(names == ["incident_briefing", "corridor_report"], "prompts/list", names)
    briefing = dump(await session.get_prompt("incident_briefing", {"sensor_id": sensor, "hours": "6"}))
    text = briefing["messages"][0]["content"]["text"]
    check("find_congestion" in text and sensor in text, "prompts/get incident_briefing", text[:120])
    report = dump(await session.get_prompt("corridor_report", {"road": road}))
    check("list_sensors" in report["messages"][0]["content"]["text"], "prompts/get corridor_report")

    state = dump(await session.call_tool("traffic_state", {"road": road}))
    check(
        not state.get("isError") and state["structuredContent"]["summary"]["lanes"] >= 1,
        "tools/call traffic_state",
        state["content"][0]["text"],
    )
    found = dump(await session.call_tool(
        "find_congestion",
        {"from": "2026-03-02T06:00:00Z", "to": "2026-03-02T08:00:00Z", "road": road},
    ))
    check(not found.get("isError") and "total" in found["structuredContent"], "tools/call find_congestion",
          found["content"][0]["text"])


async def main() -> int:
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stdio")
    target.add_argument("--http")
    parser.add_argument("--bearer", help="an access token sent as Authorization: Bearer (HTTP)")
    parser.add_argument("--sensor", required=True)
    parser.add_argument("--road", required=True)
    opts = parser.parse_args()
    if opts.stdio:
        params = StdioServerParameters(command="sh", args=["-c", "exec " + opts.stdio])
        async with stdio_client(params) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session_checks(session, opts.sensor, opts.road)
    else:
        headers = {"Authorization": f"Bearer {opts.bearer}"} if opts.bearer else {}
        # mcp 1.x takes the headers; 2.x takes an HTTP client (the SDK's own) that carries them.
        if "headers" in inspect.signature(http_client).parameters:
            client = http_client(opts.http, headers=headers)
        else:
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = http_client(opts.http, http_client=create_mcp_http_client(headers=headers))
        async with client as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session_checks(session, opts.sensor, opts.road)
    print(f"{'stdio' if opts.stdio else 'http'}: {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
