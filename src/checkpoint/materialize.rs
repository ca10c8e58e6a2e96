//! Turning an unpickled [`Graph`] into a [`Value`] tree, reading each storage
//! once from the container format.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use super::pickle::{Graph, Node, NodeId};
use super::storage::{storage_tensor, view_tensor, StorageRef};
use super::value::Value;

/// The deepest nesting of containers accepted in a checkpoint. State dicts
/// and optimizer states nest fewer than ten levels.
pub(crate) const MAX_DEPTH: usize = 256;

/// Bytes of [`Value`] tree allowed per byte of pickle. Shared references in
/// a pickle can describe a tree exponentially larger than the pickle; this
/// bound keeps memory proportional to the input.
const EXPANSION_PER_PICKLE_BYTE: usize = 128;

/// Bytes of [`Value`] tree allowed for any pickle, however small.
const MIN_EXPANSION_BUDGET: usize = 1 << 20;

/// Approximate size in bytes of one value node, for the expansion budget.
const NODE_COST: usize = 64;

/// Approximate heap size in bytes of one tensor view (its libtorch
/// `TensorImpl`), for the expansion budget; the storage itself is shared.
const TENSOR_COST: usize = 512;

/// A source of storage data: the container format around a pickle.
pub(crate) trait StorageSource {
    /// Reads storage `key` as a 1-D CPU tensor of `numel` elements of `kind`.
    /// Implementations check `numel` against the bytes present before they
    /// allocate.
    fn read_storage(&mut self, key: &str, kind: Kind, numel: i64) -> Result<Tensor>;
}

/// Converts `graph` to a value tree, reading storages from `source`.
pub(crate) fn build_value(
    graph: &Graph,
    source: &mut dyn StorageSource,
    pickle_len: usize,
) -> Result<Value> {
    let budget = pickle_len
        .saturating_mul(EXPANSION_PER_PICKLE_BYTE)
        .max(MIN_EXPANSION_BUDGET);
    let mut builder = Builder {
        graph,
        source,
        storages: HashMap::new(),
        budget,
        limit: budget,
    };
    builder.value(graph.root, 0)
}

struct Builder<'g> {
    graph: &'g Graph,
    source: &'g mut dyn StorageSource,
    /// Storages read so far, by key, with the dtype and size first used.
    storages: HashMap<String, (Kind, i64, Tensor)>,
    budget: usize,
    limit: usize,
}

impl Builder<'_> {
    fn value(&mut self, id: NodeId, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            bail!(
                "containers nest deeper than {MAX_DEPTH} levels, or refer to themselves; \
                 checkpoints nest only a few levels"
            );
        }
        let graph = self.graph;
        let node = graph.node(id);
        self.charge(NODE_COST + payload_len(node))?;
        let value = match node {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(
                i64::try_from(*i)
                    .with_context(|| format!("integer {i} does not fit in 64 bits"))?,
            ),
            Node::Float(f) => Value::Float(*f),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Bytes(b) => Value::Bytes(b.clone()),
            Node::List(items) => Value::List(self.values(items, depth)?),
            Node::Tuple(items) => Value::Tuple(self.values(items, depth)?),
            Node::Dict(pairs) => Value::Dict(self.dict(pairs, depth)?),
            Node::Storage(storage) => {
                let root = self.storage(storage)?;
                Value::Tensor(storage_tensor(&root, storage)?)
            }
            Node::Tensor(spec) => {
                let root = self.storage(&spec.storage)?;
                Value::Tensor(view_tensor(&root, spec)?)
            }
            Node::Global(global) => bail!("a bare global {global:?} is not a value"),
        };
        Ok(value)
    }

    fn values(&mut self, items: &[NodeId], depth: usize) -> Result<Vec<Value>> {
        items
            .iter()
            .map(|&item| self.value(item, depth + 1))
            .collect()
    }

    /// Converts dict items; a repeated str or int key keeps its first
    /// position and its last value, as in Python.
    fn dict(&mut self, pairs: &[(NodeId, NodeId)], depth: usize) -> Result<Vec<(Value, Value)>> {
        let mut entries: Vec<(Value, Value)> = Vec::with_capacity(pairs.len());
        let mut index: HashMap<DictKey, usize> = HashMap::new();
        for &(key, value) in pairs {
            let key = self.value(key, depth + 1)?;
            let value = self.value(value, depth + 1)?;
            match DictKey::of(&key).and_then(|k| index.get(&k).copied()) {
                Some(position) => entries[position].1 = value,
                None => {
                    if let Some(k) = DictKey::of(&key) {
                        index.insert(k, entries.len());
                    }
                    entries.push((key, value));
                }
            }
        }
        Ok(entries)
    }

    /// Returns the whole storage for `storage`, reading it on first use.
    fn storage(&mut self, storage: &StorageRef) -> Result<Tensor> {
        if let Some((kind, numel, tensor)) = self.storages.get(&storage.key) {
            if (*kind, *numel) != (storage.kind, storage.numel) {
                bail!(
                    "storage '{}' is used as {} elements of {:?} and as {} elements of {:?}",
                    storage.key,
                    numel,
                    kind,
                    storage.numel,
                    storage.kind
                );
            }
            return Ok(tensor.shallow_clone());
        }
        let tensor = self
            .source
            .read_storage(&storage.key, storage.kind, storage.numel)
            .with_context(|| format!("reading storage '{}'", storage.key))?;
        self.storages.insert(
            storage.key.clone(),
            (storage.kind, storage.numel, tensor.shallow_clone()),
        );
        Ok(tensor)
    }

    fn charge(&mut self, cost: usize) -> Result<()> {
        if cost > self.budget {
            bail!(
                "the pickle expands to more than {} bytes of values through shared references; \
                 a checkpoint expands to about as many bytes as it contains",
                self.limit
            );
        }
        self.budget -= cost;
        Ok(())
    }
}

/// Returns the heap bytes that a node's value owns besides its own slot.
fn payload_len(node: &Node) -> usize {
    match node {
        Node::Str(s) => s.len(),
        Node::Bytes(b) => b.len(),
        Node::Storage(_) | Node::Tensor(_) => TENSOR_COST,
        _ => 0,
    }
}

/// A dict key that can be compared for duplicates.
#[derive(Hash, PartialEq, Eq)]
enum DictKey {
    Int(i64),
    Str(String),
}

impl DictKey {
    fn of(value: &Value) -> Option<DictKey> {
        match value {
            Value::Int(i) => Some(DictKey::Int(*i)),
            Value::Str(s) => Some(DictKey::Str(s.clone())),
            _ => None,
        }
    }
}
