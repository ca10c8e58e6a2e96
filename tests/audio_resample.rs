//! Sample rate conversion: exact output length, no time shift, preserved
//! in-band tones and suppressed out-of-band ones.

use segan::audio::resample::{resample, resampled_len};
use segan::audio::AudioError;

/// Rate pairs the crate meets in practice: VCTK (48 kHz), CD audio,
/// telephone speech and 22.05 kHz recordings, all to the model's 16 kHz.
const RATE_PAIRS: [(u32, u32); 5] = [
    (48_000, 16_000),
    (44_100, 16_000),
    (8_000, 16_000),
    (22_050, 16_000),
    (16_000, 48_000),
];

/// Largest error allowed between a resampled in-band sine and the ideal
/// sine at the new rate, relative to its amplitude. rubato's FFT resampler
/// has a pass-band ripple far below this; 1e-3 (-60 dB) still catches
/// a shift of a fraction of a sample or a wrong gain.
const SINE_TOLERANCE: f32 = 1e-3;

/// Maximum RMS level, relative to the input tone, of a tone above the new
/// Nyquist frequency after downsampling: at least 60 dB of anti-aliasing.
const ALIAS_REJECTION: f64 = 1e-3;

fn sine(len: usize, frequency: f64, rate: u32) -> Vec<f32> {
    (0..len)
        .map(|n| (2.0 * std::f64::consts::PI * frequency * n as f64 / f64::from(rate)).sin() as f32)
        .collect()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn resampled_len_rounds_to_nearest() {
    assert_eq!(resampled_len(48_000, 48_000, 16_000), 16_000);
    assert_eq!(resampled_len(48_001, 48_000, 16_000), 16_000);
    assert_eq!(resampled_len(48_002, 48_000, 16_000), 16_001);
    assert_eq!(resampled_len(3, 44_100, 16_000), 1);
    assert_eq!(resampled_len(1, 48_000, 16_000), 0);
    assert_eq!(resampled_len(44_100, 44_100, 16_000), 16_000);
    assert_eq!(resampled_len(1, 8_000, 16_000), 2);
    // 3 * 16000 / 32000 = 1.5 rounds up.
    assert_eq!(resampled_len(3, 32_000, 16_000), 2);
    assert_eq!(resampled_len(0, 48_000, 16_000), 0);
}

#[test]
fn output_length_matches_resampled_len() {
    for (from, to) in RATE_PAIRS {
        for len in [1usize, 2, 3, 100, 1023, 4410, 48_001, 100_003] {
            let input = vec![0.1f32; len];
            let output = resample(&input, from, to).unwrap();
            assert_eq!(
                output.len(),
                resampled_len(len, from, to),
                "{from}->{to}, {len} samples"
            );
        }
    }
}

#[test]
fn equal_rates_return_copy() {
    let input = sine(1000, 440.0, 16_000);
    assert_eq!(resample(&input, 16_000, 16_000).unwrap(), input);
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(resample(&[], 48_000, 16_000).unwrap().is_empty());
}

#[test]
fn zero_rate_is_error() {
    let from_zero = resample(&[0.0; 10], 0, 16_000);
    assert!(
        matches!(from_zero, Err(AudioError::InvalidArgument(_))),
        "{from_zero:?}"
    );
    let to_zero = resample(&[0.0; 10], 16_000, 0);
    assert!(
        matches!(to_zero, Err(AudioError::InvalidArgument(_))),
        "{to_zero:?}"
    );
}

#[test]
fn click_stays_at_same_time() {
    for (from, to) in RATE_PAIRS {
        // Clicks at 0.24 s, 0.5 s and 0.9 s. Every rate here is a multiple
        // of 50 Hz, so these times fall on a sample at both rates and the
        // peak must land exactly on the matching output sample.
        for fiftieths in [12u32, 25, 45] {
            let input_len = (from as usize) + 1000;
            let position = (from / 50 * fiftieths) as usize;
            let mut input = vec![0.0f32; input_len];
            input[position] = 1.0;
            let output = resample(&input, from, to).unwrap();
            let peak = output
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .map(|(i, _)| i)
                .unwrap();
            let expected = (to / 50 * fiftieths) as usize;
            assert_eq!(peak, expected, "{from}->{to} Hz, click at {position}");
        }
    }
}

#[test]
fn click_is_symmetric_around_peak() {
    // A linear-phase filter centred on the click gives a symmetric response;
    // a half-sample shift would make the neighbours unequal.
    let mut input = vec![0.0f32; 48_000];
    input[24_000] = 1.0;
    let output = resample(&input, 48_000, 16_000).unwrap();
    let before = output[8_000 - 1];
    let after = output[8_000 + 1];
    assert!(
        (before - after).abs() < 1e-6,
        "neighbours {before} and {after}"
    );
}

#[test]
fn in_band_sine_matches_ideal() {
    for (from, to) in RATE_PAIRS {
        let frequency = 1_000.0;
        let input = sine(from as usize, frequency, from);
        let output = resample(&input, from, to).unwrap();
        let ideal = sine(output.len(), frequency, to);
        // Skip 50 ms at each end, where the zero padding outside the signal
        // is part of the band-limited result.
        let margin = to as usize / 20;
        let max_error = output[margin..output.len() - margin]
            .iter()
            .zip(&ideal[margin..ideal.len() - margin])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_error < SINE_TOLERANCE,
            "{from}->{to} Hz: max error {max_error}"
        );
    }
}

#[test]
fn tone_above_new_nyquist_is_removed() {
    for (from, frequency) in [(48_000u32, 10_000.0), (44_100, 12_000.0), (22_050, 9_000.0)] {
        let input = sine(from as usize, frequency, from);
        let output = resample(&input, from, 16_000).unwrap();
        let margin = 800;
        let level = rms(&output[margin..output.len() - margin]) / rms(&input);
        assert!(
            level < ALIAS_REJECTION,
            "{from} Hz, {frequency} Hz tone: level {level}"
        );
    }
}

#[test]
fn upsampling_adds_no_images() {
    // A 3 kHz tone at 8 kHz has an image at 5 kHz; at 16 kHz only the tone may remain.
    let input = sine(8_000, 3_000.0, 8_000);
    let output = resample(&input, 8_000, 16_000).unwrap();
    let ideal = sine(output.len(), 3_000.0, 16_000);
    let residual: Vec<f32> = output
        .iter()
        .zip(&ideal)
        .map(|(a, b)| a - b)
        .skip(800)
        .take(output.len() - 1600)
        .collect();
    assert!(
        rms(&residual) < f64::from(SINE_TOLERANCE),
        "residual {}",
        rms(&residual)
    );
}

#[test]
fn resample_rejects_implausible_rates() {
    let samples = vec![0.0f32; 100];
    let error = segan::audio::resample(&samples, 1, 16000)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unsupported sample rate 1 Hz"), "{error}");
    let error = segan::audio::resample(&samples, 16000, 10_000_000)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unsupported sample rate 10000000 Hz"),
        "{error}"
    );
}
