//! The SEGAN training loop, as the PyTorch SEGAN code runs it.
//!
//! Each step, on a batch of pre-emphasized (clean, noisy) windows and a
//! fresh latent `z ~ N(0, 1)` `[B, 1024, 8]`:
//! 1. D on (clean, noisy): `d_clean = mean((D − 1)²)`, backward;
//! 2. D on (G(noisy, z), noisy) with G's output detached:
//!    `d_noisy = mean(D²)`, backward, D optimizer step;
//! 3. G: `g = 0.5 · mean((D(G(noisy, z), noisy) − 1)²) + 100 · mean(|G − clean|)`,
//!    backward, G optimizer step.
//!
//! D always gets the fixed reference batch for virtual batch normalization.
//! Detaching in step 2 changes nothing the reference computes: it zeroes
//! G's gradients before step 3 anyway.

mod data;
pub mod optim;
pub mod record;
pub mod state;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::audio::{de_emphasis, write_wav_f32, WindowDataset, EMPHASIS, SAMPLE_RATE};
use crate::checkpoint::{apply_state_dict, Value};
use crate::nn::{Discriminator, DiscriminatorConfig, Generator};
pub use optim::{Optimizer, OptimizerKind};
use record::StepLosses;

/// Options of a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Folder of `[2, 16384]` window files from `segan prepare`.
    pub data_dir: PathBuf,
    /// Folder for checkpoints, logs and samples.
    pub out_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    /// Size of the reference batch; the PyTorch code uses the batch size.
    pub reference_size: usize,
    pub seed: u64,
    pub device: Device,
    pub optimizer: OptimizerKind,
    /// Weight of the L1 term of the generator loss; 100 in SEGAN.
    pub l1_weight: f64,
    /// Stops each epoch after this many steps (for short runs).
    pub max_steps_per_epoch: Option<usize>,
    /// Continues from the last checkpoint in `out_dir`.
    pub resume: bool,
    pub discriminator: DiscriminatorConfig,
    pub progress: bool,
}

/// Outputs of a training run.
#[derive(Debug)]
pub struct TrainReport {
    pub last_checkpoint: PathBuf,
    pub epochs_run: usize,
    pub steps_run: usize,
    pub losses_csv: PathBuf,
    pub losses_png: PathBuf,
    pub samples_dir: PathBuf,
}

struct Nets {
    g_vs: VarStore,
    d_vs: VarStore,
    generator: Generator,
    discriminator: Discriminator,
    g_params: Vec<(String, Tensor)>,
    d_params: Vec<(String, Tensor)>,
    g_optimizer: Optimizer,
    d_optimizer: Optimizer,
}

/// Trains SEGAN as configured, writing one checkpoint per epoch.
pub fn train(config: &TrainConfig) -> Result<TrainReport> {
    validate(config)?;
    let dataset = WindowDataset::open(&config.data_dir).with_context(|| {
        format!(
            "cannot open the training windows in {}",
            config.data_dir.display()
        )
    })?;
    if dataset.is_empty() {
        bail!(
            "{} contains no training windows; run `segan prepare` first",
            config.data_dir.display()
        );
    }
    for (flag, size) in [
        ("--reference-size", config.reference_size),
        ("--batch", config.batch_size),
    ] {
        if size > dataset.len() {
            bail!(
                "{flag} {size} is larger than the {} training windows in {}; choose at most {}",
                dataset.len(),
                config.data_dir.display(),
                dataset.len()
            );
        }
    }
    let batches_per_epoch = dataset.len().div_ceil(config.batch_size);
    if let Some(max) = config
        .max_steps_per_epoch
        .filter(|&max| max > batches_per_epoch)
    {
        log::warn!(
            "--max-steps {max} is more than an epoch's {batches_per_epoch} batches of {}; \
             each epoch stops after {batches_per_epoch} steps (raise --epochs to train longer)",
            config.batch_size
        );
    }

    let checkpoints = config.out_dir.join("checkpoints");
    let samples_dir = config.out_dir.join("samples");
    for dir in [&checkpoints, &samples_dir] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    remove_stale_temporaries(&checkpoints)?;
    let losses_csv = config.out_dir.join("losses.csv");
    let losses_png = config.out_dir.join("losses.png");

    let mut nets = build_nets(config)?;
    let (first_epoch, mut rows) = resume_point(config, &checkpoints, &losses_csv, &mut nets)?;

    let reference_indices =
        data::reference_indices(dataset.len(), config.reference_size, config.seed);
    let reference = data::load_batch(&dataset, &reference_indices, config.device)?;
    let sample = data::load_batch(&dataset, &[0], config.device)?;
    let sample_z = seeded_normal([1, 1024, 8], config.seed, config.device)?;

    let mut last_checkpoint = state::checkpoint_path(&checkpoints, first_epoch.saturating_sub(1));
    let mut steps_run = 0;
    for epoch in first_epoch..=config.epochs {
        let order = data::epoch_order(dataset.len(), config.seed, epoch);
        let batches: Vec<&[usize]> = order.chunks(config.batch_size).collect();
        let steps = config
            .max_steps_per_epoch
            .map_or(batches.len(), |max| max.min(batches.len()));
        let bar = progress_bar(config.progress, steps, epoch, config.epochs);

        tch::manual_seed(config.seed as i64 ^ (epoch as i64) << 20);
        for (step, indices) in batches.iter().take(steps).enumerate() {
            let batch = data::load_batch(&dataset, indices, config.device)?;
            let losses = train_step(&mut nets, &batch, &reference, config, epoch, step + 1)?;
            if !losses.is_finite() {
                bail!(
                    "training diverged at epoch {epoch}, step {}: D loss {}, G loss {}; \
                     the last good checkpoint is {}",
                    step + 1,
                    losses.d_loss(),
                    losses.g_loss(),
                    describe_checkpoint(&last_checkpoint)
                );
            }
            bar.set_message(format!(
                "D {:.4}  G {:.4}",
                losses.d_loss(),
                losses.g_loss()
            ));
            bar.inc(1);
            if bar.is_hidden() {
                log::info!(
                    "epoch {epoch} step {}/{steps}: D loss {:.4}, G loss {:.4}",
                    step + 1,
                    losses.d_loss(),
                    losses.g_loss()
                );
            }
            rows.push(losses);
            steps_run += 1;
        }
        bar.finish();
        ensure_finite_params(&nets, epoch, &last_checkpoint)?;
        let sample_audio = render_sample(&nets.generator, &sample, &sample_z)?;
        if let Some(index) = sample_audio.iter().position(|value| !value.is_finite()) {
            bail!(
                "training diverged in epoch {epoch}: the generator's output on the sample window \
                 is {} at sample {index}, although every parameter is finite; the last good \
                 checkpoint is {}",
                sample_audio[index],
                describe_checkpoint(&last_checkpoint)
            );
        }

        last_checkpoint = state::save(
            &checkpoints,
            &state::TrainingState {
                generator: &nets.g_params,
                discriminator: &nets.d_params,
                g_optimizer: &nets.g_optimizer,
                d_optimizer: &nets.d_optimizer,
                epoch,
                seed: config.seed,
            },
        )?;
        record::write_csv(&losses_csv, &rows)?;
        record::plot(&losses_png, &rows)?;
        let sample_path = samples_dir.join(format!("epoch-{epoch}.wav"));
        write_wav_f32(&sample_path, &sample_audio, SAMPLE_RATE)
            .with_context(|| format!("cannot write the sample {}", sample_path.display()))?;
        log::info!("epoch {epoch}: checkpoint {}", last_checkpoint.display());
    }

    Ok(TrainReport {
        last_checkpoint,
        epochs_run: (config.epochs + 1).saturating_sub(first_epoch),
        steps_run,
        losses_csv,
        losses_png,
        samples_dir,
    })
}

fn validate(config: &TrainConfig) -> Result<()> {
    if config.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if config.batch_size == 0 {
        bail!("--batch must be at least 1");
    }
    if config.reference_size == 0 {
        bail!("--reference-size must be at least 1");
    }
    if config.max_steps_per_epoch == Some(0) {
        bail!("--max-steps must be at least 1");
    }
    Ok(())
}

fn build_nets(config: &TrainConfig) -> Result<Nets> {
    tch::manual_seed(config.seed as i64);
    let g_vs = VarStore::new(config.device);
    let generator = Generator::new(g_vs.root())?;
    let d_vs = VarStore::new(config.device);
    let mut discriminator = Discriminator::new(d_vs.root(), config.discriminator)?;
    discriminator.set_train(true);

    let g_params = generator.named_parameters();
    let d_params = discriminator.named_parameters();
    let params =
        |named: &[(String, Tensor)]| named.iter().map(|(_, t)| t.shallow_clone()).collect();
    let g_optimizer = Optimizer::new(config.optimizer, params(&g_params))?;
    let d_optimizer = Optimizer::new(config.optimizer, params(&d_params))?;
    Ok(Nets {
        g_vs,
        d_vs,
        generator,
        discriminator,
        g_params,
        d_params,
        g_optimizer,
        d_optimizer,
    })
}

/// Loads the last checkpoint when resuming and returns the first epoch to
/// run and the loss rows of the completed epochs.
fn resume_point(
    config: &TrainConfig,
    checkpoints: &Path,
    losses_csv: &Path,
    nets: &mut Nets,
) -> Result<(usize, Vec<StepLosses>)> {
    let latest = state::latest_epoch(checkpoints)?;
    let Some(epoch) = latest.filter(|_| config.resume) else {
        if let Some(epoch) = latest {
            bail!(
                "{} already holds checkpoints up to epoch {epoch}; pass --resume to continue \
                 from them or choose another --out folder",
                checkpoints.display()
            );
        }
        return Ok((1, Vec::new()));
    };

    if epoch >= config.epochs {
        bail!(
            "{} already holds checkpoints up to epoch {epoch}, and --epochs is {}: nothing \
             to train; pass --epochs {} or more to continue",
            checkpoints.display(),
            config.epochs,
            epoch.saturating_add(1)
        );
    }
    let path = state::checkpoint_path(checkpoints, epoch);
    // The log is read first: a malformed one fails before the large load.
    let rows = if losses_csv.exists() {
        let mut rows = record::read_csv(losses_csv)?;
        rows.retain(|row| row.epoch <= epoch);
        rows
    } else {
        Vec::new()
    };
    let value = state::load(&path)?;
    state::check_recorded_epoch(&value, &path, epoch)?;
    if let Some(seed) = value.get("seed").and_then(Value::as_int) {
        if seed != config.seed as i64 {
            log::warn!(
                "{} was trained with --seed {seed}, this run uses {}: the reference batch \
                 and the shuffling change",
                path.display(),
                config.seed
            );
        }
    }
    let state_dict = |key: &str| {
        crate::checkpoint::StateDict::from_value(value.get(key).expect("checked by load"))
    };
    apply_state_dict(&mut nets.g_vs, &state_dict("generator")?, true)
        .context("cannot restore the generator")?;
    apply_state_dict(&mut nets.d_vs, &state_dict("discriminator")?, true)
        .context("cannot restore the discriminator")?;
    nets.g_optimizer
        .load_state_dict(value.get("g_optimizer").expect("checked by load"))
        .context("cannot restore the generator's optimizer")?;
    nets.d_optimizer
        .load_state_dict(value.get("d_optimizer").expect("checked by load"))
        .context("cannot restore the discriminator's optimizer")?;

    log::info!("resuming after epoch {epoch} from {}", path.display());
    Ok((epoch + 1, rows))
}

fn train_step(
    nets: &mut Nets,
    batch: &Tensor,
    reference: &Tensor,
    config: &TrainConfig,
    epoch: usize,
    step: usize,
) -> Result<StepLosses> {
    let size = batch.size()[0];
    let clean = batch.f_narrow(1, 0, 1)?;
    let noisy = batch.f_narrow(1, 1, 1)?;
    let z = Tensor::f_randn([size, 1024, 8], (Kind::Float, config.device))?;

    nets.d_optimizer.zero_grad()?;
    let clean_scores = nets.discriminator.forward(batch, reference)?;
    let d_clean = clean_scores
        .f_sub_scalar(1.0)?
        .f_square()?
        .f_mean(Kind::Float)?;
    d_clean.f_backward()?;

    let generated = tch::no_grad(|| nets.generator.forward(&noisy, &z))?;
    let fake_pair = Tensor::f_cat(&[&generated, &noisy], 1)?;
    let fake_scores = nets.discriminator.forward(&fake_pair, reference)?;
    let d_noisy = fake_scores.f_square()?.f_mean(Kind::Float)?;
    d_noisy.f_backward()?;
    nets.d_optimizer.step()?;

    nets.g_optimizer.zero_grad()?;
    let generated = nets.generator.forward(&noisy, &z)?;
    let fake_pair = Tensor::f_cat(&[&generated, &noisy], 1)?;
    let scores = nets.discriminator.forward(&fake_pair, reference)?;
    let g_adversarial = scores
        .f_sub_scalar(1.0)?
        .f_square()?
        .f_mean(Kind::Float)?
        .f_mul_scalar(0.5)?;
    let g_l1 = generated
        .f_sub(&clean)?
        .f_abs()?
        .f_mean(Kind::Float)?
        .f_mul_scalar(config.l1_weight)?;
    let g_loss = g_adversarial.f_add(&g_l1)?;
    g_loss.f_backward()?;
    nets.g_optimizer.step()?;

    Ok(StepLosses {
        epoch,
        step,
        d_clean: d_clean.f_double_value(&[])?,
        d_noisy: d_noisy.f_double_value(&[])?,
        g_adversarial: g_adversarial.f_double_value(&[])?,
        g_l1: g_l1.f_double_value(&[])?,
    })
}

fn seeded_normal(shape: [i64; 3], seed: u64, device: Device) -> Result<Tensor> {
    let _generator = crate::rng::lock_global_generator();
    tch::manual_seed(seed as i64);
    Ok(Tensor::f_randn(shape, (Kind::Float, Device::Cpu))?.f_to_device(device)?)
}

/// Enhances the sample window with the current generator, de-emphasized.
fn render_sample(generator: &Generator, sample: &Tensor, z: &Tensor) -> Result<Vec<f32>> {
    let noisy = sample.f_narrow(1, 1, 1)?;
    let enhanced = tch::no_grad(|| generator.forward(&noisy, z))?;
    let samples = Vec::<f32>::try_from(&enhanced.f_to_device(Device::Cpu)?.f_reshape([-1])?)?;
    Ok(de_emphasis(&samples, EMPHASIS))
}

/// Fails, before the epoch's checkpoint is written, when an update left a
/// NaN or infinite parameter (the last step's losses can still be finite).
fn ensure_finite_params(nets: &Nets, epoch: usize, last_checkpoint: &Path) -> Result<()> {
    for (name, param) in nets.g_params.iter().chain(&nets.d_params) {
        let finite = param.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
        if !finite {
            bail!(
                "training diverged in epoch {epoch}: parameter {name} is NaN or infinite after \
                 the updates; the last good checkpoint is {}",
                describe_checkpoint(last_checkpoint)
            );
        }
    }
    Ok(())
}

/// Removes the temporary files (`.state-N.pt.XXXXXX.tmp`) that an
/// interrupted checkpoint write leaves behind. Each can be gigabytes.
fn remove_stale_temporaries(checkpoints: &Path) -> Result<()> {
    let entries = fs::read_dir(checkpoints)
        .with_context(|| format!("cannot list {}", checkpoints.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", checkpoints.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if crate::checkpoint::is_temporary_name(&name, "state-") {
            let path = entry.path();
            fs::remove_file(&path).with_context(|| {
                format!("cannot remove the stale temporary file {}", path.display())
            })?;
            log::warn!(
                "removed {}, left by an interrupted checkpoint write",
                path.display()
            );
        }
    }
    Ok(())
}

fn describe_checkpoint(path: &Path) -> String {
    if path.exists() {
        path.display().to_string()
    } else {
        "none (no epoch completed)".into()
    }
}

fn progress_bar(enabled: bool, steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, ETA {eta}  {msg}",
    )
    .expect("the progress template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}
