//! Reading the legacy format, which `torch.save` writes with
//! `_use_new_zipfile_serialization=False` and which PyTorch used before 1.6.
//!
//! The file is a sequence of five pickles: a magic number, a protocol
//! version, a `sys_info` dict, the main object and the list of storage keys.
//! Storage data follows. For each key in the list there is an 8-byte
//! little-endian element count, then the storage's raw little-endian
//! elements.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use super::materialize::{build_value, StorageSource};
use super::pickle::{unpickle, Graph, Node};
use super::storage::{byte_len, tensor_from_bytes};
use super::value::Value;

/// The number that starts every legacy-format file.
const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;

/// The only legacy protocol version that PyTorch has written.
const PROTOCOL_VERSION: i128 = 1001;

/// Returns true when `bytes` starts like a pickle of protocol 2 to 5.
pub(crate) fn is_legacy(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
}

/// Decodes a legacy-format checkpoint.
pub(crate) fn load_legacy(bytes: &[u8]) -> Result<Value> {
    let mut reader = PickleSequence { bytes, pos: 0 };
    let magic = reader.next("magic number pickle")?;
    check_int(&magic, MAGIC_NUMBER, "magic number")
        .context("not a torch.save file: it is a pickle, but not the legacy checkpoint format")?;
    let protocol = reader.next("protocol version pickle")?;
    check_int(&protocol, PROTOCOL_VERSION, "legacy protocol version")?;
    let sys_info = reader.next("sys_info pickle")?;
    check_little_endian(&sys_info)?;
    let (main, main_len) = reader.next_with_len("main pickle")?;
    let keys = reader.next("storage key list pickle")?;
    let keys = storage_keys(&keys)?;
    let mut storages = LegacyStorages::locate(bytes, reader.pos, &main, &keys)?;
    build_value(&main, &mut storages, main_len)
}

/// Reads pickles stored back to back.
struct PickleSequence<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl PickleSequence<'_> {
    fn next(&mut self, what: &str) -> Result<Graph> {
        Ok(self.next_with_len(what)?.0)
    }

    fn next_with_len(&mut self, what: &str) -> Result<(Graph, usize)> {
        let (graph, len) = unpickle(&self.bytes[self.pos..])
            .with_context(|| format!("decoding the {what} at byte {}", self.pos))?;
        self.pos += len;
        Ok((graph, len))
    }
}

fn check_int(graph: &Graph, expected: i128, what: &str) -> Result<()> {
    match graph.node(graph.root) {
        Node::Int(value) if *value == expected => Ok(()),
        Node::Int(value) => bail!("{what} is {value:#x}: expected {expected:#x}"),
        other => bail!("{what} has type {}: expected an int", other.type_name()),
    }
}

/// Rejects files whose `sys_info` marks them as written on a big-endian machine.
fn check_little_endian(sys_info: &Graph) -> Result<()> {
    let Node::Dict(pairs) = sys_info.node(sys_info.root) else {
        bail!(
            "sys_info has type {}: expected a dict",
            sys_info.node(sys_info.root).type_name()
        );
    };
    for &(key, value) in pairs {
        let is_endian_key = matches!(sys_info.node(key), Node::Str(k) if k == "little_endian");
        if is_endian_key && matches!(sys_info.node(value), Node::Bool(false)) {
            bail!(
                "the checkpoint was written on a big-endian machine (sys_info little_endian is \
                 False): only little-endian checkpoints are supported"
            );
        }
    }
    Ok(())
}

fn storage_keys(graph: &Graph) -> Result<Vec<String>> {
    let Node::List(items) = graph.node(graph.root) else {
        bail!(
            "the storage key list has type {}: expected a list of str",
            graph.node(graph.root).type_name()
        );
    };
    items
        .iter()
        .map(|&item| match graph.node(item) {
            Node::Str(key) => Ok(key.clone()),
            other => bail!(
                "a storage key has type {}: expected a str",
                other.type_name()
            ),
        })
        .collect()
}

/// The storages of a legacy file, located by byte range.
struct LegacyStorages<'a> {
    bytes: &'a [u8],
    /// Byte range of each storage's elements, by key.
    spans: HashMap<String, (usize, usize)>,
}

impl<'a> LegacyStorages<'a> {
    /// Walks the storage records that start at byte `pos`, one per key. The
    /// element size of each comes from the main pickle's persistent ids.
    fn locate(bytes: &'a [u8], mut pos: usize, main: &Graph, keys: &[String]) -> Result<Self> {
        let mut declared: HashMap<&str, (Kind, i64)> = HashMap::new();
        for storage in main.storages() {
            declared
                .entry(&storage.key)
                .or_insert((storage.kind, storage.numel));
        }
        let mut spans = HashMap::new();
        for key in keys {
            let Some(&(kind, numel)) = declared.get(key.as_str()) else {
                bail!(
                    "storage '{key}' is listed in the file but no tensor uses it, so its \
                     element size is unknown"
                );
            };
            let header = bytes.get(pos..pos + 8).with_context(|| {
                format!("truncated file: the size of storage '{key}' is missing at byte {pos}")
            })?;
            let count = u64::from_le_bytes(header.try_into().expect("slice of 8 bytes"));
            if count != numel as u64 {
                bail!("storage '{key}' has {count} elements in the file, but its persistent id claims {numel}");
            }
            let len = byte_len(kind, numel)?;
            let start = pos + 8;
            let left = bytes.len() - start;
            if len > left {
                bail!(
                    "truncated file: storage '{key}' needs {len} bytes at byte {start}, only \
                     {left} are left"
                );
            }
            spans.insert(key.clone(), (start, len));
            pos = start + len;
        }
        Ok(LegacyStorages { bytes, spans })
    }
}

impl StorageSource for LegacyStorages<'_> {
    fn read_storage(&mut self, key: &str, kind: Kind, numel: i64) -> Result<Tensor> {
        let Some(&(start, len)) = self.spans.get(key) else {
            bail!("storage '{key}' is used by a tensor but its data is not in the file");
        };
        let expected = byte_len(kind, numel)?;
        if expected != len {
            bail!(
                "storage '{key}' has {len} bytes in the file: expected {expected} ({numel} \
                 elements of {kind:?})"
            );
        }
        tensor_from_bytes(&self.bytes[start..start + len], kind)
    }
}
