#!/usr/bin/env bash
# The main job on the bundled default input: set up, fetch real speech
# recordings, build a small paired noisy set, train SEGAN for a few steps on
# the CPU, enhance a held-out noisy recording and score it.
#
#   bash scripts/demo.sh            # a few minutes on 2 CPU cores after set-up
#   STEPS=72 EPOCHS=3 bash scripts/demo.sh   # three full epochs more
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
echo "demo: building the release binary (the first build compiles libtorch bindings, a few minutes)"
cargo build --release --quiet
segan="$root/target/release/segan"

data="$root/data/default"
out="$root/out/demo"
SEGAN_BIN="$segan" bash scripts/fetch_speech.sh "$data"

mkdir -p "$out/checkpoints"
# A later run continues from the last checkpoint of an earlier one and
# trains EPOCHS more epochs, each stopped after STEPS steps (an epoch of
# the default set has 72 steps at batch 4).
epochs=${EPOCHS:-1}
steps=${STEPS:-6}
done_epochs=$(ls -1 "$out/checkpoints" | sed -n 's/^state-\([0-9]*\)\.pt$/\1/p' | sort -n | tail -n 1)
done_epochs=${done_epochs:-0}
if [ "$done_epochs" -gt 0 ]; then
    echo "demo: continuing after epoch $done_epochs of an earlier run in $out"
fi
# Adam (lr 1e-4, betas 0.5 and 0.999) moves the weights about ten times less
# in the first steps than RMSprop, whose first updates are lr / sqrt(1 - 0.99)
# per weight and saturate the untrained generator within a few steps.
echo "demo: training $epochs epoch(s) of at most $steps steps, batch ${BATCH:-4}, on the CPU (several seconds a step)"
"$segan" train --data "$data/train" --out "$out" \
    --epochs "$((done_epochs + epochs))" --max-steps "$steps" --batch "${BATCH:-4}" \
    --optimizer adam --seed 0 --device cpu --resume --no-progress
awk -F, 'NR == 2 { first = $7 } NR > 1 { last = $7 } END {
    printf "demo: generator L1 loss (100 x mean |G - clean|): %.2f at the first step, %.2f at the last\n", first, last }' \
    "$out/losses.csv"

checkpoint=$(ls -1v "$out"/checkpoints/state-*.pt | tail -n 1)
"$segan" enhance "$data/test/noisy.wav" --out "$out/enhanced.wav" \
    --checkpoint "$checkpoint" --clean "$data/test/clean.wav" --seed 0 --device cpu

cat <<MSG
demo: a few training steps leave the generator close to its random
      initialization, so the enhanced file is not yet speech-like and its
      segmental SNR sits near the -10 dB floor; SEGAN trains for tens of
      thousands of steps (86 epochs of batch 50 in the SEGAN PyTorch code).
demo: outputs
  noisy input:      $data/test/noisy.wav
  clean reference:  $data/test/clean.wav
  enhanced:         $out/enhanced.wav
  checkpoint:       $checkpoint
  losses:           $out/losses.csv, $out/losses.png
  per-epoch sample: $out/samples/
MSG
