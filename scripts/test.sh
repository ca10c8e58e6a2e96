#!/usr/bin/env bash
# Sets up (first run only) and runs the test suite on the CPU.
# Extra arguments go to `cargo test`, e.g. `bash scripts/test.sh --test vbn`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh

# Some audio tests score the real recordings of the default set; build it
# with the debug binary the tests compile anyway.
cargo build --quiet
SEGAN_BIN="$root/target/debug/segan" bash scripts/fetch_speech.sh "$root/data/default"

cargo test --no-fail-fast "$@"
