//! State dicts: finding them in a checkpoint and moving them in and out of a
//! [`VarStore`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tch::nn::VarStore;
use tch::Tensor;

use super::value::Value;
use super::writer::{save, Format};

/// The prefix that `nn.DataParallel` adds to every key.
const DATA_PARALLEL_PREFIX: &str = "module.";

/// Named tensors in order, as `Module.state_dict()` returns them.
#[derive(Default)]
pub struct StateDict {
    pub entries: Vec<(String, Tensor)>,
}

impl StateDict {
    pub fn new() -> Self {
        StateDict::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Appends an entry, or replaces the tensor of an existing name in place.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = tensor,
            None => self.entries.push((name, tensor)),
        }
    }

    /// Returns the total number of elements over all tensors.
    pub fn num_elements(&self) -> i64 {
        self.entries
            .iter()
            .map(|(_, t)| t.size().iter().product::<i64>())
            .sum()
    }

    /// Returns the state dict as a dict value, sharing the tensors.
    pub fn to_value(&self) -> Value {
        Value::Dict(
            self.entries
                .iter()
                .map(|(n, t)| (Value::Str(n.clone()), Value::Tensor(t.shallow_clone())))
                .collect(),
        )
    }

    /// Reads a dict of str keys to tensors, sharing the tensors.
    pub fn from_value(value: &Value) -> Result<StateDict> {
        let Value::Dict(entries) = value else {
            bail!(
                "a state dict must be a dict, but the value has type {}",
                value.type_name()
            );
        };
        let mut state_dict = StateDict::new();
        for (key, item) in entries {
            let (Value::Str(name), Value::Tensor(tensor)) = (key, item) else {
                bail!(
                    "a state dict maps str keys to tensors, but it has a {} key with a {} value",
                    key.type_name(),
                    item.type_name()
                );
            };
            state_dict
                .entries
                .push((name.clone(), tensor.shallow_clone()));
        }
        Ok(state_dict)
    }

    /// Collects the variables of `vs`, sharing their tensors.
    ///
    /// Trainable variables keep the order they were created in, which is
    /// PyTorch's order when the Rust model creates them in module order.
    /// Each other variable, such as a buffer, follows the last variable of
    /// its module; buffers of one module are sorted by name.
    pub fn from_var_store(vs: &VarStore) -> Result<StateDict> {
        let variables = vs
            .variables_
            .lock()
            .map_err(|_| anyhow!("the VarStore's lock is poisoned by a panic in another thread"))?;
        let mut by_pointer: HashMap<usize, Vec<&str>> = HashMap::new();
        for (name, tensor) in &variables.named_variables {
            by_pointer
                .entry(tensor.data_ptr() as usize)
                .or_default()
                .push(name);
        }
        let mut state_dict = StateDict::new();
        let mut placed: HashSet<&str> = HashSet::new();
        for var in &variables.trainable_variables {
            // Zero-size tensors may share a null data pointer; those names are
            // ambiguous and go to the sorted tail instead.
            if let Some([name]) = by_pointer
                .get(&(var.tensor.data_ptr() as usize))
                .map(Vec::as_slice)
            {
                if placed.insert(name) {
                    state_dict.insert(*name, var.tensor.shallow_clone());
                }
            }
        }
        let mut rest: Vec<(&String, &Tensor)> = variables
            .named_variables
            .iter()
            .filter(|(name, _)| !placed.contains(name.as_str()))
            .collect();
        rest.sort_by(|a, b| a.0.cmp(b.0));
        for (name, tensor) in rest {
            state_dict.insert_after_siblings(name, tensor.shallow_clone());
        }
        Ok(state_dict)
    }

    /// Inserts an entry after the last entry of the same module (the same
    /// name up to the last `.`), or at the end when there is none. PyTorch
    /// lists a module's buffers right after its parameters, so this puts
    /// buffers where `state_dict()` has them.
    fn insert_after_siblings(&mut self, name: &str, tensor: Tensor) {
        let module = module_of(name);
        let position = self
            .entries
            .iter()
            .rposition(|(other, _)| module_of(other) == module)
            .map_or(self.entries.len(), |last| last + 1);
        self.entries.insert(position, (name.to_string(), tensor));
    }

    /// Removes `module.` from every key when all keys have it, as
    /// `nn.DataParallel` checkpoints do.
    fn strip_data_parallel_prefix(mut self) -> StateDict {
        let all_prefixed = !self.is_empty()
            && self
                .entries
                .iter()
                .all(|(n, _)| n.starts_with(DATA_PARALLEL_PREFIX));
        if all_prefixed {
            for (name, _) in &mut self.entries {
                name.drain(..DATA_PARALLEL_PREFIX.len());
            }
        }
        self
    }
}

impl fmt::Debug for StateDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(n, t)| (n, t.size())))
            .finish()
    }
}

/// Returns the module path of a dotted variable name: `a.b` for `a.b.weight`.
fn module_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(module, _)| module)
}

/// Returns true for a dict of str keys to tensors, the shape of a state
/// dict. An empty dict counts, as the state dict of a module without
/// parameters.
fn is_tensor_dict(value: &Value) -> bool {
    match value {
        Value::Dict(entries) => entries
            .iter()
            .all(|(k, v)| matches!((k, v), (Value::Str(_), Value::Tensor(_)))),
        _ => false,
    }
}

/// Returns true for an optimizer's `state_dict()`: a dict with `state` and
/// `param_groups`.
pub fn is_optimizer_state(value: &Value) -> bool {
    value.get("state").is_some() && value.get("param_groups").is_some()
}

/// Finds the state dicts in a loaded checkpoint.
///
/// A bare state dict gives one entry with the key `""`. A dict of entries
/// gives one state dict per top-level entry that is a non-empty dict of
/// tensors; optimizer states and other values are skipped. Keys lose a
/// `module.` prefix when every key of that state dict has it.
pub fn state_dicts(value: &Value) -> Result<Vec<(String, StateDict)>> {
    if is_tensor_dict(value) {
        let state_dict = StateDict::from_value(value)?.strip_data_parallel_prefix();
        return Ok(vec![(String::new(), state_dict)]);
    }
    let Value::Dict(entries) = value else {
        bail!(
            "the checkpoint contains a {}: expected a state dict or a dict of state dicts",
            value.type_name()
        );
    };
    let mut found = Vec::new();
    for (key, item) in entries {
        let (Value::Str(name), true) = (key, is_tensor_dict(item)) else {
            continue;
        };
        if item.as_dict().is_some_and(|d| !d.is_empty()) {
            let state_dict = StateDict::from_value(item)?.strip_data_parallel_prefix();
            found.push((name.clone(), state_dict));
        }
    }
    if found.is_empty() {
        bail!(
            "the checkpoint contains no state dict: its top-level entries are {}; expected a dict \
             of tensors or a dict whose entries are dicts of tensors",
            describe_entries(entries)
        );
    }
    Ok(found)
}

/// Loads the state dict under `key` from a checkpoint file of any format.
///
/// With `key` `None` the file must hold exactly one state dict.
pub fn load_state_dict(path: &Path, key: Option<&str>) -> Result<StateDict> {
    let value = super::load(path)?;
    select_state_dict(&value, key)
        .with_context(|| format!("loading a state dict from {}", path.display()))
}

/// Picks the state dict under `key` from a loaded checkpoint; see
/// [`load_state_dict`].
pub fn select_state_dict(value: &Value, key: Option<&str>) -> Result<StateDict> {
    let mut found = state_dicts(value)?;
    let keys: Vec<String> = found.iter().map(|(k, _)| format!("'{k}'")).collect();
    let keys = keys.join(", ");
    match key {
        None if found.len() == 1 => Ok(found.remove(0).1),
        None => bail!(
            "the checkpoint contains {} state dicts ({keys}): choose one with a key (--key on the command line)",
            found.len()
        ),
        Some(key) => {
            if let Some(position) = found.iter().position(|(k, _)| k == key) {
                return Ok(found.remove(position).1);
            }
            if found.len() == 1 && found[0].0.is_empty() {
                bail!("the checkpoint is a bare state dict without top-level keys, so key '{key}' does not apply");
            }
            match value.get(key) {
                Some(item) if is_optimizer_state(item) => bail!(
                    "entry '{key}' is an optimizer state, not a model state dict; state dicts: {keys}"
                ),
                Some(item) => bail!(
                    "entry '{key}' has type {}, not a dict of tensors; state dicts: {keys}",
                    item.type_name()
                ),
                None => bail!("no entry '{key}' in the checkpoint; state dicts: {keys}"),
            }
        }
    }
}

/// Writes a state dict, as an `OrderedDict` in the torch zip format or as
/// a flat safetensors file.
pub fn save_state_dict(path: &Path, state_dict: &StateDict, format: Format) -> Result<()> {
    save(path, &state_dict.to_value(), format)
}

fn describe_entries(entries: &[(Value, Value)]) -> String {
    let described: Vec<String> = entries
        .iter()
        .map(|(k, v)| match k {
            Value::Str(name) => format!("'{name}' ({})", v.type_name()),
            other => format!("{other:?} ({})", v.type_name()),
        })
        .collect();
    if described.is_empty() {
        "none".to_string()
    } else {
        described.join(", ")
    }
}
