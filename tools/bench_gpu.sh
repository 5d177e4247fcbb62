#!/usr/bin/env bash
# Run 2 of the GPU work (issue 12): finch against PyTorch on the same GPU, in one run. With
# gpu-bundle/ from tools/gpu_bundle.sh (built on the CPU machine) and PyTorch on this machine:
# the GPU parity tests, finch's networks in fp32 and TF32 (finch bench --models --device cuda)
# and the same networks in PyTorch (tools/bench_torch.py), then the comparison table.
#   tools/bench_gpu.sh [OUT_DIR]     (default $OUT, else build/bench-gpu); REPS=50 by default
# Every part runs whatever the others did (a failing parity test does not stop the timings);
# summary.txt says which parts failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-build/bench-gpu}}
mkdir -p "$out"
log="$out/bench_gpu.log"
: >"$log"
reps=${REPS:-50}
source tools/gpu_common.sh || exit 1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; "$F" device; } 2>&1 | tee "$out/device.txt"
step "op parity, CPU vs CUDA" 300 tests "$T" kernels_agree
step "50 training steps GPU = CPU" 300 tests "$T" training_steps_match
step "finch fp32" 300 "$F" bench --models --device cuda --reps "$reps" --json "$out/finch_fp32.json"
step "finch tf32" 300 "$F" bench --models --device cuda --tf32 --reps "$reps" --json "$out/finch_tf32.json"
step "PyTorch fp32 and tf32" 300 python3 tools/bench_torch.py --reps "$reps" --finch "$out/finch_fp32.json" \
    --finch-tf32 "$out/finch_tf32.json" --json "$out/torch.json" --markdown "$out/table.md"
echo "commit $(tr '\n' ' ' <"$bundle/commit"), $(date -u +%Y-%m-%d)" >>"$out/table.md"
cat "$out/table.md" 2>/dev/null
steps_summary "finch GPU benchmark" | tee "$out/summary.txt"
rm -rf "$gpu_lib_dir"
exit $((failed > 0))
