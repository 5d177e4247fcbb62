#!/bin/bash
# Data parallelism on this machine (docs/DISTRIBUTED.md): 2 MPI ranks of 1 thread against 1 process
# of 2 threads, each training on the same global batches, alternated REPS times (default 3):
#   demo      the small CNN on 12,800 Fashion-MNIST images, batch 256 (50 steps)
#   resnet18  torchvision's ResNet-18 (11.2 M parameters with 10 classes: a 45 MB gradient to sum
#             every step) on 1,024 Fashion-MNIST images (upsampled to its 32 x 32 minimum), batch 64
#             (16 steps)
# Prints images/s per run, the medians and their ratio, and rank 0's share of time spent
# waiting for gradient sums after the backward.
#
#   bash tools/dist_bench.sh [FINCH] [REPS]
set -eu
FINCH=${1:-build/finch}
REPS=${2:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2"
DEMO="--model small_cnn --limit 12800 --batch 256 --epochs 1 --workers 1"
RESNET="--model resnet18 --limit 1024 --batch 64 --epochs 1 --workers 1"
rate() { grep -o '"images_per_s":[^,}]*' "$1/train.json" | head -1 | sed 's/.*:\s*//'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for net in demo resnet18; do
  flags=$([ $net = demo ] && echo "$DEMO" || echo "$RESNET")
  one=() two=()
  for r in $(seq "$REPS"); do
    $FINCH train $flags --threads 2 --quiet --out "$OUT/$net-one-$r" > /dev/null
    one+=("$(rate "$OUT/$net-one-$r")")
    $MPIRUN $FINCH train $flags --threads 1 --out "$OUT/$net-two-$r" > "$OUT/$net-two-$r.log" 2>&1
    two+=("$(rate "$OUT/$net-two-$r")")
    wait_line=$(grep -o 'data-parallel: [0-9.]* s of the epoch.*' "$OUT/$net-two-$r.log" | head -1)
    echo "$net run $r: 1 x 2 threads ${one[-1]} img/s, 2 x 1 thread ${two[-1]} img/s; $wait_line"
  done
  m1=$(median "${one[@]}"); m2=$(median "${two[@]}")
  echo "$net: median of $REPS, 1 rank x 2 threads $m1 img/s, 2 ranks x 1 thread $m2 img/s, ratio $(awk -v a="$m2" -v b="$m1" 'BEGIN { printf "%.2f", a / b }')"
done
