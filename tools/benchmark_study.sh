#!/bin/sh
# The robustness benchmark of Su et al. (ECCV 2018; ../shared/MISSION.md, section 3) on
# Fashion-MNIST with finch's own architectures: six models of different families and sizes,
# then finch benchmark over them (docs/BENCHMARK.md).
#
#   sh tools/benchmark_study.sh [OUT_DIR] [FINCH] [LIMIT]
#
# LIMIT (default 0: all 60,000) trains on the first LIMIT images only: a smoke run. Each step
# is skipped when its result is there, so an interrupted study continues. The benchmark's
# settings are reduced to fit an hour on two cores: CLEVER on 20 images, 50 batches of 128
# samples, the runner-up class as the target (CLEVER's top-2), where the reference's 500 x 1,024
# over every class would take hours on a CPU; C&W-L2 and EAD with 5 binary-search steps of 100
# iterations (finch's default, 9 x 1,000, took about 20 minutes a small model under load).
set -e
OUT=${1:-runs/benchmark}
FINCH=${2:-build/finch}
LIMIT=${3:-0}
start=$(date +%s)
mkdir -p "$OUT"
train() {   # name, then finch train's flags
  name=$1; shift
  [ -f "$OUT/$name/train.json" ] || $FINCH train "$@" --limit "$LIMIT" --quiet --out "$OUT/$name"
}
train cnn16 --model small_cnn --epochs 3
train cnn32 --model small_cnn --width 32 --epochs 3
train vgg --model vgg11_bn --vgg-cfg 16,M,32,M,64,M --width 4 --epochs 3
train resnet --model resnet18 --width 16 --blocks 1,1,1,1 --epochs 3
train densenet --model densenet121 --width 8 --blocks 2,2,2,2 --stem 16 --epochs 3
train cnn16-fgsm-rs --model small_cnn --epochs 3 --adv fgsm-rs --eps 0.1 --alpha 0.125
trained=$(date +%s)
echo "models trained in $((trained - start)) s"
models="$OUT/cnn16,$OUT/cnn32,$OUT/vgg,$OUT/resnet,$OUT/densenet,$OUT/cnn16-fgsm-rs"
$FINCH benchmark --models "$models" --out "$OUT/bench" --limit 100 --eps 0.1 --steps 10 --cw-steps 100 --search-steps 5 \
    --clever-limit 20 --batches 50 --samples 128 --clever-target top-2 --transfer-limit 200
$FINCH transfer --models "$models" --attack ifgsm --eps 0.1 --steps-list 1,2,5,10 --limit 200 --out "$OUT/transfer-steps" --quiet
echo "benchmark in $(( $(date +%s) - trained )) s; results: $OUT/bench/benchmark.md, $OUT/transfer-steps/transfer.md"
