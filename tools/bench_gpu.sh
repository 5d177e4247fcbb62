#!/usr/bin/env bash
# The GPU benchmark of issue 3, in one run on a machine with a GPU, nvcc and PyTorch:
# builds finch for sm_90, runs the GPU parity tests, times finch's networks in fp32 and TF32
# (finch bench --models --device cuda) and the same networks in PyTorch (tools/bench_torch.py),
# and writes the comparison table. Usage: tools/bench_gpu.sh [OUT_DIR]   (default $OUT or build/bench-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-build/bench-gpu}}
mkdir -p "$out"
reps=${REPS:-50}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
# cuDNN: beside the toolkit, or else inside the Python packages (nvidia-cudnn-cu*)
nvcc_dir=$(dirname "$(dirname "$(command -v nvcc)")")
cudnn_home=${CUDNN_HOME:-$nvcc_dir}
if [ ! -f "$cudnn_home/include/cudnn.h" ]; then
    cudnn_home=$(python3 -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])')
fi
echo "cuDNN from $cudnn_home" | tee -a "$out/device.txt"
make -j"$(nproc)" CUDA=1 CUDNN_HOME="$cudnn_home" build/finch build/finch_tests 2>&1 | tail -3
# the GPU halves of the parity tests (they skip without a device)
build/finch_tests kernels_agree 2>&1 | tee "$out/parity.txt"
build/finch_tests training_steps_match 2>&1 | tee -a "$out/parity.txt"
build/finch bench --models --device cuda --reps "$reps" --json "$out/finch_fp32.json"
build/finch bench --models --device cuda --tf32 --reps "$reps" --json "$out/finch_tf32.json"
python3 tools/bench_torch.py --reps "$reps" --finch "$out/finch_fp32.json" --finch-tf32 "$out/finch_tf32.json" \
    --json "$out/torch.json" --markdown "$out/table.md"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%d)" | tee -a "$out/table.md"
