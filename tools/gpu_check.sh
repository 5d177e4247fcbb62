#!/usr/bin/env bash
# Run 1 of the GPU work (issue 12): does finch's CUDA backend run, and agree with the CPU?
# On a GPU machine, from the repository root, with gpu-bundle/ made by tools/gpu_bundle.sh on
# the CPU machine (binaries built there, since this machine lacks finch's Debian libraries):
#
#   bash tools/gpu_check.sh [OUT_DIR]        (default $OUT, else build/gpu-check)
#
# Every step runs, whatever the one before it did; each has a time limit. At the end a table
# says PASS or FAIL per step. Written to OUT_DIR (three files, so a lent machine sends them all
# back): gpu_check.log (every step's output), summary.txt (the table), runs.tar.gz (the run
# directories: train.json, robustness.json, push pictures).
# Needs no dataset: the CLI steps use --data synthetic. Sizes: SCALE=2 doubles the work.
# DEVICE=cpu runs the command-line steps on the CPU: a dry run of this script without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-build/gpu-check}}
mkdir -p "$out"
log="$out/gpu_check.log" summary="$out/summary.txt"
: >"$log"
work=$(mktemp -d /tmp/finch-gpu-check.XXXXXX)
scale=${SCALE:-1}
dev=${DEVICE:-cuda}
# --- the machine and the libraries -------------------------------------------------------------
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
command -v nvcc >/dev/null && nvcc --version | tail -2 | tee -a "$log"
source tools/gpu_common.sh || exit 1
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$log"
echo "bundle built from commit $(tr '\n' ' ' <"$bundle/commit" 2>/dev/null)" | tee -a "$log"
step "libraries resolve (ldd)" 30 bash -c "ldd $F $T; ! ldd $F $T | grep -q 'not found'"
step "device visible (finch device)" 60 "$F" device

# --- the tests that have a CUDA path -------------------------------------------------------------
# a test that skipped its GPU half (no device) fails here: the runner must end "0 failed, 0 skipped"
step "op parity, CPU vs CUDA (1e-5)" 300 tests $T kernels_agree
step "50 training steps GPU = CPU" 300 tests $T training_steps_match
step "labels checked on the GPU" 60 tests $T labels_out_of_range
step "NCCL all-reduce, one rank (issue 22)" 120 tests $T dist_nccl
if command -v compute-sanitizer >/dev/null; then
    step "op parity under memcheck" 500 tests compute-sanitizer --tool memcheck --error-exitcode 9 $T kernels_agree
else
    rows+=("$(printf '%-40s %-28s' "op parity under memcheck" "SKIPPED (no compute-sanitizer)")")
fi

# --- the command line on the GPU, synthetic data ---------------------------------------------------
step "demo --device $dev" 300 "$F" demo --device $dev --data synthetic --epochs 1 --adv-epochs 1 --attack-n $((500 * scale)) \
    --quiet --out "$work/demo"
proto="--data synthetic --limit $((4000 * scale)) --epochs 3 --warm-epochs 1 --push-start 2 --push-every 1 --last-iters 3 --batch 64 --quiet"
step "ProtoPNet staged training + push" 300 "$F" train --model protopnet-small_cnn $proto --device $dev --out "$work/protopnet"
step "Ours-FR staged training + push" 300 "$F" train --model ours-fr-small_cnn $proto --device $dev --out "$work/ours-fr"
for kind in protopnet ours-fr; do
    for d in $dev cpu; do
        step "attack --suite paper $kind ($d)" 300 "$F" attack --run "$work/$kind" --data synthetic --suite paper \
            --eps-list 0.05,0.1 --limit $((500 * scale)) --device $d --out "$work/$kind/suite-$d" --quiet
    done
    # same model, same images: the suite's accuracies on the two devices should agree closely
    # (not bit for bit: a float32 tie can flip an argmax); more than 2 points apart fails
    step "suite $kind: GPU vs CPU within 2 pts" 30 python3 - "$work/$kind/suite-$dev/robustness.json" "$work/$kind/suite-cpu/robustness.json" <<'EOF'
import json, sys
g, c = (json.load(open(p)) for p in sys.argv[1:3])
worst = 0
for rg, rc in zip(g["rows"], c["rows"]):
    for k, v in rg.items():
        if isinstance(v, (int, float)) and k in rc and k not in ("images", "eps", "seconds"):
            d = 100 * abs(v - rc[k])
            print(f"eps {rg.get('eps')}: {k}: gpu {v} cpu {rc[k]}")
            worst = max(worst, d)
print(f"largest difference {worst:.2f} points")
sys.exit(worst > 2)
EOF
done

tar -C "$work" --exclude='checkpoint.safetensors' --exclude='epoch-*.safetensors' -czf "$out/runs.tar.gz" . 2>>"$log"
steps_summary "finch GPU check" | tee "$summary"
rm -rf "$work" "$gpu_lib_dir"
exit $((failed > 0))
