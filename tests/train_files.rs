//! Files of a training run that a user may have edited or left behind: the
//! loss log, checkpoint names and interrupted writes.

use std::fs;

use segan::train::{record, state};

const HEADER: &str = "epoch,step,d_clean,d_noisy,d_loss,g_adversarial,g_l1,g_loss";

#[test]
fn loss_log_skips_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.csv");
    fs::write(
        &path,
        format!("{HEADER}\n1,1,0.5,0.25,0.75,0.5,16,16.5\n\n"),
    )
    .unwrap();
    let rows = record::read_csv(&path).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].g_l1, 16.0);
}

#[test]
fn loss_log_rejects_non_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.csv");
    for value in ["inf", "NaN", "-inf"] {
        fs::write(&path, format!("{HEADER}\n1,1,{value},0.25,0,0.5,16,0\n")).unwrap();
        let error = format!("{:#}", record::read_csv(&path).unwrap_err());
        assert!(error.contains("invalid row 2"), "{error}");
        assert!(error.contains("non-finite"), "{error}");
    }
}

#[test]
fn latest_epoch_reads_only_canonical_names() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "state-01.pt",
        "state-+7.pt",
        "state-3.pt",
        "state-2.pt",
        "state-x.pt",
    ] {
        fs::write(dir.path().join(name), b"").unwrap();
    }
    assert_eq!(state::latest_epoch(dir.path()).unwrap(), Some(3));
}

#[test]
fn plot_rejects_non_finite_losses() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("losses.csv");
    fs::write(&csv, format!("{HEADER}\n1,1,0.5,0.25,0.75,0.5,16,16.5\n")).unwrap();
    let mut rows = record::read_csv(&csv).unwrap();
    rows[0].d_clean = f64::INFINITY;
    let png = dir.path().join("losses.png");
    let error = format!("{:#}", record::plot(&png, &rows).unwrap_err());
    assert!(error.contains("non-finite loss"), "{error}");
    assert!(!png.exists());
}
