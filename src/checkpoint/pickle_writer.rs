//! Pickling a [`Value`] the way `torch.save` does, with protocol 2 and only
//! the opcodes and globals that `torch.load(weights_only=True)` accepts.

use anyhow::{bail, Context, Result};
use tch::Tensor;

use super::materialize::MAX_DEPTH;
use super::storage::storage_class_of_kind;
use super::value::Value;

/// A pickle and the tensors its persistent ids refer to; storage key `i` is
/// `storages[i]`, to be written contiguously.
pub(crate) struct Pickled {
    pub data: Vec<u8>,
    pub storages: Vec<Tensor>,
}

/// Pickles `value`. Dicts with str keys and only tensor values are written
/// as `collections.OrderedDict`, the type of `Module.state_dict()`; other
/// dicts are written as `dict`.
pub(crate) fn pickle_value(value: &Value) -> Result<Pickled> {
    let mut pickler = Pickler {
        out: vec![0x80, 2],
        storages: Vec::new(),
    };
    pickler.value(value, 0)?;
    pickler.out.push(b'.');
    Ok(Pickled {
        data: pickler.out,
        storages: pickler.storages,
    })
}

struct Pickler {
    out: Vec<u8>,
    storages: Vec<Tensor>,
}

impl Pickler {
    fn value(&mut self, value: &Value, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!("value nests deeper than {MAX_DEPTH} levels, which checkpoints do not allow");
        }
        match value {
            Value::None => self.out.push(b'N'),
            Value::Bool(true) => self.out.push(0x88),
            Value::Bool(false) => self.out.push(0x89),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.out.push(b'G');
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.string(s)?,
            Value::Bytes(b) => self.bytes(b)?,
            Value::List(items) => self.list(items, depth)?,
            Value::Tuple(items) => self.tuple(items, depth)?,
            Value::Dict(entries) => self.dict(entries, depth)?,
            Value::Tensor(t) => self.tensor(t)?,
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        if let Ok(small) = u8::try_from(i) {
            self.out.extend_from_slice(&[b'K', small]);
        } else if let Ok(medium) = u16::try_from(i) {
            self.out.push(b'M');
            self.out.extend_from_slice(&medium.to_le_bytes());
        } else if let Ok(word) = i32::try_from(i) {
            self.out.push(b'J');
            self.out.extend_from_slice(&word.to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn string(&mut self, s: &str) -> Result<()> {
        let len = u32::try_from(s.len())
            .with_context(|| format!("string of {} bytes is too long for a pickle", s.len()))?;
        self.out.push(b'X');
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        for part in [module, name] {
            self.out.extend_from_slice(part.as_bytes());
            self.out.push(b'\n');
        }
    }

    /// Writes bytes as `_codecs.encode(text, 'latin1')`, as Python's
    /// protocol 2 pickler does.
    fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.global("_codecs", "encode");
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        self.string(&text)?;
        self.string("latin1")?;
        self.out.extend_from_slice(&[0x86, b'R']);
        Ok(())
    }

    fn list(&mut self, items: &[Value], depth: usize) -> Result<()> {
        self.out.push(b']');
        if items.is_empty() {
            return Ok(());
        }
        self.out.push(b'(');
        for item in items {
            self.value(item, depth + 1)?;
        }
        self.out.push(b'e');
        Ok(())
    }

    fn tuple(&mut self, items: &[Value], depth: usize) -> Result<()> {
        if items.is_empty() {
            self.out.push(b')');
            return Ok(());
        }
        if items.len() > 3 {
            self.out.push(b'(');
        }
        for item in items {
            self.value(item, depth + 1)?;
        }
        let opcode = match items.len() {
            1 => 0x85,
            2 => 0x86,
            3 => 0x87,
            _ => b't',
        };
        self.out.push(opcode);
        Ok(())
    }

    fn int_tuple(&mut self, items: &[i64]) -> Result<()> {
        let values: Vec<Value> = items.iter().map(|&i| Value::Int(i)).collect();
        self.tuple(&values, 0)
    }

    fn dict(&mut self, entries: &[(Value, Value)], depth: usize) -> Result<()> {
        if is_tensor_dict(entries) {
            self.ordered_dict();
        } else {
            self.out.push(b'}');
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.out.push(b'(');
        for (key, value) in entries {
            self.value(key, depth + 1)?;
            self.value(value, depth + 1)?;
        }
        self.out.push(b'u');
        Ok(())
    }

    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend_from_slice(b")R");
    }

    /// Writes `_rebuild_tensor_v2(storage, 0, size, stride, False,
    /// OrderedDict())` over a new contiguous storage.
    fn tensor(&mut self, tensor: &Tensor) -> Result<()> {
        let kind = tensor.f_kind()?;
        let Some(class) = storage_class_of_kind(kind) else {
            bail!(
                "a {kind:?} tensor cannot be saved: {}",
                super::safetensors_io::supported_kinds()
            );
        };
        let size = tensor.size();
        let numel = size
            .iter()
            .try_fold(1i64, |acc, &d| acc.checked_mul(d))
            .with_context(|| format!("tensor size {size:?} overflows 64 bits"))?;
        let key = self.storages.len().to_string();
        self.storages.push(tensor.shallow_clone());

        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        self.out.push(b'(');
        self.string("storage")?;
        self.global("torch", class);
        self.string(&key)?;
        self.string("cpu")?;
        self.int(numel);
        self.out.extend_from_slice(b"tQ");
        self.int(0);
        self.int_tuple(&size)?;
        self.int_tuple(&contiguous_strides(&size))?;
        self.out.push(0x89);
        self.ordered_dict();
        self.out.extend_from_slice(b"tR");
        Ok(())
    }
}

/// Returns true for a dict that looks like a `state_dict()`: str keys and
/// tensor values only, and at least one entry.
fn is_tensor_dict(entries: &[(Value, Value)]) -> bool {
    !entries.is_empty()
        && entries
            .iter()
            .all(|(k, v)| matches!((k, v), (Value::Str(_), Value::Tensor(_))))
}

/// Returns the row-major strides for `size`, in elements.
fn contiguous_strides(size: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(size[i + 1].max(1));
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_strides_match_pytorch() {
        assert_eq!(contiguous_strides(&[]), Vec::<i64>::new());
        assert_eq!(contiguous_strides(&[5]), vec![1]);
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        // PyTorch treats size-0 dimensions as size 1 when computing strides.
        assert_eq!(contiguous_strides(&[2, 0, 3]), vec![3, 3, 1]);
    }
}
