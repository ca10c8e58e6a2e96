//! Writing checkpoints: the torch zip format, safetensors, and the atomic
//! replacement of the target file.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::Tensor;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::pickle_writer::{pickle_value, Pickled};
use super::safetensors_io::encode_safetensors;
use super::storage::tensor_bytes;
use super::value::Value;

/// The format that [`save`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The zip format of `torch.save` (PyTorch 1.6 and later).
    TorchZip,
    /// safetensors, which stores only a flat dict of named tensors.
    Safetensors,
}

/// The folder that records go under; `torch.save` names it after the file,
/// and readers accept any name.
const ARCHIVE: &str = "archive";

/// Alignment of each record's data, as `torch.save` uses by default.
const RECORD_ALIGNMENT: u16 = 64;

/// Writes `value` to `path` in `format`, replacing the file atomically.
///
/// The value is encoded first, then written to a temporary file in the
/// same folder, flushed to disk, and renamed over `path`. On any error
/// `path` is left as it was.
pub fn save(path: &Path, value: &Value, format: Format) -> Result<()> {
    match format {
        Format::TorchZip => {
            let pickled = pickle_value(value)?;
            write_atomically(path, |file| write_torch_zip(file, &pickled))
        }
        Format::Safetensors => {
            let tensors = flat_tensor_dict(value)?;
            let bytes = encode_safetensors(&tensors)?;
            write_atomically(path, |file| Ok(file.write_all(&bytes)?))
        }
    }
    .with_context(|| format!("saving checkpoint {}", path.display()))
}

/// Returns whether `name` names a temporary file (`.{target}.XXXXXX.tmp`)
/// that [`write_atomically`] creates for a target whose name starts with
/// `target_prefix`. An interrupted process leaves such files behind.
pub fn is_temporary_name(name: &str, target_prefix: &str) -> bool {
    name.strip_prefix('.')
        .is_some_and(|rest| rest.starts_with(target_prefix) && rest.ends_with(".tmp"))
}

/// Runs `write` on a new temporary file next to `path`, syncs it and renames
/// it over `path`. When `write` fails the temporary file is removed and
/// `path` is untouched.
///
/// The new file gets the permissions of the file it replaces, or
/// `rw-r--r--` when there was none.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(crate::audio::atomic::without_temp_path)
        .with_context(|| format!("cannot create a temporary file in {}", folder.display()))?;
    write(temporary.as_file_mut())?;
    set_permissions(temporary.as_file(), path)?;
    temporary
        .as_file()
        .sync_all()
        .context("flushing the temporary file to disk")?;
    temporary
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the temporary file to {}", path.display()))?;
    sync_folder(folder);
    Ok(())
}

fn set_permissions(file: &File, target: &Path) -> Result<()> {
    let permissions = match fs::metadata(target) {
        Ok(metadata) => metadata.permissions(),
        Err(_) => default_permissions(file)?,
    };
    file.set_permissions(permissions)
        .context("setting the permissions of the temporary file")
}

#[cfg(unix)]
fn default_permissions(_file: &File) -> Result<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn default_permissions(file: &File) -> Result<fs::Permissions> {
    Ok(file.metadata()?.permissions())
}

/// Makes the rename durable. Failure is logged, not returned, because the
/// new file is complete and in place either way.
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    if let Err(error) = File::open(folder).and_then(|dir| dir.sync_all()) {
        log::warn!("could not sync folder {}: {error}", folder.display());
    }
    #[cfg(not(unix))]
    let _ = folder;
}

/// Writes the records of a torch zip checkpoint, stored uncompressed with
/// 64-byte aligned data, in the order `torch.save` uses.
fn write_torch_zip(file: &mut File, pickled: &Pickled) -> Result<()> {
    let mut zip = ZipWriter::new(BufWriter::new(file));
    add_record(&mut zip, "data.pkl", &pickled.data)?;
    add_record(&mut zip, ".format_version", b"1")?;
    add_record(&mut zip, ".storage_alignment", b"64")?;
    add_record(&mut zip, "byteorder", b"little")?;
    for (key, tensor) in pickled.storages.iter().enumerate() {
        add_storage(&mut zip, key, tensor)?;
    }
    add_record(&mut zip, "version", b"3\n")?;
    let mut writer = zip.finish().context("writing the zip directory")?;
    writer.flush().context("writing the checkpoint")?;
    Ok(())
}

fn add_storage<W: Write + Seek>(zip: &mut ZipWriter<W>, key: usize, tensor: &Tensor) -> Result<()> {
    let bytes = tensor_bytes(tensor).with_context(|| format!("reading storage {key}"))?;
    add_record(zip, &format!("data/{key}"), &bytes)
}

fn add_record<W: Write + Seek>(zip: &mut ZipWriter<W>, name: &str, data: &[u8]) -> Result<()> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(RECORD_ALIGNMENT)
        .large_file(data.len() as u64 >= u64::from(u32::MAX));
    let name = format!("{ARCHIVE}/{name}");
    zip.start_file(name.as_str(), options)
        .with_context(|| format!("starting record {name}"))?;
    zip.write_all(data)
        .with_context(|| format!("writing record {name}"))?;
    Ok(())
}

/// Returns the entries of a dict of str keys to tensors, the only value
/// that safetensors can hold.
fn flat_tensor_dict(value: &Value) -> Result<Vec<(&str, &Tensor)>> {
    let Value::Dict(entries) = value else {
        bail!(
            "safetensors stores only a dict of names to tensors, but the value has type {}",
            value.type_name()
        );
    };
    entries
        .iter()
        .map(|(key, item)| match (key, item) {
            (Value::Str(name), Value::Tensor(tensor)) => Ok((name.as_str(), tensor)),
            (Value::Str(name), other) => bail!(
                "safetensors stores only tensors, but entry '{name}' has type {}; save a single \
                 state dict, or use the torch zip format",
                other.type_name()
            ),
            (other, _) => bail!(
                "safetensors stores only str names, but a key has type {}",
                other.type_name()
            ),
        })
        .collect()
}
