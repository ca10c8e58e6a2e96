//! Per-epoch training checkpoints: `state-<epoch>.pt` in the zip format of
//! `torch.save`, holding `{"generator", "discriminator", "g_optimizer",
//! "d_optimizer", "epoch", "seed"}`, which `torch.load(path,
//! weights_only=True)` reads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};

use super::optim::Optimizer;
use crate::checkpoint::{self, Format, StateDict, Value};

/// Path of the checkpoint written after `epoch`.
pub fn checkpoint_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("state-{epoch}.pt"))
}

/// Returns the highest epoch with a checkpoint in `dir`, if any.
pub fn latest_epoch(dir: &Path) -> Result<Option<usize>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut latest = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let epoch = name
            .strip_prefix("state-")
            .and_then(|rest| rest.strip_suffix(".pt"))
            .and_then(|number| number.parse::<usize>().ok())
            .filter(|epoch| name == format!("state-{epoch}.pt"));
        if let Some(epoch) = epoch {
            latest = latest.max(Some(epoch));
        }
    }
    Ok(latest)
}

/// Copies a network's parameters into a CPU state dict, in state-dict order.
pub fn state_dict_of(params: &[(String, Tensor)]) -> Result<StateDict> {
    let mut state_dict = StateDict::new();
    for (name, tensor) in params {
        state_dict.insert(name.clone(), tensor.f_detach()?.f_to_device(Device::Cpu)?);
    }
    Ok(state_dict)
}

/// The networks and optimizers of a run, by reference.
pub struct TrainingState<'a> {
    pub generator: &'a [(String, Tensor)],
    pub discriminator: &'a [(String, Tensor)],
    pub g_optimizer: &'a Optimizer,
    pub d_optimizer: &'a Optimizer,
    pub epoch: usize,
    pub seed: u64,
}

/// Writes the checkpoint of `state.epoch` atomically and returns its path.
pub fn save(dir: &Path, state: &TrainingState) -> Result<PathBuf> {
    let key = |name: &str| Value::Str(name.to_owned());
    let value = Value::Dict(vec![
        (key("generator"), state_dict_of(state.generator)?.to_value()),
        (
            key("discriminator"),
            state_dict_of(state.discriminator)?.to_value(),
        ),
        (key("g_optimizer"), state.g_optimizer.state_dict()?),
        (key("d_optimizer"), state.d_optimizer.state_dict()?),
        (key("epoch"), Value::Int(state.epoch as i64)),
        (key("seed"), Value::Int(state.seed as i64)),
    ]);
    let path = checkpoint_path(dir, state.epoch);
    checkpoint::save(&path, &value, Format::TorchZip)
        .with_context(|| format!("cannot write the checkpoint {}", path.display()))?;
    Ok(path)
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Value> {
    let value = checkpoint::load(path)?;
    for key in [
        "generator",
        "discriminator",
        "g_optimizer",
        "d_optimizer",
        "epoch",
    ] {
        if value.get(key).is_none() {
            bail!(
                "{}: not a training checkpoint (no {key:?} entry)",
                path.display()
            );
        }
    }
    Ok(value)
}

/// Checks that the epoch a checkpoint records is the one in its file name.
pub fn check_recorded_epoch(value: &Value, path: &Path, expected: usize) -> Result<()> {
    let recorded = value.get("epoch").and_then(Value::as_int);
    if recorded != Some(expected as i64) {
        bail!(
            "{} records epoch {}, not the {expected} of its name; rename or remove it",
            path.display(),
            recorded.map_or("none".to_owned(), |epoch| epoch.to_string())
        );
    }
    Ok(())
}
