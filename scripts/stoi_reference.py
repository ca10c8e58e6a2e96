#!/usr/bin/env python3
"""STOI of a processed WAV file against a clean one, computed by pystoi.

The reference for `segan::audio::stoi`. Both files are read as float64 mono
(integer PCM scaled to [-1, 1)) and passed to `pystoi.stoi` at their own
sample rate, so pystoi resamples them to 10 kHz with its own resampler.

Usage: stoi_reference.py CLEAN.wav PROCESSED.wav
Prints one JSON object: {"stoi": score, "warnings": [message, ...]}.
pystoi warns and returns 1e-5 when fewer than 30 frames remain after
silent-frame removal, so callers should check "warnings".
Exits with status 2 when pystoi is not installed.
"""

import json
import sys
import warnings

import numpy as np
from scipy.io import wavfile

try:
    from pystoi import stoi
except ImportError as error:
    sys.stderr.write(
        f"stoi_reference.py: pystoi is not installed in {sys.executable} ({error}); "
        "run `bash scripts/setup.sh` to install it\n"
    )
    sys.exit(2)


def read_mono(path):
    """Read a WAV file as float64 mono, scaling integers like libsndfile."""
    rate, data = wavfile.read(path)
    if data.dtype == np.uint8:
        data = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        data = data.astype(np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return rate, data


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: stoi_reference.py CLEAN.wav PROCESSED.wav\n")
        return 1
    clean_rate, clean = read_mono(argv[1])
    processed_rate, processed = read_mono(argv[2])
    if clean_rate != processed_rate:
        sys.stderr.write(
            f"sample rates differ: {clean_rate} Hz in {argv[1]}, "
            f"{processed_rate} Hz in {argv[2]}\n"
        )
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = stoi(clean, processed, clean_rate)
    print(json.dumps({"stoi": float(score), "warnings": [str(w.message) for w in caught]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
