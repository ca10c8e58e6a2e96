//! Window pair files: one `[2, WINDOW]` float32 `.npy` array per training
//! example, row 0 the clean window and row 1 the noisy one.
//!
//! This is the layout that the PyTorch SEGAN preprocessing writes with
//! `numpy.save`, so files are interchangeable between the two code bases.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};

use super::atomic::write_atomically;
use super::error::{AudioError, Result};
use super::framing::WINDOW;

/// Size of a `[2, WINDOW]` float32 payload in bytes.
const PAYLOAD_BYTES: u64 = (2 * WINDOW * std::mem::size_of::<f32>()) as u64;

/// numpy type descriptors of float32, as printed by `PyValue`'s Display.
const FLOAT32_DESCRIPTORS: [&str; 2] = ["'<f4'", "'>f4'"];

/// Largest `.npy` header accepted. numpy pads headers to a multiple of 64
/// bytes, 128 for arrays like this one. The cap only keeps a corrupt file
/// from being read into memory whole.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// Writes a clean and a noisy window as a `[2, WINDOW]` little-endian
/// float32 `.npy` file (npy format 1.0, C order), atomically.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] when a window is not [`WINDOW`] samples
/// long, and [`AudioError::Io`] when the file cannot be written.
pub fn write_window_pair(path: impl AsRef<Path>, clean: &[f32], noisy: &[f32]) -> Result<()> {
    let path = path.as_ref();
    for (name, window) in [("clean", clean), ("noisy", noisy)] {
        if window.len() != WINDOW {
            return Err(AudioError::InvalidArgument(format!(
                "cannot write {}: the {name} window has {} samples, expected {WINDOW}",
                path.display(),
                window.len()
            )));
        }
    }

    let mut pair = Array2::<f32>::zeros((2, WINDOW));
    pair.row_mut(0).assign(&ndarray::aview1(clean));
    pair.row_mut(1).assign(&ndarray::aview1(noisy));

    write_atomically(path, |file| {
        pair.write_npy(file).map_err(|e| {
            AudioError::io(
                "failed to write",
                path,
                std::io::Error::other(e.to_string()),
            )
        })
    })
}

/// Reads a window pair file and returns `(clean, noisy)`.
///
/// Accepts what `numpy.save` writes for a `[2, WINDOW]` float32 array,
/// little- or big-endian, C or Fortran order.
///
/// # Errors
///
/// [`AudioError::InvalidWindowFile`] for a file that is not an `.npy` array,
/// has another shape or dtype, is truncated or has trailing bytes, or contains
/// a NaN or infinite sample, and
/// [`AudioError::Io`] when it cannot be read.
pub fn read_window_pair(path: impl AsRef<Path>) -> Result<(Vec<f32>, Vec<f32>)> {
    let path = path.as_ref();
    check_header(path)?;
    let bytes = read_bounded(path)?;
    let pair = Array2::<f32>::read_npy(&bytes[..]).map_err(|e| npy_error(path, e))?;
    if let Some(((row, index), value)) = pair.indexed_iter().find(|(_, value)| !value.is_finite()) {
        let signal = if row == 0 { "clean" } else { "noisy" };
        return Err(AudioError::invalid_window_file(
            path,
            format!("{signal} sample {index} is {value}"),
        ));
    }
    Ok(split_rows(pair.view()))
}

/// Checks shape and dtype from the header alone, so that a file describing
/// a huge array is rejected before anything is allocated for it.
fn check_header(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| AudioError::io("failed to read", path, e))?;
    let mut reader = BufReader::new(file).take(MAX_HEADER_BYTES);
    let header = Header::from_reader(&mut reader)
        .map_err(|e| AudioError::invalid_window_file(path, format!("invalid .npy header: {e}")))?;
    if header.shape != [2, WINDOW] {
        return Err(AudioError::invalid_window_file(
            path,
            format!(
                "the array has shape {:?}, expected [2, {WINDOW}]",
                header.shape
            ),
        ));
    }
    let descriptor = header.type_descriptor.to_string();
    if !FLOAT32_DESCRIPTORS.contains(&descriptor.as_str()) {
        return Err(AudioError::invalid_window_file(
            path,
            format!("the dtype is {descriptor}, expected float32 ('<f4')"),
        ));
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let metadata =
        std::fs::metadata(path).map_err(|e| AudioError::io("failed to read", path, e))?;
    let max_bytes = PAYLOAD_BYTES + MAX_HEADER_BYTES;
    if metadata.len() > max_bytes {
        return Err(AudioError::invalid_window_file(
            path,
            format!(
                "the file is {} bytes, more than a [2, {WINDOW}] float32 .npy file needs \
                 (at most {max_bytes}); it has bytes after the end of the array data",
                metadata.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| AudioError::io("failed to read", path, e))
}

fn npy_error(path: &Path, error: ReadNpyError) -> AudioError {
    let reason = match error {
        ReadNpyError::WrongDescriptor(descriptor) => {
            format!("the dtype is {descriptor}, expected float32 ('<f4')")
        }
        ReadNpyError::MissingData => {
            format!("the file ends before the {PAYLOAD_BYTES} bytes of float32 data (truncated)")
        }
        ReadNpyError::ExtraBytes(extra) => {
            format!("the file has {extra} bytes after the end of the array data")
        }
        other => other.to_string(),
    };
    AudioError::invalid_window_file(path, reason)
}

fn split_rows(pair: ArrayView2<'_, f32>) -> (Vec<f32>, Vec<f32>) {
    let clean = pair.index_axis(Axis(0), 0).to_vec();
    let noisy = pair.index_axis(Axis(0), 1).to_vec();
    (clean, noisy)
}
