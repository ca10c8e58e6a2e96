#!/usr/bin/env python3
"""Segmental and global SNR of a processed WAV file against a clean one.

An independent numpy implementation of the `snr` function in `composite.m`
from P. C. Loizou, "Speech Enhancement: Theory and Practice" (CRC Press,
2007), used to check `segan::audio::metrics`:

- frames of round(30 ms * fs) samples, halves rounded away from zero as in
  MATLAB, hop floor(frame / 4),
- floor(len / hop - frame / hop) frames starting at sample 0,
- Hann window 0.5 * (1 - cos(2 pi n / (frame + 1))) for n = 1..frame,
- per frame 10 log10(E_clean / (E_error + eps) + eps) with MATLAB's eps,
  clamped to [-10, 35] dB, then the mean over frames.

Usage: ssnr_reference.py CLEAN.wav PROCESSED.wav
Prints one JSON object: {"ssnr": dB, "snr": dB, "frames": count}.
"""

import json
import math
import sys

import numpy as np
from scipy.io import wavfile

MIN_SNR_DB = -10.0
MAX_SNR_DB = 35.0
EPS = np.finfo(np.float64).eps


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


def matlab_round(value):
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def segmental_snr(clean, processed, rate):
    if clean.shape != processed.shape:
        raise ValueError(f"length mismatch: {clean.shape[0]} vs {processed.shape[0]} samples")
    frame = matlab_round(30.0 * rate / 1000.0)
    hop = frame // 4
    count = int(clean.shape[0] / hop - frame / hop)
    if count <= 0:
        raise ValueError(f"{clean.shape[0]} samples are too short for one {frame}-sample frame")

    n = np.arange(1, frame + 1, dtype=np.float64)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (frame + 1)))

    starts = np.arange(count) * hop
    index = starts[:, None] + np.arange(frame)[None, :]
    clean_frames = clean[index] * window
    processed_frames = processed[index] * window
    signal = np.sum(clean_frames ** 2, axis=1)
    noise = np.sum((clean_frames - processed_frames) ** 2, axis=1)
    per_frame = 10.0 * np.log10(signal / (noise + EPS) + EPS)
    per_frame = np.clip(per_frame, MIN_SNR_DB, MAX_SNR_DB)
    return float(np.mean(per_frame)), count


def global_snr(clean, processed):
    error = np.sum((clean - processed) ** 2)
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(np.sum(clean ** 2) / error))


def main(argv):
    if len(argv) != 3:
        print("usage: ssnr_reference.py CLEAN.wav PROCESSED.wav", file=sys.stderr)
        return 2
    clean_rate, clean = read_mono(argv[1])
    processed_rate, processed = read_mono(argv[2])
    if clean_rate != processed_rate:
        print(
            f"sample rates differ: {clean_rate} Hz and {processed_rate} Hz", file=sys.stderr
        )
        return 1
    ssnr, frames = segmental_snr(clean, processed, clean_rate)
    result = {"ssnr": ssnr, "snr": global_snr(clean, processed), "frames": frames}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
