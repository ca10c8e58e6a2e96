//! Subcommands of the `segan` binary, one file each.

mod parity;

use clap::{Parser, Subcommand};

/// SEGAN speech enhancement on libtorch, with PyTorch parity.
#[derive(Debug, Parser)]
#[command(name = "segan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run PyTorch-exported fixture cases against the Rust port.
    Parity(parity::ParityArgs),
}

pub fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parity(args) => parity::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
