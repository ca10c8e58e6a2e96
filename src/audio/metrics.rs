//! Objective speech quality measures: segmental and global SNR.
//!
//! The segmental SNR follows the `snr` function of `composite.m` from
//! P. C. Loizou, *Speech Enhancement: Theory and Practice* (CRC Press, 2007;
//! code by Pellom and Hansen, 1998, revised by Loizou, 2006), which the
//! SEGAN paper and most speech enhancement papers on the noisy VCTK set
//! report as SSNR:
//!
//! - frames of `round(30 ms * fs)` samples (halves rounded away from zero,
//!   as MATLAB does), hop `floor(frame / 4)` (75 % overlap),
//! - `floor(len / hop - frame / hop)` frames, the first one at sample 0,
//! - each frame multiplied by the Hann window
//!   `0.5 * (1 - cos(2 pi n / (frame + 1)))` for `n = 1..=frame`,
//! - per frame `10 log10(E_clean / (E_error + eps) + eps)` with MATLAB's
//!   `eps` (2^-52), clamped to [-10, 35] dB,
//! - the mean over frames, silent frames included.
//!
//! All sums run in f64.

use super::error::{AudioError, Result};

/// Lower clamp of the per-frame SNR in dB.
pub const SEGMENTAL_SNR_MIN_DB: f64 = -10.0;

/// Upper clamp of the per-frame SNR in dB.
pub const SEGMENTAL_SNR_MAX_DB: f64 = 35.0;

/// Frame length of the segmental SNR in milliseconds.
pub const SEGMENTAL_SNR_FRAME_MS: f64 = 30.0;

/// MATLAB's `eps`, the spacing of doubles at 1.0, which `composite.m` adds
/// inside and outside the logarithm.
const MATLAB_EPS: f64 = f64::EPSILON;

/// Returns the segmental SNR in dB of `processed` against the reference
/// `clean`: the mean of [`segmental_snr_frames`].
///
/// # Errors
///
/// As [`segmental_snr_frames`].
pub fn segmental_snr(clean: &[f32], processed: &[f32], sample_rate: u32) -> Result<f64> {
    let frames = segmental_snr_frames(clean, processed, sample_rate)?;
    Ok(frames.iter().sum::<f64>() / frames.len() as f64)
}

/// Returns the clamped SNR in dB of each analysis frame (see the module
/// documentation for the framing).
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when the signals differ in length, when
/// the sample rate is too low for a frame of at least 4 samples, or when the
/// signals are too short for one frame. `composite.m` rejects unequal
/// lengths too, so trim both signals to the shorter one first if needed.
pub fn segmental_snr_frames(
    clean: &[f32],
    processed: &[f32],
    sample_rate: u32,
) -> Result<Vec<f64>> {
    check_same_len(clean, processed)?;
    let frame_len = (SEGMENTAL_SNR_FRAME_MS * f64::from(sample_rate) / 1000.0).round() as usize;
    let hop = frame_len / 4;
    if hop == 0 {
        return Err(AudioError::InvalidArgument(format!(
            "a sample rate of {sample_rate} Hz gives {frame_len}-sample frames; the segmental \
             SNR needs at least 4"
        )));
    }

    let frame_count = (clean.len() as f64 / hop as f64 - frame_len as f64 / hop as f64) as i64;
    if frame_count <= 0 {
        return Err(AudioError::InvalidArgument(format!(
            "the signals have {} samples, too short for one {frame_len}-sample segmental SNR \
             frame with hop {hop} at {sample_rate} Hz",
            clean.len()
        )));
    }

    let window = hann_window(frame_len);
    let mut frames = Vec::with_capacity(frame_count as usize);
    for index in 0..frame_count as usize {
        let start = index * hop;
        let clean_frame = &clean[start..start + frame_len];
        let processed_frame = &processed[start..start + frame_len];

        let mut signal_energy = 0.0f64;
        let mut error_energy = 0.0f64;
        for ((&c, &p), &w) in clean_frame.iter().zip(processed_frame).zip(&window) {
            let c = f64::from(c) * w;
            let p = f64::from(p) * w;
            signal_energy += c * c;
            error_energy += (c - p) * (c - p);
        }

        let snr = 10.0 * (signal_energy / (error_energy + MATLAB_EPS) + MATLAB_EPS).log10();
        frames.push(snr.clamp(SEGMENTAL_SNR_MIN_DB, SEGMENTAL_SNR_MAX_DB));
    }
    Ok(frames)
}

/// Returns the Hann window of `composite.m`, which excludes both zero end
/// points.
fn hann_window(len: usize) -> Vec<f64> {
    (1..=len)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * n as f64 / (len as f64 + 1.0);
            0.5 * (1.0 - phase.cos())
        })
        .collect()
}

/// Returns the global SNR in dB, `10 log10(sum(clean^2) / sum((clean -
/// processed)^2))`, the "overall SNR" of `composite.m`.
///
/// Returns `f64::INFINITY` when the signals are identical.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when the signals differ in length, are
/// empty, or `clean` is all zeros (the ratio is then undefined).
pub fn snr(clean: &[f32], processed: &[f32]) -> Result<f64> {
    check_same_len(clean, processed)?;
    if clean.is_empty() {
        return Err(AudioError::InvalidArgument(
            "cannot compute the SNR of empty signals".to_string(),
        ));
    }

    let mut signal_energy = 0.0f64;
    let mut error_energy = 0.0f64;
    for (&c, &p) in clean.iter().zip(processed) {
        let c = f64::from(c);
        let error = c - f64::from(p);
        signal_energy += c * c;
        error_energy += error * error;
    }
    if signal_energy == 0.0 {
        return Err(AudioError::InvalidArgument(
            "the clean signal is all zeros, so its SNR is undefined".to_string(),
        ));
    }
    Ok(10.0 * (signal_energy / error_energy).log10())
}

fn check_same_len(clean: &[f32], processed: &[f32]) -> Result<()> {
    if clean.len() != processed.len() {
        return Err(AudioError::InvalidArgument(format!(
            "the clean signal has {} samples but the processed one has {}; both must have the \
             same length",
            clean.len(),
            processed.len()
        )));
    }
    Ok(())
}
