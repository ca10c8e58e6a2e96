#!/usr/bin/env bash
# Sets up (first run only) and runs the test suite on the CPU.
# Extra arguments go to `cargo test`, e.g. `bash scripts/test.sh --test vbn`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cargo test --no-fail-fast "$@"
