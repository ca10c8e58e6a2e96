//! `segan parity DIR...`: runs fixture cases and prints one row per tensor.

use std::path::PathBuf;

use anyhow::{bail, Result};

use segan::device::DeviceChoice;
use segan::nn::Formula;
use segan::parity::{find_cases, run_case_file, Comparison, RunOptions};

/// Run PyTorch-exported fixture cases (.npz) against the Rust port.
#[derive(Debug, clap::Args)]
pub struct ParityArgs {
    /// Case files or folders searched recursively for .npz files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Device to run on: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// VBN evaluation formula.
    #[arg(long, value_enum, default_value = "reference")]
    pub formula: FormulaArg,
    /// Print only failing rows and the totals.
    #[arg(long)]
    pub failures_only: bool,
}

/// The `--formula` and `--vbn-formula` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum FormulaArg {
    /// The Python's operations in the Python's order, bit-identical to PyTorch.
    Reference,
    /// libtorch's batch-norm kernel: a faster VBN layer, different rounding.
    Fused,
}

impl From<FormulaArg> for Formula {
    fn from(arg: FormulaArg) -> Self {
        match arg {
            FormulaArg::Reference => Formula::Reference,
            FormulaArg::Fused => Formula::Fused,
        }
    }
}

pub fn run(args: ParityArgs) -> Result<()> {
    let device = args.device.resolve()?;
    let options = RunOptions {
        device,
        formula: args.formula.into(),
    };
    let cases = find_cases(&args.paths)?;
    if cases.is_empty() {
        bail!("no .npz case files found under {:?}", args.paths);
    }

    println!(
        "{:<40} {:<34} {:>11} {:>11} {:>15} {:>5}",
        "case", "tensor", "max abs err", "max rel err", "tolerance", "pass"
    );
    let (mut passed, mut failed, mut unreadable) = (0usize, 0usize, 0usize);
    for path in &cases {
        match run_case_file(path, options) {
            Ok(rows) => {
                for row in rows {
                    if row.pass {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                    if !args.failures_only || !row.pass {
                        print_row(&row);
                    }
                }
            }
            Err(error) => {
                unreadable += 1;
                let message = super::without_backtrace(&format!("{error:#}"));
                println!("{:<40} ERROR: {message}", display_name(path));
            }
        }
    }

    println!(
        "{} on {}: {} passed, {failed} failed, {} unreadable",
        super::counted(cases.len(), "case", "cases"),
        super::device_name(device),
        super::counted(passed, "tensor", "tensors"),
        super::counted(unreadable, "case", "cases"),
    );
    if failed > 0 || unreadable > 0 {
        bail!(
            "parity failed: {} outside tolerance, {} unreadable",
            super::counted(failed, "tensor", "tensors"),
            super::counted(unreadable, "case", "cases")
        );
    }
    Ok(())
}

fn print_row(row: &Comparison) {
    println!(
        "{:<40} {:<34} {:>11.3e} {:>11.3e} {:>15} {:>5}{}",
        row.case,
        row.tensor,
        row.max_abs,
        row.max_rel,
        row.tolerance.to_string(),
        if row.pass { "yes" } else { "NO" },
        row.note
            .as_deref()
            .map(|note| format!("  {note}"))
            .unwrap_or_default()
    );
}

fn display_name(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
