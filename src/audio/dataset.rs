//! A folder of window pair files as an indexable training set.

use std::path::{Path, PathBuf};

use super::error::{AudioError, Result};
use super::window_file::read_window_pair;

/// The `.npy` window pair files of one folder, sorted by file name so that
/// index `i` means the same file on every run and machine.
///
/// Files are read on each [`WindowDataset::get`]; nothing is cached.
#[derive(Debug, Clone)]
pub struct WindowDataset {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl WindowDataset {
    /// Lists the `.npy` files (extension compared case-insensitively) directly
    /// inside `dir`. Other files and sub-folders are ignored.
    ///
    /// # Errors
    ///
    /// [`AudioError::Io`] when the folder cannot be listed and
    /// [`AudioError::InvalidArgument`] when it contains no `.npy` file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| AudioError::io("failed to list", &dir, e))?;

        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| AudioError::io("failed to list", &dir, e))?;
            let path = entry.path();
            if path.is_file() && has_npy_extension(&path) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(AudioError::InvalidArgument(format!(
                "{} contains no .npy window files; create them with `segan prepare`",
                dir.display()
            )));
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        Ok(WindowDataset { dir, files })
    }

    /// Folder the dataset was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of window pairs.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Returns whether the dataset has no window pairs, which is never the
    /// case for one that [`WindowDataset::open`] returned.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// File paths in index order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads pair `index` and returns `(clean, noisy)`, each
    /// [`WINDOW`](super::framing::WINDOW) samples long.
    ///
    /// # Errors
    ///
    /// [`AudioError::InvalidArgument`] for an index past the end, and the
    /// errors of [`read_window_pair`] for a file that is not a `[2, WINDOW]`
    /// float32 array.
    pub fn get(&self, index: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let path = self.files.get(index).ok_or_else(|| {
            AudioError::InvalidArgument(format!(
                "window index {index} is out of range for {} ({} files)",
                self.dir.display(),
                self.files.len()
            ))
        })?;
        read_window_pair(path)
    }
}

fn has_npy_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("npy"))
}
