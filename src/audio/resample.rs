//! Band-limited sample rate conversion of whole signals.

use std::path::Path;

use rubato::{FftFixedInOut, Resampler};

use super::error::{AudioError, Result};
use super::wav::{read_wav, Audio};

/// Input frames per FFT block that the block size is rounded up from. The
/// anti-aliasing filter of rubato's FFT resampler is one block long, so 1024
/// input frames give a 1024-tap (or longer) windowed-sinc filter.
const MIN_BLOCK_FRAMES: usize = 1024;

/// Returns the output length for `input_len` samples converted from `from`
/// to `to` Hz: `input_len * to / from` rounded to the nearest integer, with
/// halves rounded up.
pub fn resampled_len(input_len: usize, from: u32, to: u32) -> usize {
    let numerator = input_len as u128 * u128::from(to) + u128::from(from) / 2;
    (numerator / u128::from(from)) as usize
}

/// Lowest sample rate accepted. Below it a header is almost surely wrong,
/// and resampling a few samples "at 1 Hz" to 16 kHz would make hours of audio.
pub const MIN_RATE: u32 = 1000;
/// Highest sample rate accepted (the highest rate audio interfaces offer).
pub const MAX_RATE: u32 = 768_000;

/// Converts a mono signal from `from` Hz to `to` Hz.
///
/// The conversion uses rubato's synchronous FFT resampler (a windowed-sinc
/// low-pass applied in the frequency domain, cut-off just below the lower of
/// the two Nyquist frequencies), computed in f64. The resampler's delay is
/// removed, so a sample at time t in the input stays at time t in the
/// output, and the output has exactly [`resampled_len`] samples. The signal
/// is treated as zero outside its ends. Equal rates return a copy.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when a rate is 0, and
/// [`AudioError::Resample`] when rubato fails.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(AudioError::InvalidArgument(format!(
            "sample rates must be positive, got {from} Hz to {to} Hz"
        )));
    }
    for rate in [from, to] {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(AudioError::InvalidArgument(format!(
                "unsupported sample rate {rate} Hz: expected {MIN_RATE} to {MAX_RATE} Hz"
            )));
        }
    }
    if from == to {
        return Ok(samples.to_vec());
    }
    let output_len = resampled_len(samples.len(), from, to);
    if output_len == 0 {
        return Ok(Vec::new());
    }

    let resample_error = |reason: String| AudioError::Resample { from, to, reason };

    let block_in = block_frames(from, to);
    let mut resampler = FftFixedInOut::<f64>::new(from as usize, to as usize, block_in, 1)
        .map_err(|e| resample_error(e.to_string()))?;
    let block_in = resampler.input_frames_next();
    let block_out = resampler.output_frames_next();
    let delay = resampler.output_delay();

    let mut input_block = vec![0.0f64; block_in];
    let mut output_block = vec![vec![0.0f64; block_out]];
    let mut output = Vec::with_capacity(delay + output_len + block_out);
    let mut consumed = 0;
    while output.len() < delay + output_len {
        // Past the end of the signal the blocks are zeros, which flushes the
        // filter's delay line.
        let end = (consumed + block_in).min(samples.len());
        let start = consumed.min(end);
        for (slot, &sample) in input_block.iter_mut().zip(&samples[start..end]) {
            *slot = f64::from(sample);
        }
        input_block[end - start..].fill(0.0);
        consumed += block_in;

        let (_, written) = resampler
            .process_into_buffer(&[&input_block], &mut output_block, None)
            .map_err(|e| resample_error(e.to_string()))?;
        output.extend_from_slice(&output_block[0][..written]);
    }

    Ok(output[delay..delay + output_len]
        .iter()
        .map(|&sample| sample as f32)
        .collect())
}

/// Chooses the input block length for rubato's `FftFixedInOut`.
///
/// rubato rounds the block to a multiple of `from / gcd(from, to)` frames
/// and centres its filter on frame `block / 2`, reporting a delay of
/// `block_out / 2` output frames. Using an even number of those minimal
/// blocks makes both block lengths even, so that delay is exact and no
/// half-sample shift remains.
fn block_frames(from: u32, to: u32) -> usize {
    let minimal = (from / gcd(from, to)) as usize;
    let pairs = MIN_BLOCK_FRAMES.div_ceil(2 * minimal).max(1);
    2 * minimal * pairs
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads a WAV file (see [`read_wav`]) and converts it to `sample_rate` Hz.
pub fn read_wav_resampled(path: impl AsRef<Path>, sample_rate: u32) -> Result<Audio> {
    let audio = read_wav(path)?;
    let samples = resample(&audio.samples, audio.sample_rate, sample_rate)?;
    Ok(Audio {
        samples,
        sample_rate,
    })
}
