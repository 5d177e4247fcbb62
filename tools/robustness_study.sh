#!/bin/sh
# The Fashion-MNIST robustness study of docs/ROBUSTNESS.md: ProtoPNet, Ours-A and Ours-FR on the
# small CNN trunk, plainly and with fast adversarial training (FGSM with a random start), each
# attacked with the robust paper's suite (FGSM, BIM-10, PGD-10, MIM-10) at eps 0.05 and 0.1.
#
#   sh tools/robustness_study.sh [OUT_DIR] [FINCH]      (CPU, about 45 minutes on 2 cores)
#
# All six start from one small CNN trained for 2 epochs (the papers start from pretrained
# trunks) and follow one schedule (the robust recipe's, shortened): 1 warm-up epoch, 5 joint
# epochs, a push after epoch 6, 5 last-layer passes, on 20,000 training images (6,000 more held
# out for model selection), batch 64. Each model keeps its kind's loss coefficients (the papers').
set -e
OUT=${1:-runs/robustness}
FINCH=${2:-build/finch}
COMMON="--recipe robust --limit 20000 --batch 64 --epochs 6 --warm-epochs 1 --push-start 5 --push-every 5 --last-iters 5 --quiet"
mkdir -p "$OUT"
[ -f "$OUT/trunk/model.safetensors" ] || $FINCH train --model small_cnn --epochs 2 --quiet --out "$OUT/trunk"
for adv in none fgsm-rs; do
  for kind in protopnet ap ours-fr; do
    run="$OUT/$kind-$adv"
    [ -f "$run/train.json" ] || $FINCH train --model "$kind-small_cnn" --init "$OUT/trunk/model.safetensors" $COMMON \
        --adv $adv $( [ $adv = none ] || echo "--eps 0.1 --alpha 0.125" ) --out "$run"
    [ -f "$run/robustness.json" ] || $FINCH attack --run "$run" --suite paper --eps-list 0.05,0.1 --limit 1000 --quiet
  done
done
# Gradient-masking check (Carlini et al.): a strong attack at a large radius must reach ~0%.
for run in "$OUT"/*-none "$OUT"/*-fgsm-rs; do
  [ -f "$run/pgd50-eps0.3/attack.json" ] || $FINCH attack --run "$run" --attack pgd --eps 0.3 --alpha 0.01 --steps 50 --limit 500 \
      --out "$run/pgd50-eps0.3" --quiet
done
# Explanations and pruning of the plainly trained prototype networks.
for kind in protopnet ours-fr; do
  $FINCH explain --run "$OUT/$kind-none" --index 0 --top 10 > "$OUT/$kind-none/explain-test-0.txt"
  [ -f "$OUT/$kind-none/pruned-k6-t3/prune.json" ] || $FINCH prune --run "$OUT/$kind-none" --last-iters 5 --batch 64 --quiet
  [ -f "$OUT/$kind-none/pruned-k6-t3/robustness.json" ] ||
      $FINCH attack --run "$OUT/$kind-none/pruned-k6-t3" --suite paper --eps-list 0.05,0.1 --limit 1000 --quiet
done
echo "finished: $OUT/*/robustness.md"
