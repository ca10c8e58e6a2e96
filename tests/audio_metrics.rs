//! Segmental and global SNR: hand-checkable cases and agreement with the
//! independent numpy implementation in scripts/ssnr_reference.py.

use std::path::{Path, PathBuf};
use std::process::Command;

use segan::audio::metrics::{
    segmental_snr, segmental_snr_frames, snr, SEGMENTAL_SNR_MAX_DB, SEGMENTAL_SNR_MIN_DB,
};
use segan::audio::wav::write_wav_f32;
use segan::audio::AudioError;

/// Both implementations work in f64 on the same f32 samples and differ only
/// in summation order, which moves results by about 1e-12 dB; 1e-6 dB
/// leaves room while catching any difference in framing or windowing.
const REFERENCE_TOLERANCE_DB: f64 = 1e-6;

/// Exact SNR construction, checked after f32 rounding of the mixture.
const MIX_TOLERANCE_DB: f64 = 1e-3;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/setup.sh to create the Python environment",
        python.display()
    );
    python
}

fn noise(len: usize, seed: u64) -> Vec<f32> {
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

/// Returns a speech-like test signal: tone bursts separated by silence.
fn bursts(len: usize, rate: u32) -> Vec<f32> {
    (0..len)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let envelope = if (t * 4.0).fract() < 0.6 { 1.0 } else { 0.0 };
            (envelope
                * 0.5
                * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                * (1.0 + 0.3 * (2.0 * std::f64::consts::PI * 3.0 * t).sin())) as f32
        })
        .collect()
}

#[test]
fn identical_signals_hit_upper_clamp() {
    let clean = noise(16_000, 1);
    let ssnr = segmental_snr(&clean, &clean, 16_000).unwrap();
    assert_eq!(ssnr, SEGMENTAL_SNR_MAX_DB);
    assert_eq!(snr(&clean, &clean).unwrap(), f64::INFINITY);
}

#[test]
fn frame_count_follows_composite() {
    // 16 kHz: 480-sample frames, hop 120, floor(16000/120 - 4) = 129 frames.
    let clean = noise(16_000, 2);
    assert_eq!(
        segmental_snr_frames(&clean, &clean, 16_000).unwrap().len(),
        129
    );
    // 8 kHz: 240-sample frames, hop 60.
    let clean = noise(8_000, 3);
    assert_eq!(
        segmental_snr_frames(&clean, &clean, 8_000).unwrap().len(),
        129
    );
    // 22.05 kHz: round(661.5) = 662-sample frames, hop 165,
    // floor(22050/165 - 662/165) = floor(129.62) = 129.
    let clean = noise(22_050, 4);
    assert_eq!(
        segmental_snr_frames(&clean, &clean, 22_050).unwrap().len(),
        129
    );
}

#[test]
fn scaled_copy_gives_known_frame_snr() {
    // processed = 0.9 * clean makes every frame's error 0.1 * clean,
    // so every frame has 10 log10(1 / 0.01) = 20 dB.
    let clean = noise(8_000, 5);
    let processed: Vec<f32> = clean.iter().map(|&c| c * 0.9).collect();
    let ssnr = segmental_snr(&clean, &processed, 16_000).unwrap();
    assert!(
        (ssnr - 20.0).abs() < MIX_TOLERANCE_DB,
        "segmental SNR {ssnr}"
    );
    let global = snr(&clean, &processed).unwrap();
    assert!(
        (global - 20.0).abs() < MIX_TOLERANCE_DB,
        "global SNR {global}"
    );
}

#[test]
fn large_error_hits_lower_clamp() {
    // processed = -3 * clean: error 4 * clean, 10 log10(1/16) = -12 dB.
    let clean = noise(8_000, 6);
    let processed: Vec<f32> = clean.iter().map(|&c| -3.0 * c).collect();
    assert_eq!(
        segmental_snr(&clean, &processed, 16_000).unwrap(),
        SEGMENTAL_SNR_MIN_DB
    );
    let global = snr(&clean, &processed).unwrap();
    assert!(
        (global + 12.041).abs() < MIX_TOLERANCE_DB,
        "global SNR {global}"
    );
}

#[test]
fn silent_clean_frames_count_as_minimum() {
    let clean = vec![0.0f32; 8_000];
    let processed = noise(8_000, 7);
    let frames = segmental_snr_frames(&clean, &processed, 16_000).unwrap();
    assert!(frames.iter().all(|&f| f == SEGMENTAL_SNR_MIN_DB));
}

#[test]
fn length_mismatch_is_error() {
    let result = segmental_snr(&[0.0; 1000], &[0.0; 999], 16_000);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
    let global = snr(&[0.1; 10], &[0.1; 11]);
    assert!(
        matches!(global, Err(AudioError::InvalidArgument(_))),
        "{global:?}"
    );
}

#[test]
fn too_short_signal_is_error() {
    // 600 samples at 16 kHz: floor(600/120 - 4) = 1 frame; 599 gives 0.
    assert_eq!(
        segmental_snr_frames(&[0.1; 600], &[0.1; 600], 16_000)
            .unwrap()
            .len(),
        1
    );
    let result = segmental_snr(&[0.1; 599], &[0.1; 599], 16_000);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
    let empty = segmental_snr(&[], &[], 16_000);
    assert!(
        matches!(empty, Err(AudioError::InvalidArgument(_))),
        "{empty:?}"
    );
}

#[test]
fn tiny_sample_rate_is_error() {
    let result = segmental_snr(&[0.1; 100], &[0.1; 100], 50);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn global_snr_rejects_silent_or_empty_clean() {
    let silent = snr(&[0.0; 10], &[0.1; 10]);
    assert!(
        matches!(silent, Err(AudioError::InvalidArgument(_))),
        "{silent:?}"
    );
    let empty = snr(&[], &[]);
    assert!(
        matches!(empty, Err(AudioError::InvalidArgument(_))),
        "{empty:?}"
    );
}

#[test]
fn agrees_with_numpy_reference() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ssnr_reference.py");

    let cases: [(&str, u32, usize, f32); 6] = [
        ("16k_light_noise", 16_000, 40_000, 0.01),
        ("16k_heavy_noise", 16_000, 40_000, 0.5),
        ("16k_odd_length", 16_000, 33_333, 0.1),
        ("8k", 8_000, 20_000, 0.05),
        ("22k", 22_050, 50_000, 0.05),
        ("44k", 44_100, 90_001, 0.2),
    ];
    for (index, (name, rate, len, noise_level)) in cases.into_iter().enumerate() {
        let clean = bursts(len, rate);
        let processed: Vec<f32> = clean
            .iter()
            .zip(noise(len, index as u64 + 10))
            .map(|(&c, n)| 0.95 * c + noise_level * n)
            .collect();
        let clean_path = dir.path().join(format!("{name}_clean.wav"));
        let processed_path = dir.path().join(format!("{name}_processed.wav"));
        write_wav_f32(&clean_path, &clean, rate).unwrap();
        write_wav_f32(&processed_path, &processed, rate).unwrap();

        let output = Command::new(python())
            .arg(&script)
            .arg(&clean_path)
            .arg(&processed_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let reference_ssnr = json_number(&stdout, "ssnr");
        let reference_snr = json_number(&stdout, "snr");
        let reference_frames = json_number(&stdout, "frames") as usize;

        let frames = segmental_snr_frames(&clean, &processed, rate).unwrap();
        assert_eq!(frames.len(), reference_frames, "{name}: frame count");
        let ssnr = segmental_snr(&clean, &processed, rate).unwrap();
        assert!(
            (ssnr - reference_ssnr).abs() < REFERENCE_TOLERANCE_DB,
            "{name}: segmental SNR {ssnr} vs reference {reference_ssnr}"
        );
        let global = snr(&clean, &processed).unwrap();
        assert!(
            (global - reference_snr).abs() < REFERENCE_TOLERANCE_DB,
            "{name}: global SNR {global} vs reference {reference_snr}"
        );
    }
}

/// Extracts a numeric field from the script's one-line JSON output.
fn json_number(json: &str, key: &str) -> f64 {
    let pattern = format!("\"{key}\": ");
    let start = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pattern.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad {key} in {json}"))
}
