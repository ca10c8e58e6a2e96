//! The Python globals, calls and persistent ids that `torch.save` pickles
//! contain, and nothing else.

use anyhow::{bail, Context, Result};
use tch::Kind;

use super::pickle::{Node, NodeId};
use super::storage::{kind_of_storage_class, StorageRef, TensorSpec};

/// A Python global that a checkpoint pickle may name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    /// A `torch.*Storage` class, or `UntypedStorage` as `Uint8`.
    Storage(Kind),
    TorchSize,
    /// `_codecs.encode`, which protocol 2 uses to pickle `bytes`.
    CodecsEncode,
}

/// Maps a `module.name` global to a [`Global`], or rejects it.
pub(crate) fn resolve_global(module: &str, name: &str) -> Result<Global> {
    let global = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch" | "torch.storage", "UntypedStorage") => Global::Storage(Kind::Uint8),
        ("torch", "Size") => Global::TorchSize,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("torch", class) => match kind_of_storage_class(class) {
            Some(kind) => Global::Storage(kind),
            None => bail!(unsupported_global(module, name)),
        },
        _ => bail!(unsupported_global(module, name)),
    };
    Ok(global)
}

fn unsupported_global(module: &str, name: &str) -> String {
    format!(
        "unsupported global '{module}.{name}': checkpoints may only use collections.OrderedDict, \
         the torch._utils tensor and parameter rebuild functions, torch.*Storage classes, \
         torch.Size and _codecs.encode"
    )
}

/// Executes REDUCE: calls the global `callable` with the tuple `args`.
pub(crate) fn reduce(nodes: &[Node], callable: NodeId, args: NodeId) -> Result<Node> {
    let Node::Global(global) = &nodes[callable] else {
        bail!(
            "REDUCE callable has type {}: expected a global",
            nodes[callable].type_name()
        );
    };
    let args = tuple_items(nodes, args, "REDUCE arguments")?;
    match global {
        Global::OrderedDict => {
            expect_arg_count(args, 0..=0, "collections.OrderedDict")?;
            Ok(Node::Dict(Vec::new()))
        }
        Global::RebuildTensorV2 => {
            expect_arg_count(args, 6..=7, "torch._utils._rebuild_tensor_v2")?;
            expect_type(nodes, args[4], "requires_grad", |n| {
                matches!(n, Node::Bool(_))
            })?;
            expect_type(nodes, args[5], "backward_hooks", |n| {
                matches!(n, Node::Dict(_))
            })?;
            rebuild_tensor(nodes, &args[..4])
        }
        Global::RebuildTensor => {
            expect_arg_count(args, 4..=4, "torch._utils._rebuild_tensor")?;
            rebuild_tensor(nodes, args)
        }
        Global::RebuildParameter => {
            expect_arg_count(args, 3..=3, "torch._utils._rebuild_parameter")?;
            parameter_data(nodes, args[0])
        }
        Global::RebuildParameterWithState => {
            expect_arg_count(args, 4..=4, "torch._utils._rebuild_parameter_with_state")?;
            parameter_data(nodes, args[0])
        }
        Global::TorchSize => {
            expect_arg_count(args, 1..=1, "torch.Size")?;
            let dims = tuple_items(nodes, args[0], "torch.Size argument")?;
            for &dim in dims {
                int_of(nodes, dim, "torch.Size dimension")?;
            }
            Ok(Node::Tuple(dims.to_vec()))
        }
        Global::CodecsEncode => encode_bytes(nodes, args),
        Global::Storage(kind) => bail!(
            "calling the storage class for {kind:?} is not supported: storages must come \
             from persistent ids"
        ),
    }
}

/// Executes BUILD: accepts the `_metadata` attribute (or any attribute dict)
/// that `state_dict()` sets on its OrderedDict, and ignores it.
pub(crate) fn build(nodes: &[Node], target: NodeId, state: NodeId) -> Result<()> {
    match (&nodes[target], &nodes[state]) {
        (Node::Dict(_), Node::Dict(attributes)) => {
            for &(name, _) in attributes {
                str_of(nodes, name, "attribute name")?;
            }
            Ok(())
        }
        (target, state) => bail!(
            "BUILD with a {} state on a {} is not supported: only attributes of an \
             OrderedDict, such as a state dict's _metadata, are accepted",
            state.type_name(),
            target.type_name()
        ),
    }
}

/// Executes BINPERSID for a storage persistent id, `('storage', class, key,
/// location, numel)` plus a view description in the legacy format.
pub(crate) fn persistent_load(nodes: &[Node], pid: NodeId) -> Result<Node> {
    let items = tuple_items(nodes, pid, "persistent id")?;
    if !(5..=6).contains(&items.len()) {
        bail!(
            "persistent id has {} items: expected ('storage', storage class, key, location, \
             numel) and optionally a view",
            items.len()
        );
    }
    let tag = str_of(nodes, items[0], "persistent id tag")?;
    if tag != "storage" {
        bail!("persistent id tag is '{tag}': expected 'storage'");
    }
    let Node::Global(Global::Storage(kind)) = nodes[items[1]] else {
        bail!(
            "persistent id storage class has type {}: expected a torch.*Storage class",
            nodes[items[1]].type_name()
        );
    };
    let key = str_of(nodes, items[2], "storage key")?.to_string();
    str_of(nodes, items[3], "storage location")?;
    let numel = int_of(nodes, items[4], "storage element count")?;
    if numel < 0 {
        bail!("storage '{key}' has a negative element count {numel}");
    }
    let view = match items.get(5) {
        Some(&view) => legacy_view(nodes, view, numel)?,
        None => None,
    };
    Ok(Node::Storage(StorageRef {
        key,
        kind,
        numel,
        view,
    }))
}

/// Reads the legacy format's `(view_key, offset, size)` storage view.
fn legacy_view(nodes: &[Node], view: NodeId, numel: i64) -> Result<Option<(i64, i64)>> {
    if matches!(nodes[view], Node::None) {
        return Ok(None);
    }
    let items = tuple_items(nodes, view, "storage view")?;
    if items.len() != 3 {
        bail!(
            "storage view has {} items: expected (key, offset, size)",
            items.len()
        );
    }
    str_of(nodes, items[0], "storage view key")?;
    let offset = int_of(nodes, items[1], "storage view offset")?;
    let len = int_of(nodes, items[2], "storage view size")?;
    let fits = match offset.checked_add(len) {
        Some(end) => offset >= 0 && len >= 0 && end <= numel,
        None => false,
    };
    if !fits {
        bail!(
            "storage view of {len} elements at offset {offset} does not fit in its storage \
             of {numel} elements"
        );
    }
    Ok(Some((offset, len)))
}

fn rebuild_tensor(nodes: &[Node], args: &[NodeId]) -> Result<Node> {
    let Node::Storage(storage) = &nodes[args[0]] else {
        bail!(
            "tensor storage has type {}: expected a storage persistent id",
            nodes[args[0]].type_name()
        );
    };
    let offset = int_of(nodes, args[1], "tensor storage offset")?;
    let size = int_tuple(nodes, args[2], "tensor size")?;
    let stride = int_tuple(nodes, args[3], "tensor stride")?;
    Ok(Node::Tensor(TensorSpec {
        storage: storage.clone(),
        offset,
        size,
        stride,
    }))
}

fn parameter_data(nodes: &[Node], data: NodeId) -> Result<Node> {
    match &nodes[data] {
        Node::Tensor(spec) => Ok(Node::Tensor(spec.clone())),
        other => bail!(
            "parameter data has type {}: expected a tensor",
            other.type_name()
        ),
    }
}

/// Rebuilds `bytes` from protocol 2's `_codecs.encode(text, 'latin1')`.
fn encode_bytes(nodes: &[Node], args: &[NodeId]) -> Result<Node> {
    expect_arg_count(args, 2..=2, "_codecs.encode")?;
    let text = str_of(nodes, args[0], "_codecs.encode text")?;
    let encoding = str_of(nodes, args[1], "_codecs.encode encoding")?;
    if encoding != "latin1" && encoding != "latin-1" {
        bail!("_codecs.encode with encoding '{encoding}' is not supported: expected 'latin1'");
    }
    let bytes = text
        .chars()
        .map(|c| u8::try_from(c).with_context(|| format!("character {c:?} is not latin-1")))
        .collect::<Result<Vec<u8>>>()?;
    Ok(Node::Bytes(bytes))
}

fn expect_arg_count(
    args: &[NodeId],
    range: std::ops::RangeInclusive<usize>,
    callable: &str,
) -> Result<()> {
    if !range.contains(&args.len()) {
        bail!(
            "{callable} called with {} arguments: expected {} to {}",
            args.len(),
            range.start(),
            range.end()
        );
    }
    Ok(())
}

fn expect_type(nodes: &[Node], id: NodeId, what: &str, ok: impl Fn(&Node) -> bool) -> Result<()> {
    if !ok(&nodes[id]) {
        bail!("{what} has the unexpected type {}", nodes[id].type_name());
    }
    Ok(())
}

pub(crate) fn tuple_items<'n>(nodes: &'n [Node], id: NodeId, what: &str) -> Result<&'n [NodeId]> {
    match &nodes[id] {
        Node::Tuple(items) => Ok(items),
        other => bail!("{what} has type {}: expected a tuple", other.type_name()),
    }
}

pub(crate) fn str_of<'n>(nodes: &'n [Node], id: NodeId, what: &str) -> Result<&'n str> {
    match &nodes[id] {
        Node::Str(s) => Ok(s),
        other => bail!("{what} has type {}: expected a str", other.type_name()),
    }
}

pub(crate) fn int_of(nodes: &[Node], id: NodeId, what: &str) -> Result<i64> {
    match &nodes[id] {
        Node::Int(i) => {
            i64::try_from(*i).with_context(|| format!("{what} {i} does not fit in 64 bits"))
        }
        other => bail!("{what} has type {}: expected an int", other.type_name()),
    }
}

fn int_tuple(nodes: &[Node], id: NodeId, what: &str) -> Result<Vec<i64>> {
    tuple_items(nodes, id, what)?
        .iter()
        .map(|&item| int_of(nodes, item, what))
        .collect()
}
