//! `segan train`: trains SEGAN on prepared windows.

use std::path::PathBuf;

use anyhow::{bail, Result};

use segan::device::DeviceChoice;
use segan::nn::{DiscriminatorConfig, DiscriminatorOutput, VbnConfig};

use super::parity::FormulaArg;
use segan::train::{train, OptimizerKind, TrainConfig};

/// Train the generator and discriminator on `[2, 16384]` window files.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Folder of window files written by `segan prepare`.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for checkpoints (checkpoints/state-N.pt), losses.csv,
    /// losses.png and samples/.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Number of epochs.
    #[arg(long, default_value_t = 86)]
    pub epochs: usize,
    /// Windows per batch; also the reference batch size unless --reference-size is given.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Windows in the fixed reference batch of virtual batch normalization.
    #[arg(long)]
    pub reference_size: Option<usize>,
    /// Seed of initialization, reference batch, shuffling, latents and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Optimizer of both networks; resuming needs the one the checkpoint was
    /// trained with.
    #[arg(long, value_enum, default_value = "rmsprop")]
    pub optimizer: OptimizerArg,
    /// Learning rate of both networks.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Stop each epoch after this many steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Continue from the last checkpoint in --out, optimizer state included.
    #[arg(long)]
    pub resume: bool,
    /// Train the discriminator on logits (no final sigmoid), as some ports do.
    #[arg(long)]
    pub logits: bool,
    /// VBN evaluation formula of the discriminator. On the CPU the fused
    /// layer is faster, but the discriminator step takes about as long,
    /// because its convolutions dominate.
    #[arg(long, value_enum, default_value = "reference")]
    pub vbn_formula: FormulaArg,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// The `--optimizer` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    /// RMSprop, alpha 0.99, as the SEGAN PyTorch code trains.
    Rmsprop,
    /// Adam with betas 0.5 and 0.999, as other SEGAN ports train.
    Adam,
}

pub fn run(args: TrainArgs) -> Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!(
            "invalid --lr {}: expected a positive finite learning rate",
            args.lr
        );
    }
    let optimizer = match args.optimizer {
        OptimizerArg::Rmsprop => OptimizerKind::RmsProp { lr: args.lr },
        OptimizerArg::Adam => OptimizerKind::Adam {
            lr: args.lr,
            beta1: 0.5,
            beta2: 0.999,
        },
    };
    let discriminator = DiscriminatorConfig {
        output: if args.logits {
            DiscriminatorOutput::Logits
        } else {
            DiscriminatorOutput::Sigmoid
        },
        vbn: VbnConfig {
            formula: args.vbn_formula.into(),
            ..VbnConfig::default()
        },
    };
    let device = args.device.resolve()?;
    let config = TrainConfig {
        data_dir: args.data,
        out_dir: args.out,
        epochs: args.epochs,
        batch_size: args.batch,
        reference_size: args.reference_size.unwrap_or(args.batch),
        seed: args.seed,
        device,
        optimizer,
        l1_weight: 100.0,
        max_steps_per_epoch: args.max_steps,
        resume: args.resume,
        discriminator,
        progress: !args.no_progress,
    };

    log::info!(
        "training on {}: {}, batch {}, reference batch {}, {:?}, seed {}, \
         discriminator output {:?}, VBN formula {:?}",
        super::device_name(device),
        super::counted(config.epochs, "epoch", "epochs"),
        config.batch_size,
        config.reference_size,
        config.optimizer,
        config.seed,
        config.discriminator.output,
        config.discriminator.vbn.formula
    );
    let report = train(&config)?;
    println!(
        "trained {} ({}) on {}",
        super::counted(report.epochs_run, "epoch", "epochs"),
        super::counted(report.steps_run, "step", "steps"),
        super::device_name(device)
    );
    println!("checkpoint: {}", report.last_checkpoint.display());
    println!(
        "losses:     {} and {}",
        report.losses_csv.display(),
        report.losses_png.display()
    );
    println!("samples:    {}", report.samples_dir.display());
    Ok(())
}
