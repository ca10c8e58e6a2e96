//! The error type of the audio module.

use std::io;
use std::path::PathBuf;

/// An error from reading, writing or processing audio and window files.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A file or folder could not be read, written or renamed. The message
    /// includes `error`, so it is not also the source: a printed error chain
    /// names it once.
    #[error("{action} {}: {error}", path.display())]
    Io {
        /// The failed operation, such as "failed to read".
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    /// A file is not a well-formed WAV file (bad header, truncated data).
    #[error("{} is not a valid WAV file: {reason}", path.display())]
    InvalidWav { path: PathBuf, reason: String },

    /// A well-formed WAV file whose sample encoding is not supported.
    #[error(
        "{} uses an unsupported WAV encoding ({reason}); expected 8-, 16-, 24- or 32-bit \
         integer PCM or 32- or 64-bit IEEE float",
        path.display()
    )]
    UnsupportedWav { path: PathBuf, reason: String },

    /// A WAV file that contains no samples.
    #[error("{} contains no audio samples", path.display())]
    EmptyAudio { path: PathBuf },

    /// A window file (`.npy`) that is missing data or has the wrong shape or dtype.
    #[error("{} is not a valid window file: {reason}", path.display())]
    InvalidWindowFile { path: PathBuf, reason: String },

    /// An argument outside the accepted range, such as a zero sample rate.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The resampler failed to build or to run.
    #[error("resampling from {from} Hz to {to} Hz failed: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}

/// The result type of the audio module.
pub type Result<T> = std::result::Result<T, AudioError>;

impl AudioError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        AudioError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn invalid_wav(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AudioError::InvalidWav {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported_wav(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AudioError::UnsupportedWav {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_window_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AudioError::InvalidWindowFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
