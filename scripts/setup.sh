#!/usr/bin/env bash
# Installs everything the crate needs into the project folder, once.
#
# - `.venv/`: a Python virtual environment with PyTorch 2.13.0 (the wheel
#   carries libtorch 2.13.0, the version tch 0.26 links against), numpy and
#   scipy and pystoi (used by the fixture exporter, the reference scripts
#   and the tests that compare with Python implementations).
#   The Linux wheel is the CUDA build, which also runs on CPU. With its
#   nvidia-* dependencies it is about 2.8 GB to download
#   (scripts/wheel_sizes.py) and 4.9 GB installed.
# - `.libtorch`: a link to the libtorch inside that wheel, which
#   `.cargo/config.toml` hands to the build as LIBTORCH.
#
# Running it again takes about a second when everything is in place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.segan-setup-done"
torch_version=2.13.0
requirements=("torch==$torch_version" "numpy>=1.24" "scipy>=1.10" "pystoi>=0.4")

# The stamp records the requirements it was made for, so a changed list
# installs again.
if [[ -f "$stamp" && -e "$root/.libtorch/lib" && "$(cat "$stamp")" == "${requirements[*]}" ]]; then
    exit 0
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
    echo "setup: python3 not found; install CPython 3.9 or later and rerun" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup: creating the Python environment in $venv"
    "$python" -m venv "$venv"
fi

echo "setup: installing torch==$torch_version (about 2.8 GB download with its nvidia-* dependencies, 4.9 GB on disk), numpy, scipy and pystoi into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${requirements[@]}"

site=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if [[ ! -d "$site/lib" || ! -d "$site/include" ]]; then
    echo "setup: $site has no lib/ or include/; the torch wheel is incomplete" >&2
    exit 1
fi
ln -sfn "$site" "$root/.libtorch"

echo "${requirements[*]}" >"$stamp"
echo "setup: done; libtorch is at $site"
