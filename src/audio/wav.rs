//! Reading WAV files into mono `f32` samples and writing 32-bit float WAV.
//!
//! The reader is a small RIFF parser rather than hound because hound 3.5
//! rejects 64-bit float data and some headers found in the wild (a
//! `cbSize` other than 22, an inconsistent byte rate). It accepts:
//!
//! - format tag 1 (integer PCM) with 8-, 16-, 24- or 32-bit containers,
//! - format tag 3 (IEEE float) with 32- or 64-bit samples,
//! - format tag 0xFFFE (`WAVE_FORMAT_EXTENSIBLE`) whose sub-format is one of
//!   the two above,
//!
//! at any sample rate and channel count. Integers are scaled to [-1, 1) by
//! dividing by 2^(container bits - 1), as libsndfile (and so soundfile and
//! librosa) does. 8-bit data is unsigned with an offset of 128. A sample
//! narrower than its container (`wValidBitsPerSample` of 20 in a 24-bit
//! container) is left-aligned there, so the same scaling applies.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::atomic::write_atomically;
use super::error::{AudioError, Result};

/// Mono audio at a known sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples, in [-1, 1) for integer sources; float sources are not clipped.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

const FORMAT_PCM: u16 = 0x0001;
const FORMAT_IEEE_FLOAT: u16 = 0x0003;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Bytes 2..16 of the `KSDATAFORMAT_SUBTYPE_*` GUIDs, which embed the plain
/// format tag in their first two bytes (mmreg.h / ksmedia.h).
const SUBFORMAT_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// A data chunk size that streaming writers use for "until the end of file".
const DATA_SIZE_UNKNOWN: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    UnsignedInt8,
    Int16,
    Int24,
    Int32,
    Float32,
    Float64,
}

impl Encoding {
    fn bytes(self) -> usize {
        match self {
            Encoding::UnsignedInt8 => 1,
            Encoding::Int16 => 2,
            Encoding::Int24 => 3,
            Encoding::Int32 | Encoding::Float32 => 4,
            Encoding::Float64 => 8,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Format {
    channels: usize,
    sample_rate: u32,
    encoding: Encoding,
}

/// Reads a WAV file and downmixes it to mono by averaging the channels.
///
/// # Errors
///
/// [`AudioError::Io`] when the file cannot be read, [`AudioError::InvalidWav`]
/// for a malformed or truncated file or a non-finite float sample,
/// [`AudioError::UnsupportedWav`] for other encodings (ADPCM, A-law, RIFX,
/// RF64) and [`AudioError::EmptyAudio`] when the data chunk has no frames.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| AudioError::io("failed to read", path, e))?;
    decode_wav(&bytes, path)
}

/// Decodes the bytes of a WAV file; `path` only names the file in errors.
pub fn decode_wav(bytes: &[u8], path: &Path) -> Result<Audio> {
    let chunks = find_chunks(bytes, path)?;
    let format = parse_format(chunks.fmt, path)?;
    let frame_bytes = format.channels * format.encoding.bytes();

    let mut data = chunks.data;
    if chunks.data_until_eof {
        // A streaming writer did not know the size; drop a partial last frame.
        data = &data[..data.len() - data.len() % frame_bytes];
    }
    if data.len() % frame_bytes != 0 {
        return Err(AudioError::invalid_wav(
            path,
            format!(
                "the data chunk is {} bytes, not a multiple of the {frame_bytes}-byte frame \
                 ({} channels of {} bytes)",
                data.len(),
                format.channels,
                format.encoding.bytes()
            ),
        ));
    }
    let frames = data.len() / frame_bytes;
    if frames == 0 {
        return Err(AudioError::EmptyAudio {
            path: path.to_path_buf(),
        });
    }

    let samples = downmix(data, &format, path)?;
    Ok(Audio {
        samples,
        sample_rate: format.sample_rate,
    })
}

struct Chunks<'a> {
    fmt: &'a [u8],
    data: &'a [u8],
    /// The data chunk size was 0xFFFFFFFF, so the data runs to the end of file.
    data_until_eof: bool,
}

fn find_chunks<'a>(bytes: &'a [u8], path: &Path) -> Result<Chunks<'a>> {
    if bytes.len() < 12 {
        return Err(AudioError::invalid_wav(
            path,
            format!(
                "the file is {} bytes, shorter than the 12-byte RIFF header",
                bytes.len()
            ),
        ));
    }
    match &bytes[0..4] {
        b"RIFF" => {}
        b"RIFX" => {
            return Err(AudioError::unsupported_wav(
                path,
                "big-endian RIFX container",
            ));
        }
        b"RF64" => return Err(AudioError::unsupported_wav(path, "RF64 container")),
        other => {
            return Err(AudioError::invalid_wav(
                path,
                format!("the file starts with {other:?}, expected \"RIFF\""),
            ));
        }
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(AudioError::invalid_wav(
            path,
            format!(
                "the RIFF form type is {:?}, expected \"WAVE\"",
                &bytes[8..12]
            ),
        ));
    }

    // The RIFF size field is ignored: writers often get it wrong, and the
    // chunk sizes alone describe the file.
    let mut fmt = None;
    let mut data = None;
    let mut data_until_eof = false;
    let mut offset = 12;
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let declared = read_u32(bytes, offset + 4);
        let body_start = offset + 8;
        let available = bytes.len() - body_start;

        if id == b"data" && declared == DATA_SIZE_UNKNOWN && data.is_none() {
            data = Some(&bytes[body_start..]);
            data_until_eof = true;
            break;
        }
        let size = declared as usize;
        if size > available {
            let name = String::from_utf8_lossy(id);
            return Err(AudioError::invalid_wav(
                path,
                format!(
                    "the {name:?} chunk at byte {offset} declares {size} bytes but only \
                     {available} follow (truncated file?)"
                ),
            ));
        }
        let body = &bytes[body_start..body_start + size];
        match id {
            b"fmt " => {
                fmt.get_or_insert(body);
            }
            b"data" => {
                data.get_or_insert(body);
            }
            _ => {}
        }
        // Chunks are padded to an even size; a missing pad byte at the very
        // end of the file is tolerated.
        offset = body_start + size + (size & 1);
    }

    let fmt = fmt.ok_or_else(|| AudioError::invalid_wav(path, "no \"fmt \" chunk found"))?;
    let data = data.ok_or_else(|| AudioError::invalid_wav(path, "no \"data\" chunk found"))?;
    Ok(Chunks {
        fmt,
        data,
        data_until_eof,
    })
}

fn parse_format(fmt: &[u8], path: &Path) -> Result<Format> {
    if fmt.len() < 16 {
        return Err(AudioError::invalid_wav(
            path,
            format!("the fmt chunk is {} bytes, expected at least 16", fmt.len()),
        ));
    }
    let mut tag = read_u16(fmt, 0);
    let channels = usize::from(read_u16(fmt, 2));
    let sample_rate = read_u32(fmt, 4);
    let block_align = usize::from(read_u16(fmt, 12));
    let bits_per_sample = read_u16(fmt, 14);

    if channels == 0 {
        return Err(AudioError::invalid_wav(
            path,
            "the fmt chunk declares 0 channels",
        ));
    }
    if sample_rate == 0 {
        return Err(AudioError::invalid_wav(
            path,
            "the fmt chunk declares a sample rate of 0 Hz",
        ));
    }

    if tag == FORMAT_EXTENSIBLE {
        tag = extensible_subformat(fmt, path)?;
    }

    if block_align == 0 || block_align % channels != 0 {
        return Err(AudioError::invalid_wav(
            path,
            format!("block align {block_align} is not a positive multiple of {channels} channels"),
        ));
    }
    let container_bytes = block_align / channels;
    if usize::from(bits_per_sample) > container_bytes * 8 || bits_per_sample == 0 {
        return Err(AudioError::invalid_wav(
            path,
            format!(
                "{bits_per_sample} bits per sample do not fit the {container_bytes}-byte \
                 sample container"
            ),
        ));
    }

    let encoding = match (tag, container_bytes) {
        (FORMAT_PCM, 1) => Encoding::UnsignedInt8,
        (FORMAT_PCM, 2) => Encoding::Int16,
        (FORMAT_PCM, 3) => Encoding::Int24,
        (FORMAT_PCM, 4) => Encoding::Int32,
        (FORMAT_IEEE_FLOAT, 4) => Encoding::Float32,
        (FORMAT_IEEE_FLOAT, 8) => Encoding::Float64,
        (FORMAT_PCM, bytes) => {
            return Err(AudioError::unsupported_wav(
                path,
                format!("integer PCM in {bytes}-byte containers"),
            ));
        }
        (FORMAT_IEEE_FLOAT, bytes) => {
            return Err(AudioError::unsupported_wav(
                path,
                format!("IEEE float in {bytes}-byte containers"),
            ));
        }
        (other, _) => {
            return Err(AudioError::unsupported_wav(
                path,
                format!("format tag {other:#06x}"),
            ));
        }
    };
    Ok(Format {
        channels,
        sample_rate,
        encoding,
    })
}

/// Returns the plain format tag that a `WAVEFORMATEXTENSIBLE` sub-format
/// GUID stands for.
fn extensible_subformat(fmt: &[u8], path: &Path) -> Result<u16> {
    // WAVEFORMATEX (18 bytes with cbSize) + valid bits (2) + channel mask (4)
    // + sub-format GUID (16).
    const EXTENSIBLE_LEN: usize = 40;
    if fmt.len() < EXTENSIBLE_LEN {
        return Err(AudioError::invalid_wav(
            path,
            format!(
                "the WAVE_FORMAT_EXTENSIBLE fmt chunk is {} bytes, expected at least \
                 {EXTENSIBLE_LEN}",
                fmt.len()
            ),
        ));
    }
    let guid = &fmt[24..40];
    if guid[2..] != SUBFORMAT_GUID_TAIL {
        return Err(AudioError::unsupported_wav(
            path,
            format!("WAVE_FORMAT_EXTENSIBLE with sub-format GUID {guid:02x?}"),
        ));
    }
    Ok(u16::from_le_bytes([guid[0], guid[1]]))
}

fn downmix(data: &[u8], format: &Format, path: &Path) -> Result<Vec<f32>> {
    let sample_bytes = format.encoding.bytes();
    let frame_bytes = format.channels * sample_bytes;
    let scale = 1.0 / format.channels as f64;

    let mut samples = Vec::with_capacity(data.len() / frame_bytes);
    for (frame_index, frame) in data.chunks_exact(frame_bytes).enumerate() {
        let mut sum = 0.0f64;
        for (channel, raw) in frame.chunks_exact(sample_bytes).enumerate() {
            let value = decode_sample(raw, format.encoding);
            if !value.is_finite() {
                return Err(non_finite_sample(path, frame_index, channel, value));
            }
            sum += value;
        }
        let mono = (sum * scale) as f32;
        if !mono.is_finite() {
            return Err(non_finite_sample(path, frame_index, 0, f64::from(mono)));
        }
        samples.push(mono);
    }
    Ok(samples)
}

fn non_finite_sample(path: &Path, frame: usize, channel: usize, value: f64) -> AudioError {
    AudioError::invalid_wav(
        path,
        format!(
            "sample at frame {frame}, channel {channel} is {value} (or overflows f32); \
             float samples must be finite"
        ),
    )
}

fn decode_sample(raw: &[u8], encoding: Encoding) -> f64 {
    match encoding {
        Encoding::UnsignedInt8 => (f64::from(raw[0]) - 128.0) / 128.0,
        Encoding::Int16 => f64::from(i16::from_le_bytes([raw[0], raw[1]])) / 32_768.0,
        Encoding::Int24 => {
            // Place the 24 bits in the top of an i32 and shift back to sign-extend.
            let value = i32::from_le_bytes([0, raw[0], raw[1], raw[2]]) >> 8;
            f64::from(value) / 8_388_608.0
        }
        Encoding::Int32 => {
            f64::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])) / 2_147_483_648.0
        }
        Encoding::Float32 => f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
        Encoding::Float64 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(raw);
            f64::from_le_bytes(bytes)
        }
    }
}

fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

/// Writes mono samples as a 32-bit IEEE float WAV file, atomically.
///
/// hound writes the fmt chunk as `WAVE_FORMAT_EXTENSIBLE` with the float
/// sub-format, which libsndfile, scipy.io.wavfile and this module read.
///
/// # Errors
///
/// [`AudioError::InvalidArgument`] for an empty signal, a sample rate of 0 or
/// a non-finite sample, and [`AudioError::Io`] when the file or its folder
/// cannot be written. On error the destination is left as it was.
pub fn write_wav_f32(path: impl AsRef<Path>, samples: &[f32], sample_rate: u32) -> Result<()> {
    let path = path.as_ref();
    check_writable_signal(path, samples, sample_rate)?;

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    write_atomically(path, |file| write_samples(file, spec, samples, path))
}

fn check_writable_signal(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    if sample_rate == 0 {
        return Err(AudioError::InvalidArgument(format!(
            "cannot write {}: the sample rate is 0 Hz",
            path.display()
        )));
    }
    if samples.is_empty() {
        return Err(AudioError::InvalidArgument(format!(
            "cannot write {}: the signal has no samples",
            path.display()
        )));
    }
    if let Some(index) = samples.iter().position(|s| !s.is_finite()) {
        return Err(AudioError::InvalidArgument(format!(
            "cannot write {}: sample {index} is {}",
            path.display(),
            samples[index]
        )));
    }
    Ok(())
}

fn write_samples(
    file: &mut BufWriter<&mut File>,
    spec: hound::WavSpec,
    samples: &[f32],
    path: &Path,
) -> Result<()> {
    let hound_error = |e: hound::Error| wav_write_error(path, e);
    let mut writer = hound::WavWriter::new(file, spec).map_err(hound_error)?;
    for &sample in samples {
        writer.write_sample(sample).map_err(hound_error)?;
    }
    writer.finalize().map_err(hound_error)
}

fn wav_write_error(path: &Path, error: hound::Error) -> AudioError {
    let source = match error {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    AudioError::io("failed to write", PathBuf::from(path), source)
}
