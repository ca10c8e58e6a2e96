//! Reading and writing `torch.save` checkpoints and safetensors files.
//!
//! tch's own loaders cannot read `torch.save(model.state_dict())`, because
//! a state dict is an `OrderedDict` with a `_metadata` attribute. This module
//! reads such files natively:
//!
//! - the zip format of PyTorch 1.6 and later,
//! - the legacy format (`_use_new_zipfile_serialization=False`),
//! - safetensors,
//!
//! detected from the content, never from the file name. The pickle reader
//! accepts only the opcodes and globals that checkpoints of tensors, state
//! dicts and optimizer states use. Anything else is an error, and so is any
//! size or offset that disagrees with the bytes present.
//!
//! ```no_run
//! use std::path::Path;
//! use segan::checkpoint::{apply_state_dict, load_state_dict, save_state_dict, Format, StateDict};
//!
//! # fn main() -> anyhow::Result<()> {
//! let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let state_dict = load_state_dict(Path::new("segan.pt"), Some("generator"))?;
//! apply_state_dict(&mut vs, &state_dict, true)?;
//! save_state_dict(Path::new("generator.pt"), &StateDict::from_var_store(&vs)?, Format::TorchZip)?;
//! # Ok(())
//! # }
//! ```

mod apply;
mod legacy;
mod materialize;
mod pickle;
mod pickle_writer;
mod safetensors_io;
mod state_dict;
mod storage;
mod torch_objects;
mod value;
mod writer;
mod zip_format;

use std::path::Path;

use anyhow::{bail, Context, Result};

pub use apply::{apply_state_dict, LoadReport, LoadStateDictError, ShapeMismatch};
pub use state_dict::{
    is_optimizer_state, load_state_dict, save_state_dict, select_state_dict, state_dicts, StateDict,
};
pub use value::Value;
pub use writer::{is_temporary_name, save, write_atomically, Format};

/// The container format of a checkpoint file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// The zip format of `torch.save` (PyTorch 1.6 and later).
    TorchZip,
    /// The format of `torch.save(..., _use_new_zipfile_serialization=False)`.
    TorchLegacy,
    Safetensors,
}

impl FileFormat {
    /// Returns a short description for messages and listings.
    pub fn description(self) -> &'static str {
        match self {
            FileFormat::TorchZip => "torch zip format",
            FileFormat::TorchLegacy => "torch legacy format",
            FileFormat::Safetensors => "safetensors",
        }
    }
}

/// Detects the format of a checkpoint from its first bytes.
pub fn detect_format(bytes: &[u8]) -> Result<FileFormat> {
    // safetensors goes before the legacy format, because a header length
    // such as 0x180 starts with the byte of the pickle PROTO opcode.
    if zip_format::is_zip(bytes) {
        Ok(FileFormat::TorchZip)
    } else if safetensors_io::is_safetensors(bytes) {
        Ok(FileFormat::Safetensors)
    } else if legacy::is_legacy(bytes) {
        Ok(FileFormat::TorchLegacy)
    } else if bytes.get(257..262) == Some(b"ustar") {
        bail!("this is a tar archive, the format of PyTorch 0.3 and older, which is not supported")
    } else if bytes.is_empty() {
        bail!("the file is empty")
    } else {
        let start = &bytes[..bytes.len().min(8)];
        bail!(
            "unrecognized checkpoint format (first bytes {start:02x?}): expected a torch zip \
             archive (PK\\x03\\x04), a legacy torch.save pickle (0x80) or a safetensors header"
        )
    }
}

/// Decodes a checkpoint held in memory, of any supported format.
pub fn load_bytes(bytes: &[u8]) -> Result<Value> {
    match detect_format(bytes)? {
        FileFormat::TorchZip => zip_format::load_zip(bytes),
        FileFormat::TorchLegacy => legacy::load_legacy(bytes),
        FileFormat::Safetensors => safetensors_io::load_safetensors(bytes),
    }
}

/// Reads a checkpoint file of any supported format. Tensors are on the CPU.
///
/// NOTE: the whole file is read into memory before the storages are copied
/// into tensors, so peak memory is about twice the file size.
pub fn load(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_bytes(&bytes).with_context(|| format!("{} is not a readable checkpoint", path.display()))
}
