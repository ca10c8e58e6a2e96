#!/usr/bin/env bash
# Fuzzes the checkpoint reader, segan::checkpoint::load_bytes, with
# cargo-fuzz for a bounded time, seeded with real checkpoints that PyTorch
# writes through scripts/make_checkpoints.py.
#
#   scripts/fuzz.sh [SECONDS]      (default 300)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and the
# project's .venv (scripts/setup.sh installs it). Installs cargo-fuzz from
# crates.io when it is missing. The first run builds libtorch bindings and
# the crate with sanitizer instrumentation into fuzz/target, which takes
# several minutes.
#
# A crash stops the run and leaves its input in fuzz/artifacts/load_bytes/.
# Reproduce it with
#   LD_LIBRARY_PATH=.libtorch/lib cargo +nightly fuzz run load_bytes ARTIFACT
# and add the input as a regression test in tests/checkpoint_hostile.rs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-300}
cd "$root"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: cargo-fuzz needs a nightly toolchain; install it with: rustup toolchain install nightly" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz
fi
bash scripts/setup.sh

corpus=fuzz/corpus/load_bytes
mkdir -p "$corpus"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
.venv/bin/python scripts/make_checkpoints.py "$seeds"
for file in "$seeds"/*; do
    [[ $(basename "$file") == manifest.json ]] && continue
    cp "$file" "$corpus/seed-$(basename "$file")"
done

# The fuzz binary does not get the main crate's rpath to libtorch.
export LD_LIBRARY_PATH="$root/.libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo +nightly fuzz run load_bytes "$corpus" -- \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -max_len=65536 \
    -dict=fuzz/load_bytes.dict
