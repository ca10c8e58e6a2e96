//! Cutting signals into fixed-length windows, and joining windows back.

use super::error::{AudioError, Result};

/// Window length in samples that SEGAN's generator takes (about 1 s at 16 kHz).
pub const WINDOW: usize = 16384;

/// Hop between training windows in samples: half a window, so training
/// windows overlap by 50 %.
pub const HOP: usize = 8192;

/// Treatment of the samples after the last complete window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailMode {
    /// The PyTorch SEGAN rule: a window starting at `s` is kept only if
    /// `s + window < len`, so every window ends strictly before the end of
    /// the signal. The tail is dropped, and a signal of exactly `window`
    /// samples gives no window at all.
    #[default]
    Drop,
    /// Windows start at 0, `hop`, `2 * hop`, ... and the last one is the
    /// first that reaches the end of the signal; it is zero-padded to
    /// `window` samples. Every sample lands in some window. An empty signal
    /// gives no window.
    Pad,
}

/// Returns the start offsets of the windows that [`frame_windows`] cuts.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when `window` or `hop` is 0.
pub fn window_starts(len: usize, window: usize, hop: usize, tail: TailMode) -> Result<Vec<usize>> {
    check_window_and_hop(window, hop)?;
    let mut starts = Vec::new();
    let mut start = 0;
    match tail {
        TailMode::Drop => {
            while start + window < len {
                starts.push(start);
                start += hop;
            }
        }
        TailMode::Pad => {
            while start < len {
                starts.push(start);
                if start + window >= len {
                    break;
                }
                start += hop;
            }
        }
    }
    Ok(starts)
}

/// Cuts `samples` into windows of `window` samples, `hop` samples apart.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when `window` or `hop` is 0.
pub fn frame_windows(
    samples: &[f32],
    window: usize,
    hop: usize,
    tail: TailMode,
) -> Result<Vec<Vec<f32>>> {
    let starts = window_starts(samples.len(), window, hop, tail)?;
    let windows = starts
        .into_iter()
        .map(|start| {
            let end = (start + window).min(samples.len());
            let mut frame = samples[start..end].to_vec();
            frame.resize(window, 0.0);
            frame
        })
        .collect();
    Ok(windows)
}

fn check_window_and_hop(window: usize, hop: usize) -> Result<()> {
    if window == 0 || hop == 0 {
        return Err(AudioError::InvalidArgument(format!(
            "window and hop must be positive, got window {window} and hop {hop}"
        )));
    }
    Ok(())
}

/// A signal cut into back-to-back windows (hop equal to the window) for
/// enhancement, with the last window zero-padded.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedWindows {
    /// Windows of equal length covering the whole signal.
    pub windows: Vec<Vec<f32>>,
    /// Length of the signal before padding, which [`join_windows`] trims to.
    pub original_len: usize,
}

/// Cuts a signal into back-to-back windows for enhancement, zero-padding the
/// last one, so that no sample is lost. A signal shorter than one window
/// gives a single padded window.
///
/// The PyTorch SEGAN enhancement instead drops the tail; that is
/// `frame_windows(samples, window, window, TailMode::Drop)`.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] for an empty signal or a `window` of 0.
pub fn split_padded(samples: &[f32], window: usize) -> Result<PaddedWindows> {
    if samples.is_empty() {
        return Err(AudioError::InvalidArgument(
            "cannot split an empty signal into windows".to_string(),
        ));
    }
    let windows = frame_windows(samples, window, window, TailMode::Pad)?;
    Ok(PaddedWindows {
        windows,
        original_len: samples.len(),
    })
}

/// Concatenates back-to-back windows and trims the result to
/// `original_len` samples, undoing [`split_padded`].
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when the windows differ in length or hold
/// fewer than `original_len` samples in total.
pub fn join_windows(windows: &[Vec<f32>], original_len: usize) -> Result<Vec<f32>> {
    let window = windows.first().map_or(0, Vec::len);
    if let Some(index) = windows.iter().position(|w| w.len() != window) {
        return Err(AudioError::InvalidArgument(format!(
            "window {index} has {} samples but window 0 has {window}; all windows must have \
             the same length",
            windows[index].len()
        )));
    }
    let total = window * windows.len();
    if total < original_len {
        return Err(AudioError::InvalidArgument(format!(
            "{} windows of {window} samples hold {total} samples, fewer than the original \
             length {original_len}",
            windows.len()
        )));
    }

    let mut joined = Vec::with_capacity(total);
    for window in windows {
        joined.extend_from_slice(window);
    }
    joined.truncate(original_len);
    Ok(joined)
}
