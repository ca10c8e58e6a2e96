#!/usr/bin/env bash
# The main job on the bundled default input: set up, fetch real speech
# recordings, build a small paired noisy set, train SEGAN for a few steps on
# the CPU, enhance a held-out noisy recording and score it.
#
#   bash scripts/demo.sh            # a few minutes on 2 CPU cores
#   STEPS=20 EPOCHS=2 bash scripts/demo.sh
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

mkdir -p "$out"
echo "demo: training ${EPOCHS:-1} epoch(s) of ${STEPS:-6} steps, batch ${BATCH:-4}, on the CPU"
"$segan" train --data "$data/train" --out "$out" \
    --epochs "${EPOCHS:-1}" --max-steps "${STEPS:-6}" --batch "${BATCH:-4}" \
    --seed 0 --device cpu --resume

checkpoint=$(ls -1v "$out"/checkpoints/state-*.pt | tail -n 1)
"$segan" enhance "$data/test/noisy.wav" --out "$out/enhanced.wav" \
    --checkpoint "$checkpoint" --clean "$data/test/clean.wav" --seed 0 --device cpu

cat <<MSG
demo: outputs
  noisy input:      $data/test/noisy.wav
  clean reference:  $data/test/clean.wav
  enhanced:         $out/enhanced.wav
  checkpoint:       $checkpoint
  losses:           $out/losses.csv, $out/losses.png
  per-epoch sample: $out/samples/
MSG
