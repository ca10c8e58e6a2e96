//! The `segan checkpoint inspect|convert` subcommands.

mod checkpoint_support;

#[path = "../src/cli/checkpoint.rs"]
mod cli_checkpoint;

use checkpoint_support::{fixtures, raw_bytes, verify_with_pytorch};
use clap::Parser;
use cli_checkpoint::{convert, inspect, run, CheckpointCommand, OutputFormat};
use segan::checkpoint::{detect_format, load_state_dict, FileFormat};

/// Stands in for the `segan` binary's argument parser.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: CheckpointCommand,
}

#[test]
fn inspect_lists_every_entry() {
    let listing = inspect(&fixtures().path("gan_zip.pt")).unwrap();
    assert!(listing.contains("torch zip format"), "{listing}");
    assert!(
        listing.contains("[discriminator] state dict: 11 tensors"),
        "{listing}"
    );
    assert!(
        listing.contains("[generator] state dict: 6 tensors"),
        "{listing}"
    );
    assert!(
        listing.contains("[g_optimizer] optimizer state: 6 parameter states, 1 parameter group\n"),
        "{listing}"
    );
    assert!(
        listing.contains("[d_optimizer] optimizer state: 8 parameter states"),
        "{listing}"
    );
    assert!(listing.contains("[epoch] int: 3"), "{listing}");
    let conv = listing.lines().find(|l| l.contains("conv.weight")).unwrap();
    assert!(conv.contains("Float"), "{conv}");
    assert!(conv.contains("[3, 2, 5]"), "{conv}");
    let counter = listing
        .lines()
        .find(|l| l.contains("num_batches_tracked"))
        .unwrap();
    assert!(counter.contains("Int64"), "{counter}");
    assert!(counter.contains("[]"), "{counter}");
}

#[test]
fn inspect_bare_state_dict() {
    let listing = inspect(&fixtures().path("generator_legacy")).unwrap();
    assert!(listing.contains("torch legacy format"), "{listing}");
    // 4*1*5 + 4 + 4 + 4 + 4*1*4 + 1 elements.
    assert!(
        listing.contains("state dict: 6 tensors, 49 elements"),
        "{listing}"
    );
}

#[test]
fn inspect_through_run() {
    let cli = Cli::parse_from([
        "segan",
        "inspect",
        fixtures().path("misc.pt").to_str().unwrap(),
    ]);
    run(cli.command).unwrap();
}

#[test]
fn convert_needs_key_for_several_state_dicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let error = convert(&fixtures().path("gan_legacy.pth"), &out, None, None).unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("'discriminator', 'generator'"),
        "{message}"
    );
    assert!(!out.exists());
}

#[test]
fn convert_format_from_extension() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().path("gan_legacy.pth");
    let original = load_state_dict(&input, Some("generator")).unwrap();
    for (name, format) in [
        ("g.safetensors", FileFormat::Safetensors),
        ("g.pt", FileFormat::TorchZip),
        ("g", FileFormat::TorchZip),
    ] {
        let out = dir.path().join(name);
        let cli = Cli::parse_from([
            "segan",
            "convert",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--key",
            "generator",
        ]);
        run(cli.command).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(detect_format(&bytes).unwrap(), format, "{name}");
        let converted = load_state_dict(&out, None).unwrap();
        assert_eq!(converted.len(), original.len(), "{name}");
        for (tensor_name, tensor) in &original.entries {
            let again = converted.get(tensor_name).unwrap();
            assert_eq!(raw_bytes(again), raw_bytes(tensor), "{name}: {tensor_name}");
        }
    }
}

#[test]
fn convert_explicit_format_for_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generator.safetensors.pt");
    let input = fixtures().path("data_parallel_legacy.pt");
    convert(&input, &out, Some(OutputFormat::Torch), None).unwrap();
    let original = fixtures().path("gan_zip.pt");
    verify_with_pytorch(
        &out,
        &original,
        &["--module", "generator", "--key", "generator"],
    );

    let forced = dir.path().join("generator.pt");
    convert(&input, &forced, Some(OutputFormat::Safetensors), None).unwrap();
    let bytes = std::fs::read(&forced).unwrap();
    assert_eq!(detect_format(&bytes).unwrap(), FileFormat::Safetensors);
}
