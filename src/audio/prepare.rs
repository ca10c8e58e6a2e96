//! Turning folders of paired clean/noisy WAV files into window pair files.
//!
//! This mirrors the PyTorch SEGAN preprocessing. Files are paired by name
//! and converted to 16 kHz. They are cut into [`WINDOW`]-sample windows
//! every [`HOP`] samples, with the tail dropped (see [`TailMode::Drop`]).
//! Each window pair is saved as `<file name>_<index>.npy`, for example
//! `p226_001.wav_0.npy`, holding a `[2, WINDOW]` float32 array (row 0
//! clean, row 1 noisy).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use log::{debug, info, warn};

use super::error::{AudioError, Result};
use super::framing::{window_starts, TailMode, HOP, WINDOW};
use super::resample::{resample, resampled_len};
use super::wav::{read_wav, Audio};
use super::window_file::write_window_pair;
use super::SAMPLE_RATE;

/// Folder names of the noisy VCTK set (Valentini-Botinhao et al., 2017)
/// and the output sub-folder of each split.
pub const VCTK_SPLITS: [VctkSplit; 2] = [
    VctkSplit {
        clean: "clean_trainset_56spk_wav",
        noisy: "noisy_trainset_56spk_wav",
        output: "train",
    },
    VctkSplit {
        clean: "clean_testset_wav",
        noisy: "noisy_testset_wav",
        output: "test",
    },
];

/// The folders of one split of the noisy VCTK set.
#[derive(Debug, Clone, Copy)]
pub struct VctkSplit {
    /// Folder of clean WAV files under the root.
    pub clean: &'static str,
    /// Folder of noisy WAV files under the root.
    pub noisy: &'static str,
    /// Output sub-folder for the windows.
    pub output: &'static str,
}

/// Settings of [`prepare_pairs`] and [`prepare_vctk`].
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Treatment of the samples after the last full window.
    pub tail: TailMode,
    /// Whether to draw a progress bar on stderr (hidden anyway when stderr
    /// is not a terminal).
    pub show_progress: bool,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            tail: TailMode::Drop,
            show_progress: true,
        }
    }
}

/// A file that could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableFile {
    pub path: PathBuf,
    /// The error message, which names the file and the problem.
    pub error: String,
}

/// A pair whose clean and noisy files differ in length.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthMismatch {
    /// The shared file name.
    pub name: String,
    /// Length of the clean file in samples at `clean_rate`.
    pub clean_samples: usize,
    pub clean_rate: u32,
    /// Length of the noisy file in samples at `noisy_rate`.
    pub noisy_samples: usize,
    pub noisy_rate: u32,
}

/// Outcome of [`prepare_pairs`], naming every file it passed over.
///
/// Unpaired files are expected in real folders and only reported.
/// Unreadable files and length mismatches mean the pair was skipped; the
/// `segan prepare` command exits with an error for them unless it is given
/// `--allow-skipped`.
#[derive(Debug, Clone, Default)]
pub struct PrepareReport {
    /// Folder the windows were written to.
    pub out_dir: PathBuf,
    /// Number of file names found in both folders.
    pub pairs_found: usize,
    /// Pairs that gave at least one window.
    pub pairs_written: usize,
    /// Window files written.
    pub windows_written: usize,
    /// Clean files without a noisy file of the same name.
    pub unpaired_clean: Vec<PathBuf>,
    /// Noisy files without a clean file of the same name.
    pub unpaired_noisy: Vec<PathBuf>,
    /// Files that could not be read; their pairs were skipped.
    pub unreadable: Vec<UnreadableFile>,
    /// Pairs skipped because the two files differ in length.
    pub length_mismatches: Vec<LengthMismatch>,
    /// Pairs read fine but too short for one window under the tail rule
    /// (with [`TailMode::Drop`], at most [`WINDOW`] samples at 16 kHz).
    pub too_short: Vec<String>,
    /// `.npy` files in the output folder that this run did not write, for
    /// example windows of an earlier run with other settings. They are left
    /// in place, and a [`WindowDataset`](super::dataset::WindowDataset) on the
    /// folder would include them.
    pub stale_files: Vec<PathBuf>,
}

impl PrepareReport {
    /// Number of pairs skipped because of an unreadable file or a length
    /// mismatch.
    pub fn skipped_pairs(&self) -> usize {
        self.pairs_found
            .saturating_sub(self.pairs_written)
            .saturating_sub(self.too_short.len())
    }
}

impl fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} windows from {} of {} pairs",
            self.out_dir.display(),
            self.windows_written,
            self.pairs_written,
            self.pairs_found
        )?;
        for item in &self.unreadable {
            writeln!(f, "  skipped, unreadable: {}", item.error)?;
        }
        for item in &self.length_mismatches {
            writeln!(
                f,
                "  skipped, length mismatch: {} has {} samples at {} Hz (clean) and {} at {} Hz \
                 (noisy)",
                item.name, item.clean_samples, item.clean_rate, item.noisy_samples, item.noisy_rate
            )?;
        }
        for name in &self.too_short {
            writeln!(f, "  no window, too short for the tail rule: {name}")?;
        }
        for path in &self.unpaired_clean {
            writeln!(f, "  unpaired clean file: {}", path.display())?;
        }
        for path in &self.unpaired_noisy {
            writeln!(f, "  unpaired noisy file: {}", path.display())?;
        }
        for path in &self.stale_files {
            writeln!(
                f,
                "  not written by this run (delete it if it is left from an earlier one): {}",
                path.display()
            )?;
        }
        Ok(())
    }
}

/// Reports of [`prepare_vctk`], one per split found under the root.
#[derive(Debug, Clone, Default)]
pub struct VctkReport {
    pub train: Option<PrepareReport>,
    pub test: Option<PrepareReport>,
}

/// Pairs the WAV files of `clean_dir` and `noisy_dir` by file name and
/// writes their window pairs to `out_dir` (created if missing).
///
/// Only files ending in `.wav` (any case) are considered. Existing window
/// files of the same name are replaced atomically; other files are kept.
///
/// # Errors
///
/// [`AudioError::Io`] when a folder cannot be listed or a window cannot be
/// written, and [`AudioError::InvalidArgument`] when no file name occurs in
/// both folders. Problems with single files do not fail the call; they go
/// into the report.
pub fn prepare_pairs(
    clean_dir: &Path,
    noisy_dir: &Path,
    out_dir: &Path,
    options: &PrepareOptions,
) -> Result<PrepareReport> {
    let clean_files = list_wavs(clean_dir)?;
    let noisy_files = list_wavs(noisy_dir)?;

    let mut report = PrepareReport {
        out_dir: out_dir.to_path_buf(),
        ..PrepareReport::default()
    };
    let mut names = Vec::new();
    for (name, path) in &clean_files {
        if noisy_files.contains_key(name) {
            names.push(name.clone());
        } else {
            report.unpaired_clean.push(path.clone());
        }
    }
    for (name, path) in &noisy_files {
        if !clean_files.contains_key(name) {
            report.unpaired_noisy.push(path.clone());
        }
    }
    if names.is_empty() {
        return Err(AudioError::InvalidArgument(format!(
            "no WAV file name occurs in both {} ({} files) and {} ({} files); clean and noisy \
             files are paired by identical names",
            clean_dir.display(),
            clean_files.len(),
            noisy_dir.display(),
            noisy_files.len()
        )));
    }
    report.pairs_found = names.len();

    std::fs::create_dir_all(out_dir).map_err(|e| AudioError::io("failed to create", out_dir, e))?;

    let progress = progress_bar(names.len(), options.show_progress);
    let mut written = BTreeSet::new();
    for name in &names {
        progress.set_message(name.clone());
        let outcome = prepare_pair(
            &clean_files[name],
            &noisy_files[name],
            name,
            out_dir,
            options,
        )?;
        match outcome {
            PairOutcome::Written(files) => {
                report.pairs_written += 1;
                report.windows_written += files.len();
                written.extend(files);
            }
            PairOutcome::TooShort => report.too_short.push(name.clone()),
            PairOutcome::Unreadable(files) => {
                for file in &files {
                    progress.suspend(|| warn!("skipping pair {name}: {}", file.error));
                }
                report.unreadable.extend(files);
            }
            PairOutcome::LengthMismatch(mismatch) => {
                progress.suspend(|| {
                    warn!(
                        "skipping pair {name}: the clean file has {} samples at {} Hz and the \
                         noisy file {} at {} Hz",
                        mismatch.clean_samples,
                        mismatch.clean_rate,
                        mismatch.noisy_samples,
                        mismatch.noisy_rate
                    )
                });
                report.length_mismatches.push(mismatch);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    report.stale_files = stale_windows(out_dir, &written)?;
    debug!(
        "wrote {} windows from {} pairs to {}",
        report.windows_written,
        report.pairs_written,
        out_dir.display()
    );
    Ok(report)
}

/// Runs [`prepare_pairs`] on each split of the noisy VCTK set under `root`
/// (see [`VCTK_SPLITS`]), writing `out_dir/train` and `out_dir/test`.
///
/// A split whose two folders are both absent is skipped, so a root with only
/// the test set works.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when only one folder of a split exists or
/// no split exists, and the errors of [`prepare_pairs`].
pub fn prepare_vctk(root: &Path, out_dir: &Path, options: &PrepareOptions) -> Result<VctkReport> {
    let mut report = VctkReport::default();
    for split in VCTK_SPLITS {
        let clean_dir = root.join(split.clean);
        let noisy_dir = root.join(split.noisy);
        match (clean_dir.is_dir(), noisy_dir.is_dir()) {
            (false, false) => {
                info!(
                    "{} has no {} split; skipping it",
                    root.display(),
                    split.output
                );
                continue;
            }
            (true, false) | (false, true) => {
                let (present, missing) = if clean_dir.is_dir() {
                    (&clean_dir, &noisy_dir)
                } else {
                    (&noisy_dir, &clean_dir)
                };
                return Err(AudioError::InvalidArgument(format!(
                    "{} exists but {} is missing; the {} split needs both",
                    present.display(),
                    missing.display(),
                    split.output
                )));
            }
            (true, true) => {}
        }
        let split_report =
            prepare_pairs(&clean_dir, &noisy_dir, &out_dir.join(split.output), options)?;
        match split.output {
            "train" => report.train = Some(split_report),
            _ => report.test = Some(split_report),
        }
    }

    if report.train.is_none() && report.test.is_none() {
        let expected: Vec<&str> = VCTK_SPLITS
            .iter()
            .flat_map(|split| [split.clean, split.noisy])
            .collect();
        return Err(AudioError::InvalidArgument(format!(
            "{} contains none of the noisy VCTK folders ({})",
            root.display(),
            expected.join(", ")
        )));
    }
    Ok(report)
}

enum PairOutcome {
    Written(Vec<PathBuf>),
    TooShort,
    Unreadable(Vec<UnreadableFile>),
    LengthMismatch(LengthMismatch),
}

fn prepare_pair(
    clean_path: &Path,
    noisy_path: &Path,
    name: &str,
    out_dir: &Path,
    options: &PrepareOptions,
) -> Result<PairOutcome> {
    let clean = read_wav(clean_path);
    let noisy = read_wav(noisy_path);
    let (clean, noisy) = match (clean, noisy) {
        (Ok(clean), Ok(noisy)) => (clean, noisy),
        (clean, noisy) => {
            let unreadable = [(clean_path, clean.err()), (noisy_path, noisy.err())]
                .into_iter()
                .filter_map(|(path, error)| {
                    error.map(|error| UnreadableFile {
                        path: path.to_path_buf(),
                        error: error.to_string(),
                    })
                })
                .collect();
            return Ok(PairOutcome::Unreadable(unreadable));
        }
    };

    if let Some(mismatch) = length_mismatch(name, &clean, &noisy) {
        return Ok(PairOutcome::LengthMismatch(mismatch));
    }

    let clean_16k = resample(&clean.samples, clean.sample_rate, SAMPLE_RATE)?;
    let noisy_16k = resample(&noisy.samples, noisy.sample_rate, SAMPLE_RATE)?;
    // Different source rates can round to lengths one sample apart.
    let len = clean_16k.len().min(noisy_16k.len());

    let starts = window_starts(len, WINDOW, HOP, options.tail)?;
    if starts.is_empty() {
        return Ok(PairOutcome::TooShort);
    }
    let mut files = Vec::with_capacity(starts.len());
    for (index, start) in starts.into_iter().enumerate() {
        let path = out_dir.join(format!("{name}_{index}.npy"));
        let clean_window = padded_window(&clean_16k[..len], start);
        let noisy_window = padded_window(&noisy_16k[..len], start);
        write_window_pair(&path, &clean_window, &noisy_window)?;
        files.push(path);
    }
    Ok(PairOutcome::Written(files))
}

/// Compares the lengths at the source rate when both files share it, and
/// otherwise the lengths at 16 kHz, allowing one sample of rounding.
fn length_mismatch(name: &str, clean: &Audio, noisy: &Audio) -> Option<LengthMismatch> {
    let matches = if clean.sample_rate == noisy.sample_rate {
        clean.samples.len() == noisy.samples.len()
    } else {
        let clean_len = resampled_len(clean.samples.len(), clean.sample_rate, SAMPLE_RATE);
        let noisy_len = resampled_len(noisy.samples.len(), noisy.sample_rate, SAMPLE_RATE);
        clean_len.abs_diff(noisy_len) <= 1
    };
    (!matches).then(|| LengthMismatch {
        name: name.to_string(),
        clean_samples: clean.samples.len(),
        clean_rate: clean.sample_rate,
        noisy_samples: noisy.samples.len(),
        noisy_rate: noisy.sample_rate,
    })
}

fn padded_window(samples: &[f32], start: usize) -> Vec<f32> {
    let end = (start + WINDOW).min(samples.len());
    let mut window = samples[start..end].to_vec();
    window.resize(WINDOW, 0.0);
    window
}

/// Lists the `.wav` files (any case) of `dir` by file name.
fn list_wavs(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| AudioError::io("failed to list", dir, e))?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| AudioError::io("failed to list", dir, e))?;
        let path = entry.path();
        let is_wav = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"));
        if is_wav && path.is_file() {
            files.insert(entry.file_name().to_string_lossy().into_owned(), path);
        }
    }
    Ok(files)
}

fn stale_windows(out_dir: &Path, written: &BTreeSet<PathBuf>) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(out_dir).map_err(|e| AudioError::io("failed to list", out_dir, e))?;
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AudioError::io("failed to list", out_dir, e))?;
        let path = entry.path();
        let is_npy = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("npy"));
        if is_npy && !written.contains(&path) {
            stale.push(path);
        }
    }
    stale.sort();
    Ok(stale)
}

fn progress_bar(len: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} pairs, {eta} left  {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}
