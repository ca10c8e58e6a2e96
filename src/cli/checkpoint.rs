//! `segan checkpoint`: inspecting and converting checkpoint files.
//!
//! This file refers to the library as `segan::`, so it belongs to the
//! binary crate (or to any crate that depends on `segan`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use segan::checkpoint::{
    detect_format, is_optimizer_state, load_bytes, save_state_dict, select_state_dict, state_dicts,
    Format, StateDict, Value,
};

/// Subcommands of `segan checkpoint`.
#[derive(clap::Subcommand, Debug)]
pub enum CheckpointCommand {
    /// Print every top-level entry of a checkpoint: tensor names, shapes and
    /// dtypes, and each state dict's tensor and element totals.
    Inspect {
        /// Checkpoint file (torch zip, torch legacy or safetensors).
        file: PathBuf,
    },
    /// Write one state dict of a checkpoint in another format.
    Convert {
        /// Checkpoint file to read (torch zip, torch legacy or safetensors).
        input: PathBuf,
        /// File to write; it is replaced atomically.
        output: PathBuf,
        /// Output format [default: safetensors for a .safetensors output,
        /// torch otherwise].
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
        /// Top-level entry to convert when the input contains several state
        /// dicts, e.g. `generator`.
        #[arg(long)]
        key: Option<String>,
    },
}

/// The formats that `convert` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// safetensors.
    Safetensors,
    /// The torch zip format that `torch.load` reads.
    Torch,
}

/// Runs a `segan checkpoint` subcommand.
pub fn run(cmd: CheckpointCommand) -> Result<()> {
    match cmd {
        CheckpointCommand::Inspect { file } => {
            print!("{}", inspect(&file)?);
            Ok(())
        }
        CheckpointCommand::Convert {
            input,
            output,
            format,
            key,
        } => {
            let written = convert(&input, &output, format, key.as_deref())?;
            println!(
                "wrote {} tensors ({} elements) to {}",
                written.len(),
                written.num_elements(),
                output.display()
            );
            Ok(())
        }
    }
}

/// Returns the listing that `inspect` prints.
pub fn inspect(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let format = detect_format(&bytes)?;
    let value = load_bytes(&bytes).with_context(|| format!("loading {}", file.display()))?;
    let mut out = format!("{}: {}\n", file.display(), format.description());
    match state_dicts(&value) {
        Ok(found) if found.len() == 1 && found[0].0.is_empty() => {
            describe_state_dict(&mut out, "state dict", &found[0].1);
        }
        _ => describe_entries(&mut out, &value),
    }
    Ok(out)
}

/// Writes the state dict of `input` selected by `key` to `output`, and
/// returns it. The format defaults from the output file's extension.
pub fn convert(
    input: &Path,
    output: &Path,
    format: Option<OutputFormat>,
    key: Option<&str>,
) -> Result<StateDict> {
    let value = segan::checkpoint::load(input)?;
    let state_dict = select_state_dict(&value, key).with_context(|| {
        format!(
            "choosing the state dict to convert from {}",
            input.display()
        )
    })?;
    let format = match format.unwrap_or_else(|| default_format(output)) {
        OutputFormat::Safetensors => Format::Safetensors,
        OutputFormat::Torch => Format::TorchZip,
    };
    save_state_dict(output, &state_dict, format)?;
    Ok(state_dict)
}

fn default_format(output: &Path) -> OutputFormat {
    match output.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("safetensors") => OutputFormat::Safetensors,
        _ => OutputFormat::Torch,
    }
}

fn describe_entries(out: &mut String, value: &Value) {
    let Value::Dict(entries) = value else {
        let _ = writeln!(out, "{}", describe_scalar(value));
        return;
    };
    for (key, item) in entries {
        let label = match key {
            Value::Str(name) => name.clone(),
            other => format!("{other:?}"),
        };
        match StateDict::from_value(item) {
            Ok(state_dict) if !state_dict.is_empty() => {
                describe_state_dict(out, &format!("[{label}] state dict"), &state_dict);
            }
            _ if is_optimizer_state(item) => describe_optimizer(out, &label, item),
            _ => {
                let _ = writeln!(out, "[{label}] {}", describe_scalar(item));
            }
        }
    }
}

fn describe_state_dict(out: &mut String, title: &str, state_dict: &StateDict) {
    let _ = writeln!(
        out,
        "{title}: {} tensors, {} elements (parameters and buffers)",
        state_dict.len(),
        state_dict.num_elements()
    );
    let width = state_dict
        .names()
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    for (name, tensor) in &state_dict.entries {
        let kind = tensor
            .f_kind()
            .map(|k| format!("{k:?}"))
            .unwrap_or_else(|_| "unknown".to_string());
        let _ = writeln!(out, "  {name:<width$}  {kind:<8}  {:?}", tensor.size());
    }
}

fn describe_optimizer(out: &mut String, label: &str, item: &Value) {
    let states = item
        .get("state")
        .and_then(Value::as_dict)
        .map_or(0, <[_]>::len);
    let groups = match item.get("param_groups") {
        Some(Value::List(groups)) => groups.len(),
        _ => 0,
    };
    let _ = writeln!(
        out,
        "[{label}] optimizer state: {}, {}",
        count(states, "parameter state"),
        count(groups, "parameter group")
    );
}

/// Formats `n` with `noun`, adding an `s` unless `n` is 1.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn describe_scalar(value: &Value) -> String {
    match value {
        Value::List(items) => format!("list of {} items", items.len()),
        Value::Tuple(items) => format!("tuple of {} items", items.len()),
        Value::Dict(entries) => format!("dict of {} entries", entries.len()),
        Value::Bytes(bytes) => format!("bytes ({} bytes)", bytes.len()),
        other => format!("{}: {other:?}", other.type_name()),
    }
}
