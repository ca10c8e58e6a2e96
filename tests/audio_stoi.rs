//! STOI: known cases, input errors, and agreement with the `pystoi` package
//! run through scripts/stoi_reference.py in the project's Python
//! environment (`bash scripts/setup.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use segan::audio::stoi::{stoi, STOI_SAMPLE_RATE};
use segan::audio::wav::{read_wav, write_wav_f32};
use segan::audio::{resample, AudioError};

/// On signals already at 10 kHz both implementations see the same samples,
/// so they differ only by f64 rounding (measured below 1e-12). 1e-9 still
/// catches any difference in framing, band edges or clipping.
const SAME_RATE_TOLERANCE: f64 = 1e-9;

/// At other rates this crate resamples with rubato's FFT resampler and
/// pystoi with an Octave-style polyphase filter. The two differ in filter
/// length and transition band, most where the signal has energy near the
/// lower Nyquist frequency. In `matches_pystoi_after_resampling` scores
/// differed by at most 1.4e-3 (the 16 kHz recording in white noise, and
/// synthetic speech from 8 kHz) and by under 1e-5 elsewhere.
const RESAMPLED_TOLERANCE: f64 = 5e-3;

/// Identical signals give correlations of 1 up to f64 rounding.
const IDENTICAL_TOLERANCE: f64 = 1e-9;

const RATE: u32 = 16_000;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run `bash scripts/setup.sh` to create the Python environment with pystoi",
        python.display()
    );
    python
}

/// Runs pystoi on the signals through scripts/stoi_reference.py and returns
/// its score and warnings.
fn pystoi_score(
    dir: &Path,
    name: &str,
    clean: &[f32],
    processed: &[f32],
    rate: u32,
) -> (f64, Vec<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stoi_reference.py");
    let clean_path = dir.join(format!("{name}_clean.wav"));
    let processed_path = dir.join(format!("{name}_processed.wav"));
    write_wav_f32(&clean_path, clean, rate).unwrap();
    write_wav_f32(&processed_path, processed, rate).unwrap();

    let output = Command::new(python())
        .arg(&script)
        .arg(&clean_path)
        .arg(&processed_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} failed for case {name} ({}); if pystoi is missing, run `bash scripts/setup.sh`:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let score = result["stoi"].as_f64().unwrap();
    let warnings = result["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message.as_str().unwrap().to_string())
        .collect();
    (score, warnings)
}

/// Returns the pystoi score, asserting that pystoi raised no warning.
fn pystoi_clean_score(dir: &Path, name: &str, clean: &[f32], processed: &[f32], rate: u32) -> f64 {
    let (score, warnings) = pystoi_score(dir, name, clean, processed, rate);
    assert!(
        warnings.is_empty(),
        "pystoi warned on case {name}: {warnings:?}"
    );
    score
}

/// Returns uniform white noise in [-1, 1) from a xorshift generator.
fn white_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Returns a speech-like signal: a harmonic series on a gliding 90-150 Hz
/// fundamental, shaped by a moving formant, in 4 Hz syllables with a
/// 0.2 s pause every second. Every one-third octave band up to 4 kHz
/// carries a modulated envelope, as in speech.
fn speech_like(len: usize, rate: u32) -> Vec<f32> {
    use std::f64::consts::PI;
    let rate = f64::from(rate);
    let mut phase = 0.0;
    (0..len)
        .map(|n| {
            let t = n as f64 / rate;
            let f0 = 120.0 + 30.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / rate;
            let formant = 500.0 + 1500.0 * (0.5 + 0.5 * (2.0 * PI * 1.3 * t).sin());
            let envelope = if t.fract() < 0.8 {
                (PI * 4.0 * t).sin().powi(2)
            } else {
                0.0
            };
            let mut sample = 0.0;
            let mut harmonic = 1.0;
            while harmonic * f0 < 4500.0 {
                let weight = (-((harmonic * f0 - formant) / 600.0).powi(2)).exp() + 0.3;
                sample += weight / harmonic * (harmonic * phase).sin();
                harmonic += 1.0;
            }
            (0.3 * envelope * sample) as f32
        })
        .collect()
}

/// Returns `clean` plus `noise` scaled to `snr_db` below it.
fn add_noise(clean: &[f32], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let energy = |signal: &[f32]| signal.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
    let gain = (energy(clean) / energy(noise) / 10f64.powf(snr_db / 10.0)).sqrt();
    clean
        .iter()
        .zip(noise)
        .map(|(&c, &n)| (f64::from(c) + gain * f64::from(n)) as f32)
        .collect()
}

/// Returns the clean and noisy test recordings that scripts/fetch_speech.sh
/// writes to data/default/test (scripts/test.sh runs it first), failing
/// when they are absent.
fn recordings() -> Option<(Vec<f32>, Vec<f32>, u32)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/default/test");
    let clean_path = dir.join("clean.wav");
    let noisy_path = dir.join("noisy.wav");
    assert!(
        clean_path.exists() && noisy_path.exists(),
        "{} not found; run `bash scripts/test.sh`, or `bash scripts/fetch_speech.sh data/default` \
         before `cargo test`",
        dir.display()
    );
    let clean = read_wav(&clean_path).unwrap();
    let noisy = read_wav(&noisy_path).unwrap();
    assert_eq!(clean.sample_rate, noisy.sample_rate);
    assert_eq!(clean.samples.len(), noisy.samples.len());
    Some((clean.samples, noisy.samples, clean.sample_rate))
}

fn invalid_argument(result: segan::audio::Result<f64>) -> String {
    match result {
        Err(AudioError::InvalidArgument(message)) => message,
        other => panic!("expected AudioError::InvalidArgument, got {other:?}"),
    }
}

#[test]
fn identical_signals_score_one() {
    let clean = speech_like(3 * RATE as usize, RATE);
    let score = stoi(&clean, &clean, RATE).unwrap();
    assert!((score - 1.0).abs() < IDENTICAL_TOLERANCE, "score {score}");
}

#[test]
fn identical_recordings_score_one() {
    let Some((clean, _, rate)) = recordings() else {
        return;
    };
    let score = stoi(&clean, &clean, rate).unwrap();
    assert!((score - 1.0).abs() < IDENTICAL_TOLERANCE, "score {score}");
}

/// Checks that scores of `clean` in white noise rise with the SNR and are
/// near 1 at 30 dB. Returns the score at -10 dB.
fn check_rises_with_snr(clean: &[f32], rate: u32) -> f64 {
    let noise = white_noise(clean.len(), 7);
    let snrs_db = [-10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0];
    let scores: Vec<f64> = snrs_db
        .iter()
        .map(|&snr_db| stoi(clean, &add_noise(clean, &noise, snr_db), rate).unwrap())
        .collect();
    println!("white noise SNRs {snrs_db:?} dB give STOI {scores:?}");

    for pair in 0..snrs_db.len() - 1 {
        assert!(
            scores[pair] < scores[pair + 1],
            "STOI at {} dB ({}) is not below STOI at {} dB ({})",
            snrs_db[pair],
            scores[pair],
            snrs_db[pair + 1],
            scores[pair + 1]
        );
    }
    assert!(scores[6] > 0.95, "STOI at 30 dB is {}", scores[6]);
    scores[0]
}

#[test]
fn synthetic_speech_rises_with_snr() {
    let lowest = check_rises_with_snr(&speech_like(3 * RATE as usize, RATE), RATE);
    // The synthetic signal is active 80% of the time, so its local SNR is
    // close to the global one and -10 dB masks it heavily.
    assert!(lowest < 0.6, "STOI at -10 dB is {lowest}");
}

#[test]
fn recording_rises_with_snr() {
    let Some((clean, _, rate)) = recordings() else {
        return;
    };
    // The SNR is measured over the whole recording, and only about 30% of
    // its 25 ms frames are within 10 dB of the loudest, so those stay well
    // above the noise at -10 dB (pystoi also scores about 0.67 there). No
    // low bound is checked.
    check_rises_with_snr(&clean, rate);
}

#[test]
fn noisy_recording_scores_below_clean() {
    let Some((clean, noisy, rate)) = recordings() else {
        return;
    };
    let score = stoi(&clean, &noisy, rate).unwrap();
    println!("data/default/test noisy.wav against clean.wav: STOI {score}");
    assert!(score < 0.99, "score {score}");
    assert!(score > 0.3, "score {score}");
}

#[test]
fn matches_pystoi_at_10khz() {
    let dir = tempfile::tempdir().unwrap();
    let rate = STOI_SAMPLE_RATE;
    let clean = speech_like(3 * rate as usize, rate);
    let noise = white_noise(clean.len(), 3);

    let mut cases: Vec<(String, Vec<f32>, Vec<f32>)> = Vec::new();
    for snr_db in [-5.0, 0.0, 10.0] {
        cases.push((
            format!("synthetic_{snr_db}dB"),
            clean.clone(),
            add_noise(&clean, &noise, snr_db),
        ));
    }
    cases.push(("synthetic_identical".into(), clean.clone(), clean.clone()));
    cases.push((
        "synthetic_processed_silent".into(),
        clean.clone(),
        vec![0.0; clean.len()],
    ));
    // Silence before, inside and after the speech exercises the silent-frame
    // removal, and an odd length the final partial frame.
    let mut padded = vec![0.0f32; 7_777];
    padded.extend_from_slice(&clean[..15_000]);
    padded.extend(vec![0.0f32; 5_000]);
    padded.extend_from_slice(&clean[15_000..]);
    padded.extend(vec![0.0f32; 3_333]);
    let padded_noise = white_noise(padded.len(), 5);
    cases.push((
        "synthetic_padded_with_silence".into(),
        padded.clone(),
        add_noise(&padded, &padded_noise, 0.0),
    ));
    if let Some((clean, noisy, recording_rate)) = recordings() {
        let clean = resample(&clean, recording_rate, rate).unwrap();
        let noisy = resample(&noisy, recording_rate, rate).unwrap();
        cases.push(("recording".into(), clean, noisy));
    }

    for (name, clean, processed) in &cases {
        let expected = pystoi_clean_score(dir.path(), name, clean, processed, rate);
        let actual = stoi(clean, processed, rate).unwrap();
        println!("{name}: segan {actual:.12}, pystoi {expected:.12}");
        assert!(
            (actual - expected).abs() < SAME_RATE_TOLERANCE,
            "case {name}: segan {actual}, pystoi {expected}"
        );
    }
}

#[test]
fn matches_pystoi_after_resampling() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Vec<f32>, Vec<f32>, u32)> = Vec::new();
    for rate in [8_000, 16_000, 44_100] {
        let clean = speech_like(3 * rate as usize, rate);
        let noise = white_noise(clean.len(), u64::from(rate));
        for snr_db in [-5.0, 5.0] {
            cases.push((
                format!("synthetic_{rate}Hz_{snr_db}dB"),
                clean.clone(),
                add_noise(&clean, &noise, snr_db),
                rate,
            ));
        }
    }
    if let Some((clean, noisy, rate)) = recordings() {
        let noise = white_noise(clean.len(), 11);
        for snr_db in [-5.0, 0.0, 5.0, 10.0] {
            cases.push((
                format!("recording_white_{snr_db}dB"),
                clean.clone(),
                add_noise(&clean, &noise, snr_db),
                rate,
            ));
        }
        cases.push(("recording_noisy".into(), clean, noisy, rate));
    }

    let mut max_difference: f64 = 0.0;
    for (name, clean, processed, rate) in &cases {
        let expected = pystoi_clean_score(dir.path(), name, clean, processed, *rate);
        let actual = stoi(clean, processed, *rate).unwrap();
        let difference = (actual - expected).abs();
        max_difference = max_difference.max(difference);
        println!("{name}: segan {actual:.6}, pystoi {expected:.6}, difference {difference:.2e}");
        assert!(
            difference < RESAMPLED_TOLERANCE,
            "case {name}: segan {actual}, pystoi {expected}"
        );
    }
    println!("largest difference after resampling: {max_difference:.2e}");
}

#[test]
fn mismatched_lengths_are_rejected() {
    let clean = speech_like(RATE as usize, RATE);
    let message = invalid_argument(stoi(&clean, &clean[1..], RATE));
    assert!(message.contains("same length"), "{message}");
}

#[test]
fn empty_signals_are_rejected() {
    let message = invalid_argument(stoi(&[], &[], RATE));
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn nan_clean_sample_is_rejected() {
    let mut clean = speech_like(3 * RATE as usize, RATE);
    let processed = clean.clone();
    clean[100] = f32::NAN;
    let message = invalid_argument(stoi(&clean, &processed, RATE));
    assert!(
        message.contains("clean signal has a non-finite sample"),
        "{message}"
    );
}

#[test]
fn infinite_processed_sample_is_rejected() {
    let clean = speech_like(3 * RATE as usize, RATE);
    let mut processed = clean.clone();
    processed[200] = f32::INFINITY;
    let message = invalid_argument(stoi(&clean, &processed, RATE));
    assert!(
        message.contains("processed signal has a non-finite sample"),
        "{message}"
    );
}

#[test]
fn silent_clean_signal_is_rejected() {
    let silence = vec![0.0f32; 3 * RATE as usize];
    let processed = white_noise(silence.len(), 2);
    let message = invalid_argument(stoi(&silence, &processed, RATE));
    assert!(message.contains("all zeros"), "{message}");
}

#[test]
fn short_signal_is_rejected() {
    // 0.3 s gives fewer than 30 STFT frames of 12.8 ms hop.
    let clean = speech_like(3 * RATE as usize / 10, RATE);
    let message = invalid_argument(stoi(&clean, &clean, RATE));
    assert!(message.contains("STFT frames remain"), "{message}");
}

#[test]
fn short_speech_in_silence_is_rejected_like_pystoi() {
    // 0.2 s of speech-like signal in 3 s of zeros leaves fewer than 30
    // frames after silent-frame removal.
    let dir = tempfile::tempdir().unwrap();
    let mut clean = vec![0.0f32; 3 * RATE as usize];
    let burst = speech_like(RATE as usize, RATE);
    clean[RATE as usize..RATE as usize + RATE as usize / 5]
        .copy_from_slice(&burst[RATE as usize / 20..RATE as usize / 4]);
    let message = invalid_argument(stoi(&clean, &clean, RATE));
    assert!(message.contains("STFT frames remain"), "{message}");

    let (_, warnings) = pystoi_score(dir.path(), "short_speech", &clean, &clean, RATE);
    assert_eq!(warnings.len(), 1, "pystoi should warn about too few frames");
}

#[test]
fn zero_sample_rate_is_rejected() {
    let clean = speech_like(RATE as usize, RATE);
    let message = invalid_argument(stoi(&clean, &clean, 0));
    assert!(message.contains("sample rate"), "{message}");
}
