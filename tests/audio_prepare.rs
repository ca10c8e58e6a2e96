//! Dataset preparation and the window dataset: pairing, naming, the tail
//! rule, reporting of bad files, the VCTK layout, and numpy interchange.

use std::path::{Path, PathBuf};
use std::process::Command;

use segan::audio::dataset::WindowDataset;
use segan::audio::framing::{frame_windows, TailMode, HOP, WINDOW};
use segan::audio::prepare::{prepare_pairs, prepare_vctk, PrepareOptions, VCTK_SPLITS};
use segan::audio::resample::resample;
use segan::audio::wav::write_wav_f32;
use segan::audio::window_file::{read_window_pair, write_window_pair};
use segan::audio::AudioError;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/setup.sh to create the Python environment",
        python.display()
    );
    python
}

fn quiet() -> PrepareOptions {
    PrepareOptions {
        show_progress: false,
        ..PrepareOptions::default()
    }
}

fn signal(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|n| (n as f32 * 0.001 * (seed + 1) as f32).sin() * 0.5)
        .collect()
}

/// Writes a pair `name` at 48 kHz; the noisy file is the clean one plus a ramp.
fn write_pair(
    clean_dir: &Path,
    noisy_dir: &Path,
    name: &str,
    len: usize,
    seed: u32,
) -> (Vec<f32>, Vec<f32>) {
    let clean = signal(len, seed);
    let noisy: Vec<f32> = clean
        .iter()
        .enumerate()
        .map(|(i, &c)| c + (i % 7) as f32 * 0.01)
        .collect();
    write_wav_f32(clean_dir.join(name), &clean, 48_000).unwrap();
    write_wav_f32(noisy_dir.join(name), &noisy, 48_000).unwrap();
    (clean, noisy)
}

struct Folders {
    _root: tempfile::TempDir,
    clean: PathBuf,
    noisy: PathBuf,
    out: PathBuf,
}

fn folders() -> Folders {
    let root = tempfile::tempdir().unwrap();
    let clean = root.path().join("clean");
    let noisy = root.path().join("noisy");
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::create_dir_all(&noisy).unwrap();
    let out = root.path().join("out");
    Folders {
        clean,
        noisy,
        out,
        _root: root,
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn windows_are_named_and_counted_like_reference() {
    let f = folders();
    // 150000 samples at 48 kHz are 50000 at 16 kHz: windows at 0, 8192,
    // 16384, 24576 and 32768 (ending at 49152 < 50000); one at 40960 would
    // end past the end.
    write_pair(&f.clean, &f.noisy, "p226_001.wav", 150_000, 1);
    // 49152 samples at 48 kHz are exactly 16384 at 16 kHz: no window.
    write_pair(&f.clean, &f.noisy, "p226_002.wav", 49_152, 2);

    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    assert_eq!(report.pairs_found, 2);
    assert_eq!(report.pairs_written, 1);
    assert_eq!(report.windows_written, 5);
    assert_eq!(report.too_short, vec!["p226_002.wav".to_string()]);
    assert_eq!(report.skipped_pairs(), 0);
    assert!(report.stale_files.is_empty());
    assert_eq!(
        file_names(&f.out),
        vec![
            "p226_001.wav_0.npy",
            "p226_001.wav_1.npy",
            "p226_001.wav_2.npy",
            "p226_001.wav_3.npy",
            "p226_001.wav_4.npy"
        ]
    );
}

#[test]
fn window_content_is_resampled_frame() {
    let f = folders();
    let (clean, noisy) = write_pair(&f.clean, &f.noisy, "a.wav", 100_000, 3);
    prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();

    let clean_16k = resample(&clean, 48_000, 16_000).unwrap();
    let noisy_16k = resample(&noisy, 48_000, 16_000).unwrap();
    let clean_windows = frame_windows(&clean_16k, WINDOW, HOP, TailMode::Drop).unwrap();
    let noisy_windows = frame_windows(&noisy_16k, WINDOW, HOP, TailMode::Drop).unwrap();
    assert_eq!(clean_windows.len(), 3);
    for (index, (expected_clean, expected_noisy)) in
        clean_windows.iter().zip(&noisy_windows).enumerate()
    {
        let (got_clean, got_noisy) =
            read_window_pair(f.out.join(format!("a.wav_{index}.npy"))).unwrap();
        assert_eq!(&got_clean, expected_clean, "clean window {index}");
        assert_eq!(&got_noisy, expected_noisy, "noisy window {index}");
    }
}

#[test]
fn pad_tail_adds_padded_window() {
    let f = folders();
    write_pair(&f.clean, &f.noisy, "a.wav", 49_152, 4);
    let options = PrepareOptions {
        tail: TailMode::Pad,
        show_progress: false,
    };
    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &options).unwrap();
    assert_eq!(report.windows_written, 1);
    assert!(report.too_short.is_empty());

    let f = folders();
    write_pair(&f.clean, &f.noisy, "b.wav", 60_000, 4);
    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &options).unwrap();
    // 20000 samples at 16 kHz: windows at 0 and 8192, the second padded.
    assert_eq!(report.windows_written, 2);
    let (clean, _) = read_window_pair(f.out.join("b.wav_1.npy")).unwrap();
    assert!(clean[20_000 - HOP..].iter().all(|&v| v == 0.0));
}

#[test]
fn problems_are_reported_by_name() {
    let f = folders();
    // 80000 samples at 48 kHz are 26667 at 16 kHz: windows at 0 and 8192.
    write_pair(&f.clean, &f.noisy, "good.wav", 80_000, 5);
    write_wav_f32(f.clean.join("only_clean.wav"), &signal(60_000, 1), 48_000).unwrap();
    write_wav_f32(f.noisy.join("only_noisy.wav"), &signal(60_000, 1), 48_000).unwrap();
    write_wav_f32(f.clean.join("mismatch.wav"), &signal(60_000, 1), 48_000).unwrap();
    write_wav_f32(f.noisy.join("mismatch.wav"), &signal(59_999, 1), 48_000).unwrap();
    write_wav_f32(f.clean.join("broken.wav"), &signal(60_000, 1), 48_000).unwrap();
    std::fs::write(f.noisy.join("broken.wav"), b"RIFF\0\0\0\0WAVE").unwrap();
    std::fs::write(f.clean.join("notes.txt"), b"not audio").unwrap();

    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    assert_eq!(report.pairs_found, 3);
    assert_eq!(report.pairs_written, 1);
    assert_eq!(report.skipped_pairs(), 2);
    assert_eq!(report.unpaired_clean, vec![f.clean.join("only_clean.wav")]);
    assert_eq!(report.unpaired_noisy, vec![f.noisy.join("only_noisy.wav")]);

    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].path, f.noisy.join("broken.wav"));
    assert!(
        report.unreadable[0].error.contains("broken.wav"),
        "{}",
        report.unreadable[0].error
    );

    assert_eq!(report.length_mismatches.len(), 1);
    let mismatch = &report.length_mismatches[0];
    assert_eq!(mismatch.name, "mismatch.wav");
    assert_eq!(mismatch.clean_samples, 60_000);
    assert_eq!(mismatch.noisy_samples, 59_999);

    let summary = report.to_string();
    for name in [
        "broken.wav",
        "mismatch.wav",
        "only_clean.wav",
        "only_noisy.wav",
    ] {
        assert!(summary.contains(name), "summary lacks {name}:\n{summary}");
    }
    assert_eq!(file_names(&f.out), vec!["good.wav_0.npy", "good.wav_1.npy"]);
}

#[test]
fn no_common_names_is_error() {
    let f = folders();
    write_wav_f32(f.clean.join("a.wav"), &signal(60_000, 1), 48_000).unwrap();
    write_wav_f32(f.noisy.join("b.wav"), &signal(60_000, 1), 48_000).unwrap();
    let result = prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet());
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn missing_folder_is_io_error() {
    let f = folders();
    let result = prepare_pairs(&f.clean.join("missing"), &f.noisy, &f.out, &quiet());
    assert!(matches!(result, Err(AudioError::Io { .. })), "{result:?}");
}

#[test]
fn stale_windows_are_reported_not_deleted() {
    let f = folders();
    write_pair(&f.clean, &f.noisy, "a.wav", 60_000, 6);
    std::fs::create_dir_all(&f.out).unwrap();
    write_window_pair(f.out.join("a.wav_9.npy"), &[0.0; WINDOW], &[0.0; WINDOW]).unwrap();
    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    assert_eq!(report.stale_files, vec![f.out.join("a.wav_9.npy")]);
    assert!(f.out.join("a.wav_9.npy").exists());
}

#[test]
fn rerun_gives_identical_files() {
    let f = folders();
    write_pair(&f.clean, &f.noisy, "a.wav", 80_000, 7);
    prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    let first = std::fs::read(f.out.join("a.wav_1.npy")).unwrap();
    let report = prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    assert!(report.stale_files.is_empty());
    assert_eq!(std::fs::read(f.out.join("a.wav_1.npy")).unwrap(), first);
    assert_eq!(
        file_names(&f.out).len(),
        report.windows_written,
        "no temporary files remain"
    );
}

#[test]
fn vctk_layout_gives_train_and_test() {
    let root = tempfile::tempdir().unwrap();
    for split in VCTK_SPLITS {
        std::fs::create_dir_all(root.path().join(split.clean)).unwrap();
        std::fs::create_dir_all(root.path().join(split.noisy)).unwrap();
    }
    let train = &VCTK_SPLITS[0];
    let test = &VCTK_SPLITS[1];
    assert_eq!(train.clean, "clean_trainset_56spk_wav");
    assert_eq!(train.noisy, "noisy_trainset_56spk_wav");
    assert_eq!(test.clean, "clean_testset_wav");
    assert_eq!(test.noisy, "noisy_testset_wav");
    write_pair(
        &root.path().join(train.clean),
        &root.path().join(train.noisy),
        "p226_001.wav",
        80_000,
        1,
    );
    write_pair(
        &root.path().join(train.clean),
        &root.path().join(train.noisy),
        "p226_002.wav",
        80_000,
        2,
    );
    write_pair(
        &root.path().join(test.clean),
        &root.path().join(test.noisy),
        "p232_001.wav",
        80_000,
        3,
    );

    let out = root.path().join("out");
    let report = prepare_vctk(root.path(), &out, &quiet()).unwrap();
    assert_eq!(report.train.as_ref().unwrap().pairs_written, 2);
    assert_eq!(report.test.as_ref().unwrap().pairs_written, 1);
    assert_eq!(file_names(&out.join("train")).len(), 4);
    assert_eq!(
        file_names(&out.join("test")),
        vec!["p232_001.wav_0.npy", "p232_001.wav_1.npy"]
    );
}

#[test]
fn vctk_test_split_alone_is_accepted() {
    let root = tempfile::tempdir().unwrap();
    let test = &VCTK_SPLITS[1];
    std::fs::create_dir_all(root.path().join(test.clean)).unwrap();
    std::fs::create_dir_all(root.path().join(test.noisy)).unwrap();
    write_pair(
        &root.path().join(test.clean),
        &root.path().join(test.noisy),
        "p232_001.wav",
        80_000,
        3,
    );
    let report = prepare_vctk(root.path(), &root.path().join("out"), &quiet()).unwrap();
    assert!(report.train.is_none());
    assert_eq!(report.test.unwrap().windows_written, 2);
}

#[test]
fn vctk_half_split_is_error() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(VCTK_SPLITS[0].clean)).unwrap();
    let result = prepare_vctk(root.path(), &root.path().join("out"), &quiet());
    let error = result.unwrap_err();
    assert!(matches!(error, AudioError::InvalidArgument(_)), "{error}");
    assert!(
        error.to_string().contains("noisy_trainset_56spk_wav"),
        "{error}"
    );
}

#[test]
fn vctk_empty_root_is_error() {
    let root = tempfile::tempdir().unwrap();
    let result = prepare_vctk(root.path(), &root.path().join("out"), &quiet());
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn dataset_sorted_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("b.wav_0.npy", 2.0f32),
        ("a.wav_1.npy", 1.0),
        ("a.wav_0.npy", 0.0),
    ] {
        write_window_pair(dir.path().join(name), &[value; WINDOW], &[-value; WINDOW]).unwrap();
    }
    std::fs::write(dir.path().join("README.txt"), b"ignored").unwrap();
    let dataset = WindowDataset::open(dir.path()).unwrap();
    assert_eq!(dataset.len(), 3);
    assert!(!dataset.is_empty());
    let names: Vec<String> = dataset
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["a.wav_0.npy", "a.wav_1.npy", "b.wav_0.npy"]);
    let (clean, noisy) = dataset.get(1).unwrap();
    assert_eq!(clean, vec![1.0; WINDOW]);
    assert_eq!(noisy, vec![-1.0; WINDOW]);
    let out_of_range = dataset.get(3);
    assert!(
        matches!(out_of_range, Err(AudioError::InvalidArgument(_))),
        "{out_of_range:?}"
    );
}

#[test]
fn dataset_empty_folder_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = WindowDataset::open(dir.path());
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
    let missing = WindowDataset::open(dir.path().join("missing"));
    assert!(matches!(missing, Err(AudioError::Io { .. })), "{missing:?}");
}

#[test]
fn write_window_rejects_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    let result = write_window_pair(dir.path().join("x.npy"), &[0.0; 10], &[0.0; WINDOW]);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
    assert!(!dir.path().join("x.npy").exists());
}

#[test]
fn numpy_reads_our_windows() {
    let f = folders();
    write_pair(&f.clean, &f.noisy, "p1.wav", 80_000, 8);
    prepare_pairs(&f.clean, &f.noisy, &f.out, &quiet()).unwrap();
    let path = f.out.join("p1.wav_1.npy");
    let (clean, noisy) = read_window_pair(&path).unwrap();

    let output = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, numpy as np; a = np.load(sys.argv[1]); \
             print(a.shape, a.dtype, a.flags['C_CONTIGUOUS']); \
             a[0].tofile(sys.argv[1] + '.clean'); a[1].tofile(sys.argv[1] + '.noisy')",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "(2, 16384) float32 True"
    );
    let load = |suffix: &str| -> Vec<f32> {
        std::fs::read(format!("{}.{suffix}", path.display()))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    assert_eq!(load("clean"), clean);
    assert_eq!(load("noisy"), noisy);
}

#[test]
fn we_read_numpy_windows_and_reject_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, numpy as np
d = sys.argv[1]
pair = np.stack([np.arange(16384, dtype=np.float32) / 16384, -np.ones(16384, dtype=np.float32)])
np.save(f"{d}/good.npy", pair)
np.save(f"{d}/fortran.npy", np.asfortranarray(pair))
np.save(f"{d}/big_endian.npy", pair.astype(">f4"))
np.save(f"{d}/float64.npy", pair.astype(np.float64))
np.save(f"{d}/one_row.npy", pair[0])
np.save(f"{d}/short.npy", pair[:, :100])
np.save(f"{d}/three_rows.npy", np.zeros((3, 16384), dtype=np.float32))
raw = open(f"{d}/good.npy", "rb").read()
open(f"{d}/truncated.npy", "wb").write(raw[:-10])
open(f"{d}/extra.npy", "wb").write(raw + b"\0\0\0\0")
open(f"{d}/not_npy.npy", "wb").write(b"hello world, this is not numpy")
"#;
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the numpy helper failed");

    let expected_clean: Vec<f32> = (0..WINDOW).map(|i| i as f32 / 16384.0).collect();
    for name in ["good", "fortran", "big_endian"] {
        let (clean, noisy) = read_window_pair(dir.path().join(format!("{name}.npy"))).unwrap();
        assert_eq!(clean, expected_clean, "{name}");
        assert_eq!(noisy, vec![-1.0; WINDOW], "{name}");
    }
    for (name, reason) in [
        ("float64", "dtype"),
        ("one_row", "shape"),
        ("short", "shape"),
        ("three_rows", "shape"),
        ("truncated", "truncated"),
        ("extra", "after the end"),
        ("not_npy", "header"),
    ] {
        let error = read_window_pair(dir.path().join(format!("{name}.npy"))).unwrap_err();
        assert!(
            matches!(error, AudioError::InvalidWindowFile { .. }),
            "{name}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("{name}.npy")),
            "{name}: {message}"
        );
        assert!(message.contains(reason), "{name}: {message}");
    }

    // A dataset over the folder opens; bad files fail only when read.
    let dataset = WindowDataset::open(dir.path()).unwrap();
    assert_eq!(dataset.len(), 10);
    let errors = (0..dataset.len())
        .filter(|&i| dataset.get(i).is_err())
        .count();
    assert_eq!(errors, 7);
}

#[test]
fn oversized_window_file_is_rejected_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npy");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(10 * 1024 * 1024).unwrap();
    let error = read_window_pair(&path).unwrap_err();
    assert!(
        matches!(error, AudioError::InvalidWindowFile { .. }),
        "{error}"
    );
}

#[test]
fn window_with_nan_sample_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let mut noisy = vec![0.0; WINDOW];
    noisy[7] = f32::NAN;
    write_window_pair(&path, &[0.0; WINDOW], &noisy).unwrap();
    let error = read_window_pair(&path).unwrap_err().to_string();
    assert!(error.contains("noisy sample 7 is NaN"), "{error}");
}
