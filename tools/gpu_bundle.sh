#!/usr/bin/env bash
# Prepares, on the CPU machine (where nvcc and the Debian libraries are), what tools/gpu_check.sh
# needs on a GPU machine that has the CUDA toolkit, cuDNN and PyTorch but not Debian's OpenBLAS,
# cJSON, libpng or libjpeg:
#   gpu-bundle/finch, gpu-bundle/finch_tests   built for sm_90 (+ PTX), for any x86-64-v3 CPU
#   gpu-bundle/libs.tar.gz                     the shared libraries they need beyond glibc, the C++
#                                              runtime and CUDA's own (OpenBLAS, gfortran, cJSON, ...)
# (objects in build-gpu/). Usage: tools/gpu_bundle.sh, then on the GPU machine, carrying gpu-bundle:
# bash tools/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# -march=native would tie the binaries to this CPU; x86-64-v3 (AVX2, FMA) runs on any recent one
make -j"$(nproc)" CUDA=1 BUILD=build-gpu ARCH=-march=x86-64-v3 build-gpu/finch build-gpu/finch_tests >build-gpu.log 2>&1 ||
    { tail -20 build-gpu.log; echo "gpu_bundle: the build failed (whole log: build-gpu.log)" >&2; exit 1; }
rm -f build-gpu.log
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# what the GPU machine already has: glibc, the C++ runtime, and the CUDA libraries of its own toolkit
system='^(libc|libm|libdl|librt|libpthread|ld-linux-x86-64|libstdc\+\+|libgcc_s|libcudart|libcublas|libcublasLt|libcudnn)\.'
for lib in $(ldd build-gpu/finch build-gpu/finch_tests | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
    name=$(basename "$lib")
    [[ $name =~ $system ]] && continue
    cp -L "$lib" "$stage/$name"
done
rm -rf gpu-bundle.tmp && mkdir gpu-bundle.tmp
tar -C "$stage" -czf gpu-bundle.tmp/libs.tar.gz .
cp build-gpu/finch build-gpu/finch_tests gpu-bundle.tmp/
git rev-parse --short HEAD >gpu-bundle.tmp/commit 2>/dev/null || echo unknown >gpu-bundle.tmp/commit
git diff --quiet HEAD 2>/dev/null || echo "(with uncommitted changes)" >>gpu-bundle.tmp/commit
rm -rf gpu-bundle && mv gpu-bundle.tmp gpu-bundle
echo "gpu_bundle: gpu-bundle/ holds $(du -sh gpu-bundle | cut -f1): finch, finch_tests, libs.tar.gz with $(ls "$stage" | tr '\n' ' ')"
