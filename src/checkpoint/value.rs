//! The generic value tree that a checkpoint file decodes to.

use std::fmt;

use tch::Tensor;

/// A Python object as stored by `torch.save`, restricted to the types that
/// checkpoints contain.
///
/// `Dict` keeps the file's insertion order and stands for both `dict` and
/// `collections.OrderedDict`. Tensors loaded from one file may share storage,
/// as they do in PyTorch, so an in-place change to one view shows in the
/// others.
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Tensor(Tensor),
}

impl Value {
    /// Returns the Python type name of the value, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Looks up a string key in a dict; returns `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Copies the tree; tensors are shallow copies that share storage.
    pub fn shallow_clone(&self) -> Value {
        match self {
            Value::None => Value::None,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Bytes(b) => Value::Bytes(b.clone()),
            Value::List(items) => Value::List(items.iter().map(Value::shallow_clone).collect()),
            Value::Tuple(items) => Value::Tuple(items.iter().map(Value::shallow_clone).collect()),
            Value::Dict(entries) => Value::Dict(
                entries
                    .iter()
                    .map(|(k, v)| (k.shallow_clone(), v.shallow_clone()))
                    .collect(),
            ),
            Value::Tensor(t) => Value::Tensor(t.shallow_clone()),
        }
    }
}

/// Formats a tensor as its dtype and shape, never its data.
pub(crate) fn describe_tensor(tensor: &Tensor) -> String {
    let kind = match tensor.f_kind() {
        Ok(kind) => format!("{kind:?}"),
        Err(_) => "unknown dtype".to_string(),
    };
    format!("Tensor({kind}, {:?})", tensor.size())
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => write!(f, "None"),
            Value::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "bytes({} bytes)", b.len()),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Tuple(items) => {
                let mut tuple = f.debug_tuple("");
                for item in items {
                    tuple.field(item);
                }
                tuple.finish()
            }
            Value::Dict(entries) => f
                .debug_map()
                .entries(entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Tensor(t) => write!(f, "{}", describe_tensor(t)),
        }
    }
}
