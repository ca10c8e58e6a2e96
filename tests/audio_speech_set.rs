//! The default set built from the real alsa-utils recordings.
//!
//! The recordings are downloaded, not bundled: `scripts/test.sh` fetches
//! them into data/default/speech before `cargo test`. `SEGAN_SPEECH_DIR`
//! points the test at another copy. Without them the test fails, saying
//! how to fetch them.

use std::path::PathBuf;

use segan::audio::default_set::{build_default_set, DEFAULT_SET_SNRS_DB, TEST_SNR_DB};
use segan::audio::metrics::{segmental_snr, snr};
use segan::audio::prepare::{prepare_pairs, PrepareOptions};
use segan::audio::wav::read_wav;
use segan::audio::WindowDataset;

/// Mixtures are exact up to f32 rounding of the written samples.
const SNR_TOLERANCE_DB: f64 = 1e-3;

fn speech_dir() -> PathBuf {
    let dir = match std::env::var_os("SEGAN_SPEECH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/default/speech"),
    };
    assert!(
        dir.is_dir(),
        "{} not found; run `bash scripts/test.sh`, or `bash scripts/fetch_speech.sh data/default` \
         before `cargo test`",
        dir.display()
    );
    dir
}

#[test]
fn alsa_recordings_give_default_set() {
    let speech = speech_dir();
    let out = tempfile::tempdir().unwrap();
    let report = build_default_set(&speech, out.path(), 0).unwrap();

    // 8 speech recordings: 2 for the test pair, 6 training utterances, each
    // with white, recorded and babble noise at 4 SNRs.
    assert_eq!(report.pairs, 6 * 3 * DEFAULT_SET_SNRS_DB.len());
    println!(
        "built {} pairs, {} bytes",
        report.pairs, report.bytes_written
    );

    for entry in std::fs::read_dir(&report.noisy_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let clean = read_wav(report.clean_dir.join(path.file_name().unwrap())).unwrap();
        let noisy = read_wav(&path).unwrap();
        let target: f64 = name
            .rsplit("_snr")
            .next()
            .and_then(|s| s.strip_suffix("dB"))
            .unwrap()
            .parse()
            .unwrap();
        let measured = snr(&clean.samples, &noisy.samples).unwrap();
        assert!(
            (measured - target).abs() < SNR_TOLERANCE_DB,
            "{name}: {measured} dB"
        );
    }

    let clean = read_wav(&report.test_clean).unwrap();
    let noisy = read_wav(&report.test_noisy).unwrap();
    let measured = snr(&clean.samples, &noisy.samples).unwrap();
    assert!(
        (measured - TEST_SNR_DB).abs() < SNR_TOLERANCE_DB,
        "test pair {measured} dB"
    );
    let ssnr = segmental_snr(&clean.samples, &noisy.samples, clean.sample_rate).unwrap();
    println!(
        "test pair: {:.2} s, SNR {measured:.2} dB, segmental SNR {ssnr:.2} dB",
        clean.duration_seconds()
    );

    let windows = out.path().join("train");
    let prepared = prepare_pairs(
        &report.clean_dir,
        &report.noisy_dir,
        &windows,
        &PrepareOptions {
            show_progress: false,
            ..PrepareOptions::default()
        },
    )
    .unwrap();
    assert_eq!(prepared.skipped_pairs(), 0);
    assert!(prepared.too_short.is_empty(), "{:?}", prepared.too_short);
    let dataset = WindowDataset::open(&windows).unwrap();
    assert_eq!(dataset.len(), prepared.windows_written);
    println!("{} training windows", dataset.len());
}
