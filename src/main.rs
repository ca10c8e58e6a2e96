//! The `segan` command line: parity checks, checkpoints, data preparation,
//! training and enhancement.

mod cli;

fn main() -> std::process::ExitCode {
    segan::malloc::set_steady_thresholds();
    cli::main()
}
