//! Pre- and de-emphasis: exact values, exact inversion, and agreement with
//! scipy.signal.lfilter.

use std::path::{Path, PathBuf};
use std::process::Command;

use segan::audio::emphasis::{de_emphasis, de_emphasis_reference, pre_emphasis, EMPHASIS};

/// Both filters round to f32 once per sample, so a round trip is off by a
/// few f32 ulps of the largest intermediate value; the de-emphasis
/// recursion can grow a sample up to 1 / (1 - 0.95) = 20 times.
const ROUND_TRIP_TOLERANCE: f32 = 1e-5;

/// scipy filters in f64 and the result is rounded to f32 here, so the
/// results differ only by that final rounding (relative 2^-24, values up to
/// about 20).
const SCIPY_TOLERANCE: f32 = 5e-6;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/setup.sh to create the Python environment",
        python.display()
    );
    python
}

/// Returns a deterministic pseudo-random signal in [-1, 1).
fn noise(len: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn coefficient_is_095() {
    assert_eq!(EMPHASIS, 0.95);
}

#[test]
fn pre_emphasis_values() {
    let y = pre_emphasis(&[1.0, 2.0, 0.0, -1.0], 0.5);
    assert_eq!(y, vec![1.0, 1.5, -1.0, -1.0]);
}

#[test]
fn de_emphasis_values() {
    let y = de_emphasis(&[1.0, 0.0, 0.0, 1.0], 0.5);
    assert_eq!(y, vec![1.0, 0.5, 0.25, 1.125]);
}

#[test]
fn reference_de_emphasis_values() {
    let y = de_emphasis_reference(&[1.0, 0.0, 0.0, 1.0], 0.5);
    assert_eq!(y, vec![1.0, 0.5, 0.0, 1.0]);
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(pre_emphasis(&[], EMPHASIS).is_empty());
    assert!(de_emphasis(&[], EMPHASIS).is_empty());
    assert!(de_emphasis_reference(&[], EMPHASIS).is_empty());
}

#[test]
fn de_emphasis_inverts_pre_emphasis() {
    let x = noise(20_000);
    let round_trip = de_emphasis(&pre_emphasis(&x, EMPHASIS), EMPHASIS);
    let error = max_difference(&round_trip, &x);
    assert!(error < ROUND_TRIP_TOLERANCE, "max error {error}");
}

#[test]
fn pre_emphasis_inverts_de_emphasis() {
    let x = noise(20_000);
    let round_trip = pre_emphasis(&de_emphasis(&x, EMPHASIS), EMPHASIS);
    let error = max_difference(&round_trip, &x);
    assert!(error < ROUND_TRIP_TOLERANCE, "max error {error}");
}

#[test]
fn reference_de_emphasis_does_not_invert() {
    let x = noise(1000);
    let y = de_emphasis_reference(&pre_emphasis(&x, EMPHASIS), EMPHASIS);
    // The reference pair yields x[n] - 0.95^2 x[n-2].
    let coeff = f64::from(EMPHASIS);
    for n in 2..x.len() {
        let expected = (f64::from(x[n]) - coeff * coeff * f64::from(x[n - 2])) as f32;
        assert!((y[n] - expected).abs() < ROUND_TRIP_TOLERANCE, "sample {n}");
    }
    assert!(
        max_difference(&y, &x) > 0.1,
        "the reference variant must differ from the input"
    );
}

#[test]
fn matches_scipy_lfilter() {
    let dir = tempfile::tempdir().unwrap();
    let x = noise(5000);
    let input = dir.path().join("x.f32");
    std::fs::write(
        &input,
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();

    let script = r#"
import sys, numpy as np
from scipy.signal import lfilter
x = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64)
c = float(np.float32(0.95))
lfilter([1.0, -c], [1.0], x).astype(np.float32).tofile(sys.argv[1] + ".pre")
lfilter([1.0], [1.0, -c], x).astype(np.float32).tofile(sys.argv[1] + ".de")
lfilter([1.0, c], [1.0], x).astype(np.float32).tofile(sys.argv[1] + ".ref")
"#;
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success(), "the scipy helper failed");

    let load = |suffix: &str| -> Vec<f32> {
        std::fs::read(dir.path().join(format!("x.f32.{suffix}")))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let pre_error = max_difference(&pre_emphasis(&x, EMPHASIS), &load("pre"));
    assert!(
        pre_error < SCIPY_TOLERANCE,
        "pre-emphasis max error {pre_error}"
    );
    let de_error = max_difference(&de_emphasis(&x, EMPHASIS), &load("de"));
    assert!(
        de_error < SCIPY_TOLERANCE,
        "de-emphasis max error {de_error}"
    );
    let reference_error = max_difference(&de_emphasis_reference(&x, EMPHASIS), &load("ref"));
    assert!(
        reference_error < SCIPY_TOLERANCE,
        "reference de-emphasis max error {reference_error}"
    );
}
