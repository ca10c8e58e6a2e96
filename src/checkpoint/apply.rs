//! Copying a state dict into the variables of a [`VarStore`], with the
//! checks of PyTorch's `Module.load_state_dict`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use anyhow::{Context, Result};
use tch::nn::VarStore;
use tch::Tensor;

use super::state_dict::StateDict;

/// A variable whose shape differs from the state dict's tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub name: String,
    /// Shape in the state dict.
    pub checkpoint: Vec<i64>,
    /// Shape of the variable.
    pub model: Vec<i64>,
}

/// The keys that did not match between a state dict and a [`VarStore`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables of the store that the state dict lacks, sorted.
    pub missing: Vec<String>,
    /// State dict keys without a variable, in state dict order.
    pub unexpected: Vec<String>,
    /// Keys present on both sides with different shapes.
    pub mismatched: Vec<ShapeMismatch>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys: {}", self.unexpected.join(", ")));
        }
        if !self.mismatched.is_empty() {
            let shapes: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| {
                    format!(
                        "{} (checkpoint {:?}, model {:?})",
                        m.name, m.checkpoint, m.model
                    )
                })
                .collect();
            parts.push(format!("shape mismatches: {}", shapes.join(", ")));
        }
        if parts.is_empty() {
            write!(f, "all keys match")
        } else {
            write!(f, "{}", parts.join("; "))
        }
    }
}

/// The error of [`apply_state_dict`] when the keys or shapes do not match;
/// the report lists every problem at once.
#[derive(Debug, thiserror::Error)]
#[error("the state dict does not match the model: {report}")]
pub struct LoadStateDictError {
    pub report: LoadReport,
}

/// Copies the tensors of `state_dict` into the variables of `vs` with the
/// same names, converting to each variable's dtype and device, without
/// recording gradients.
///
/// In strict mode (PyTorch's default) any missing key, unexpected key or
/// shape mismatch fails with a [`LoadStateDictError`] before anything is
/// copied. Otherwise the matching keys are loaded and the report lists the
/// others; shape mismatches fail in both modes, as in PyTorch.
pub fn apply_state_dict(
    vs: &mut VarStore,
    state_dict: &StateDict,
    strict: bool,
) -> Result<LoadReport> {
    let variables = vs.variables();
    let report = compare(&variables, state_dict);
    let keys_differ = !report.missing.is_empty() || !report.unexpected.is_empty();
    if !report.mismatched.is_empty() || (strict && keys_differ) {
        return Err(LoadStateDictError { report }.into());
    }
    tch::no_grad(|| copy_matching(&variables, state_dict))?;
    Ok(report)
}

fn compare(variables: &HashMap<String, Tensor>, state_dict: &StateDict) -> LoadReport {
    let mut report = LoadReport::default();
    for (name, tensor) in &state_dict.entries {
        match variables.get(name) {
            None => report.unexpected.push(name.clone()),
            Some(variable) if variable.size() != tensor.size() => {
                report.mismatched.push(ShapeMismatch {
                    name: name.clone(),
                    checkpoint: tensor.size(),
                    model: variable.size(),
                })
            }
            Some(_) => {}
        }
    }
    let names: HashSet<&str> = state_dict.entries.iter().map(|(n, _)| n.as_str()).collect();
    report.missing = variables
        .keys()
        .filter(|name| !names.contains(name.as_str()))
        .cloned()
        .collect();
    report.missing.sort();
    report
}

fn copy_matching(variables: &HashMap<String, Tensor>, state_dict: &StateDict) -> Result<()> {
    for (name, tensor) in &state_dict.entries {
        if let Some(variable) = variables.get(name) {
            let mut target = variable.shallow_clone();
            target
                .f_copy_(tensor)
                .with_context(|| format!("copying '{name}' into the model"))?;
        }
    }
    Ok(())
}
