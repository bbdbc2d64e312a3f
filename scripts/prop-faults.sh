#!/usr/bin/env bash
# How well `prop` finds the reference server's named faults: for every fault (or those named
# as arguments), `prop --embedded --inject-fault NAME --cases CASES --seed S` for each seed,
# then one table row per fault: the seeds that found it, the median index of the first failing
# case among them, and the median number of operations of the shrunk sequence.
#
#   scripts/prop-faults.sh [FAULT...]
#
# Environment: BIN (default target/debug/tidewire-conform, built first when absent), SEEDS
# (default "1 2 3 4 5"), CASES (default 200), JOBS (runs at once, default 2), OUT (directory
# of the per-run logs, default a fresh temporary one; a run whose log there already ends in a
# verdict is not repeated, so an interrupted measurement continues where it stopped), REPORT_ONLY
# (set: print the table from the logs in OUT without running anything). A fault found by fewer
# than 3 seeds is marked MISSED; the exit status is 1 when any is.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug/tidewire-conform}
SEEDS=${SEEDS:-1 2 3 4 5}
CASES=${CASES:-200}
JOBS=${JOBS:-2}
OUT=${OUT:-$(mktemp -d -t prop-faults.XXXXXX)}
mkdir -p "$OUT"

if [[ ! -x $BIN ]]; then
    cargo build -p tidewire-conform
fi

if (($# > 0)); then
    faults=("$@")
else
    # The catalogue as the binary knows it: the possible values of --inject-fault.
    mapfile -t faults < <("$BIN" prop --help |
        tr -d '\n' |
        sed -n 's/.*--inject-fault <NAME>[^[]*\[possible values: \([^]]*\)\].*/\1/p' |
        tr ',' '\n' | tr -d ' ' | grep -v '^$')
fi
if ((${#faults[@]} == 0)); then
    echo "no faults to measure" >&2
    exit 2
fi

run_one() {
    local fault=$1 seed=$2
    local log="$OUT/$fault.$seed.log"
    if [[ -f $log ]] && grep -q '^prop: \(FAILED\|.* passed\)' "$log"; then
        return
    fi
    "$BIN" prop --embedded --inject-fault "$fault" --cases "$CASES" --seed "$seed" \
        --out "$OUT/$fault.$seed.failure.json" >"$log" 2>&1 || true
}
export -f run_one
export BIN CASES OUT

# Seed by seed, so that a measurement cut short has as many seeds of every fault as it could.
[[ -n ${REPORT_ONLY:-} ]] || for seed in $SEEDS; do
    for fault in "${faults[@]}"; do
        echo "$fault $seed"
    done
done | xargs -P "$JOBS" -L 1 bash -c 'run_one "$0" "$1"'

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

nseeds=$(wc -w <<<"$SEEDS")
missed=0
printf '%-34s %-7s %-12s %-11s %s\n' fault found "first case" "shrunk ops" seeds
for fault in "${faults[@]}"; do
    found=()
    firsts=()
    sizes=()
    for seed in $SEEDS; do
        log="$OUT/$fault.$seed.log"
        [[ -f $log ]] || continue
        first=$(sed -n 's/^prop: FAILED at case \([0-9]*\).*/\1/p' "$log" | head -n 1)
        if [[ -n $first ]]; then
            found+=("$seed")
            firsts+=("$first")
            sizes+=("$(sed -n 's/^prop: shrunk to \([0-9]*\) operation.*/\1/p' "$log" | head -n 1)")
        elif grep -q '^prop: FAILED the graceful shutdown' "$log"; then
            # The shutdown case after the sequences: one operation, never shrunk.
            found+=("$seed")
            firsts+=("$((CASES + 1))")
            sizes+=(1)
        elif ! grep -q '^prop: .* passed' "$log"; then
            # Neither passed nor failed: the run could not be set up.
            found+=("$seed?")
        fi
    done
    n=0
    for s in "${found[@]}"; do [[ $s == *'?' ]] || n=$((n + 1)); done
    mark=""
    if ((n < 3)); then
        mark=" MISSED"
        missed=1
    fi
    printf '%-34s %-7s %-12s %-11s %s%s\n' "$fault" "$n/$nseeds" \
        "$(printf '%s\n' "${firsts[@]}" | grep -v '^$' | median)" \
        "$(printf '%s\n' "${sizes[@]}" | grep -v '^$' | median)" \
        "${found[*]:-}" "$mark"
done
echo "logs in $OUT"
exit "$missed"
