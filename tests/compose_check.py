"""Checks Compose files against the Compose Specification's JSON Schema and against the code.

For each file: it validates against the schema. For each service built from the Dockerfile:
its command is a binary the Dockerfile installs, and that binary accepts the command's
subcommand and flags (`--help` after them exits 0); every environment variable it sets is one
the binary reads (its `--help` lists it as `[env: NAME=…]`); the port it listens on is the one
its `ports`, health check and the other services' URLs name. Across the file: images carry a
pinned tag, `depends_on` and `MCP_URL` name services that exist, and named volumes are declared.

    python compose_check.py BIN_DIR FILES...

Each FILES is one file or several joined by commas, merged as `docker compose -f … -f …`
merges them (services and volumes by name), as the dev container uses compose.yaml with its own.
"""

import json
import pathlib
import re
import subprocess
import sys
from urllib.parse import urlparse

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests/fixtures/compose-spec/compose-spec.json").read_text())
# Read by the processes but not through their command line.
ENV_BEYOND_CLI = {"RUST_LOG", "MIMALLOC_PURGE_DELAY"}
BINARIES = ("ingest", "mcp-classifier")


def env_names(binary: pathlib.Path) -> set[str]:
    """Every variable the binary's commands read, from their help."""
    names = set()
    top = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    listed = top.split("Commands:")[-1].split("Options:")[0]
    commands = [None] + [c for c in re.findall(r"^  ([a-z][a-z-]*)\s{2,}", listed, re.M) if c != "help"]
    for command in commands:
        args = [binary] + ([command] if command else []) + ["--help"]
        text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        names |= set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", text))
    return names | ENV_BEYOND_CLI


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def load(files: str, problems: list[str]) -> dict:
    """The files, each valid by the schema, merged in order."""
    merged: dict = {"services": {}, "volumes": {}}
    for file in files.split(","):
        doc = yaml.safe_load((ROOT / file).read_text())
        for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(doc):
            problems.append(f"{file}: {'/'.join(map(str, error.path))}: {error.message}")
        for name, service in (doc.get("services") or {}).items():
            merged["services"].setdefault(name, {}).update(service)
        merged["volumes"].update(doc.get("volumes") or {})
    return merged


def check(path: str, doc: dict, bins: pathlib.Path, problems: list[str]) -> None:
    services = doc.get("services", {})
    dockerfile = (ROOT / "Dockerfile").read_text()
    envs = {b: env_names(bins / b) for b in BINARIES}
    declared_volumes = set((doc.get("volumes") or {}).keys())
    listening = {}  # service → port it listens on
    for name, service in services.items():
        where = f"{path}: service {name}"
        image = service.get("image")
        if image and (":" not in image or image.endswith(":latest")):
            problems.append(f"{where}: image {image} has no pinned tag")
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                problems.append(f"{where}: depends on {dependency}, which is not a service")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "$")) and source not in declared_volumes:
                problems.append(f"{where}: volume {source} is not declared")
        if "build" not in service:
            continue
        command = service.get("command") or []
        binary = command[0] if command else ""
        if binary not in BINARIES:
            problems.append(f"{where}: runs {binary!r}, not a binary of the workspace")
            continue
        if f"target/release/{binary}" not in dockerfile:
            problems.append(f"{where}: the Dockerfile does not install {binary}")
        accepted = subprocess.run([bins / binary, *command[1:], "--help"], capture_output=True, text=True)
        if accepted.returncode != 0:
            problems.append(f"{where}: `{' '.join(command)}` is refused: {accepted.stderr.strip()[:300]}")
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for variable in env:
            if variable not in envs[binary]:
                problems.append(f"{where}: {binary} reads no variable {variable}")
        bind = env.get("INGEST_BIND") if binary == "ingest" else None
        if "--bind" in command:
            bind = command[command.index("--bind") + 1]
        if bind:
            listening[name] = port_of(bind)
            for mapping in service.get("ports") or []:
                inside = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
                if inside != listening[name]:
                    problems.append(f"{where}: publishes port {inside}, listens on {listening[name]}")
            probe = " ".join((service.get("healthcheck") or {}).get("test") or [])
            for url in re.findall(r"https?://[^\s\"']+", probe):
                if urlparse(url).port != listening[name]:
                    problems.append(f"{where}: health check {url} is not its port {listening[name]}")
    # URLs naming another service, in settings or in the command: its name and its port.
    for name, service in services.items():
        env = service.get("environment") or {}
        values = [str(v) for v in (env.values() if isinstance(env, dict) else env)]
        values += [str(arg) for arg in service.get("command") or []]
        for url in re.findall(r"https?://[^\s,\"']+", " ".join(values)):
            target = urlparse(url)
            if target.hostname in ("127.0.0.1", "localhost") or "@" in target.netloc:
                continue
            if target.hostname not in services:
                problems.append(f"{path}: service {name}: {url} names {target.hostname}, not a service")
            elif target.hostname in listening and listening[target.hostname] != target.port:
                problems.append(f"{path}: service {name}: {url} is not where {target.hostname} listens")


def main() -> int:
    bins = pathlib.Path(sys.argv[1]).resolve()
    problems: list[str] = []
    for files in sys.argv[2:]:
        check(files, load(files, problems), bins, problems)
    for problem in problems:
        print(f"compose_check: {problem}", file=sys.stderr)
    print(f"compose_check: {len(sys.argv) - 2} layouts, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
