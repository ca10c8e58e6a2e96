//! Broken and hostile checkpoint files: each must fail with an error that
//! names the problem, without panicking and without allocating memory for
//! sizes that the file only claims.

mod checkpoint_support;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use checkpoint_support::{fixtures, raw_bytes};
use segan::checkpoint::{load_bytes, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

// ---------------------------------------------------------------------------
// Building pickles and containers by hand.

/// A pickle being written opcode by opcode, protocol 2.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }

    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// Any i64, as LONG1 with 8 bytes.
    fn int(self, value: i64) -> Self {
        self.op(&[0x8a, 8]).op(&value.to_le_bytes())
    }

    fn str(self, text: &str) -> Self {
        let len = (text.len() as u32).to_le_bytes();
        self.op(b"X").op(&len).op(text.as_bytes())
    }

    fn global(self, module: &str, name: &str) -> Self {
        self.op(b"c")
            .op(module.as_bytes())
            .op(b"\n")
            .op(name.as_bytes())
            .op(b"\n")
    }

    fn int_tuple(mut self, items: &[i64]) -> Self {
        self = self.op(b"(");
        for &item in items {
            self = self.int(item);
        }
        self.op(b"t")
    }

    /// `_rebuild_tensor_v2(('storage', torch.<class>, key, 'cpu', numel),
    /// offset, size, stride, False, OrderedDict())`.
    fn tensor(self, class: &str, key: &str, numel: i64, view: &View) -> Self {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", class)
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(view.offset)
            .int_tuple(&view.size)
            .int_tuple(&view.stride)
            .op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }

    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

struct View {
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

fn view(offset: i64, size: &[i64], stride: &[i64]) -> View {
    View {
        offset,
        size: size.to_vec(),
        stride: stride.to_vec(),
    }
}

/// Returns a pickle of `{'w': tensor}`.
fn dict_with_tensor(class: &str, numel: i64, view: &View) -> Vec<u8> {
    Pickle::new()
        .op(b"}")
        .str("w")
        .tensor(class, "0", numel, view)
        .op(b"s")
        .stop()
}

/// Returns a zip archive with `records`, each under the folder `archive/`.
fn zip_of(records: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, data) in records {
        zip.start_file(format!("archive/{name}"), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Returns a torch zip checkpoint with the given pickle and storage records.
fn torch_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut records: Vec<(String, &[u8])> = vec![
        ("data.pkl".to_string(), pickle),
        ("byteorder".to_string(), b"little".as_slice()),
    ];
    for (key, data) in storages {
        records.push((format!("data/{key}"), data));
    }
    let records: Vec<(&str, &[u8])> = records.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    zip_of(&records, CompressionMethod::Stored)
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes `bytes` and returns the error message, failing the test when
/// decoding succeeds or panics.
fn error_of(bytes: &[u8]) -> String {
    let result = catch_unwind(AssertUnwindSafe(|| load_bytes(bytes)));
    match result {
        Ok(Ok(value)) => panic!("decoding succeeded with {value:?}"),
        Ok(Err(error)) => format!("{error:#}"),
        Err(_) => panic!("decoding panicked"),
    }
}

fn assert_error(bytes: &[u8], expected: &str) {
    let message = error_of(bytes);
    assert!(
        message.contains(expected),
        "error should mention {expected:?}, got: {message}"
    );
}

// ---------------------------------------------------------------------------
// Container detection and zip records.

#[test]
fn empty_and_unknown_files() {
    assert_error(b"", "empty");
    assert_error(b"GIF89a and more", "unrecognized checkpoint format");
    let mut tar = vec![0u8; 512];
    tar[257..262].copy_from_slice(b"ustar");
    assert_error(&tar, "tar archive");
}

#[test]
fn zip_without_folder_or_pickle() {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("data.pkl", SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"\x80\x02N.").unwrap();
    let flat = zip.finish().unwrap().into_inner();
    assert_error(&flat, "not inside a folder");

    let no_pickle = zip_of(&[("version", b"3\n")], CompressionMethod::Stored);
    assert_error(&no_pickle, "no archive/data.pkl record");

    let script = zip_of(
        &[("constants.pkl", b"\x80\x02N.")],
        CompressionMethod::Stored,
    );
    assert_error(&script, "TorchScript");
}

#[test]
fn big_endian_zip_rejected() {
    let pickle = Pickle::new().op(b"N").stop();
    let big = zip_of(
        &[("data.pkl", &pickle), ("byteorder", b"big")],
        CompressionMethod::Stored,
    );
    assert_error(&big, "big-endian");
    let odd = zip_of(
        &[("data.pkl", &pickle), ("byteorder", b"middle")],
        CompressionMethod::Stored,
    );
    assert_error(&odd, "invalid archive/byteorder");
}

#[test]
fn deflated_records_load() {
    let pickle = dict_with_tensor("FloatStorage", 2, &view(0, &[2], &[1]));
    let data = floats(&[1.5, -2.0]);
    let bytes = zip_of(
        &[("data.pkl", &pickle), ("data/0", &data)],
        CompressionMethod::Deflated,
    );
    let value = load_bytes(&bytes).unwrap();
    let tensor = value.get("w").and_then(Value::as_tensor).unwrap();
    assert_eq!(raw_bytes(tensor), data);
}

/// Offset of the central directory entry for `name` in a zip archive.
fn central_entry(bytes: &[u8], name: &str) -> usize {
    let signature = b"PK\x01\x02";
    (0..bytes.len() - 46)
        .find(|&i| {
            let name_len = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
            bytes[i..].starts_with(signature)
                && bytes.get(i + 46..i + 46 + name_len) == Some(name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no central directory entry for {name}"))
}

#[test]
fn deflated_size_claim_rejected() {
    let pickle = Pickle::new().op(b"N").stop();
    let mut bytes = zip_of(&[("data.pkl", &pickle)], CompressionMethod::Deflated);
    let entry = central_entry(&bytes, "archive/data.pkl");
    bytes[entry + 24..entry + 28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert_error(&bytes, "more than deflate can produce");
}

#[test]
fn stored_size_past_end_rejected() {
    let pickle = dict_with_tensor("FloatStorage", 2, &view(0, &[2], &[1]));
    let data = floats(&[1.0, 2.0]);
    let mut bytes = torch_zip(&pickle, &[("0", &data)]);
    let entry = central_entry(&bytes, "archive/data/0");
    for field in [20, 24] {
        bytes[entry + field..entry + field + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    }
    assert_error(&bytes, "archive/data/0");
}

#[test]
fn corrupt_record_fails_crc() {
    let pickle = dict_with_tensor("FloatStorage", 2, &view(0, &[2], &[1]));
    let data = floats(&[1.0, 2.0]);
    let mut bytes = torch_zip(&pickle, &[("0", &data)]);
    let position = bytes
        .windows(data.len())
        .position(|w| w == data.as_slice())
        .unwrap();
    bytes[position] ^= 0x01;
    assert_error(&bytes, "CRC-32");
}

#[test]
fn truncated_real_files_fail() {
    for file in [
        "gan_zip.pt",
        "gan_legacy.pth",
        "dtypes_legacy.pt",
        "views_legacy.pt",
    ] {
        let bytes = std::fs::read(fixtures().path(file)).unwrap();
        let step = (bytes.len() / 400).max(1);
        for len in (0..bytes.len()).step_by(step) {
            let result = catch_unwind(AssertUnwindSafe(|| load_bytes(&bytes[..len])));
            match result {
                Ok(Ok(_)) => panic!("{file} truncated to {len} bytes decoded without error"),
                Ok(Err(_)) => {}
                Err(_) => panic!("{file} truncated to {len} bytes panicked"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Storage sizes, offsets and strides.

#[test]
fn absurd_storage_sizes_rejected() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let huge = dict_with_tensor("FloatStorage", 1 << 60, &view(0, &[4], &[1]));
    assert_error(
        &torch_zip(&huge, &[("0", &data)]),
        "has 16 bytes: expected 4611686018427387904",
    );
    let overflow = dict_with_tensor("FloatStorage", 1 << 62, &view(0, &[4], &[1]));
    assert_error(&torch_zip(&overflow, &[("0", &data)]), "overflow");
    let negative = dict_with_tensor("FloatStorage", -4, &view(0, &[4], &[1]));
    assert_error(
        &torch_zip(&negative, &[("0", &data)]),
        "negative element count",
    );
    let short = dict_with_tensor("FloatStorage", 8, &view(0, &[4], &[1]));
    assert_error(
        &torch_zip(&short, &[("0", &data)]),
        "has 16 bytes: expected 32",
    );
    let missing = dict_with_tensor("FloatStorage", 4, &view(0, &[4], &[1]));
    assert_error(
        &torch_zip(&missing, &[]),
        "record archive/data/0 is missing",
    );
}

#[test]
fn invalid_views_rejected() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let cases: [(View, &str); 8] = [
        (view(0, &[4], &[-1]), "stride -1 is negative"),
        (view(-1, &[2], &[1]), "invalid storage offset -1"),
        (view(0, &[-2], &[1]), "dimension -2 is negative"),
        (view(0, &[3], &[i64::MAX]), "overflows 64 bits"),
        (view(i64::MAX, &[2], &[1]), "overflows 64 bits"),
        (
            view(0, &[5], &[1]),
            "past the end of its storage of 4 elements",
        ),
        (view(2, &[2, 2], &[1, 1]), "past the end"),
        (view(0, &[2, 2], &[1]), "different lengths"),
    ];
    for (view, expected) in cases {
        let pickle = dict_with_tensor("FloatStorage", 4, &view);
        assert_error(&torch_zip(&pickle, &[("0", &data)]), expected);
    }
    let dims = vec![1i64; 65];
    let pickle = dict_with_tensor("FloatStorage", 4, &view(0, &dims, &dims));
    assert_error(
        &torch_zip(&pickle, &[("0", &data)]),
        "at most 64 are supported",
    );
}

#[test]
fn valid_edge_views_load() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let cases = [
        view(3, &[], &[]),
        view(4, &[0], &[1]),
        view(0, &[2, 0], &[i64::MAX, 1]),
        view(0, &[2, 2], &[0, 1]),
    ];
    for view in cases {
        let pickle = dict_with_tensor("FloatStorage", 4, &view);
        let value = load_bytes(&torch_zip(&pickle, &[("0", &data)]))
            .unwrap_or_else(|e| panic!("view {:?}/{:?}: {e:#}", view.size, view.stride));
        let tensor = value.get("w").and_then(Value::as_tensor).unwrap();
        assert_eq!(tensor.size(), view.size);
    }
}

#[test]
fn storage_reused_with_other_dtype_rejected() {
    let pickle = Pickle::new()
        .op(b"}(")
        .str("a")
        .tensor("FloatStorage", "0", 2, &view(0, &[2], &[1]))
        .str("b")
        .tensor("IntStorage", "0", 2, &view(0, &[2], &[1]))
        .op(b"u")
        .stop();
    let bytes = torch_zip(&pickle, &[("0", &floats(&[1.0, 2.0]))]);
    assert_error(
        &bytes,
        "is used as 2 elements of Float and as 2 elements of Int",
    );
}

#[test]
fn bool_storage_bytes_checked() {
    let pickle = dict_with_tensor("BoolStorage", 2, &view(0, &[2], &[1]));
    assert_error(
        &torch_zip(&pickle, &[("0", &[1, 2])]),
        "bool storage contains the byte 0x02",
    );
}

// ---------------------------------------------------------------------------
// Pickle opcodes and globals.

fn pickle_zip(pickle: &[u8]) -> Vec<u8> {
    torch_zip(pickle, &[])
}

#[test]
fn unsupported_opcodes_named() {
    let cases: [(&[u8], &str); 9] = [
        (
            b"\x80\x02c__builtin__\nobject\n)\x81.",
            "unsupported global '__builtin__.object'",
        ),
        (b"\x80\x02(i__main__\nX\n.", "INST"),
        (b"\x80\x02Pabc\n.", "PERSID"),
        (b"\x80\x02\x82\x01.", "EXT1"),
        (b"\x80\x02\x8f.", "EMPTY_SET"),
        (b"\x80\x02I01\n.", "INT"),
        (b"\x80\x02S'x'\n.", "STRING"),
        (b"\x80\x02)\x81.", "NEWOBJ"),
        (b"\x80\x02\xfe.", "<unknown>"),
    ];
    for (pickle, expected) in cases {
        assert_error(&pickle_zip(pickle), expected);
    }
}

#[test]
fn unsupported_globals_named() {
    let system = Pickle::new()
        .global("os", "system")
        .str("true")
        .op(&[0x85])
        .op(b"R")
        .stop();
    assert_error(&pickle_zip(&system), "unsupported global 'os.system'");
    let stacked = Pickle::new().str("builtins").str("eval").op(&[0x93]).stop();
    assert_error(&pickle_zip(&stacked), "unsupported global 'builtins.eval'");
    let numpy = Pickle::new()
        .global("numpy.core.multiarray", "scalar")
        .stop();
    assert_error(&pickle_zip(&numpy), "numpy.core.multiarray.scalar");
}

#[test]
fn malformed_pickles_rejected() {
    let cases: [(Vec<u8>, &str); 14] = [
        (b"\x80\x02K\x01".to_vec(), "without a STOP opcode"),
        (b"\x80\x06N.".to_vec(), "unsupported pickle protocol 6"),
        (b"\x80\x02.".to_vec(), "stack underflow"),
        (
            b"\x80\x02J\x01\x00".to_vec(),
            "truncated pickle: 4 bytes expected, only 2 left",
        ),
        (b"\x80\x02K\x01t.".to_vec(), "no MARK"),
        (b"\x80\x02h\x05.".to_vec(), "memo key 5 is not defined"),
        (
            b"\x80\x02X\xff\xff\xff\xffab.".to_vec(),
            "truncated pickle: 4294967295 bytes expected",
        ),
        (
            b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.".to_vec(),
            "frame of",
        ),
        (
            [b"\x80\x02\x8a\x11".as_slice(), &[1u8; 17], b"."].concat(),
            "integer of 17 bytes is too large",
        ),
        (
            [
                b"\x80\x02\x8a\x09".as_slice(),
                &[0, 0, 0, 0, 0, 0, 0, 0, 1],
                b".",
            ]
            .concat(),
            "does not fit in 64 bits",
        ),
        (
            b"\x80\x02X\x02\x00\x00\x00\xff\xfe.".to_vec(),
            "not valid UTF-8",
        ),
        (
            b"\x80\x02]}b.".to_vec(),
            "BUILD with a dict state on a list",
        ),
        (b"\x80\x02K\x01)R.".to_vec(), "REDUCE callable has type int"),
        (
            b"\x80\x02]K\x01K\x02s.".to_vec(),
            "cannot set items of a list",
        ),
    ];
    for (pickle, expected) in cases {
        assert_error(&pickle_zip(&pickle), expected);
    }
}

#[test]
fn rebuild_arguments_checked() {
    let few = Pickle::new()
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b"(K\x00t")
        .op(b"R")
        .stop();
    assert_error(
        &pickle_zip(&few),
        "_rebuild_tensor_v2 called with 1 arguments",
    );
    let storage_call = Pickle::new()
        .global("torch", "FloatStorage")
        .op(b")R")
        .stop();
    assert_error(&pickle_zip(&storage_call), "storage class");
    let bad_pid = Pickle::new().str("module").op(&[0x85]).op(b"Q").stop();
    assert_error(&pickle_zip(&bad_pid), "persistent id has 1 items");
    let bad_tag = Pickle::new()
        .op(b"(")
        .str("tensor")
        .global("torch", "FloatStorage")
        .str("0")
        .str("cpu")
        .int(1)
        .op(b"tQ")
        .stop();
    assert_error(&pickle_zip(&bad_tag), "persistent id tag is 'tensor'");
    let bad_encoding = Pickle::new()
        .global("_codecs", "encode")
        .str("x")
        .str("rot13")
        .op(&[0x86])
        .op(b"R")
        .stop();
    assert_error(&pickle_zip(&bad_encoding), "encoding 'rot13'");
}

#[test]
fn deep_nesting_rejected() {
    let depth = 100_000;
    let mut pickle = vec![0x80, 2];
    pickle.extend(vec![b']'; depth]);
    pickle.extend(vec![b'a'; depth - 1]);
    pickle.push(b'.');
    assert_error(&pickle_zip(&pickle), "nest deeper than 256 levels");
}

#[test]
fn self_reference_rejected() {
    // A list that contains itself: l = []; l.append(l).
    assert_error(&pickle_zip(b"\x80\x02]q\x00h\x00a."), "refer to themselves");
}

#[test]
fn shared_reference_blowup_rejected() {
    // Each level is a tuple holding the previous level twice: 2^40 leaves.
    let mut pickle = b"\x80\x02K\x01".to_vec();
    for _ in 0..40 {
        pickle.extend_from_slice(b"q\x000h\x00h\x00\x86");
    }
    pickle.push(b'.');
    assert_error(&pickle_zip(&pickle), "expands to more than");
}

// ---------------------------------------------------------------------------
// The legacy format.

const LEGACY_MAGIC: u128 = 0x1950a86a20f9469cfc6c;

fn legacy_header(little_endian: bool) -> Vec<u8> {
    let mut bytes = vec![0x80, 2, 0x8a, 10];
    bytes.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
    bytes.push(b'.');
    bytes.extend_from_slice(b"\x80\x02M\xe9\x03.");
    let flag = if little_endian { 0x88 } else { 0x89 };
    let sys_info = Pickle::new()
        .op(b"}")
        .str("little_endian")
        .op(&[flag])
        .op(b"s")
        .stop();
    bytes.extend_from_slice(&sys_info);
    bytes
}

/// Returns a legacy pickle of `{'w': tensor}` over storage `key` with `numel`
/// floats, optionally as a legacy storage view `(offset, size)`.
fn legacy_main(key: &str, numel: i64, storage_view: Option<(i64, i64)>, tensor: &View) -> Vec<u8> {
    let mut pickle = Pickle::new()
        .op(b"}")
        .str("w")
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b"((")
        .str("storage")
        .global("torch", "FloatStorage")
        .str(key)
        .str("cpu")
        .int(numel);
    pickle = match storage_view {
        None => pickle.op(b"N"),
        Some((offset, size)) => pickle.op(b"(").str("view").int(offset).int(size).op(b"t"),
    };
    pickle
        .op(b"tQ")
        .int(tensor.offset)
        .int_tuple(&tensor.size)
        .int_tuple(&tensor.stride)
        .op(&[0x89])
        .global("collections", "OrderedDict")
        .op(b")RtR")
        .op(b"s")
        .stop()
}

fn legacy_file(main: &[u8], keys: &[&str], storages: &[(u64, &[u8])]) -> Vec<u8> {
    let mut bytes = legacy_header(true);
    bytes.extend_from_slice(main);
    let mut key_list = Pickle::new().op(b"](");
    for key in keys {
        key_list = key_list.str(key);
    }
    bytes.extend_from_slice(&key_list.op(b"e").stop());
    for (count, data) in storages {
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(data);
    }
    bytes
}

#[test]
fn legacy_hand_built_loads() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let main = legacy_main("k", 4, None, &view(1, &[2], &[2]));
    let value = load_bytes(&legacy_file(&main, &["k"], &[(4, &data)])).unwrap();
    let tensor = value.get("w").and_then(Value::as_tensor).unwrap();
    assert_eq!(raw_bytes(tensor), floats(&[2.0, 4.0]));
}

#[test]
fn legacy_storage_view_loads() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let main = legacy_main("k", 4, Some((1, 3)), &view(1, &[2], &[1]));
    let value = load_bytes(&legacy_file(&main, &["k"], &[(4, &data)])).unwrap();
    let tensor = value.get("w").and_then(Value::as_tensor).unwrap();
    assert_eq!(raw_bytes(tensor), floats(&[3.0, 4.0]));

    let outside = legacy_main("k", 4, Some((1, 3)), &view(2, &[2], &[1]));
    assert_error(
        &legacy_file(&outside, &["k"], &[(4, &data)]),
        "past the end of its storage of 3 elements",
    );
    let bad_view = legacy_main("k", 4, Some((2, 3)), &view(0, &[1], &[1]));
    assert_error(
        &legacy_file(&bad_view, &["k"], &[(4, &data)]),
        "does not fit in its storage",
    );
}

#[test]
fn legacy_header_checked() {
    let mut wrong_magic = b"\x80\x02K\x05.".to_vec();
    wrong_magic.extend_from_slice(b"\x80\x02M\xe9\x03.");
    assert_error(&wrong_magic, "magic number is 0x5");

    let mut wrong_protocol = legacy_header(true);
    let protocol = wrong_protocol
        .windows(2)
        .position(|w| w == b"\xe9\x03")
        .unwrap();
    wrong_protocol[protocol] = 0xea;
    assert_error(&wrong_protocol, "legacy protocol version is 0x3ea");

    let mut big = legacy_header(false);
    big.extend_from_slice(b"\x80\x02N.");
    assert_error(&big, "big-endian");
}

#[test]
fn legacy_storages_checked() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let main = legacy_main("k", 4, None, &view(0, &[4], &[1]));
    assert_error(
        &legacy_file(&main, &["k"], &[(3, &data)]),
        "has 3 elements in the file",
    );
    assert_error(
        &legacy_file(&main, &["k"], &[(4, &data[..8])]),
        "needs 16 bytes",
    );
    assert_error(
        &legacy_file(&main, &["k"], &[]),
        "the size of storage 'k' is missing",
    );
    assert_error(
        &legacy_file(&main, &["k", "other"], &[(4, &data)]),
        "'other' is listed",
    );
    assert_error(&legacy_file(&main, &[], &[]), "its data is not in the file");
    let huge = legacy_main("k", 1 << 60, None, &view(0, &[4], &[1]));
    assert_error(
        &legacy_file(&huge, &["k"], &[(1 << 60, &data)]),
        "needs 4611686018427387904 bytes",
    );
}

// ---------------------------------------------------------------------------
// safetensors.

#[test]
fn safetensors_header_checked() {
    let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 8]);
    assert_error(&bytes, "invalid safetensors file");

    let header = br#"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 8]);
    assert_error(&bytes, "invalid safetensors file");

    let mut claims_more = (1u64 << 40).to_le_bytes().to_vec();
    claims_more.extend_from_slice(b"{}");
    assert_error(&claims_more, "unrecognized checkpoint format");
}

#[test]
fn safetensors_header_length_like_pickle() {
    // A header of 0x180 bytes: the file starts with 0x80, the PROTO opcode.
    let mut header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.to_vec();
    header.resize(0x180, b' ');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&floats(&[0.5]));
    assert_eq!(bytes[0], 0x80);
    let value = load_bytes(&bytes).unwrap();
    let tensor = value.get("w").and_then(Value::as_tensor).unwrap();
    assert_eq!(raw_bytes(tensor), floats(&[0.5]));
}

// ---------------------------------------------------------------------------
// Deterministic mutation of real checkpoints: no input may panic.

/// xorshift64*, for reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'(', b'.', 0x8a];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let len = input.len();
    match rng.below(6) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 if len > 0 => input.truncate(rng.below(len)),
        3 if len > 8 => {
            let i = rng.below(len - 8);
            let value = [0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
            input[i..i + 8].copy_from_slice(&value);
        }
        4 if len > 1 => {
            let start = rng.below(len);
            let end = (start + rng.below(64)).min(len);
            input.drain(start..end);
        }
        _ => {
            let i = rng.below(len + 1);
            let chunk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
            input.splice(i..i, chunk);
        }
    }
}

fn seed_corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = [
        "gan_zip.pt",
        "gan_legacy.pth",
        "generator_protocol4.pt",
        "dtypes.pt",
        "views_legacy.pt",
        "misc.pt",
        "misc_legacy.pt",
    ]
    .iter()
    .map(|file| std::fs::read(fixtures().path(file)).unwrap())
    .collect();
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let pickle = dict_with_tensor("FloatStorage", 4, &view(1, &[2], &[2]));
    corpus.push(torch_zip(&pickle, &[("0", &data)]));
    let main = legacy_main("k", 4, Some((1, 3)), &view(1, &[2], &[1]));
    corpus.push(legacy_file(&main, &["k"], &[(4, &data)]));
    corpus
}

#[test]
fn mutated_checkpoints_never_panic() {
    const ITERATIONS: usize = 6000;
    let corpus = seed_corpus();
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    let mut failures = Vec::new();
    for iteration in 0..ITERATIONS {
        let seed = rng.below(corpus.len());
        let mut input = corpus[seed].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input);
        }
        let result = catch_unwind(AssertUnwindSafe(|| load_bytes(&input)));
        if result.is_err() {
            let path = std::env::temp_dir().join(format!("checkpoint-mutation-{iteration}.bin"));
            std::fs::write(&path, &input).unwrap();
            failures.push(format!(
                "iteration {iteration} (seed {seed}) panicked; input saved to {}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
