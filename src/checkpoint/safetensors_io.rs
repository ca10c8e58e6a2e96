//! Reading and writing safetensors files: an 8-byte little-endian header
//! length, a JSON header, then the tensors' raw little-endian bytes.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use tch::{Kind, Tensor};

use super::storage::{tensor_bytes, tensor_from_bytes};
use super::value::Value;

/// The dtypes that both safetensors and the checkpoint reader support.
const DTYPES: [(Dtype, Kind); 10] = [
    (Dtype::F32, Kind::Float),
    (Dtype::F64, Kind::Double),
    (Dtype::F16, Kind::Half),
    (Dtype::BF16, Kind::BFloat16),
    (Dtype::I64, Kind::Int64),
    (Dtype::I32, Kind::Int),
    (Dtype::I16, Kind::Int16),
    (Dtype::I8, Kind::Int8),
    (Dtype::U8, Kind::Uint8),
    (Dtype::BOOL, Kind::Bool),
];

/// Returns true when `bytes` starts with a plausible safetensors header:
/// a length that fits in the file, followed by `{`.
pub(crate) fn is_safetensors(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..8) else {
        return false;
    };
    let len = u64::from_le_bytes(header.try_into().expect("slice of 8 bytes"));
    len >= 2 && len <= (bytes.len() - 8) as u64 && bytes[8] == b'{'
}

/// Decodes a safetensors file into a dict of tensors, in file order.
pub(crate) fn load_safetensors(bytes: &[u8]) -> Result<Value> {
    let (header_len, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("invalid safetensors file: {e}"))?;
    let data = &bytes[8 + header_len..];
    let mut entries = Vec::new();
    for name in metadata.offset_keys() {
        let info = metadata
            .info(&name)
            .ok_or_else(|| anyhow!("safetensors header lists '{name}' without its info"))?;
        let kind = kind_of_dtype(info.dtype)
            .with_context(|| format!("tensor '{name}' in the safetensors file"))?;
        let (start, end) = info.data_offsets;
        // `read_metadata` checked that the offsets tile the data section.
        let tensor = tensor_from_bytes(&data[start..end], kind)?;
        let shape = info
            .shape
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<Result<Vec<i64>, _>>()
            .with_context(|| format!("shape {:?} of tensor '{name}' is too large", info.shape))?;
        let tensor = tensor
            .f_reshape(shape.as_slice())
            .with_context(|| format!("reshaping tensor '{name}' to {shape:?}"))?;
        entries.push((Value::Str(name), Value::Tensor(tensor)));
    }
    Ok(Value::Dict(entries))
}

/// Encodes named tensors as a safetensors file, with the `format: pt`
/// metadata that PyTorch-side tools write.
pub(crate) fn encode_safetensors(tensors: &[(&str, &Tensor)]) -> Result<Vec<u8>> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let kind = tensor.f_kind()?;
        let dtype = dtype_of_kind(kind).with_context(|| format!("tensor '{name}'"))?;
        let shape = tensor
            .size()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()?;
        buffers.push((*name, dtype, shape, tensor_bytes(tensor)?));
    }
    let mut seen = HashMap::new();
    for (name, ..) in &buffers {
        if seen.insert(*name, ()).is_some() {
            bail!("tensor name '{name}' appears twice: safetensors names must be unique");
        }
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|view| (name.to_string(), view))
                .map_err(|e| anyhow!("tensor '{name}': {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| anyhow!("encoding safetensors: {e}"))
}

fn kind_of_dtype(dtype: Dtype) -> Result<Kind> {
    DTYPES
        .iter()
        .find(|(d, _)| *d == dtype)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| anyhow!("unsupported safetensors dtype {dtype:?}"))
}

fn dtype_of_kind(kind: Kind) -> Result<Dtype> {
    DTYPES
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(dtype, _)| *dtype)
        .ok_or_else(|| anyhow!("dtype {kind:?} cannot be written: {}", supported_kinds()))
}

pub(crate) fn supported_kinds() -> String {
    let names: Vec<String> = DTYPES.iter().map(|(_, kind)| format!("{kind:?}")).collect();
    format!("supported dtypes are {}", names.join(", "))
}
