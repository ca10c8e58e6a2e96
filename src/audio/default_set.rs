//! The default paired set, built from a few speech recordings so that the
//! crate can be trained and demonstrated without the noisy VCTK download.
//!
//! `scripts/fetch_speech.sh` fetches the voice recordings of Debian's
//! `alsa-utils` package ("Front Center", "Rear Left", ..., 48 kHz, GPL-2)
//! and its `Noise.wav`. Any folder of WAV files works as input.
//! See `docs/data.md` for the licence.

use std::path::{Path, PathBuf};

use log::debug;

use super::error::{AudioError, Result};
use super::mix::{
    limit_peak, make_noisy_set, mix_at_snr, white_noise, NoiseKind, NoiseSource, Utterance,
};
use super::resample::read_wav_resampled;
use super::wav::write_wav_f32;
use super::SAMPLE_RATE;

use rand::rngs::StdRng;
use rand::SeedableRng;

/// SNRs in dB of the training mixtures.
pub const DEFAULT_SET_SNRS_DB: [f64; 4] = [0.0, 5.0, 10.0, 15.0];

/// SNR in dB of the held-out test pair.
pub const TEST_SNR_DB: f64 = 5.0;

/// Recordings concatenated into one training utterance.
const RECORDINGS_PER_UTTERANCE: usize = 2;

/// Recordings held out for the test pair: the first ones in name order.
const TEST_RECORDINGS: usize = 2;

/// Talkers summed into babble noise.
const BABBLE_TALKERS: usize = 3;

/// File written last; its content describes the inputs and settings, so a
/// matching file means the set is complete and up to date.
const MANIFEST: &str = "default_set.txt";

/// Bumped whenever the construction changes, so old sets are rebuilt.
const FORMAT_VERSION: u32 = 1;

/// Summary of the set that [`build_default_set`] built or found.
#[derive(Debug, Clone)]
pub struct DefaultSetReport {
    /// Folder of clean training WAVs.
    pub clean_dir: PathBuf,
    /// Folder of noisy training WAVs, paired with `clean_dir` by file name.
    pub noisy_dir: PathBuf,
    /// Held-out clean test utterance.
    pub test_clean: PathBuf,
    /// `test_clean` mixed with white noise at [`TEST_SNR_DB`].
    pub test_noisy: PathBuf,
    /// Number of training pairs.
    pub pairs: usize,
    /// Bytes written by this call; 0 when `skipped`.
    pub bytes_written: u64,
    /// Whether an up-to-date set was already there and nothing was written.
    pub skipped: bool,
}

/// Builds the default paired set from the WAV recordings in `speech_dir`.
///
/// Files are taken in name order. One whose stem is `noise` (any case) is
/// a noise recording; the others are speech. Every recording is converted
/// to 16 kHz. The first two speech recordings, concatenated, form the
/// held-out test utterance. The rest form the training utterances, each
/// made of two consecutive recordings (cyclically). Each utterance is mixed
/// with white noise, the noise recording (if present) and babble of up to
/// three training recordings not in the utterance (none if no other is
/// left), at 0, 5, 10 and 15 dB SNR (see
/// [`make_noisy_set`]). With the nine `alsa-utils` files this gives 72
/// training pairs of about 3 s and a test pair of about 3 s, about 27 MB of
/// 32-bit float WAV in all.
///
/// The layout is `out_dir/clean/*.wav`, `out_dir/noisy/*.wav`,
/// `out_dir/test/clean.wav` and `out_dir/test/noisy.wav`. The call is
/// idempotent: when `out_dir/default_set.txt` matches the inputs (names and
/// sizes), `seed` and this construction, it returns at once with `skipped`
/// set.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when `speech_dir` has fewer than three
/// speech recordings, and any read or write error, naming the file.
pub fn build_default_set(speech_dir: &Path, out_dir: &Path, seed: u64) -> Result<DefaultSetReport> {
    let inputs = list_wavs(speech_dir)?;
    let manifest = manifest_text(&inputs, seed);
    let mut report = DefaultSetReport {
        clean_dir: out_dir.join("clean"),
        noisy_dir: out_dir.join("noisy"),
        test_clean: out_dir.join("test").join("clean.wav"),
        test_noisy: out_dir.join("test").join("noisy.wav"),
        pairs: 0,
        bytes_written: 0,
        skipped: false,
    };

    let manifest_path = out_dir.join(MANIFEST);
    if let Some(pairs) = existing_set_pairs(&manifest_path, &manifest, &report)? {
        report.pairs = pairs;
        report.skipped = true;
        debug!("{} is up to date; nothing to build", out_dir.display());
        return Ok(report);
    }

    let Recordings { speech, noise } = read_recordings(&inputs)?;
    if speech.len() < TEST_RECORDINGS + 1 {
        return Err(AudioError::InvalidArgument(format!(
            "{} has {} speech recordings; the default set needs at least {}",
            speech_dir.display(),
            speech.len(),
            TEST_RECORDINGS + 1
        )));
    }
    let (test_recordings, train_recordings) = speech.split_at(TEST_RECORDINGS);

    report.bytes_written += write_test_pair(test_recordings, &out_dir.join("test"), &report, seed)?;

    let utterances = training_utterances(train_recordings);
    let mut noises = vec![NoiseSource {
        name: "white".to_string(),
        kind: NoiseKind::White,
    }];
    if let Some(noise) = noise {
        noises.push(NoiseSource {
            name: "recorded".to_string(),
            kind: NoiseKind::Recording(noise),
        });
    }
    noises.push(NoiseSource {
        name: "babble".to_string(),
        kind: NoiseKind::Babble {
            talkers: BABBLE_TALKERS,
        },
    });

    let set = make_noisy_set(
        &utterances,
        &noises,
        &DEFAULT_SET_SNRS_DB,
        SAMPLE_RATE,
        &report.clean_dir,
        &report.noisy_dir,
        seed,
    )?;
    report.pairs = set.pairs.len();
    report.bytes_written += set.bytes_written;

    let manifest = format!("{manifest}{PAIRS_PREFIX}{}\n", report.pairs);
    write_manifest(&manifest_path, &manifest)?;
    debug!(
        "built {} training pairs and a test pair in {} ({} bytes)",
        report.pairs,
        out_dir.display(),
        report.bytes_written
    );
    Ok(report)
}

/// A WAV file of the input folder with its size, which goes into the manifest.
struct Input {
    path: PathBuf,
    name: String,
    bytes: u64,
}

fn list_wavs(dir: &Path) -> Result<Vec<Input>> {
    let entries = std::fs::read_dir(dir).map_err(|e| AudioError::io("failed to list", dir, e))?;
    let mut inputs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AudioError::io("failed to list", dir, e))?;
        let path = entry.path();
        let is_wav = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"));
        if !is_wav || !path.is_file() {
            continue;
        }
        let bytes = entry
            .metadata()
            .map_err(|e| AudioError::io("failed to read the size of", &path, e))?
            .len();
        let name = entry.file_name().to_string_lossy().into_owned();
        inputs.push(Input { path, name, bytes });
    }
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(inputs)
}

fn manifest_text(inputs: &[Input], seed: u64) -> String {
    let mut text = format!(
        "segan default set, format {FORMAT_VERSION}\nseed {seed}\nsample rate {SAMPLE_RATE}\n"
    );
    for input in inputs {
        text.push_str(&format!("input {} {} bytes\n", input.name, input.bytes));
    }
    text
}

const PAIRS_PREFIX: &str = "pairs ";

/// Returns the number of training pairs of a complete set built from the
/// same inputs and settings, or `None` when the set must be (re)built.
fn existing_set_pairs(
    manifest_path: &Path,
    manifest: &str,
    report: &DefaultSetReport,
) -> Result<Option<usize>> {
    let Ok(existing) = std::fs::read_to_string(manifest_path) else {
        return Ok(None);
    };
    let Some(pairs_line) = existing.strip_prefix(manifest) else {
        return Ok(None);
    };
    let Some(pairs) = pairs_line
        .trim_end()
        .strip_prefix(PAIRS_PREFIX)
        .and_then(|count| count.parse::<usize>().ok())
    else {
        return Ok(None);
    };
    if !report.test_clean.is_file() || !report.test_noisy.is_file() {
        return Ok(None);
    }
    for dir in [&report.clean_dir, &report.noisy_dir] {
        if !dir.is_dir() || count_wavs(dir)? != pairs {
            return Ok(None);
        }
    }
    Ok(Some(pairs))
}

fn is_noise_recording(input: &Input) -> bool {
    Path::new(&input.name)
        .file_stem()
        .is_some_and(|stem| stem.eq_ignore_ascii_case("noise"))
}

/// The input recordings at 16 kHz.
struct Recordings {
    speech: Vec<Vec<f32>>,
    noise: Option<Vec<f32>>,
}

fn read_recordings(inputs: &[Input]) -> Result<Recordings> {
    let mut speech = Vec::new();
    let mut noise = None;
    for input in inputs {
        let audio = read_wav_resampled(&input.path, SAMPLE_RATE)?;
        if is_noise_recording(input) {
            noise = Some(audio.samples);
        } else {
            speech.push(audio.samples);
        }
    }
    Ok(Recordings { speech, noise })
}

fn training_utterances(recordings: &[Vec<f32>]) -> Vec<Utterance> {
    let count = recordings.len();
    let per_utterance = RECORDINGS_PER_UTTERANCE.min(count);
    (0..count)
        .map(|first| {
            let members: Vec<usize> = (0..per_utterance).map(|k| (first + k) % count).collect();
            let samples = members
                .iter()
                .flat_map(|&i| recordings[i].iter().copied())
                .collect();
            let babble_talkers = (0..count)
                .filter(|i| !members.contains(i))
                .map(|i| recordings[i].clone())
                .collect();
            Utterance {
                name: format!("utt{:02}", first + 1),
                samples,
                babble_talkers,
            }
        })
        .collect()
}

/// Writes the test pair and returns its size in bytes.
fn write_test_pair(
    recordings: &[Vec<f32>],
    test_dir: &Path,
    report: &DefaultSetReport,
    seed: u64,
) -> Result<u64> {
    let clean: Vec<f32> = recordings.iter().flatten().copied().collect();
    // A seed of its own, so the test noise does not depend on the training set.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7E57_7E57_7E57_7E57);
    let noise = white_noise(clean.len(), &mut rng);
    let mut noisy = mix_at_snr(&clean, &noise, TEST_SNR_DB)?;
    let mut clean = clean;
    limit_peak(&mut clean, &mut noisy);

    std::fs::create_dir_all(test_dir)
        .map_err(|e| AudioError::io("failed to create", test_dir, e))?;
    write_wav_f32(&report.test_clean, &clean, SAMPLE_RATE)?;
    write_wav_f32(&report.test_noisy, &noisy, SAMPLE_RATE)?;

    let mut bytes = 0;
    for path in [&report.test_clean, &report.test_noisy] {
        bytes += std::fs::metadata(path)
            .map_err(|e| AudioError::io("failed to read the size of", path, e))?
            .len();
    }
    Ok(bytes)
}

fn count_wavs(dir: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(dir).map_err(|e| AudioError::io("failed to list", dir, e))?;
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|e| AudioError::io("failed to list", dir, e))?;
        if entry
            .path()
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"))
        {
            count += 1;
        }
    }
    Ok(count)
}

fn write_manifest(path: &Path, text: &str) -> Result<()> {
    super::atomic::write_atomically(path, |file| {
        use std::io::Write;
        file.write_all(text.as_bytes())
            .map_err(|e| AudioError::io("failed to write", path, e))
    })
}
