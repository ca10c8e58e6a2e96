//! Noise mixing and the default set: exact SNRs, determinism, layout and
//! idempotence.

use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use segan::audio::default_set::{build_default_set, DEFAULT_SET_SNRS_DB, TEST_SNR_DB};
use segan::audio::metrics::snr;
use segan::audio::mix::{
    babble, loop_to_len, make_noisy_set, mix_at_snr, scale_noise_to_snr, white_noise, NoiseKind,
    NoiseSource, Utterance, MAX_PEAK,
};
use segan::audio::wav::{read_wav, write_wav_f32};
use segan::audio::AudioError;

/// Mixtures are rounded to f32 and written as f32, which moves the measured
/// SNR by far less than 1e-3 dB for signals of a few thousand samples.
const SNR_TOLERANCE_DB: f64 = 1e-3;

/// The sample mean of n unit-variance normals has a standard deviation of
/// 1/sqrt(n), 0.0032 for n = 100000; 0.02 is more than six of those.
const WHITE_NOISE_MOMENT_TOLERANCE: f64 = 0.02;

fn tone(len: usize, frequency: f64, rate: u32) -> Vec<f32> {
    (0..len)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            (0.3 * (2.0 * std::f64::consts::PI * frequency * t).sin()) as f32
        })
        .collect()
}

fn subtract(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn white_noise_is_standard_normal() {
    let mut rng = StdRng::seed_from_u64(1);
    let noise = white_noise(100_001, &mut rng);
    assert_eq!(noise.len(), 100_001);
    let n = noise.len() as f64;
    let mean = noise.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = noise
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < WHITE_NOISE_MOMENT_TOLERANCE, "mean {mean}");
    assert!(
        (variance - 1.0).abs() < WHITE_NOISE_MOMENT_TOLERANCE,
        "variance {variance}"
    );
}

#[test]
fn white_noise_is_seeded() {
    let a = white_noise(100, &mut StdRng::seed_from_u64(7));
    let b = white_noise(100, &mut StdRng::seed_from_u64(7));
    let c = white_noise(100, &mut StdRng::seed_from_u64(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn loop_wraps_from_offset() {
    assert_eq!(
        loop_to_len(&[1.0, 2.0, 3.0], 7, 2).unwrap(),
        vec![3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
    let empty = loop_to_len(&[], 3, 0);
    assert!(
        matches!(empty, Err(AudioError::InvalidArgument(_))),
        "{empty:?}"
    );
}

#[test]
fn babble_sums_talkers() {
    let one = vec![1.0f32; 10];
    let two = vec![2.0f32; 10];
    let noise = babble(&[&one, &two], 5, &mut StdRng::seed_from_u64(0)).unwrap();
    let expected = 3.0 / 2f32.sqrt();
    assert!(
        noise.iter().all(|&v| (v - expected).abs() < 1e-6),
        "{noise:?}"
    );
    let none = babble(&[], 5, &mut StdRng::seed_from_u64(0));
    assert!(
        matches!(none, Err(AudioError::InvalidArgument(_))),
        "{none:?}"
    );
}

#[test]
fn mix_hits_requested_snr() {
    let clean = tone(16_000, 440.0, 16_000);
    let noise = white_noise(16_000, &mut StdRng::seed_from_u64(3));
    for snr_db in [-5.0, 0.0, 5.0, 10.0, 15.0, 30.0] {
        let noisy = mix_at_snr(&clean, &noise, snr_db).unwrap();
        let measured = snr(&clean, &noisy).unwrap();
        assert!(
            (measured - snr_db).abs() < SNR_TOLERANCE_DB,
            "requested {snr_db}, got {measured}"
        );
    }
}

#[test]
fn mix_rejects_bad_input() {
    let clean = tone(100, 440.0, 16_000);
    let silent = vec![0.0f32; 100];
    let cases = [
        (
            "length mismatch",
            scale_noise_to_snr(&clean, &silent[..99], 5.0),
        ),
        ("silent noise", scale_noise_to_snr(&clean, &silent, 5.0)),
        ("silent clean", scale_noise_to_snr(&silent, &clean, 5.0)),
        (
            "infinite SNR",
            scale_noise_to_snr(&clean, &clean, f64::INFINITY),
        ),
    ];
    for (name, result) in cases {
        assert!(
            matches!(result, Err(AudioError::InvalidArgument(_))),
            "{name}: {result:?}"
        );
    }
}

fn utterances() -> Vec<Utterance> {
    vec![
        Utterance {
            name: "u1".to_string(),
            samples: tone(8_000, 300.0, 16_000),
            babble_talkers: vec![tone(5_000, 500.0, 16_000), tone(3_000, 700.0, 16_000)],
        },
        Utterance {
            name: "u2".to_string(),
            samples: tone(6_000, 200.0, 16_000),
            babble_talkers: vec![],
        },
    ]
}

fn noises() -> Vec<NoiseSource> {
    vec![
        NoiseSource {
            name: "white".to_string(),
            kind: NoiseKind::White,
        },
        NoiseSource {
            name: "hum".to_string(),
            kind: NoiseKind::Recording(tone(1_000, 50.0, 16_000)),
        },
        NoiseSource {
            name: "babble".to_string(),
            kind: NoiseKind::Babble { talkers: 2 },
        },
    ]
}

#[test]
fn noisy_set_layout_and_snrs() {
    let dir = tempfile::tempdir().unwrap();
    let (clean_dir, noisy_dir) = (dir.path().join("clean"), dir.path().join("noisy"));
    let report = make_noisy_set(
        &utterances(),
        &noises(),
        &[0.0, 10.0],
        16_000,
        &clean_dir,
        &noisy_dir,
        42,
    )
    .unwrap();
    // u2 has no babble talkers, so it gets 2 noises; u1 gets 3.
    assert_eq!(report.pairs.len(), 10);
    assert!(report.pairs.contains(&"u1_babble_snr10dB".to_string()));
    assert!(!report.pairs.iter().any(|p| p.starts_with("u2_babble")));
    assert!(report.bytes_written > 0);

    for stem in &report.pairs {
        let clean = read_wav(clean_dir.join(format!("{stem}.wav"))).unwrap();
        let noisy = read_wav(noisy_dir.join(format!("{stem}.wav"))).unwrap();
        assert_eq!(clean.sample_rate, 16_000);
        assert_eq!(clean.samples.len(), noisy.samples.len(), "{stem}");
        let expected: f64 = if stem.ends_with("snr0dB") { 0.0 } else { 10.0 };
        let measured = snr(&clean.samples, &noisy.samples).unwrap();
        assert!(
            (measured - expected).abs() < SNR_TOLERANCE_DB,
            "{stem}: {measured} dB"
        );
        let peak = noisy
            .samples
            .iter()
            .chain(&clean.samples)
            .fold(0.0f32, |p, &s| p.max(s.abs()));
        assert!(peak <= MAX_PEAK * (1.0 + 1e-6), "{stem}: peak {peak}");
    }
}

#[test]
fn loud_mixture_is_rescaled_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let loud = vec![Utterance {
        name: "loud".to_string(),
        samples: tone(4_000, 300.0, 16_000).iter().map(|s| s * 3.0).collect(),
        babble_talkers: vec![],
    }];
    let white = vec![NoiseSource {
        name: "white".to_string(),
        kind: NoiseKind::White,
    }];
    let (clean_dir, noisy_dir) = (dir.path().join("c"), dir.path().join("n"));
    let report = make_noisy_set(&loud, &white, &[0.0], 16_000, &clean_dir, &noisy_dir, 1).unwrap();
    assert_eq!(report.rescaled, vec!["loud_white_snr0dB".to_string()]);
    let clean = read_wav(clean_dir.join("loud_white_snr0dB.wav"))
        .unwrap()
        .samples;
    let noisy = read_wav(noisy_dir.join("loud_white_snr0dB.wav"))
        .unwrap()
        .samples;
    let measured = snr(&clean, &noisy).unwrap();
    assert!(
        measured.abs() < SNR_TOLERANCE_DB,
        "rescaling changed the SNR to {measured}"
    );
}

#[test]
fn noisy_set_is_deterministic() {
    let build = |seed: u64| {
        let dir = tempfile::tempdir().unwrap();
        let (clean_dir, noisy_dir) = (dir.path().join("clean"), dir.path().join("noisy"));
        make_noisy_set(
            &utterances(),
            &noises(),
            &[5.0],
            16_000,
            &clean_dir,
            &noisy_dir,
            seed,
        )
        .unwrap();
        let noisy = std::fs::read(noisy_dir.join("u1_white_snr5dB.wav")).unwrap();
        let babble = std::fs::read(noisy_dir.join("u1_babble_snr5dB.wav")).unwrap();
        (noisy, babble)
    };
    assert_eq!(build(9), build(9));
    let (white_9, babble_9) = build(9);
    let (white_10, babble_10) = build(10);
    assert_ne!(white_9, white_10);
    assert_ne!(babble_9, babble_10);
}

/// Writes synthetic 48 kHz "recordings" standing in for the alsa-utils files.
fn write_recordings(dir: &Path, speech: usize, with_noise: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..speech {
        let samples = tone(48_000 + 4_800 * i, 150.0 + 40.0 * i as f64, 48_000);
        write_wav_f32(dir.join(format!("Voice_{i}.wav")), &samples, 48_000).unwrap();
    }
    if with_noise {
        let noise = white_noise(30_000, &mut StdRng::seed_from_u64(5));
        let noise: Vec<f32> = noise.iter().map(|v| v * 0.05).collect();
        write_wav_f32(dir.join("Noise.wav"), &noise, 48_000).unwrap();
    }
    std::fs::write(dir.join("COPYING"), b"not a wav").unwrap();
}

#[test]
fn default_set_layout() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech");
    write_recordings(&speech, 5, true);
    let out = dir.path().join("set");
    let report = build_default_set(&speech, &out, 0).unwrap();

    // 5 recordings: 2 for the test pair, 3 training utterances, each with
    // white, recorded and babble noise at 4 SNRs.
    assert_eq!(report.pairs, 3 * 3 * DEFAULT_SET_SNRS_DB.len());
    assert!(!report.skipped);
    assert!(report.bytes_written > 0);
    assert_eq!(report.clean_dir, out.join("clean"));
    assert_eq!(report.noisy_dir, out.join("noisy"));
    assert_eq!(
        std::fs::read_dir(&report.clean_dir).unwrap().count(),
        report.pairs
    );
    assert_eq!(
        std::fs::read_dir(&report.noisy_dir).unwrap().count(),
        report.pairs
    );
    assert!(report.noisy_dir.join("utt01_recorded_snr15dB.wav").exists());
    assert!(report.noisy_dir.join("utt03_babble_snr0dB.wav").exists());

    let clean = read_wav(&report.test_clean).unwrap();
    let noisy = read_wav(&report.test_noisy).unwrap();
    assert_eq!(clean.sample_rate, 16_000);
    // The test utterance is recordings 0 and 1 (1.0 s and 1.1 s) at 16 kHz.
    assert_eq!(clean.samples.len(), 16_000 + 17_600);
    let measured = snr(&clean.samples, &noisy.samples).unwrap();
    assert!(
        (measured - TEST_SNR_DB).abs() < SNR_TOLERANCE_DB,
        "test pair SNR {measured}"
    );

    let residual = subtract(&noisy.samples, &clean.samples);
    assert!(residual.iter().any(|&v| v != 0.0));
}

#[test]
fn default_set_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech");
    write_recordings(&speech, 4, false);
    let out = dir.path().join("set");
    let first = build_default_set(&speech, &out, 3).unwrap();
    assert!(!first.skipped);
    // Without Noise.wav and with both training recordings in each utterance
    // (so no babble talker is left): 2 utterances x white x 4 SNRs.
    assert_eq!(first.pairs, 2 * DEFAULT_SET_SNRS_DB.len());
    let sample = out.join("noisy/utt01_white_snr5dB.wav");
    let before = std::fs::read(&sample).unwrap();
    let modified = std::fs::metadata(&sample).unwrap().modified().unwrap();

    let second = build_default_set(&speech, &out, 3).unwrap();
    assert!(second.skipped);
    assert_eq!(second.pairs, first.pairs);
    assert_eq!(second.bytes_written, 0);
    assert_eq!(
        std::fs::metadata(&sample).unwrap().modified().unwrap(),
        modified
    );

    let reseeded = build_default_set(&speech, &out, 4).unwrap();
    assert!(!reseeded.skipped);
    assert_ne!(std::fs::read(&sample).unwrap(), before);

    std::fs::remove_file(&sample).unwrap();
    let repaired = build_default_set(&speech, &out, 4).unwrap();
    assert!(!repaired.skipped, "a missing file must trigger a rebuild");
    assert!(sample.exists());
}

#[test]
fn default_set_needs_three_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech");
    write_recordings(&speech, 2, true);
    let result = build_default_set(&speech, &dir.path().join("set"), 0);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn default_set_reports_unreadable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech");
    write_recordings(&speech, 3, false);
    std::fs::write(speech.join("Broken.wav"), b"RIFF").unwrap();
    let error = build_default_set(&speech, &dir.path().join("set"), 0).unwrap_err();
    assert!(error.to_string().contains("Broken.wav"), "{error}");
}
