"""Runs the shell blocks of README.md and docs/*.md marked runnable, against a live service.

A block is runnable when the line before its ```sh fence marks it:

- `<!-- runnable -->`: it must finish with status 0;
- `<!-- runnable: endless -->` (a stream a reader stops with Ctrl-C): it must still be running,
  without error, after a few seconds;
- `<!-- runnable: serves PORT -->` (a server): with PORT replaced by a free port (and the
  listen-address variables set to it, for commands that rely on the default), something must
  accept connections there within the start-up time; then it is stopped.

Each runs in bash with -euo pipefail, in the live service's working directory (its SQLite file
is `smart_traffic.db`, as in the quickstart), with `curl` failing on any HTTP error. What a
reader types for their own machine is adapted: `localhost:8080` becomes the live service's
address and `cargo run --release -p ingest` the built binary. Blocks that need Docker or run
benchmarks for minutes are not marked.

    python docs_check.py BIN_DIR WORK_DIR PORT
"""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRELUDE = 'curl() { command curl --fail-with-body --max-time 60 "$@"; }\n'


def runnable_blocks():
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = md.read_text().splitlines()
        for i, line in enumerate(lines):
            mark = re.fullmatch(r"<!-- runnable(?:: (endless|serves \d+))? -->", line.strip())
            if not mark:
                continue
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```sh"):
                raise SystemExit(f"{md.name}:{i + 1}: a runnable mark must stand before a ```sh block")
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            yield f"{md.relative_to(ROOT)}:{i + 2}", mark.group(1) or "", "\n".join(lines[i + 2:end])


def adapt(block: str, bins: pathlib.Path, port: str) -> str:
    block = re.sub(r"\b(localhost|127\.0\.0\.1):8080\b", f"127.0.0.1:{port}", block)
    block = re.sub(r"cargo run --release -p ingest( --)?", str(bins / "ingest"), block)
    return re.sub(r"(?<![\w/])mcp-classifier ", f"{bins / 'mcp-classifier'} ", block)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_background(script: str, work: str, env: dict, ready) -> tuple[bool, str]:
    """Starts `script`; true when `ready()` holds within the start-up time while it runs."""
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    ok = False
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            ok = True
            break
        time.sleep(0.2)
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    return ok and alive, output


def main() -> int:
    bins, work, port = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]
    failed = 0
    blocks = list(runnable_blocks())
    for where, mode, block in blocks:
        script = PRELUDE + adapt(block, bins, port)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "INGEST_URL": f"http://127.0.0.1:{port}"}
        if mode.startswith("serves"):
            own = free_port()
            script = re.sub(rf"\b{mode.split()[1]}\b", str(own), script)
            env |= {"INGEST_BIND": f"127.0.0.1:{own}", "MCP_BIND": f"127.0.0.1:{own}",
                    "DATABASE_URL": f"sqlite://{work}/docs-server-{own}.db"}
            ok, output = run_background(script, work, env, lambda: accepts(own))
        elif mode == "endless":
            started = time.monotonic()
            ok, output = run_background(script, work, env, lambda: time.monotonic() - started > 3)
        else:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work,
                                  capture_output=True, text=True, timeout=300, env=env)
            ok, output = done.returncode == 0, done.stdout + done.stderr
        print(f"docs_check: {where}{' (' + mode + ')' if mode else ''}: {'ok' if ok else 'FAILED'}")
        if not ok:
            failed += 1
            print(output[-3000:], file=sys.stderr)
    print(f"docs_check: {len(blocks)} blocks run, {failed} failed")
    return 1 if failed or not blocks else 0


if __name__ == "__main__":
    sys.exit(main())
