//! The `segan` command line: parity checks, checkpoints, data preparation,
//! training and enhancement.

mod cli;

fn main() -> std::process::ExitCode {
    // SAFETY: no other thread exists yet. A `false` result leaves glibc's
    // behaviour as the user or the platform set it, which is fine.
    unsafe { segan::malloc::set_steady_thresholds() };
    cli::main()
}
