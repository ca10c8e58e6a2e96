#!/usr/bin/env bash
# Every GPU check, in one run of a few minutes on a CUDA machine:
# 1. export CUDA fixtures with PyTorch on the GPU;
# 2. the CUDA test suite (cargo feature cuda-tests) against them and
#    against the committed CPU fixtures;
# 3. `segan parity --device cuda` on both fixture sets, and with the fused
#    VBN formula on the CUDA fixtures;
# 4. two training steps and one enhancement on the GPU.
# It fails when no GPU is visible.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
.venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "PyTorch sees no GPU")'

work="$root/target/gpu-check"
mkdir -p "$work"
bash scripts/fetch_speech.sh --fetch-only "$work/speech-set"
speech="$work/speech-set/speech"

echo "gpu_check: exporting CUDA fixtures"
.venv/bin/python scripts/export_fixtures.py --device cuda --speech "$speech" --out "$work/cuda-fixtures"

echo "gpu_check: CUDA test suite"
SEGAN_CUDA_FIXTURES="$work/cuda-fixtures" cargo test --release --features cuda-tests --test cuda

cargo build --release --quiet
segan="$root/target/release/segan"
echo "gpu_check: parity on the GPU"
"$segan" parity --device cuda --failures-only "$work/cuda-fixtures" fixtures/cpu
"$segan" parity --device cuda --formula fused --failures-only "$work/cuda-fixtures"

echo "gpu_check: training and enhancing on the GPU"
"$segan" prepare --speech "$speech" --out "$work/data"
"$segan" train --data "$work/data/train" --out "$work/train" --epochs 1 --max-steps 2 \
    --batch 4 --device cuda --no-progress
"$segan" enhance "$work/data/test/noisy.wav" --out "$work/enhanced.wav" \
    --checkpoint "$work/train/checkpoints/state-1.pt" --clean "$work/data/test/clean.wav" --device cuda
echo "gpu_check: all GPU checks passed"
