"""Runs the shell blocks of README.md and docs/*.md marked runnable, against a live service.

A block is runnable when the line before its ```sh fence is `<!-- runnable -->`. Each runs in
bash with -euo pipefail, in the live service's working directory (its SQLite file is
`smart_traffic.db`, as in the quickstart), with `curl` failing on any HTTP error. What a reader
types for their own machine is adapted: `localhost:8080` becomes the live service's address and
`cargo run --release -p ingest --` the built binary. Blocks that start servers, build release
binaries, run benchmarks for minutes or need Docker are not marked.

    python docs_check.py BIN_DIR WORK_DIR PORT
"""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRELUDE = 'curl() { command curl --fail-with-body --max-time 60 "$@"; }\n'


def runnable_blocks():
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = md.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "<!-- runnable -->":
                continue
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```sh"):
                raise SystemExit(f"{md.name}:{i + 1}: a runnable mark must stand before a ```sh block")
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            yield f"{md.relative_to(ROOT)}:{i + 2}", "\n".join(lines[i + 2:end])


def adapt(block: str, bins: pathlib.Path, port: str) -> str:
    block = re.sub(r"\b(localhost|127\.0\.0\.1):8080\b", f"127.0.0.1:{port}", block)
    return block.replace("cargo run --release -p ingest --", str(bins / "ingest"))


def main() -> int:
    bins, work, port = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]
    failed = 0
    blocks = list(runnable_blocks())
    for where, block in blocks:
        script = PRELUDE + adapt(block, bins, port)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work,
                              capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                   "INGEST_URL": f"http://127.0.0.1:{port}"})
        status = "ok" if done.returncode == 0 else f"FAILED ({done.returncode})"
        print(f"docs_check: {where}: {status}")
        if done.returncode != 0:
            failed += 1
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    print(f"docs_check: {len(blocks)} blocks run, {failed} failed")
    return 1 if failed or not blocks else 0


if __name__ == "__main__":
    sys.exit(main())
