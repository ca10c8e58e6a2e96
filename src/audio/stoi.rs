//! Short-time objective intelligibility (STOI).
//!
//! The measure of C. H. Taal, R. C. Hendriks, R. Heusdens and J. Jensen,
//! "An Algorithm for Intelligibility Prediction of Time-Frequency Weighted
//! Noisy Speech", IEEE Transactions on Audio, Speech, and Language
//! Processing 19(7), 2011. The framing, silent-frame removal and band
//! edges follow the `pystoi` package (version 0.4.1), so that scores agree
//! with it:
//!
//! 1. Both signals are resampled to 10 kHz.
//! 2. Frames of 256 samples with hop 128 and a Hann window are cut from the
//!    clean signal. Frames whose energy is more than 40 dB below the loudest
//!    clean frame are dropped from both signals, and the remaining windowed
//!    frames are overlap-added back into two shorter signals.
//! 3. A 512-point STFT of those signals (same frames and window) is grouped
//!    into 15 one-third octave bands from 150 Hz, giving band envelopes.
//! 4. For every run of 30 consecutive frames (384 ms) and every band, the
//!    processed envelope is scaled to the clean envelope's energy, clipped
//!    to at most 15 dB above the clean envelope, and correlated with it.
//! 5. The score is the mean of those correlations over runs and bands.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::error::{AudioError, Result};
use super::resample::resample;

/// Sample rate in Hz at which STOI is computed.
pub const STOI_SAMPLE_RATE: u32 = 10_000;

/// Frame length in samples at [`STOI_SAMPLE_RATE`] (25.6 ms).
const FRAME_LEN: usize = 256;

/// Hop between frames in samples, half a frame.
const HOP: usize = FRAME_LEN / 2;

/// FFT length: each frame is zero-padded to twice its length.
const FFT_LEN: usize = 512;

/// Number of one-third octave bands.
const BAND_COUNT: usize = 15;

/// Centre frequency of the lowest band in Hz. The highest band is centred
/// at 150 * 2^(14/3), about 3.8 kHz.
const LOWEST_CENTER_HZ: f64 = 150.0;

/// Frames per analysis segment (384 ms), over which envelopes are correlated.
pub const SEGMENT_FRAMES: usize = 30;

/// Lower bound of the signal-to-distortion ratio in dB. A processed
/// envelope is clipped to at most 10^(-BETA / 20) + 1 times the clean one.
const BETA_DB: f64 = -15.0;

/// Clean frames more than this many dB below the loudest clean frame count
/// as silent and are removed from both signals.
const DYNAMIC_RANGE_DB: f64 = 40.0;

/// Guard against division by zero, the f64 machine epsilon as in pystoi.
const EPS: f64 = f64::EPSILON;

/// Computes the STOI of `processed` speech against `clean` speech.
///
/// Both signals are mono, aligned and sampled at `sample_rate` Hz. They are
/// resampled to [`STOI_SAMPLE_RATE`] with [`resample`], so results differ
/// slightly from implementations that use another resampler. The score is
/// a mean of correlations of short-time band envelopes, so it lies in
/// [-1, 1], and identical signals score 1.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when the signals differ in length, are
/// empty, contain a NaN or infinite sample, when `clean` is all zeros
/// (pystoi 0.4.1 returns 0 there), or
/// when fewer than [`SEGMENT_FRAMES`] STFT frames remain after silent-frame
/// removal (about 0.4 s of active speech are needed). Errors of
/// [`resample`] for an unsupported `sample_rate` are passed on.
pub fn stoi(clean: &[f32], processed: &[f32], sample_rate: u32) -> Result<f64> {
    check_signals(clean, processed)?;

    let clean = to_stoi_rate(clean, sample_rate)?;
    let processed = to_stoi_rate(processed, sample_rate)?;
    let (clean, processed) = remove_silent_frames(&clean, &processed);

    let stft = Stft::new();
    let clean_bands = band_envelopes(&stft.magnitudes_squared(&clean), &stft.bands);
    let processed_bands = band_envelopes(&stft.magnitudes_squared(&processed), &stft.bands);

    let frames = clean_bands.first().map_or(0, Vec::len);
    if frames < SEGMENT_FRAMES {
        return Err(AudioError::InvalidArgument(format!(
            "only {frames} STFT frames remain after removing silent frames (more than \
             {DYNAMIC_RANGE_DB} dB below the loudest clean frame), but STOI needs at least \
             {SEGMENT_FRAMES}; pass a longer recording with about 0.4 s or more of speech"
        )));
    }

    Ok(mean_segment_correlation(&clean_bands, &processed_bands))
}

fn check_signals(clean: &[f32], processed: &[f32]) -> Result<()> {
    if clean.len() != processed.len() {
        return Err(AudioError::InvalidArgument(format!(
            "clean and processed signals must have the same length, got {} and {} samples",
            clean.len(),
            processed.len()
        )));
    }
    if clean.is_empty() {
        return Err(AudioError::InvalidArgument(
            "clean and processed signals are empty".to_string(),
        ));
    }
    for (name, signal) in [("clean", clean), ("processed", processed)] {
        if let Some(index) = signal.iter().position(|sample| !sample.is_finite()) {
            return Err(AudioError::InvalidArgument(format!(
                "{name} signal has a non-finite sample {} at index {index}",
                signal[index]
            )));
        }
    }
    if clean.iter().all(|&sample| sample == 0.0) {
        return Err(AudioError::InvalidArgument(
            "clean signal is all zeros, so it has no speech to compare against".to_string(),
        ));
    }
    Ok(())
}

fn to_stoi_rate(signal: &[f32], sample_rate: u32) -> Result<Vec<f64>> {
    let resampled = resample(signal, sample_rate, STOI_SAMPLE_RATE)?;
    Ok(resampled.into_iter().map(f64::from).collect())
}

/// Returns the Hann window of MATLAB's `hanning(FRAME_LEN)`, which excludes
/// the zero end points: 0.5 - 0.5 cos(2 pi (n + 1) / (FRAME_LEN + 1)), as
/// pystoi uses.
fn hann_window() -> Vec<f64> {
    let period = (FRAME_LEN + 1) as f64;
    (0..FRAME_LEN)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (n + 1) as f64 / period).cos())
        .collect()
}

/// Returns the start of every frame of `len` samples. As in pystoi 0.4.1, a
/// frame starts only where more than `FRAME_LEN` samples remain, so a frame
/// that would end exactly at the last sample is left out.
fn frame_starts(len: usize) -> impl Iterator<Item = usize> {
    (0..len.saturating_sub(FRAME_LEN)).step_by(HOP)
}

/// Drops the frames whose clean energy is more than [`DYNAMIC_RANGE_DB`]
/// below the loudest clean frame and overlap-adds the remaining windowed
/// frames of both signals. Returns empty signals when there is no frame.
fn remove_silent_frames(clean: &[f64], processed: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let window = hann_window();
    let starts: Vec<usize> = frame_starts(clean.len()).collect();
    let energies_db: Vec<f64> = starts
        .iter()
        .map(|&start| {
            let energy: f64 = clean[start..start + FRAME_LEN]
                .iter()
                .zip(&window)
                .map(|(sample, weight)| (sample * weight).powi(2))
                .sum();
            20.0 * (energy.sqrt() + EPS).log10()
        })
        .collect();
    let loudest_db = energies_db
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);

    let active_starts: Vec<usize> = starts
        .iter()
        .zip(&energies_db)
        .filter(|(_, &energy_db)| energy_db > loudest_db - DYNAMIC_RANGE_DB)
        .map(|(&start, _)| start)
        .collect();
    if active_starts.is_empty() {
        return (Vec::new(), Vec::new());
    }

    let out_len = (active_starts.len() - 1) * HOP + FRAME_LEN;
    let mut clean_out = vec![0.0; out_len];
    let mut processed_out = vec![0.0; out_len];
    for (index, &start) in active_starts.iter().enumerate() {
        let offset = index * HOP;
        for (n, weight) in window.iter().enumerate() {
            clean_out[offset + n] += weight * clean[start + n];
            processed_out[offset + n] += weight * processed[start + n];
        }
    }
    (clean_out, processed_out)
}

/// The STFT used for the band envelopes: Hann-windowed frames of
/// `FRAME_LEN` samples, zero-padded to `FFT_LEN`, and the bins of each band.
struct Stft {
    window: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
    /// Bin range of each one-third octave band.
    bands: Vec<std::ops::Range<usize>>,
}

impl Stft {
    fn new() -> Self {
        Stft {
            window: hann_window(),
            fft: FftPlanner::new().plan_fft_forward(FFT_LEN),
            bands: third_octave_bands(),
        }
    }

    /// Returns |X[k]|^2 for the bins 0..=FFT_LEN / 2 of every frame.
    fn magnitudes_squared(&self, signal: &[f64]) -> Vec<Vec<f64>> {
        let mut buffer = vec![Complex::new(0.0, 0.0); FFT_LEN];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        frame_starts(signal.len())
            .map(|start| {
                let frame = &signal[start..start + FRAME_LEN];
                for (slot, (sample, weight)) in
                    buffer.iter_mut().zip(frame.iter().zip(&self.window))
                {
                    *slot = Complex::new(sample * weight, 0.0);
                }
                buffer[FRAME_LEN..].fill(Complex::new(0.0, 0.0));
                self.fft.process_with_scratch(&mut buffer, &mut scratch);
                buffer[..=FFT_LEN / 2]
                    .iter()
                    .map(|bin| bin.norm_sqr())
                    .collect()
            })
            .collect()
    }
}

/// Returns the FFT bin range of each one-third octave band.
///
/// Band `k` spans 150 * 2^((2k - 1) / 6) to 150 * 2^((2k + 1) / 6) Hz. Each
/// edge moves to the nearest bin (the lower bin on a tie), and a band
/// contains the bins from its lower edge up to, but not including, its
/// upper edge, as in pystoi 0.4.1.
fn third_octave_bands() -> Vec<std::ops::Range<usize>> {
    let bin_hz = f64::from(STOI_SAMPLE_RATE) / FFT_LEN as f64;
    let nearest_bin = |frequency: f64| -> usize {
        let mut best = 0;
        for bin in 1..=FFT_LEN / 2 {
            let distance = (bin as f64 * bin_hz - frequency).powi(2);
            if distance < (best as f64 * bin_hz - frequency).powi(2) {
                best = bin;
            }
        }
        best
    };
    (0..BAND_COUNT)
        .map(|k| {
            let k = k as f64;
            let low = LOWEST_CENTER_HZ * 2f64.powf((2.0 * k - 1.0) / 6.0);
            let high = LOWEST_CENTER_HZ * 2f64.powf((2.0 * k + 1.0) / 6.0);
            nearest_bin(low)..nearest_bin(high)
        })
        .collect()
}

/// Returns the envelope of each band, `[band][frame]`: the square root of
/// the band's energy in each frame.
fn band_envelopes(spectra: &[Vec<f64>], bands: &[std::ops::Range<usize>]) -> Vec<Vec<f64>> {
    bands
        .iter()
        .map(|band| {
            spectra
                .iter()
                .map(|spectrum| spectrum[band.clone()].iter().sum::<f64>().sqrt())
                .collect()
        })
        .collect()
}

/// Returns the mean, over every run of [`SEGMENT_FRAMES`] frames and every
/// band, of the correlation between the clean envelope and the scaled and
/// clipped processed envelope.
fn mean_segment_correlation(clean_bands: &[Vec<f64>], processed_bands: &[Vec<f64>]) -> f64 {
    let clip_factor = 1.0 + 10f64.powf(-BETA_DB / 20.0);
    let frames = clean_bands[0].len();
    let segments = frames - SEGMENT_FRAMES + 1;

    let mut total = 0.0;
    for end in SEGMENT_FRAMES..=frames {
        let run = end - SEGMENT_FRAMES..end;
        for (clean_band, processed_band) in clean_bands.iter().zip(processed_bands) {
            let clean = &clean_band[run.clone()];
            let processed = &processed_band[run.clone()];
            let scale = norm(clean) / (norm(processed) + EPS);
            let clipped: Vec<f64> = processed
                .iter()
                .zip(clean)
                .map(|(&p, &c)| (p * scale).min(c * clip_factor))
                .collect();
            total += correlation(clean, &clipped);
        }
    }
    total / (segments * clean_bands.len()) as f64
}

fn norm(values: &[f64]) -> f64 {
    values.iter().map(|value| value * value).sum::<f64>().sqrt()
}

/// Returns the sample correlation of `a` and `b`, with [`EPS`] added to
/// each norm so that a constant vector gives 0 and not NaN.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let (mean_a, mean_b) = (mean(a), mean(b));
    let centred_a: Vec<f64> = a.iter().map(|value| value - mean_a).collect();
    let centred_b: Vec<f64> = b.iter().map(|value| value - mean_b).collect();
    let dot: f64 = centred_a.iter().zip(&centred_b).map(|(x, y)| x * y).sum();
    dot / ((norm(&centred_a) + EPS) * (norm(&centred_b) + EPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_edges_match_reference_bins() {
        // Bins from pystoi 0.4.1's thirdoct(10000, 512, 15, 150).
        let expected = [
            7..9,
            9..11,
            11..14,
            14..17,
            17..22,
            22..27,
            27..34,
            34..43,
            43..55,
            55..69,
            69..87,
            87..109,
            109..138,
            138..174,
            174..219,
        ];
        assert_eq!(third_octave_bands(), expected);
    }

    #[test]
    fn frame_starts_leave_out_final_exact_frame() {
        assert_eq!(frame_starts(FRAME_LEN).count(), 0);
        assert_eq!(frame_starts(FRAME_LEN + 1).count(), 1);
        assert_eq!(frame_starts(FRAME_LEN + HOP).count(), 1);
        assert_eq!(frame_starts(FRAME_LEN + HOP + 1).count(), 2);
    }
}
