//! `segan prepare`: turns clean/noisy WAV folders into `[2, 16384]` `.npy`
//! window pairs for training.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::ArgGroup;

use segan::audio::default_set::build_default_set;
use segan::audio::prepare::{prepare_pairs, prepare_vctk, PrepareOptions, PrepareReport};
use segan::audio::TailMode;

/// Arguments of `segan prepare`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    ArgGroup::new("input")
        .required(true)
        .args(["vctk", "clean", "speech"])
))]
pub struct PrepareArgs {
    /// Root of the noisy VCTK set, containing clean_trainset_56spk_wav,
    /// noisy_trainset_56spk_wav, clean_testset_wav and noisy_testset_wav.
    /// Writes OUT/train and OUT/test.
    #[arg(long, value_name = "DIR")]
    pub vctk: Option<PathBuf>,

    /// Folder of clean WAV files, paired by file name with --noisy. Writes
    /// the windows into OUT.
    #[arg(long, value_name = "DIR", requires = "noisy")]
    pub clean: Option<PathBuf>,

    /// Folder of noisy WAV files, paired by file name with --clean.
    #[arg(long, value_name = "DIR", requires = "clean")]
    pub noisy: Option<PathBuf>,

    /// Folder of speech recordings (as fetched by scripts/fetch_speech.sh)
    /// to mix with noise into the default set. Writes OUT/clean, OUT/noisy,
    /// OUT/test/{clean,noisy}.wav and the training windows in OUT/train.
    #[arg(long, value_name = "DIR")]
    pub speech: Option<PathBuf>,

    /// Output folder, created if missing.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,

    /// Zero-pad the tail of each file into one last window instead of
    /// dropping it as the PyTorch SEGAN preprocessing does.
    #[arg(long)]
    pub pad_tail: bool,

    /// Exit with status 0 even when pairs were skipped because a file was
    /// unreadable or the clean and noisy lengths differ.
    #[arg(long)]
    pub allow_skipped: bool,

    /// Seed of the noise mixed in by --speech [default: 0].
    // In clap 4.6 any member of the "input" group satisfies
    // `requires = "speech"`, so the other inputs are excluded instead.
    #[arg(long, value_name = "N", conflicts_with_all = ["vctk", "clean"])]
    pub seed: Option<u64>,

    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `segan prepare`, printing a summary of each output folder.
///
/// # Errors
///
/// Fails when the inputs cannot be read or the output cannot be written,
/// when no window was written, and (unless `--allow-skipped`) when any pair
/// was skipped. Every window that could be written is written first.
pub fn run(args: PrepareArgs) -> anyhow::Result<()> {
    let options = PrepareOptions {
        tail: if args.pad_tail {
            TailMode::Pad
        } else {
            TailMode::Drop
        },
        show_progress: !args.no_progress,
    };

    let reports = if let Some(root) = &args.vctk {
        let report = prepare_vctk(root, &args.out, &options).with_context(|| {
            format!("failed to prepare the noisy VCTK set in {}", root.display())
        })?;
        [report.train, report.test].into_iter().flatten().collect()
    } else if let (Some(clean), Some(noisy)) = (&args.clean, &args.noisy) {
        vec![
            prepare_pairs(clean, noisy, &args.out, &options).with_context(|| {
                format!(
                    "failed to prepare pairs from {} and {}",
                    clean.display(),
                    noisy.display()
                )
            })?,
        ]
    } else if let Some(speech) = &args.speech {
        let set =
            build_default_set(speech, &args.out, args.seed.unwrap_or(0)).with_context(|| {
                format!("failed to build the default set from {}", speech.display())
            })?;
        if set.skipped {
            println!("{} is up to date ({} pairs)", args.out.display(), set.pairs);
        } else {
            println!(
                "built {} pairs and a test pair in {} ({:.1} MB)",
                set.pairs,
                args.out.display(),
                set.bytes_written as f64 / 1e6
            );
        }
        let train_dir = args.out.join("train");
        vec![
            prepare_pairs(&set.clean_dir, &set.noisy_dir, &train_dir, &options)
                .with_context(|| format!("failed to prepare windows in {}", train_dir.display()))?,
        ]
    } else {
        bail!("give --vctk DIR, --clean DIR --noisy DIR, or --speech DIR");
    };

    for report in &reports {
        print!("{report}");
    }
    check_reports(&reports, args.allow_skipped)
}

fn check_reports(reports: &[PrepareReport], allow_skipped: bool) -> anyhow::Result<()> {
    let windows: usize = reports.iter().map(|report| report.windows_written).sum();
    if windows == 0 {
        bail!(
            "no window was written: every pair was skipped or shorter than {} samples at 16 kHz",
            segan::audio::WINDOW + 1
        );
    }
    let skipped: usize = reports.iter().map(PrepareReport::skipped_pairs).sum();
    if skipped > 0 && !allow_skipped {
        bail!(
            "{} skipped (listed above); fix or remove those files, or pass \
             --allow-skipped to accept the windows written without them",
            if skipped == 1 {
                "1 pair was".to_owned()
            } else {
                format!("{skipped} pairs were")
            }
        );
    }
    Ok(())
}
