#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for FUZZ_SECONDS seconds (default 50) from its committed seeds
# (fuzz/seeds/<target>/). New corpus entries go to a temporary directory, never into the
# seeds; a crashing input is kept under fuzz/artifacts/<target>/ and named in the output.
# Prints one line per target, then `N passed, M failed`; exits non-zero if any target failed.
#
# cargo-fuzz needs unstable flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-50}
export RUSTC_BOOTSTRAP=1

# The fuzz build (sanitizers, coverage) must not share the workspace's build directory. It
# builds every dependency again with those flags (half an hour on two cores), so by default it
# is kept outside the checkout, in the user's cache, where the next checkout finds it and
# rebuilds only the project's own crates; FUZZ_TARGET_DIR puts it elsewhere.
if [[ -n ${FUZZ_TARGET_DIR:-} ]]; then
    target_dir=$FUZZ_TARGET_DIR
elif [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    target_dir=$CARGO_TARGET_DIR/fuzz
else
    target_dir=${XDG_CACHE_HOME:-$HOME/.cache}/smart-traffic/fuzz-target
fi
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Each target and the longest input it is given.
targets=(reading batch_split gzip mcp_lines tool_args cursor jwt)
declare -A max_len=(
    [reading]=4096
    [batch_split]=16384
    [gzip]=8192
    [mcp_lines]=8192
    [tool_args]=16384
    [cursor]=256
    [jwt]=2048
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=$SECONDS
cd fuzz
echo "building ${#targets[@]} fuzz targets into $target_dir"
cargo fuzz build --target-dir "$target_dir"
built=$SECONDS

passed=0
failed=0
failures=()
for target in "${targets[@]}"; do
    corpus=$work/corpus/$target
    artifacts=$root/fuzz/artifacts/$target
    log=$work/$target.log
    mkdir -p "$corpus" "$artifacts"
    status=0
    # The first corpus directory receives what the run finds; the seeds are only read.
    cargo fuzz run --target-dir "$target_dir" "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="${max_len[$target]}" \
        -timeout=25 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
    if [[ $status -eq 0 ]]; then
        result=ok
        passed=$((passed + 1))
    else
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="FAILED (exit $status): ${crash:-no input written}"
        failed=$((failed + 1))
        failures+=("$target")
        echo "--- $target: last lines of its log" >&2
        tail -n 40 "$log" >&2
    fi
    printf '%-12s runs: %-10s cov: %-6s %s\n' "$target" "${runs:-?}" "${cov:-?}" "$result"
done

echo "built in $((built - started)) s; fuzzed ${#targets[@]} targets for $seconds s each in $((SECONDS - built)) s"
if [[ $failed -gt 0 ]]; then
    echo "failed: ${failures[*]} (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input>, in fuzz/)"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
