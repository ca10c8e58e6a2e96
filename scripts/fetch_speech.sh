#!/usr/bin/env bash
# Fetches real recorded speech and builds the default paired training set.
#
# Usage: scripts/fetch_speech.sh [--fetch-only] OUT_DIR
#
# 1. Downloads Debian's alsa-utils package (about 1.1 MB, with
#    `apt-get download`, nothing is installed) and extracts its voice
#    recordings, /usr/share/sounds/alsa/*.wav: eight short phrases
#    ("Front Center", "Rear Left", ...) spoken by one human voice plus
#    Noise.wav, 48 kHz 16-bit mono, about 1.2 MB in all. They go to
#    OUT_DIR/speech together with the package's copyright file (GPL-2, see
#    docs/data.md).
# 2. Runs `segan prepare --speech OUT_DIR/speech --out OUT_DIR`, which mixes
#    them with seeded noise into OUT_DIR/clean, OUT_DIR/noisy (72 pairs,
#    about 27 MB), OUT_DIR/test/{clean,noisy}.wav, and cuts the training
#    windows into OUT_DIR/train (about 37 MB).
#
# The download is skipped when OUT_DIR/speech has the recordings, and the
# mixing is skipped when the set is up to date. The windows are rewritten on
# each run, which takes a few seconds. The segan binary is $SEGAN_BIN if set, else
# `cargo run --release`.
set -euo pipefail

fetch_only=0
if [[ "${1:-}" == "--fetch-only" ]]; then
    fetch_only=1
    shift
fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 [--fetch-only] OUT_DIR" >&2
    exit 2
fi

out_dir=$1
speech_dir="$out_dir/speech"
root=$(cd "$(dirname "$0")/.." && pwd)

# The recordings expected in the package; Noise.wav is noise, not speech.
recordings=(Front_Center Front_Left Front_Right Noise Rear_Center Rear_Left
    Rear_Right Side_Left Side_Right)

have_all_recordings() {
    local name
    for name in "${recordings[@]}"; do
        [[ -f "$speech_dir/$name.wav" ]] || return 1
    done
    [[ -f "$speech_dir/COPYRIGHT" ]]
}

fetch_recordings() {
    local tool
    for tool in apt-get dpkg; do
        if ! command -v "$tool" >/dev/null; then
            echo "fetch_speech: $tool not found; the recordings come from a Debian package, so run this on Debian or Ubuntu, or copy /usr/share/sounds/alsa/*.wav and /usr/share/doc/alsa-utils/copyright (as COPYRIGHT) of alsa-utils into $speech_dir" >&2
            exit 1
        fi
    done

    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand $work now, while it is set
    trap "rm -rf '$work'" EXIT

    echo "fetch_speech: downloading the Debian package alsa-utils (about 1.1 MB) for its voice recordings"
    if ! (cd "$work" && apt-get download alsa-utils >/dev/null 2>"$work/apt.log"); then
        echo "fetch_speech: apt-get download failed; updating the package lists and retrying" >&2
        cat "$work/apt.log" >&2
        apt-get update >/dev/null
        (cd "$work" && apt-get download alsa-utils >/dev/null)
    fi

    local deb
    deb=$(find "$work" -maxdepth 1 -name 'alsa-utils_*.deb' | head -n 1)
    if [[ -z "$deb" ]]; then
        echo "fetch_speech: apt-get download produced no alsa-utils .deb in $work" >&2
        exit 1
    fi
    echo "fetch_speech: extracting $(basename "$deb") ($(du -h "$deb" | cut -f1))"
    dpkg -x "$deb" "$work/root"

    local sounds="$work/root/usr/share/sounds/alsa"
    local copyright="$work/root/usr/share/doc/alsa-utils/copyright"
    local name
    for name in "${recordings[@]}"; do
        if [[ ! -f "$sounds/$name.wav" ]]; then
            echo "fetch_speech: $(basename "$deb") has no usr/share/sounds/alsa/$name.wav" >&2
            exit 1
        fi
    done
    if [[ ! -f "$copyright" ]]; then
        echo "fetch_speech: $(basename "$deb") has no usr/share/doc/alsa-utils/copyright" >&2
        exit 1
    fi

    # Copy into a temporary folder first so an interrupted run leaves no
    # half-filled OUT_DIR/speech behind.
    mkdir -p "$out_dir"
    local staging
    staging=$(mktemp -d "$out_dir/.speech.XXXXXX")
    for name in "${recordings[@]}"; do
        cp "$sounds/$name.wav" "$staging/"
    done
    cp "$copyright" "$staging/COPYRIGHT"
    echo "$(basename "$deb")" >"$staging/SOURCE"
    chmod 755 "$staging"
    rm -rf "$speech_dir"
    mv "$staging" "$speech_dir"
    echo "fetch_speech: wrote ${#recordings[@]} recordings ($(du -sh "$speech_dir" | cut -f1)) to $speech_dir"
}

if have_all_recordings; then
    echo "fetch_speech: $speech_dir already has the recordings; not downloading"
else
    fetch_recordings
fi

if [[ $fetch_only -eq 1 ]]; then
    exit 0
fi

if [[ -n "${SEGAN_BIN:-}" ]]; then
    segan=("$SEGAN_BIN")
else
    segan=(cargo run --release --quiet --manifest-path "$root/Cargo.toml" --)
fi
echo "fetch_speech: building the default set with: ${segan[*]} prepare --speech $speech_dir --out $out_dir"
"${segan[@]}" prepare --speech "$speech_dir" --out "$out_dir"
