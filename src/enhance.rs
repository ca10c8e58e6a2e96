//! Enhancing recordings with a trained generator.
//!
//! As in the SEGAN PyTorch code's test loop, the recording is read at
//! 16 kHz, cut into 16384-sample windows with hop = window, and each window
//! is pre-emphasized, enhanced with its own latent `z` `[1, 1024, 8]` and
//! de-emphasized; the windows are concatenated. Differences, each with a
//! switch back to the reference's behaviour:
//! - the last partial window is zero-padded and the output trimmed, so the
//!   output has the input's duration (the reference drops the tail);
//! - de-emphasis is the exact inverse of the pre-emphasis,
//!   `y[n] = x[n] + 0.95·y[n−1]` (the reference adds the previous *input*
//!   sample, `y[n] = x[n] + 0.95·x[n−1]`, which does not invert it);
//! - windows run through the generator in batches.
//!
//! With a seed, the latent of the n-th window is the n-th
//! `torch.randn(1, 1024, 8)` after `torch.manual_seed(seed)`, so the output
//! can be compared with PyTorch's.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::audio::{
    de_emphasis, de_emphasis_reference, frame_windows, join_windows, pre_emphasis,
    read_wav_resampled, segmental_snr, split_padded, stoi, write_wav_f32, TailMode, EMPHASIS,
    SAMPLE_RATE, WINDOW,
};
use crate::checkpoint;
use crate::nn::Generator;

/// De-emphasis filter applied to each enhanced window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeEmphasis {
    /// The exact inverse of the pre-emphasis.
    #[default]
    Exact,
    /// The SEGAN PyTorch code's `y[n] = x[n] + 0.95·x[n−1]`.
    Reference,
}

/// Options of [`enhance_file`].
#[derive(Debug, Clone)]
pub struct EnhanceOptions {
    /// Windows per generator call.
    pub batch: usize,
    /// Seeds the latents like `torch.manual_seed(seed)`; random when `None`.
    pub seed: Option<i64>,
    pub de_emphasis: DeEmphasis,
    /// Drops the last partial window, as the reference does, instead of
    /// padding it; the output is then shorter than the input.
    pub drop_tail: bool,
    pub device: Device,
}

impl Default for EnhanceOptions {
    fn default() -> Self {
        Self {
            batch: 16,
            seed: None,
            de_emphasis: DeEmphasis::Exact,
            drop_tail: false,
            device: Device::Cpu,
        }
    }
}

/// A generator with its weights.
pub struct Enhancer {
    _vs: VarStore,
    generator: Generator,
    device: Device,
}

impl Enhancer {
    /// Loads the generator from a checkpoint: a training checkpoint of this
    /// crate or of PyTorch (the `generator` entry is taken when `key` is
    /// `None`), a plain generator state dict, or safetensors.
    pub fn from_checkpoint(path: &Path, key: Option<&str>, device: Device) -> Result<Self> {
        let value = checkpoint::load(path)?;
        let key = match key {
            Some(key) => Some(key),
            None if value.get("generator").is_some() => Some("generator"),
            None => None,
        };
        let state_dict = checkpoint::select_state_dict(&value, key)
            .with_context(|| format!("{}: no generator weights", path.display()))?;

        let mut vs = VarStore::new(device);
        let generator = Generator::new(vs.root())?;
        checkpoint::apply_state_dict(&mut vs, &state_dict, true)
            .with_context(|| format!("{}: not a SEGAN generator", path.display()))?;
        Ok(Self {
            _vs: vs,
            generator,
            device,
        })
    }

    /// Wraps a generator already built (for example by training).
    pub fn new(vs: VarStore, generator: Generator) -> Self {
        let device = vs.device();
        Self {
            _vs: vs,
            generator,
            device,
        }
    }

    /// Enhances 16 kHz samples and returns the enhanced samples.
    pub fn enhance(&self, samples: &[f32], options: &EnhanceOptions) -> Result<Vec<f32>> {
        if options.batch == 0 {
            bail!("the batch size must be at least 1");
        }
        if samples.is_empty() {
            bail!("the recording is empty");
        }
        let (windows, original_len) = if options.drop_tail {
            let windows = frame_windows(samples, WINDOW, WINDOW, TailMode::Drop)?;
            if windows.is_empty() {
                bail!(
                    "the recording has {} samples at 16 kHz, not more than one window of {WINDOW}; \
                     without the tail-dropping flag it would be padded instead",
                    samples.len()
                );
            }
            let len = windows.len() * WINDOW;
            (windows, len)
        } else {
            let padded = split_padded(samples, WINDOW)?;
            (padded.windows, padded.original_len)
        };

        let latents = latents(windows.len(), options.seed)?;
        let mut enhanced = Vec::with_capacity(windows.len());
        for (chunk, z) in windows
            .chunks(options.batch)
            .zip(latents.chunks(options.batch))
        {
            enhanced.extend(self.enhance_batch(chunk, z, options.de_emphasis)?);
        }
        Ok(join_windows(&enhanced, original_len)?)
    }

    fn enhance_batch(
        &self,
        windows: &[Vec<f32>],
        z: &[Tensor],
        de: DeEmphasis,
    ) -> Result<Vec<Vec<f32>>> {
        let mut data = Vec::with_capacity(windows.len() * WINDOW);
        for window in windows {
            data.extend(pre_emphasis(window, EMPHASIS));
        }
        let x = Tensor::f_from_slice(&data)?
            .f_reshape([windows.len() as i64, 1, WINDOW as i64])?
            .f_to_device(self.device)?;
        let z = Tensor::f_cat(z, 0)?.f_to_device(self.device)?;

        let out = tch::no_grad(|| self.generator.forward(&x, &z))?;
        let out = Vec::<f32>::try_from(&out.f_to_device(Device::Cpu)?.f_reshape([-1])?)?;
        Ok(out
            .chunks(WINDOW)
            .map(|window| match de {
                DeEmphasis::Exact => de_emphasis(window, EMPHASIS),
                DeEmphasis::Reference => de_emphasis_reference(window, EMPHASIS),
            })
            .collect())
    }
}

/// The latents of `count` windows, `[1, 1024, 8]` each, drawn one after the
/// other on the CPU from the global generator (seeded when `seed` is given).
fn latents(count: usize, seed: Option<i64>) -> Result<Vec<Tensor>> {
    let _generator = crate::rng::lock_global_generator();
    if let Some(seed) = seed {
        tch::manual_seed(seed);
    }
    (0..count)
        .map(|_| Ok(Tensor::f_randn([1, 1024, 8], (Kind::Float, Device::Cpu))?))
        .collect()
}

/// Result of [`enhance_file`].
#[derive(Debug)]
pub struct EnhanceReport {
    pub output: PathBuf,
    pub input_seconds: f64,
    pub output_seconds: f64,
    /// Seconds from the start that the scores cover: the whole input, or the
    /// windows kept when the tail is dropped.
    pub scored_seconds: Option<f64>,
    /// Segmental SNR (dB) of the noisy input and of the output against a
    /// clean reference, when one was given.
    pub ssnr: Option<(f64, f64)>,
    /// STOI of the noisy input and of the output against the clean
    /// reference, when one was given and the speech is long enough (STOI
    /// needs 30 frames of 12.8 ms above its silence threshold).
    pub stoi: Option<(f64, f64)>,
}

/// Maximum number of samples by which the clean reference and the input may
/// differ at 16 kHz, because resampling two recordings of one length from
/// different rates can round their sample counts apart by one.
const CLEAN_LENGTH_SLACK: usize = 1;

/// Enhances the WAV at `input` into a 16 kHz float WAV at `output`
/// (written atomically), scoring both against `clean` when given. The clean
/// reference must have the input's duration. Every check and score runs
/// before the output is written, so an error leaves `output` as it was.
pub fn enhance_file(
    enhancer: &Enhancer,
    input: &Path,
    output: &Path,
    clean: Option<&Path>,
    options: &EnhanceOptions,
) -> Result<EnhanceReport> {
    let noisy = read_wav_resampled(input, SAMPLE_RATE).context("cannot read the noisy input")?;
    let clean = match clean {
        Some(path) => Some(read_clean(path, noisy.samples.len())?),
        None => None,
    };
    let enhanced = enhancer
        .enhance(&noisy.samples, options)
        .with_context(|| format!("cannot enhance {}", input.display()))?;
    let scores = match &clean {
        Some(clean) => Some(score(clean, &noisy.samples, &enhanced)?),
        None => None,
    };
    write_wav_f32(output, &enhanced, SAMPLE_RATE).context("cannot write the output")?;

    Ok(EnhanceReport {
        output: output.to_owned(),
        input_seconds: seconds(noisy.samples.len()),
        output_seconds: seconds(enhanced.len()),
        scored_seconds: scores.as_ref().map(|scores| seconds(scores.samples)),
        ssnr: scores.as_ref().map(|scores| scores.ssnr),
        stoi: scores.and_then(|scores| scores.stoi),
    })
}

/// Reads the clean reference at 16 kHz and checks that it lasts as long as
/// the noisy input of `input_len` samples.
fn read_clean(path: &Path, input_len: usize) -> Result<Vec<f32>> {
    let clean = read_wav_resampled(path, SAMPLE_RATE).context("cannot read the clean reference")?;
    let len = clean.samples.len();
    if len.abs_diff(input_len) > CLEAN_LENGTH_SLACK {
        bail!(
            "the clean reference {} lasts {:.3} s ({len} samples at 16 kHz) but the input lasts \
             {:.3} s ({input_len} samples); scoring needs the clean recording of the same \
             utterance, of the same duration",
            path.display(),
            seconds(len),
            seconds(input_len)
        );
    }
    Ok(clean.samples)
}

/// Converts a sample count at 16 kHz to seconds.
fn seconds(samples: usize) -> f64 {
    samples as f64 / SAMPLE_RATE as f64
}

/// Scores of one enhancement against the clean reference.
struct Scores {
    /// Samples from the start that were scored.
    samples: usize,
    ssnr: (f64, f64),
    stoi: Option<(f64, f64)>,
}

/// Segmental SNR and STOI of `noisy` and `enhanced` against the clean
/// recording, over the samples all three share (all of them, or the kept
/// windows when the tail was dropped). STOI is `None` when the signals are
/// too short or silent for it.
fn score(clean: &[f32], noisy: &[f32], enhanced: &[f32]) -> Result<Scores> {
    let len = clean.len().min(noisy.len()).min(enhanced.len());
    if len == 0 {
        bail!("the clean reference and the output share no samples");
    }
    let clean = &clean[..len];
    let ssnr = (
        segmental_snr(clean, &noisy[..len], SAMPLE_RATE)?,
        segmental_snr(clean, &enhanced[..len], SAMPLE_RATE)?,
    );
    let stoi = match (
        stoi(clean, &noisy[..len], SAMPLE_RATE),
        stoi(clean, &enhanced[..len], SAMPLE_RATE),
    ) {
        (Ok(noisy), Ok(enhanced)) => Some((noisy, enhanced)),
        (Err(error), _) | (_, Err(error)) => {
            log::warn!("STOI not computed: {error}");
            None
        }
    };
    Ok(Scores {
        samples: len,
        ssnr,
        stoi,
    })
}
