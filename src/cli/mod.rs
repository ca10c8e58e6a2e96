//! Subcommands of the `segan` binary, one file each.

mod checkpoint;
mod enhance;
mod parity;
mod prepare;
mod train;

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
    /// Cut paired clean and noisy recordings into 16384-sample windows.
    Prepare(prepare::PrepareArgs),
    /// Train SEGAN on prepared windows.
    Train(train::TrainArgs),
    /// Enhance a noisy recording with a trained generator.
    Enhance(enhance::EnhanceArgs),
    /// Inspect or convert PyTorch checkpoints and safetensors files.
    #[command(subcommand)]
    Checkpoint(checkpoint::CheckpointCommand),
}

pub fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parity(args) => parity::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => train::run(args),
        Command::Enhance(args) => enhance::run(args),
        Command::Checkpoint(command) => checkpoint::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", without_backtrace(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Returns the device as the command line spells it: `cpu`, `cuda:0`, `mps`.
pub(crate) fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => "cpu".to_owned(),
        tch::Device::Cuda(index) => format!("cuda:{index}"),
        tch::Device::Mps => "mps".to_owned(),
        tch::Device::Vulkan => "vulkan".to_owned(),
    }
}

/// Returns `count` followed by the singular or the plural noun: "1 case", "2 cases".
pub(crate) fn counted(count: usize, singular: &str, plural: &str) -> String {
    format!("{count} {}", if count == 1 { singular } else { plural })
}

/// Drops the C++ stack trace that libtorch appends to its error messages
/// (the lines from "Exception raised from" on), which means nothing to a user.
pub(crate) fn without_backtrace(message: &str) -> String {
    let mut kept = Vec::new();
    for line in message.lines() {
        if let Some(index) = line.find("Exception raised from") {
            kept.push(line[..index].trim_end());
            break;
        }
        kept.push(line);
    }
    kept.join("\n")
}
