//! Fixture cases exported from PyTorch and the harness that runs them.
//!
//! `scripts/export_fixtures.py` writes one `.npz` per case from the PyTorch
//! reference; [`run_case`] replays it through the Rust port and compares
//! every output, gradient and seeded parameter. `docs/fixtures.md`
//! describes the format.

pub mod case;
pub mod compare;
mod run;
pub mod summary;
pub mod tolerance;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use case::{Case, Module};
pub use compare::{Comparison, Tolerance};
pub use run::{run_case, RunOptions};

/// Lists the `.npz` files under each path (a file is taken as it is),
/// sorted, descending into folders.
pub fn find_cases(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_file() {
            found.push(path.clone());
        } else if path.is_dir() {
            collect_npz(path, &mut found)?;
        } else {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
    }
    found.sort();
    Ok(found)
}

fn collect_npz(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_npz(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "npz") {
            found.push(path);
        }
    }
    Ok(())
}

/// Opens and runs one case file.
pub fn run_case_file(path: &Path, options: RunOptions) -> Result<Vec<Comparison>> {
    let case = Case::open(path)?;
    run_case(&case, options).with_context(|| format!("case {}", path.display()))
}
