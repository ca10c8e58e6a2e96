//! Mixing clean speech with noise at a chosen SNR, and writing paired
//! clean/noisy folders from it.
//!
//! The SNR here is the global energy ratio over the whole utterance,
//! `10 log10(sum(clean^2) / sum(noise^2))`, not the active speech level of
//! ITU-T P.56 that the noisy VCTK set was mixed with.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::error::{AudioError, Result};
use super::wav::write_wav_f32;

/// Largest absolute sample value in a written pair. Mixtures that would
/// exceed it are scaled down, clean and noisy by the same factor, so that
/// the pair stays consistent and a later integer conversion cannot clip.
pub const MAX_PEAK: f32 = 0.99;

/// Returns `len` samples of zero-mean, unit-variance Gaussian white noise.
pub fn white_noise(len: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut noise = Vec::with_capacity(len);
    while noise.len() < len {
        // Box-Muller transform: two uniform samples give two normal ones.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * u2;
        noise.push((radius * angle.cos()) as f32);
        if noise.len() < len {
            noise.push((radius * angle.sin()) as f32);
        }
    }
    noise
}

/// Repeats `noise` cyclically from `offset` until it has `len` samples.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when `noise` is empty.
pub fn loop_to_len(noise: &[f32], len: usize, offset: usize) -> Result<Vec<f32>> {
    if noise.is_empty() {
        return Err(AudioError::InvalidArgument(
            "cannot loop an empty noise signal".to_string(),
        ));
    }
    Ok((0..len)
        .map(|i| noise[(offset + i) % noise.len()])
        .collect())
}

/// Returns babble noise of `len` samples: the sum of the `talkers`, each
/// looped from a random offset, divided by the square root of their count.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when `talkers` is empty or one is empty.
pub fn babble(talkers: &[&[f32]], len: usize, rng: &mut impl Rng) -> Result<Vec<f32>> {
    if talkers.is_empty() {
        return Err(AudioError::InvalidArgument(
            "babble noise needs at least one talker recording".to_string(),
        ));
    }
    let mut sum = vec![0.0f32; len];
    for talker in talkers {
        let offset = rng.random_range(0..talker.len().max(1));
        let looped = loop_to_len(talker, len, offset)?;
        for (total, sample) in sum.iter_mut().zip(looped) {
            *total += sample;
        }
    }
    let scale = 1.0 / (talkers.len() as f32).sqrt();
    sum.iter_mut().for_each(|sample| *sample *= scale);
    Ok(sum)
}

/// Returns `noise` scaled so that `clean` over it has an SNR of `snr_db`.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when the lengths differ, `snr_db` is not
/// finite, or either signal has zero energy.
pub fn scale_noise_to_snr(clean: &[f32], noise: &[f32], snr_db: f64) -> Result<Vec<f32>> {
    if clean.len() != noise.len() {
        return Err(AudioError::InvalidArgument(format!(
            "the clean signal has {} samples but the noise has {}",
            clean.len(),
            noise.len()
        )));
    }
    if !snr_db.is_finite() {
        return Err(AudioError::InvalidArgument(format!(
            "the target SNR must be finite, got {snr_db} dB"
        )));
    }
    let clean_energy = energy(clean);
    let noise_energy = energy(noise);
    if clean_energy == 0.0 || noise_energy == 0.0 {
        return Err(AudioError::InvalidArgument(format!(
            "cannot set an SNR when a signal is silent (clean energy {clean_energy}, noise \
             energy {noise_energy})"
        )));
    }
    let gain = (clean_energy / (noise_energy * 10f64.powf(snr_db / 10.0))).sqrt();
    Ok(noise
        .iter()
        .map(|&n| (f64::from(n) * gain) as f32)
        .collect())
}

/// Returns `clean` plus `noise` scaled to an SNR of `snr_db`
/// (see [`scale_noise_to_snr`]).
pub fn mix_at_snr(clean: &[f32], noise: &[f32], snr_db: f64) -> Result<Vec<f32>> {
    let scaled = scale_noise_to_snr(clean, noise, snr_db)?;
    Ok(clean.iter().zip(scaled).map(|(&c, n)| c + n).collect())
}

fn energy(signal: &[f32]) -> f64 {
    signal.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

/// A clean utterance to mix with noise.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// File stem of the written pair, such as `utt01`.
    pub name: String,
    /// Clean samples.
    pub samples: Vec<f32>,
    /// Other speech recordings that may be mixed into babble noise for this
    /// utterance; they should not contain the utterance itself.
    pub babble_talkers: Vec<Vec<f32>>,
}

/// A kind of noise for [`make_noisy_set`].
#[derive(Debug, Clone)]
pub enum NoiseKind {
    /// Gaussian white noise.
    White,
    /// A noise recording, looped from a random offset.
    Recording(Vec<f32>),
    /// Babble of up to `talkers` recordings drawn from the utterance's
    /// `babble_talkers`; utterances without talkers get none of this kind.
    Babble { talkers: usize },
}

/// A named noise kind; the name goes into the file names.
#[derive(Debug, Clone)]
pub struct NoiseSource {
    pub name: String,
    pub kind: NoiseKind,
}

/// Summary of the files that [`make_noisy_set`] wrote.
#[derive(Debug, Clone, Default)]
pub struct NoisySetReport {
    /// Stems of the written pairs, in writing order.
    pub pairs: Vec<String>,
    /// Pairs scaled down to keep the peak at [`MAX_PEAK`].
    pub rescaled: Vec<String>,
    /// Total bytes of the written WAV files.
    pub bytes_written: u64,
}

/// Writes every utterance mixed with every noise at every SNR as
/// `clean_dir/<stem>.wav` and `noisy_dir/<stem>.wav`, 32-bit float WAV at
/// `sample_rate`, with the stem `<utterance>_<noise>_snr<dB>dB`.
///
/// The output depends only on the inputs and `seed` (for a given version of
/// the `rand` crate, whose `StdRng` algorithm may change between releases).
/// Each file is written atomically; the folders are created if missing.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] for silent utterances or noises and the
/// errors of [`write_wav_f32`].
pub fn make_noisy_set(
    utterances: &[Utterance],
    noises: &[NoiseSource],
    snrs_db: &[f64],
    sample_rate: u32,
    clean_dir: &Path,
    noisy_dir: &Path,
    seed: u64,
) -> Result<NoisySetReport> {
    for dir in [clean_dir, noisy_dir] {
        std::fs::create_dir_all(dir).map_err(|e| AudioError::io("failed to create", dir, e))?;
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = NoisySetReport::default();
    for utterance in utterances {
        for source in noises {
            for &snr_db in snrs_db {
                let Some(noise) = noise_for(utterance, &source.kind, &mut rng)? else {
                    continue;
                };
                let stem = format!("{}_{}_snr{}dB", utterance.name, source.name, snr_db);
                let mut clean = utterance.samples.clone();
                let mut noisy = mix_at_snr(&clean, &noise, snr_db)
                    .map_err(|e| AudioError::InvalidArgument(format!("cannot mix {stem}: {e}")))?;
                if limit_peak(&mut clean, &mut noisy) {
                    report.rescaled.push(stem.clone());
                }

                let clean_path = clean_dir.join(format!("{stem}.wav"));
                let noisy_path = noisy_dir.join(format!("{stem}.wav"));
                write_wav_f32(&clean_path, &clean, sample_rate)?;
                write_wav_f32(&noisy_path, &noisy, sample_rate)?;
                report.bytes_written += file_len(&clean_path)? + file_len(&noisy_path)?;
                report.pairs.push(stem);
            }
        }
    }
    Ok(report)
}

fn noise_for(
    utterance: &Utterance,
    kind: &NoiseKind,
    rng: &mut StdRng,
) -> Result<Option<Vec<f32>>> {
    let len = utterance.samples.len();
    let noise = match kind {
        NoiseKind::White => white_noise(len, rng),
        NoiseKind::Recording(recording) => {
            let offset = rng.random_range(0..recording.len().max(1));
            loop_to_len(recording, len, offset)?
        }
        NoiseKind::Babble { talkers } => {
            let chosen = choose_talkers(&utterance.babble_talkers, *talkers, rng);
            if chosen.is_empty() {
                return Ok(None);
            }
            babble(&chosen, len, rng)?
        }
    };
    Ok(Some(noise))
}

/// Picks up to `count` distinct talkers in a seeded random order.
fn choose_talkers<'a>(talkers: &'a [Vec<f32>], count: usize, rng: &mut StdRng) -> Vec<&'a [f32]> {
    let mut indices: Vec<usize> = (0..talkers.len()).collect();
    // Partial Fisher-Yates shuffle of the first `count` positions.
    let count = count.min(indices.len());
    for i in 0..count {
        let j = rng.random_range(i..indices.len());
        indices.swap(i, j);
    }
    indices[..count]
        .iter()
        .map(|&i| talkers[i].as_slice())
        .collect()
}

/// Scales both signals down so that neither peak exceeds [`MAX_PEAK`];
/// returns whether it scaled.
pub(crate) fn limit_peak(clean: &mut [f32], noisy: &mut [f32]) -> bool {
    let peak = clean
        .iter()
        .chain(noisy.iter())
        .fold(0.0f32, |peak, &s| peak.max(s.abs()));
    if peak <= MAX_PEAK {
        return false;
    }
    let scale = MAX_PEAK / peak;
    clean.iter_mut().for_each(|s| *s *= scale);
    noisy.iter_mut().for_each(|s| *s *= scale);
    true
}

fn file_len(path: &PathBuf) -> Result<u64> {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .map_err(|e| AudioError::io("failed to read the size of", path, e))
}
