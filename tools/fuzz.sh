#!/bin/sh
# Runs each reader's fuzzer (build-fuzz/fuzz_<reader>, from make fuzz-build) for SECONDS, from its
# committed corpus (fuzz/corpus/<reader>, read only) plus what earlier runs found
# (build-fuzz/corpus/<reader>, where new inputs go). Limits: 1 GB of memory (a larger allocation
# counts as a failure) and 10 s per input, the promise of docs/RELIABILITY.md. A crash leaves its
# input in build-fuzz/crashes/. Prints one line per reader and writes build-fuzz/fuzz.json.
#
#   sh tools/fuzz.sh SECONDS READER...
#   sh tools/fuzz.sh minimize READER...    (merges what was found into fuzz/corpus/<reader>)
#
# FUZZ_RUNS=N also stops each reader after N executions (the project's target: 10 million or 30
# CPU-minutes, whichever comes first); FUZZ_JSON names the results file, so that two runs on
# two cores do not write the same one.
set -u
secs=$1; shift
mkdir -p build-fuzz/crashes
out_json=${FUZZ_JSON:-build-fuzz/fuzz.json}
json=$out_json.tmp
runs_cap=${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
echo "[" > "$json"
failed=0; first=1
for r in "$@"; do
    bin=build-fuzz/fuzz_$r
    [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz-build)" >&2; exit 1; }
    mkdir -p "build-fuzz/corpus/$r" "fuzz/corpus/$r"
    if [ "$secs" = minimize ]; then
        mkdir -p "build-fuzz/min/$r"
        "$bin" -merge=1 -rss_limit_mb=1024 -timeout=10 "build-fuzz/min/$r" "fuzz/corpus/$r" "build-fuzz/corpus/$r" \
            > "build-fuzz/$r.merge.log" 2>&1 || { echo "fuzz: $r: merge failed (build-fuzz/$r.merge.log)" >&2; exit 1; }
        rm -rf "fuzz/corpus/$r" && mv "build-fuzz/min/$r" "fuzz/corpus/$r"
        echo "$r: $(ls "fuzz/corpus/$r" | wc -l) inputs kept in fuzz/corpus/$r"
        continue
    fi
    log=build-fuzz/$r.log
    t0=$(date +%s)
    "$bin" -max_total_time="$secs" $runs_cap -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/crashes/$r-" "build-fuzz/corpus/$r" "fuzz/corpus/$r" > "$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - t0 ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    status=ok
    [ $rc -ne 0 ] && { status="FAILED (exit $rc; $log, build-fuzz/crashes/$r-*)"; failed=$((failed + 1)); }
    printf '%-12s %10s runs  %6s s  %7s exec/s  coverage %5s  %s\n' "$r" "${runs:-?}" "$took" "${rate:-?}" "${cov:-?}" "$status"
    [ $first = 1 ] || echo "," >> "$json"
    first=0
    printf '  {"reader": "%s", "seconds": %s, "runs": %s, "exec_per_s": %s, "coverage": %s, "ok": %s}' "$r" "$took" \
        "${runs:-0}" "${rate:-0}" "${cov:-0}" "$([ $rc -eq 0 ] && echo true || echo false)" >> "$json"
done
[ "$secs" = minimize ] && exit 0
printf '\n]\n' >> "$json"
mv "$json" "$out_json"
[ $failed -eq 0 ] || { echo "fuzz: $failed reader(s) failed" >&2; exit 1; }
echo "fuzz: every reader ran${FUZZ_RUNS:+ up to $FUZZ_RUNS executions or} $secs s without a failure ($out_json)"
