#!/bin/sh
# The Fashion-MNIST evidence of docs/FEATURE_ATTACKS.md: retrieval under U-turn's ODFA (single- and
# multi-scale, with the I-FGSM and MI-FGSM baselines, and black-box between two models) on a small
# CNN and a reduced ResNet, the 2-D feature picture, and Sabour's feature adversaries per layer.
#
#   sh tools/feature_study.sh [OUT_DIR] [FINCH]
#
# Each step is skipped when its result is there, so an interrupted study continues. Queries: the
# first QUERIES (1,000) test images against all 10,000 (classes as identities); PAIRS (100) feature
# adversary pairs; LIMIT (0: all) training images per model (a smoke run: LIMIT=512 QUERIES=20 PAIRS=4).
set -e
OUT=${1:-runs/features}
FINCH=${2:-build/finch}
Q=${QUERIES:-1000}
PAIRS=${PAIRS:-100}
LIMIT=${LIMIT:-0}
start=$(date +%s)
mkdir -p "$OUT"
train() {   # name, then finch train's flags
  name=$1; shift
  [ -f "$OUT/$name/train.json" ] || $FINCH train "$@" --limit "$LIMIT" --quiet --out "$OUT/$name"
}
train cnn --model small_cnn --epochs 3
train resnet --model resnet18 --width 16 --blocks 1,1,1,1 --epochs 3
train cnn2d --model small_cnn --feature-dim 2 --epochs 5
echo "models trained in $(( $(date +%s) - start )) s"
for model in cnn resnet; do
  [ -f "$OUT/$model/retrieval.json" ] || $FINCH retrieval --run "$OUT/$model" --quiet > /dev/null
  for attack in odfa odfa-ms bim mim; do
    [ -f "$OUT/$model/$attack/retrieval-attack.json" ] ||
        $FINCH attack --retrieval --run "$OUT/$model" --attack $attack --limit $Q --out "$OUT/$model/$attack" --quiet
  done
done
# black box: queries made on one model, ranked by the other's features
[ -f "$OUT/transfer-cnn-to-resnet/retrieval-attack.json" ] || $FINCH attack --retrieval --model-file "$OUT/cnn/model.safetensors" \
    --eval-model "$OUT/resnet/model.safetensors" --limit $Q --out "$OUT/transfer-cnn-to-resnet" --quiet
[ -f "$OUT/cnn/odfa-jpeg75/retrieval-attack.json" ] || $FINCH attack --retrieval --run "$OUT/cnn" --jpeg-quality 75 --limit $Q \
    --out "$OUT/cnn/odfa-jpeg75" --quiet
[ -f "$OUT/cnn2d/odfa/retrieval-attack.json" ] || $FINCH attack --retrieval --run "$OUT/cnn2d" --layer fc1 --eps 16/255 --limit $Q \
    --out "$OUT/cnn2d/odfa" --quiet
# Sabour's feature adversaries: a convolution, a pooling and a fully connected layer, two boxes
[ -f "$OUT/cnn/feature-adv/feature-adv.json" ] || $FINCH feature-adv --model-file "$OUT/cnn/model.safetensors" \
    --layer conv2,pool2,fc1 --delta 10/255,25/255 --pairs $PAIRS --out "$OUT/cnn/feature-adv"
echo "finished in $(( $(date +%s) - start )) s: $OUT/*/*/retrieval-attack.md, $OUT/cnn/feature-adv/feature-adv.md"
