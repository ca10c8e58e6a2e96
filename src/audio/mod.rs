//! WAV I/O, resampling, framing into windows, pre- and de-emphasis, and
//! speech quality measures.
//!
//! - [`wav`]: reading any PCM or float WAV as mono `f32`, writing float WAV.
//! - [`resample`](mod@resample): band-limited sample rate conversion.
//! - [`framing`]: cutting signals into windows and joining them back.
//! - [`emphasis`]: SEGAN's pre-emphasis and its inverse.
//! - [`window_file`] and [`dataset`]: the `[2, 16384]` `.npy` training pairs.
//! - [`prepare`]: building those pairs from clean/noisy WAV folders.
//! - [`metrics`]: segmental and global SNR.
//! - [`mix`] and [`default_set`]: mixing speech with noise, and the small
//!   default training set built from freely available recordings.
//!
//! Every file is written atomically (temporary file, then rename).

pub(crate) mod atomic;
pub mod dataset;
pub mod default_set;
pub mod emphasis;
pub mod error;
pub mod framing;
pub mod metrics;
pub mod mix;
pub mod prepare;
pub mod resample;
pub mod stoi;
pub mod wav;
pub mod window_file;

/// Sample rate in Hz of all audio that the model takes and produces.
pub const SAMPLE_RATE: u32 = 16_000;

pub use dataset::WindowDataset;
pub use default_set::{build_default_set, DefaultSetReport};
pub use emphasis::{de_emphasis, de_emphasis_reference, pre_emphasis, EMPHASIS};
pub use error::{AudioError, Result};
pub use framing::{
    frame_windows, join_windows, split_padded, window_starts, PaddedWindows, TailMode, HOP, WINDOW,
};
pub use metrics::{segmental_snr, segmental_snr_frames, snr};
pub use prepare::{prepare_pairs, prepare_vctk, PrepareOptions, PrepareReport, VctkReport};
pub use resample::{read_wav_resampled, resample, resampled_len};
pub use stoi::stoi;
pub use wav::{decode_wav, read_wav, write_wav_f32, Audio};
pub use window_file::{read_window_pair, write_window_pair};
