//! Atomic file replacement: write to a temporary file in the destination
//! folder, then rename it over the destination.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::error::{AudioError, Result};

/// Writes a file through `write` so that `path` either keeps its old content
/// or gets the complete new one, never a partial file.
///
/// The temporary file lives in the same folder as `path` (a rename is only
/// atomic within one file system) and is removed if `write` fails. New files
/// get mode 0644 on Unix because temporary files are created as 0600; an
/// existing destination keeps its mode.
pub(crate) fn write_atomically<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<&mut File>) -> Result<()>,
{
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            AudioError::InvalidArgument(format!(
                "output path {} does not name a file",
                path.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();

    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            AudioError::io(
                "failed to create a temporary file in",
                dir,
                without_temp_path(e),
            )
        })?;

    let temp_path = temp.path().to_path_buf();
    {
        let mut writer = BufWriter::new(temp.as_file_mut());
        write(&mut writer)?;
        writer
            .flush()
            .map_err(|e| AudioError::io("failed to write", &temp_path, e))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| AudioError::io("failed to flush", &temp_path, e))?;

    set_permissions(temp.as_file(), path)?;

    temp.persist(path)
        .map_err(|e| AudioError::io("failed to rename the temporary file to", path, e.error))?;
    Ok(())
}

/// Drops the ` at path "..."` that `tempfile` appends to its I/O errors: the
/// callers name the folder already, and the random name helps no one.
pub(crate) fn without_temp_path(error: io::Error) -> io::Error {
    if error.get_ref().is_none() {
        return error;
    }
    let message = error.to_string();
    match message.rfind(" at path \"") {
        Some(end) => io::Error::new(error.kind(), &message[..end]),
        None => error,
    }
}

#[cfg(unix)]
fn set_permissions(temp: &File, destination: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let permissions = match std::fs::metadata(destination) {
        Ok(metadata) => metadata.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o644),
    };
    temp.set_permissions(permissions)
        .map_err(|e| AudioError::io("failed to set permissions for", destination, e))
}

#[cfg(not(unix))]
fn set_permissions(_temp: &File, _destination: &Path) -> Result<()> {
    Ok(())
}
