//! Training and enhancement end to end on small synthetic data: checkpoints,
//! resuming, divergence, output length and seeded latents.

use std::path::Path;

use segan::audio::{read_wav, write_wav_f32, write_window_pair, WINDOW};
use segan::checkpoint;
use segan::enhance::{enhance_file, EnhanceOptions, Enhancer};
use segan::nn::DiscriminatorConfig;
use segan::train::{train, OptimizerKind, TrainConfig};
use tch::Device;

fn tone(frequency: f32, len: usize, phase: f32) -> Vec<f32> {
    (0..len)
        .map(|n| 0.3 * (2.0 * std::f32::consts::PI * frequency * n as f32 / 16000.0 + phase).sin())
        .collect()
}

fn write_windows(dir: &Path, count: usize, poison: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for index in 0..count {
        let clean = tone(200.0 + 50.0 * index as f32, WINDOW, 0.1 * index as f32);
        let mut noisy: Vec<f32> = clean
            .iter()
            .enumerate()
            .map(|(n, &s)| s + 0.05 * ((n * 7919 + index) % 101) as f32 / 101.0)
            .collect();
        if poison {
            // Finite, so the window reader accepts it, but its square in the
            // VBN statistics overflows.
            noisy[100] = f32::MAX;
        }
        write_window_pair(dir.join(format!("tone_{index}.wav_0.npy")), &clean, &noisy).unwrap();
    }
}

fn config(data: &Path, out: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        data_dir: data.to_owned(),
        out_dir: out.to_owned(),
        epochs,
        batch_size: 2,
        reference_size: 2,
        seed: 5,
        device: Device::Cpu,
        optimizer: OptimizerKind::Adam {
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
        },
        l1_weight: 100.0,
        max_steps_per_epoch: Some(1),
        resume: false,
        discriminator: DiscriminatorConfig::default(),
        progress: false,
    }
}

#[test]
fn training_writes_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("out"));
    write_windows(&data, 3, false);

    let report = train(&config(&data, &out, 1)).unwrap();
    assert_eq!(report.steps_run, 1);
    let first = out.join("checkpoints/state-1.pt");
    assert_eq!(report.last_checkpoint, first);
    assert!(out.join("losses.png").exists());
    assert!(out.join("samples/epoch-1.wav").exists());

    let value = checkpoint::load(&first).unwrap();
    for key in ["generator", "discriminator", "g_optimizer", "d_optimizer"] {
        assert!(value.get(key).is_some(), "checkpoint lacks {key}");
    }
    assert_eq!(value.get("epoch").and_then(|v| v.as_int()), Some(1));
    let generator = checkpoint::select_state_dict(&value, Some("generator")).unwrap();
    assert!(generator.get("enc1.weight").is_some());

    let error = train(&config(&data, &out, 2)).unwrap_err();
    assert!(format!("{error:#}").contains("--resume"), "{error:#}");

    // An interrupted checkpoint write leaves a temporary file, which training removes.
    let stale = out.join("checkpoints/.state-2.pt.AbCdEf.tmp");
    std::fs::write(&stale, b"partial").unwrap();

    let mut resumed = config(&data, &out, 2);
    resumed.resume = true;
    let report = train(&resumed).unwrap();
    assert!(!stale.exists(), "the stale temporary file was kept");
    assert_eq!(report.epochs_run, 1);
    assert!(out.join("checkpoints/state-2.pt").exists());
    let log = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    assert_eq!(
        log.lines().count(),
        3,
        "header and one row per epoch:\n{log}"
    );

    // Resuming a run that already reached --epochs is an error, because it would train nothing.
    let error = format!("{:#}", train(&resumed).unwrap_err());
    assert!(error.contains("up to epoch 2"), "{error}");
    assert!(error.contains("--epochs 3"), "{error}");

    // The optimizer must be the one the checkpoint was trained with.
    let mut other_optimizer = config(&data, &out, 3);
    other_optimizer.resume = true;
    other_optimizer.optimizer = OptimizerKind::RmsProp { lr: 1e-4 };
    let error = format!("{:#}", train(&other_optimizer).unwrap_err());
    assert!(error.contains("Adam's"), "{error}");
    assert!(error.contains("--optimizer adam"), "{error}");
    assert!(!out.join("checkpoints/state-3.pt").exists());

    // A checkpoint whose recorded epoch disagrees with its name is rejected.
    std::fs::hard_link(
        out.join("checkpoints/state-2.pt"),
        out.join("checkpoints/state-5.pt"),
    )
    .unwrap();
    let mut renamed = config(&data, &out, 6);
    renamed.resume = true;
    let error = format!("{:#}", train(&renamed).unwrap_err());
    assert!(
        error.contains("records epoch 2, not the 5 of its name"),
        "{error}"
    );
}

#[test]
fn training_rejects_oversized_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("out"));
    write_windows(&data, 3, false);
    let mut config = config(&data, &out, 1);
    config.batch_size = 4;
    let error = format!("{:#}", train(&config).unwrap_err());
    assert!(
        error.contains("--batch 4 is larger than the 3 training windows"),
        "{error}"
    );

    config.batch_size = 2;
    config.reference_size = 1_000_000;
    let error = format!("{:#}", train(&config).unwrap_err());
    assert!(
        error.contains("--reference-size 1000000 is larger than the 3 training windows"),
        "{error}"
    );
}

#[test]
fn training_stops_on_non_finite_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("out"));
    write_windows(&data, 2, true);

    let error = format!("{:#}", train(&config(&data, &out, 1)).unwrap_err());
    assert!(
        error.contains("training diverged at epoch 1, step 1"),
        "{error}"
    );
    assert!(error.contains("no epoch completed"), "{error}");
    assert!(!out.join("checkpoints/state-1.pt").exists());
}

fn trained_generator(dir: &Path) -> std::path::PathBuf {
    let (data, out) = (dir.join("data"), dir.join("out"));
    write_windows(&data, 2, false);
    train(&config(&data, &out, 1)).unwrap().last_checkpoint
}

#[test]
fn enhance_keeps_duration_and_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained_generator(dir.path());
    let enhancer = Enhancer::from_checkpoint(&checkpoint, None, Device::Cpu).unwrap();

    let input = dir.path().join("noisy.wav");
    let clean = dir.path().join("clean.wav");
    write_wav_f32(&input, &tone(300.0, 44100, 0.0), 44100).unwrap();
    write_wav_f32(&clean, &tone(300.0, 44100, 0.0), 44100).unwrap();

    let options = EnhanceOptions {
        batch: 2,
        seed: Some(11),
        ..EnhanceOptions::default()
    };
    let first = dir.path().join("a.wav");
    let report = enhance_file(&enhancer, &input, &first, Some(&clean), &options).unwrap();
    let audio = read_wav(&first).unwrap();
    assert_eq!(audio.sample_rate, 16000);
    assert_eq!(audio.samples.len(), 16000, "one second in, one second out");
    assert!(report.ssnr.is_some());

    let second = dir.path().join("b.wav");
    let options_batch_one = EnhanceOptions {
        batch: 1,
        ..options.clone()
    };
    enhance_file(&enhancer, &input, &second, None, &options_batch_one).unwrap();
    assert_eq!(
        read_wav(&second).unwrap().samples,
        audio.samples,
        "batching changed the output"
    );

    let dropped = EnhanceOptions {
        drop_tail: true,
        ..options
    };
    let error = format!(
        "{:#}",
        enhance_file(&enhancer, &input, &second, None, &dropped).unwrap_err()
    );
    assert!(error.contains("not more than one window"), "{error}");

    // Scores cover what was enhanced, which is the kept windows when the tail is dropped.
    let long_input = dir.path().join("long-noisy.wav");
    let long_clean = dir.path().join("long-clean.wav");
    let long = tone(300.0, 16000, 0.0).repeat(2);
    write_wav_f32(&long_input, &long, 16000).unwrap();
    write_wav_f32(&long_clean, &long, 16000).unwrap();
    let report =
        enhance_file(&enhancer, &long_input, &second, Some(&long_clean), &dropped).unwrap();
    assert_eq!(report.output_seconds, 16384.0 / 16000.0);
    assert_eq!(report.scored_seconds, Some(16384.0 / 16000.0));
    assert_eq!(report.input_seconds, 2.0);
}

#[test]
fn enhance_checks_clean_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained_generator(dir.path());
    let enhancer = Enhancer::from_checkpoint(&checkpoint, None, Device::Cpu).unwrap();
    let options = EnhanceOptions::default();

    let input = dir.path().join("noisy.wav");
    let short_clean = dir.path().join("short-clean.wav");
    write_wav_f32(&input, &tone(300.0, 16000, 0.0), 16000).unwrap();
    write_wav_f32(&short_clean, &tone(300.0, 16000, 0.0)[..8000], 16000).unwrap();
    let output = dir.path().join("out.wav");
    let error = format!(
        "{:#}",
        enhance_file(&enhancer, &input, &output, Some(&short_clean), &options).unwrap_err()
    );
    assert!(
        error.contains("lasts 0.500 s (8000 samples at 16 kHz) but the input lasts 1.000 s"),
        "{error}"
    );
    assert!(!output.exists(), "an output was written despite the error");

    // An input too short to score fails before the output is written.
    let tiny = dir.path().join("tiny.wav");
    write_wav_f32(&tiny, &tone(300.0, 16000, 0.0)[..100], 16000).unwrap();
    let error = format!(
        "{:#}",
        enhance_file(&enhancer, &tiny, &output, Some(&tiny), &options).unwrap_err()
    );
    assert!(error.contains("too short"), "{error}");
    assert!(!output.exists(), "an output was written despite the error");
}

#[test]
fn enhance_rejects_a_checkpoint_without_generator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.pt");
    let mut state_dict = checkpoint::StateDict::new();
    state_dict.insert(
        "weight",
        tch::Tensor::zeros([2], (tch::Kind::Float, Device::Cpu)),
    );
    checkpoint::save_state_dict(&path, &state_dict, checkpoint::Format::TorchZip).unwrap();
    let error = Enhancer::from_checkpoint(&path, None, Device::Cpu)
        .err()
        .expect("expected an error");
    assert!(
        format!("{error:#}").contains("not a SEGAN generator"),
        "{error:#}"
    );
}

/// Runs `segan train` for one step on `data` with the given VBN formula and
/// returns the losses of that step.
fn cli_train_losses(data: &Path, out: &Path, formula: &str) -> segan::train::record::StepLosses {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_segan"))
        .args(["train", "--epochs", "1", "--max-steps", "1", "--batch", "2"])
        .args([
            "--optimizer",
            "adam",
            "--seed",
            "5",
            "--device",
            "cpu",
            "--no-progress",
        ])
        .args(["--vbn-formula", formula])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "segan train --vbn-formula {formula} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = segan::train::record::read_csv(&out.join("losses.csv")).unwrap();
    assert_eq!(rows.len(), 1, "one logged step expected");
    rows.into_iter().next().unwrap()
}

#[test]
fn cli_trains_with_fused_formula() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_windows(&data, 3, false);

    let reference = cli_train_losses(&data, &dir.path().join("reference"), "reference");
    let fused = cli_train_losses(&data, &dir.path().join("fused"), "fused");
    // Same seed and data, so the formulas differ only in float32 rounding.
    let pairs = [
        ("d_clean", reference.d_clean, fused.d_clean),
        ("d_noisy", reference.d_noisy, fused.d_noisy),
        (
            "g_adversarial",
            reference.g_adversarial,
            fused.g_adversarial,
        ),
        ("g_l1", reference.g_l1, fused.g_l1),
    ];
    // The discriminator losses pass through eleven VBN layers, so a
    // bit-identical pair means the flag did not reach the discriminator.
    assert!(
        reference.d_clean != fused.d_clean || reference.d_noisy != fused.d_noisy,
        "the fused formula gave bit-identical discriminator losses"
    );
    for (name, expected, actual) in pairs {
        assert!(actual.is_finite(), "{name} is {actual}");
        assert!(
            (actual - expected).abs() <= 1e-4 * expected.abs().max(1.0),
            "{name}: fused {actual}, reference {expected}"
        );
    }
}

#[test]
fn cli_rejects_unknown_vbn_formula() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_segan"))
        .args(["train", "--vbn-formula", "fast", "--data"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'fast'"), "{stderr}");
    assert!(
        stderr.contains("possible values: reference, fused"),
        "{stderr}"
    );
}
