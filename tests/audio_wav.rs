//! WAV reading and writing: every supported encoding, downmixing, atomic
//! writes, malformed files, and agreement with scipy.io.wavfile.

use std::path::{Path, PathBuf};
use std::process::Command;

use segan::audio::wav::{decode_wav, read_wav, write_wav_f32};
use segan::audio::AudioError;

/// Integer samples divided by a power of two are exact in f32 for up to 24
/// bits; 32-bit integers lose the low bits when rounded to f32.
const INT32_TOLERANCE: f32 = 1.0 / (1u64 << 24) as f32;

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/setup.sh to create the Python environment",
        python.display()
    );
    python
}

fn hound_file(
    dir: &Path,
    name: &str,
    spec: hound::WavSpec,
    write: impl FnOnce(&mut hound::WavWriter<std::io::BufWriter<std::fs::File>>),
) -> PathBuf {
    let path = dir.join(name);
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    write(&mut writer);
    writer.finalize().unwrap();
    path
}

fn spec(channels: u16, sample_rate: u32, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

/// Builds WAV bytes from a fmt chunk body and raw data.
fn wav_bytes(fmt: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    let riff_len = 4 + 8 + fmt.len() + 8 + data.len();
    bytes.extend_from_slice(&(riff_len as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVE");
    bytes.extend_from_slice(b"fmt ");
    bytes.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    bytes.extend_from_slice(fmt);
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// Returns a 16-byte PCMWAVEFORMAT fmt chunk body.
fn fmt_body(tag: u16, channels: u16, rate: u32, container_bytes: u16, bits: u16) -> Vec<u8> {
    let block_align = channels * container_bytes;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    fmt
}

/// Returns a WAVEFORMATEXTENSIBLE fmt chunk body whose sub-format GUID
/// embeds `subformat_tag`.
fn extensible_fmt_body(
    channels: u16,
    rate: u32,
    container_bytes: u16,
    valid_bits: u16,
    subformat_tag: u16,
) -> Vec<u8> {
    let mut fmt = fmt_body(0xFFFE, channels, rate, container_bytes, container_bytes * 8);
    fmt.extend_from_slice(&22u16.to_le_bytes());
    fmt.extend_from_slice(&valid_bits.to_le_bytes());
    fmt.extend_from_slice(&0u32.to_le_bytes());
    fmt.extend_from_slice(&subformat_tag.to_le_bytes());
    fmt.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    fmt
}

fn decode(bytes: &[u8]) -> Result<segan::audio::Audio, AudioError> {
    decode_wav(bytes, Path::new("test.wav"))
}

#[test]
fn int16_mono_scaled_by_32768() {
    let dir = tempfile::tempdir().unwrap();
    let values: [i16; 5] = [0, 1, -1, i16::MAX, i16::MIN];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(1, 22_050, 16, hound::SampleFormat::Int),
        |w| {
            for v in values {
                w.write_sample(v).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.sample_rate, 22_050);
    let expected: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
    assert_eq!(audio.samples, expected);
}

#[test]
fn int24_scaled_by_two_pow_23() {
    let dir = tempfile::tempdir().unwrap();
    let values: [i32; 4] = [0, 8_388_607, -8_388_608, -12_345];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(1, 48_000, 24, hound::SampleFormat::Int),
        |w| {
            for v in values {
                w.write_sample(v).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    let expected: Vec<f32> = values.iter().map(|&v| v as f32 / 8_388_608.0).collect();
    assert_eq!(audio.samples, expected);
    assert_eq!(audio.sample_rate, 48_000);
}

#[test]
fn int32_scaled_by_two_pow_31() {
    let dir = tempfile::tempdir().unwrap();
    let values: [i32; 4] = [0, i32::MAX, i32::MIN, 1 << 20];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(1, 16_000, 32, hound::SampleFormat::Int),
        |w| {
            for v in values {
                w.write_sample(v).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.samples.len(), values.len());
    for (got, &v) in audio.samples.iter().zip(&values) {
        let expected = (f64::from(v) / 2_147_483_648.0) as f32;
        assert!(
            (got - expected).abs() <= INT32_TOLERANCE,
            "{got} vs {expected}"
        );
    }
}

#[test]
fn uint8_offset_by_128() {
    let dir = tempfile::tempdir().unwrap();
    // hound takes 8-bit samples as i8 and stores them with the +128 offset.
    let values: [i8; 4] = [0, 127, -128, -64];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(1, 8_000, 8, hound::SampleFormat::Int),
        |w| {
            for v in values {
                w.write_sample(v).unwrap();
            }
        },
    );
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(
        &raw[raw.len() - 4..],
        &[128, 255, 0, 64],
        "hound's 8-bit encoding changed"
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.samples, vec![0.0, 127.0 / 128.0, -1.0, -0.5]);
}

#[test]
fn float32_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let values = [0.0f32, 0.5, -0.25, 1.5, -3.0e-8];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(1, 44_100, 32, hound::SampleFormat::Float),
        |w| {
            for v in values {
                w.write_sample(v).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.samples, values.to_vec());
}

#[test]
fn stereo_downmixed_by_average() {
    let dir = tempfile::tempdir().unwrap();
    let frames: [(i16, i16); 3] = [(16384, 0), (-16384, -16384), (100, -100)];
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(2, 16_000, 16, hound::SampleFormat::Int),
        |w| {
            for (left, right) in frames {
                w.write_sample(left).unwrap();
                w.write_sample(right).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.samples, vec![0.25, -0.5, 0.0]);
}

#[test]
fn three_channels_downmixed() {
    let dir = tempfile::tempdir().unwrap();
    // Three channels make hound write WAVE_FORMAT_EXTENSIBLE.
    let path = hound_file(
        dir.path(),
        "a.wav",
        spec(3, 16_000, 16, hound::SampleFormat::Int),
        |w| {
            for v in [3000i16, 6000, 9000] {
                w.write_sample(v).unwrap();
            }
        },
    );
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.samples.len(), 1);
    assert!((audio.samples[0] - 6000.0 / 32768.0).abs() < 1e-7);
}

#[test]
fn float64_plain_format() {
    let values = [0.125f64, -0.75, 1e-3];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let audio = decode(&wav_bytes(&fmt_body(3, 1, 96_000, 8, 64), &data)).unwrap();
    assert_eq!(audio.sample_rate, 96_000);
    let expected: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert_eq!(audio.samples, expected);
}

#[test]
fn float64_extensible_stereo() {
    let frames = [(0.5f64, 0.25f64), (-1.0, 1.0)];
    let data: Vec<u8> = frames
        .iter()
        .flat_map(|(l, r)| l.to_le_bytes().into_iter().chain(r.to_le_bytes()))
        .collect();
    let audio = decode(&wav_bytes(&extensible_fmt_body(2, 48_000, 8, 64, 3), &data)).unwrap();
    assert_eq!(audio.samples, vec![0.375, 0.0]);
}

#[test]
fn extensible_24_bits_in_32_bit_container() {
    // Left-aligned 24-bit values in 4-byte containers scale by 2^31.
    let values: [i32; 2] = [0x4000_0000, -0x2000_0000];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let audio = decode(&wav_bytes(&extensible_fmt_body(1, 16_000, 4, 24, 1), &data)).unwrap();
    assert_eq!(audio.samples, vec![0.5, -0.25]);
}

#[test]
fn odd_sized_chunk_before_fmt_skipped() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(b"WAVE");
    bytes.extend_from_slice(b"LIST");
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 0]); // three bytes plus the pad byte
    bytes.extend_from_slice(b"fmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&fmt_body(1, 1, 16_000, 2, 16));
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&[0x00, 0x40, 0x00, 0xC0]);
    let audio = decode(&bytes).unwrap();
    assert_eq!(audio.samples, vec![0.5, -0.5]);
}

#[test]
fn streaming_data_size_reads_to_end() {
    let mut bytes = wav_bytes(
        &fmt_body(1, 1, 16_000, 2, 16),
        &[0x00, 0x40, 0x00, 0xC0, 0x01],
    );
    let size_offset = bytes.len() - 5 - 4;
    bytes[size_offset..size_offset + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let audio = decode(&bytes).unwrap();
    assert_eq!(
        audio.samples,
        vec![0.5, -0.5],
        "the partial last frame is dropped"
    );
}

#[test]
fn write_then_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    let samples: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.8).collect();
    write_wav_f32(&path, &samples, 16_000).unwrap();
    let audio = read_wav(&path).unwrap();
    assert_eq!(audio.sample_rate, 16_000);
    assert_eq!(audio.samples, samples);
}

#[test]
fn write_replaces_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    std::fs::write(&path, b"old content").unwrap();
    write_wav_f32(&path, &[0.1, 0.2], 8_000).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["out.wav".to_string()]);
    assert_eq!(read_wav(&path).unwrap().samples, vec![0.1, 0.2]);
}

#[cfg(unix)]
#[test]
fn written_file_is_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    write_wav_f32(&path, &[0.1], 8_000).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn failed_write_keeps_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    write_wav_f32(&path, &[0.1, 0.2], 8_000).unwrap();
    let before = std::fs::read(&path).unwrap();
    let error = write_wav_f32(&path, &[0.1, f32::NAN], 8_000).unwrap_err();
    assert!(matches!(error, AudioError::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("sample 1 is NaN"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn write_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_wav_f32(dir.path().join("a.wav"), &[], 16_000).unwrap_err();
    assert!(matches!(empty, AudioError::InvalidArgument(_)), "{empty}");
    let zero_rate = write_wav_f32(dir.path().join("b.wav"), &[0.0], 0).unwrap_err();
    assert!(
        matches!(zero_rate, AudioError::InvalidArgument(_)),
        "{zero_rate}"
    );
    let missing_dir =
        write_wav_f32(dir.path().join("no/such/dir/c.wav"), &[0.0], 16_000).unwrap_err();
    assert!(
        matches!(missing_dir, AudioError::Io { .. }),
        "{missing_dir}"
    );
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let error = read_wav("/nonexistent/speech.wav").unwrap_err();
    assert!(matches!(error, AudioError::Io { .. }), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/speech.wav"),
        "{error}"
    );
}

#[test]
fn malformed_files_are_errors() {
    let good = wav_bytes(&fmt_body(1, 1, 16_000, 2, 16), &[0, 0, 1, 0, 2, 0, 3, 0]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", Vec::new()),
        ("too short for a header", b"RIFF\0\0".to_vec()),
        ("not RIFF", b"OggS\0\0\0\0WAVEfmt ".to_vec()),
        ("not WAVE", {
            let mut b = good.clone();
            b[8..12].copy_from_slice(b"AVI ");
            b
        }),
        ("truncated data", good[..good.len() - 3].to_vec()),
        ("truncated inside fmt", good[..30].to_vec()),
        ("no data chunk", good[..12 + 8 + 16].to_vec()),
        ("no fmt chunk", {
            let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
            b.extend_from_slice(b"data");
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&[0, 0]);
            b
        }),
        (
            "short fmt chunk",
            wav_bytes(&fmt_body(1, 1, 16_000, 2, 16)[..12], &[0, 0]),
        ),
        (
            "zero channels",
            wav_bytes(&fmt_body(1, 0, 16_000, 2, 16), &[0, 0]),
        ),
        (
            "zero sample rate",
            wav_bytes(&fmt_body(1, 1, 0, 2, 16), &[0, 0]),
        ),
        (
            "bits exceed container",
            wav_bytes(&fmt_body(1, 1, 16_000, 2, 24), &[0, 0]),
        ),
        (
            "partial frame",
            wav_bytes(&fmt_body(1, 2, 16_000, 2, 16), &[0, 0, 0, 0, 0, 0]),
        ),
        (
            "short extensible fmt",
            wav_bytes(&fmt_body(0xFFFE, 1, 16_000, 2, 16), &[0, 0]),
        ),
        (
            "NaN float sample",
            wav_bytes(&fmt_body(3, 1, 16_000, 4, 32), &f32::NAN.to_le_bytes()),
        ),
        (
            "infinite float sample",
            wav_bytes(&fmt_body(3, 1, 16_000, 4, 32), &f32::INFINITY.to_le_bytes()),
        ),
    ];
    for (name, bytes) in cases {
        let result = decode(&bytes);
        assert!(
            matches!(result, Err(AudioError::InvalidWav { .. })),
            "{name}: expected InvalidWav, got {result:?}"
        );
    }
}

#[test]
fn unsupported_encodings_are_errors() {
    let mut adpcm_guid = extensible_fmt_body(1, 16_000, 2, 16, 1);
    adpcm_guid[26] = 0xFF; // break the KSDATAFORMAT GUID tail
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ADPCM tag",
            wav_bytes(&fmt_body(2, 1, 16_000, 2, 4), &[0, 0]),
        ),
        ("A-law tag", wav_bytes(&fmt_body(6, 1, 16_000, 1, 8), &[0])),
        (
            "16-bit float",
            wav_bytes(&fmt_body(3, 1, 16_000, 2, 16), &[0, 0]),
        ),
        (
            "40-bit integers",
            wav_bytes(&fmt_body(1, 1, 16_000, 5, 40), &[0; 5]),
        ),
        ("unknown extensible GUID", wav_bytes(&adpcm_guid, &[0, 0])),
        ("RIFX", {
            let mut b = wav_bytes(&fmt_body(1, 1, 16_000, 2, 16), &[0, 0]);
            b[0..4].copy_from_slice(b"RIFX");
            b
        }),
        ("RF64", {
            let mut b = wav_bytes(&fmt_body(1, 1, 16_000, 2, 16), &[0, 0]);
            b[0..4].copy_from_slice(b"RF64");
            b
        }),
    ];
    for (name, bytes) in cases {
        let result = decode(&bytes);
        assert!(
            matches!(result, Err(AudioError::UnsupportedWav { .. })),
            "{name}: expected UnsupportedWav, got {result:?}"
        );
    }
}

#[test]
fn empty_data_chunk_is_empty_audio() {
    let result = decode(&wav_bytes(&fmt_body(1, 1, 16_000, 2, 16), &[]));
    assert!(
        matches!(result, Err(AudioError::EmptyAudio { .. })),
        "{result:?}"
    );
}

#[test]
fn error_message_names_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.wav");
    std::fs::write(&path, b"RIFF\x10\0\0\0WAVEfmt \x10\0\0\0\x01\0").unwrap();
    let message = read_wav(&path).unwrap_err().to_string();
    assert!(message.contains("broken.wav"), "{message}");
    assert!(message.contains("truncated"), "{message}");
}

/// Random byte soups must give errors, never panics.
#[test]
fn garbage_never_panics() {
    let good = wav_bytes(
        &extensible_fmt_body(2, 16_000, 3, 24, 1),
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2000 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = (state % bytes.len() as u64) as usize;
            bytes[index] = (state >> 32) as u8;
        }
        let cut = (state >> 40) as usize % (bytes.len() + 1);
        let _ = decode(&bytes[..cut]);
        let _ = decode(&bytes);
    }
}

#[test]
fn agrees_with_scipy_wavfile() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, numpy as np
from scipy.io import wavfile
out = sys.argv[1]
t = np.arange(800)
signal = 0.9 * np.sin(2 * np.pi * 440 * t / 8000) * np.cos(t / 50)
stereo = np.stack([signal, -0.5 * signal], axis=1)
wavfile.write(f"{out}/int16.wav", 8000, (signal * 32767).astype(np.int16))
wavfile.write(f"{out}/int32.wav", 8000, (signal * 2**31).astype(np.int32))
wavfile.write(f"{out}/uint8.wav", 8000, (signal * 127 + 128).astype(np.uint8))
wavfile.write(f"{out}/float64.wav", 8000, signal.astype(np.float64))
wavfile.write(f"{out}/stereo16.wav", 8000, (stereo * 32767).astype(np.int16))
for name in ["int16", "int32", "uint8", "float64", "stereo16"]:
    rate, data = wavfile.read(f"{out}/{name}.wav")
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128) / 128
    elif data.dtype.kind == "i":
        x = data.astype(np.float64) / 2 ** (8 * data.dtype.itemsize - 1)
    else:
        x = data.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x.astype(np.float32).tofile(f"{out}/{name}.f32")
"#;
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the Python helper failed");

    for name in ["int16", "int32", "uint8", "float64", "stereo16"] {
        let audio = read_wav(dir.path().join(format!("{name}.wav"))).unwrap();
        let raw = std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap();
        let expected: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(audio.sample_rate, 8000, "{name}");
        assert_eq!(audio.samples.len(), expected.len(), "{name}");
        let max_error = audio
            .samples
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_error <= INT32_TOLERANCE,
            "{name}: max difference {max_error}"
        );
    }
}

#[test]
fn scipy_reads_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.wav");
    let samples: Vec<f32> = (0..500)
        .map(|i| ((i * 7) % 100) as f32 / 100.0 - 0.5)
        .collect();
    write_wav_f32(&path, &samples, 16_000).unwrap();
    let output = Command::new(python())
        .arg("-c")
        .arg(
            "import sys; from scipy.io import wavfile; r, d = wavfile.read(sys.argv[1]); \
             print(r, d.dtype, d.shape[0]); d.tofile(sys.argv[1] + '.f32')",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "16000 float32 500"
    );
    let raw = std::fs::read(dir.path().join("ours.wav.f32")).unwrap();
    let read_back: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(read_back, samples);
}
