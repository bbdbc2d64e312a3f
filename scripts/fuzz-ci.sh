#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time from the checked-in
# corpus (fuzz/corpus/<target>/). A crash, a timeout or an out-of-memory fails
# the run; the reproducer is left in fuzz/artifacts/<target>/ and its path is
# printed. Copy it to fuzz/regressions/<target>/ once fixed, so that
# `cargo test -p tidewire-fuzz-checks` keeps it.
#
#   FUZZ_SECONDS   seconds per target (default 20: ten targets stay near
#                  six minutes with the build)
#   FUZZ_TARGETS   space-separated targets to run (default: all)
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -qF "$cargo_fuzz_version"; then
    echo "fuzz-ci: installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

cd fuzz
start=$(date +%s)
# No sanitizer: the stable toolchain builds the targets, and the code under
# test forbids unsafe.
cargo fuzz build -s none
echo "fuzz-ci: built the targets in $(($(date +%s) - start)) s"

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $targets; do
    # The run adds inputs to its corpus directory; the checked-in one stays as it is.
    mkdir -p "$work/$target" "artifacts/$target"
    if [ -d "corpus/$target" ]; then
        cp -r "corpus/$target/." "$work/$target/"
    fi
    log="$work/$target.log"
    echo "fuzz-ci: $target for ${seconds} s"
    if cargo fuzz run -s none "$target" "$work/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done ' "$log" | tr '\n' ' ' | sed "s/^/fuzz-ci: $target: /"
        grep -E '#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | sed "s/^/    /"
    else
        failed+=("$target")
        tail -n 60 "$log"
        for artifact in "artifacts/$target"/*; do
            [ -e "$artifact" ] && echo "fuzz-ci: $target failed; reproducer: fuzz/$artifact"
        done
    fi
done

echo "fuzz-ci: finished in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-ci: FAILED: ${failed[*]}"
    echo "fuzz-ci: reproduce with: cd fuzz && cargo fuzz run -s none <target> <reproducer>"
    exit 1
fi
