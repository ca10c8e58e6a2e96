//! `segan enhance`: enhances a recording with a trained generator.

use std::path::PathBuf;

use anyhow::Result;

use segan::device::DeviceChoice;
use segan::enhance::{enhance_file, DeEmphasis, EnhanceOptions, Enhancer};

/// Enhance a WAV recording (any rate and channel count) into a 16 kHz float WAV.
#[derive(Debug, clap::Args)]
pub struct EnhanceArgs {
    /// Noisy recording to enhance.
    pub input: PathBuf,
    /// Output WAV (16 kHz, 32-bit float); written atomically.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Checkpoint with the generator: a training checkpoint (its generator
    /// entry), a generator state dict from PyTorch, or safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Entry of the checkpoint holding the generator, when it has several.
    #[arg(long)]
    pub key: Option<String>,
    /// Clean recording to score the noisy input and the output against
    /// (segmental SNR and STOI).
    #[arg(long)]
    pub clean: Option<PathBuf>,
    /// Windows per generator call.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Seed of the latents, as torch.manual_seed(SEED) before the reference loop.
    #[arg(long)]
    pub seed: Option<i64>,
    /// Drop the last partial window, as the reference does (shorter output).
    #[arg(long)]
    pub drop_tail: bool,
    /// De-emphasize with the reference code's y[n] = x[n] + 0.95 x[n-1]
    /// instead of the exact inverse of the pre-emphasis.
    #[arg(long)]
    pub reference_de_emphasis: bool,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: EnhanceArgs) -> Result<()> {
    let device = args.device.resolve()?;
    let enhancer = Enhancer::from_checkpoint(&args.checkpoint, args.key.as_deref(), device)?;
    let options = EnhanceOptions {
        batch: args.batch,
        seed: args.seed,
        de_emphasis: if args.reference_de_emphasis {
            DeEmphasis::Reference
        } else {
            DeEmphasis::Exact
        },
        drop_tail: args.drop_tail,
        device,
    };
    let report = enhance_file(
        &enhancer,
        &args.input,
        &args.out,
        args.clean.as_deref(),
        &options,
    )?;
    println!(
        "enhanced {} ({:.2} s) into {} ({:.2} s, 16 kHz)",
        args.input.display(),
        report.input_seconds,
        report.output.display(),
        report.output_seconds
    );
    if let Some(scored) = report.scored_seconds.filter(|_| args.drop_tail) {
        println!("scores cover the first {scored:.2} s, the windows kept without the tail");
    }
    if let Some((noisy, enhanced)) = report.ssnr {
        println!("segmental SNR against the clean recording: noisy {noisy:.2} dB, enhanced {enhanced:.2} dB");
    }
    if let Some((noisy, enhanced)) = report.stoi {
        println!("STOI against the clean recording: noisy {noisy:.3}, enhanced {enhanced:.3}");
    }
    Ok(())
}
