# Sourced by tools/gpu_check.sh and tools/bench_gpu.sh on a GPU machine: the binaries of
# gpu-bundle/ (tools/gpu_bundle.sh, built on the CPU machine) and the libraries they need, the
# bundle's own unpacked into a temporary folder, CUDA's and cuDNN's from the toolkit or from
# PyTorch's nvidia-* packages. Sets F (finch), T (finch_tests), LD_LIBRARY_PATH, and gpu_lib_dir
# (remove it when done); defines step, which runs one part of a script whatever the others did.
# The caller sets log (a file) before calling step.
bundle=${BUNDLE:-gpu-bundle}
if [ ! -x "$bundle/finch" ] || [ ! -f "$bundle/libs.tar.gz" ]; then
    echo "no $bundle/finch or $bundle/libs.tar.gz: run tools/gpu_bundle.sh on the CPU machine and carry $bundle" >&2
    return 1 2>/dev/null || exit 1
fi
F="$bundle/finch" T="$bundle/finch_tests"
gpu_lib_dir=$(mktemp -d /tmp/finch-libs.XXXXXX)
tar -C "$gpu_lib_dir" -xzf "$bundle/libs.tar.gz"
_dirs="$gpu_lib_dir"
_nvcc_home=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
for _d in "$_nvcc_home/lib64" "$_nvcc_home/lib" /usr/local/cuda/lib64; do [ -d "$_d" ] && _dirs="$_dirs:$_d"; done
for _pkg in cudnn cublas cuda_runtime cu13; do
    _d=$(python3 -c "import nvidia.$_pkg as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null) &&
        [ -d "$_d" ] && _dirs="$_dirs:$_d"
done
export LD_LIBRARY_PATH="$_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _dirs _nvcc_home _d _pkg

rows=()
failed=0
# step NAME LIMIT_S COMMAND...: runs it with a time limit, its output appended to $log; records
# PASS or FAIL and the seconds it took in rows[] (printed by steps_summary) and counts failures
step() {
    local name=$1 limit=$2
    shift 2
    echo "=== $name: $*" | tee -a "$log"
    local t0=$SECONDS rc verdict=PASS
    timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >>"$log" 2>&1   # bash: commands or exported functions
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict="FAIL (timed out after ${limit}s)"
    elif [ $rc -ne 0 ]; then verdict="FAIL (exit $rc)"; fi
    [ "$verdict" = PASS ] || failed=$((failed + 1))
    rows+=("$(printf '%-40s %-28s %5ds' "$name" "$verdict" $((SECONDS - t0)))")
    echo "=== $name: $verdict in $((SECONDS - t0)) s" | tee -a "$log"
}
# a finch_tests run that fails when any test failed or skipped (a skipped GPU half means no device)
tests() {
    local out rc
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    [ $rc -eq 0 ] && printf '%s\n' "$out" | tail -1 | grep -q ' 0 failed, 0 skipped'
}
export -f tests
steps_summary() {
    echo "$1, $(date -u '+%Y-%m-%d %H:%M UTC'), bundle from $(tr '\n' ' ' <"$bundle/commit" 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
    printf '%s\n' "${rows[@]}"
    echo "$failed step(s) failed; full output: $log"
}
