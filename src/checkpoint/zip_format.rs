//! Reading the zip format that `torch.save` writes since PyTorch 1.6.
//!
//! The archive contains records under one folder of any name: `data.pkl` (the
//! pickle), `data/<key>` (one record per storage, raw little-endian
//! elements), `byteorder` and `version`.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use anyhow::{anyhow, bail, Context, Result};
use tch::{Kind, Tensor};
use zip::{CompressionMethod, ZipArchive};

use super::materialize::{build_value, StorageSource};
use super::pickle::unpickle;
use super::storage::{byte_len, tensor_from_bytes};
use super::value::Value;

/// Deflate expands data at most about 1032 times; a record that claims more
/// than this per compressed byte is rejected before it is decompressed.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// Returns true when `bytes` starts like a zip archive.
pub(crate) fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Decodes a zip-format checkpoint.
pub(crate) fn load_zip(bytes: &[u8]) -> Result<Value> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).context("invalid zip archive")?;
    let prefix = archive_prefix(&archive)?;
    check_byte_order(&mut archive, bytes, &prefix)?;
    let pickle_name = format!("{prefix}/data.pkl");
    if archive.index_for_name(&pickle_name).is_none() {
        bail!(missing_pickle_message(&archive, &prefix));
    }
    let pickle = read_record(&mut archive, bytes, &pickle_name, None)?;
    let (graph, _) = unpickle(&pickle).with_context(|| format!("decoding {pickle_name}"))?;
    let mut storages = ZipStorages {
        archive,
        bytes,
        prefix,
    };
    build_value(&graph, &mut storages, pickle.len())
}

/// Returns the folder that contains the records: the first entry's top folder,
/// as PyTorch's reader takes it.
fn archive_prefix(archive: &ZipArchive<Cursor<&[u8]>>) -> Result<String> {
    let first = archive
        .name_for_index(0)
        .ok_or_else(|| anyhow!("the zip archive is empty: expected a data.pkl record"))?;
    match first.split_once('/') {
        Some((prefix, _)) if !prefix.is_empty() => Ok(prefix.to_string()),
        _ => bail!(
            "the first zip entry '{first}' is not inside a folder: a torch.save archive keeps \
             its records under one folder"
        ),
    }
}

fn missing_pickle_message(archive: &ZipArchive<Cursor<&[u8]>>, prefix: &str) -> String {
    if archive
        .index_for_name(&format!("{prefix}/constants.pkl"))
        .is_some()
    {
        return format!(
            "{prefix}/constants.pkl is present but {prefix}/data.pkl is missing: this looks \
             like a TorchScript archive (torch.jit.save), which is not supported"
        );
    }
    let names: Vec<&str> = archive.file_names().take(8).collect();
    format!("no {prefix}/data.pkl record in the zip archive (entries include {names:?})")
}

/// Rejects big-endian archives; a missing `byteorder` record means little
/// endian, as in PyTorch.
fn check_byte_order<'a>(
    archive: &mut ZipArchive<Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    prefix: &str,
) -> Result<()> {
    let name = format!("{prefix}/byteorder");
    if archive.index_for_name(&name).is_none() {
        return Ok(());
    }
    let record = read_record(archive, bytes, &name, Some(16))?;
    match record.trim_ascii() {
        b"little" => Ok(()),
        b"big" => bail!(
            "the checkpoint was written on a big-endian machine ({name} is 'big'): only \
             little-endian checkpoints are supported"
        ),
        other => bail!(
            "invalid {name} record {:?}: expected 'little' or 'big'",
            String::from_utf8_lossy(other)
        ),
    }
}

/// Reads a record. Stored records are borrowed from `bytes` after a CRC
/// check; deflated ones are decompressed with their claimed size bounded.
fn read_record<'a>(
    archive: &mut ZipArchive<Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    name: &str,
    expected_len: Option<usize>,
) -> Result<Cow<'a, [u8]>> {
    let index = archive
        .index_for_name(name)
        .ok_or_else(|| anyhow!("record {name} is missing from the zip archive"))?;
    let entry = archive
        .by_index_raw(index)
        .with_context(|| format!("invalid zip entry for record {name}"))?;
    let (size, compressed) = (entry.size(), entry.compressed_size());
    if let Some(expected) = expected_len {
        if size > expected as u64 {
            bail!("record {name} has {size} bytes: expected at most {expected}");
        }
    }
    if entry.encrypted() {
        bail!("record {name} is encrypted, which torch.save never does");
    }
    match entry.compression() {
        CompressionMethod::Stored => {
            let start = entry.data_start();
            let crc = entry.crc32();
            drop(entry);
            stored_slice(bytes, name, start, size, compressed, crc).map(Cow::Borrowed)
        }
        CompressionMethod::Deflated => {
            drop(entry);
            inflate_record(archive, index, name, size, compressed).map(Cow::Owned)
        }
        method => bail!("record {name} uses the unsupported zip compression method {method}"),
    }
}

fn stored_slice<'a>(
    bytes: &'a [u8],
    name: &str,
    start: u64,
    size: u64,
    compressed: u64,
    crc: u32,
) -> Result<&'a [u8]> {
    if size != compressed {
        bail!("stored record {name} claims {size} bytes but occupies {compressed}");
    }
    let end = start
        .checked_add(size)
        .filter(|&end| end <= bytes.len() as u64);
    let Some(end) = end else {
        bail!(
            "record {name} claims {size} bytes at offset {start}, past the end of the \
             {}-byte file: the file is truncated",
            bytes.len()
        );
    };
    // Both bounds are at most `bytes.len()`, so they fit in usize.
    let data = &bytes[start as usize..end as usize];
    let actual = crc32fast::hash(data);
    if actual != crc {
        bail!(
            "record {name} is corrupt: CRC-32 is {actual:#010x}, the archive records {crc:#010x}"
        );
    }
    Ok(data)
}

fn inflate_record(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    name: &str,
    size: u64,
    compressed: u64,
) -> Result<Vec<u8>> {
    if size
        > compressed
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1024)
    {
        bail!(
            "deflated record {name} claims {size} bytes from {compressed} compressed bytes, \
             more than deflate can produce"
        );
    }
    let len = usize::try_from(size).with_context(|| format!("record {name} is too large"))?;
    let entry = archive
        .by_index(index)
        .with_context(|| format!("opening deflated record {name}"))?;
    let mut data = Vec::with_capacity(len);
    entry
        .take(size + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("decompressing record {name}"))?;
    if data.len() != len {
        bail!(
            "deflated record {name} has {} bytes: the archive records {size}",
            data.len()
        );
    }
    Ok(data)
}

/// Storages in `<prefix>/data/<key>` records.
struct ZipStorages<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    prefix: String,
}

impl StorageSource for ZipStorages<'_> {
    fn read_storage(&mut self, key: &str, kind: Kind, numel: i64) -> Result<Tensor> {
        let name = format!("{}/data/{key}", self.prefix);
        let expected = byte_len(kind, numel)?;
        let record = read_record(&mut self.archive, self.bytes, &name, Some(expected))?;
        if record.len() != expected {
            bail!(
                "record {name} has {} bytes: expected {expected} ({numel} elements of {kind:?})",
                record.len()
            );
        }
        tensor_from_bytes(&record, kind)
    }
}
