//! The SEGAN discriminator with virtual batch normalization, mirroring the
//! PyTorch SEGAN `Discriminator`.
//!
//! Eleven blocks `conv{i}` → `vbn{i}` → `lrelu{i}` (Conv1d kernel 31, stride
//! 2, padding 15; LeakyReLU 0.03), with `dropout1/2/3` (p = 0.5) between
//! `conv3`/`vbn3`, `conv6`/`vbn6` and `conv9`/`vbn9`, then `conv_final`
//! (kernel 1), `lrelu_final`, `fully_connected` (8 → 1) and a sigmoid.
//!
//! Each forward first runs the reference batch through every block in
//! reference mode, collecting each VBN layer's statistics, then the input
//! batch in mixed mode with those statistics, as the Python does (the
//! reference pass also skips the last block's LeakyReLU, whose output no
//! statistic uses). Dropout is active in both passes in training mode, and
//! draws the reference pass's masks first.
//!
//! Deliberate difference: the output is `[B, 1]` for every `B`. PyTorch's
//! `torch.squeeze` also drops the batch axis when `B = 1` and so returns
//! shape `[1]` there; the values are the same.

use std::borrow::Borrow;

use anyhow::{bail, ensure, Context, Result};
use tch::{nn::Path, Tensor};

use super::check::{expect_like, expect_rank};
use super::layers::{conv1d, leaky_relu, linear, xavier_normal_, Conv1d, ConvSpec, Linear};
use super::vbn::{virtual_batch_norm1d, VbnConfig, VbnStats, VirtualBatchNorm1d};

/// Length of the windows the discriminator takes; `fully_connected` expects
/// `WINDOW / 2^11 = 8` features, which fixes it.
pub const WINDOW: i64 = 16384;
/// Channels of the discriminator's input: the clean or enhanced signal and
/// the noisy signal.
pub const INPUT_CHANNELS: i64 = 2;
/// Output channels of `conv1` … `conv11`.
pub const CHANNELS: [i64; 11] = [32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 2048];
/// Blocks (1-based) whose convolution is followed by `dropout1`, `dropout2`
/// and `dropout3`.
const DROPOUT_AFTER: [usize; 3] = [3, 6, 9];

const KERNEL: i64 = 31;
const LEAKY_SLOPE: f64 = 0.03;
const DROPOUT: f64 = 0.5;
const FEATURES: i64 = 8;

/// Output of the discriminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscriminatorOutput {
    /// Probabilities through the final sigmoid, as the PyTorch SEGAN code.
    #[default]
    Sigmoid,
    /// The `fully_connected` output without the sigmoid, as SEGAN ports
    /// that train with logits do. No parameter changes.
    Logits,
}

/// Configuration of [`Discriminator`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DiscriminatorConfig {
    pub output: DiscriminatorOutput,
    /// Configuration of every VBN layer.
    pub vbn: VbnConfig,
}

/// The SEGAN discriminator.
///
/// # Shapes
/// - `x`: `[B, 2, 16384]`, the signal to judge stacked with the noisy one
/// - `ref_x`: `[N, 2, 16384]`, the reference batch (any `N ≥ 1`)
/// - output: `[B, 1]`
#[derive(Debug)]
pub struct Discriminator {
    /// `conv1` … `conv11`.
    pub convs: Vec<Conv1d>,
    /// `vbn1` … `vbn11`.
    pub vbns: Vec<VirtualBatchNorm1d>,
    pub conv_final: Conv1d,
    pub fully_connected: Linear,
    config: DiscriminatorConfig,
    train: bool,
    /// Reference statistics stored by [`Self::freeze_reference_stats`].
    frozen: Option<Vec<VbnStats>>,
}

impl Discriminator {
    /// Builds the network under `vs` in training mode.
    ///
    /// The draws from the global libtorch generator are PyTorch's, in
    /// PyTorch's order: each layer's default initialization as it is
    /// constructed (`conv{i}`, then `vbn{i}`'s `gamma`, for i = 1…11, then
    /// `conv_final` and `fully_connected`), then `xavier_normal_` on every
    /// convolution weight in module order. After `tch::manual_seed(s)` the
    /// parameters equal those of `torch.manual_seed(s); Discriminator()`.
    pub fn new<'a, T: Borrow<Path<'a>>>(vs: T, config: DiscriminatorConfig) -> Result<Self> {
        let vs = vs.borrow();

        let mut convs = Vec::with_capacity(CHANNELS.len());
        let mut vbns = Vec::with_capacity(CHANNELS.len());
        let mut in_channels = INPUT_CHANNELS;
        for (index, &out_channels) in CHANNELS.iter().enumerate() {
            let block = index + 1;
            let spec = ConvSpec {
                in_channels,
                out_channels,
                kernel: KERNEL,
                stride: 2,
                padding: 15,
            };
            convs.push(conv1d(vs / format!("conv{block}"), spec)?);
            vbns.push(virtual_batch_norm1d(
                vs / format!("vbn{block}"),
                out_channels,
                config.vbn,
            )?);
            in_channels = out_channels;
        }

        let final_spec = ConvSpec {
            in_channels,
            out_channels: 1,
            kernel: 1,
            stride: 1,
            padding: 0,
        };
        let conv_final = conv1d(vs / "conv_final", final_spec)?;
        let fully_connected = linear(vs / "fully_connected", FEATURES, 1)?;

        for conv in convs.iter().chain(std::iter::once(&conv_final)) {
            xavier_normal_(&conv.weight)?;
        }

        Ok(Self {
            convs,
            vbns,
            conv_final,
            fully_connected,
            config,
            train: true,
            frozen: None,
        })
    }

    /// Sets training mode (dropout active) or evaluation mode, like
    /// `nn.Module.train(mode)`.
    pub fn set_train(&mut self, train: bool) {
        self.train = train;
    }

    /// Returns whether dropout is active.
    pub fn is_training(&self) -> bool {
        self.train
    }

    pub fn config(&self) -> DiscriminatorConfig {
        self.config
    }

    /// Parameters with their state-dict keys, in PyTorch's
    /// `named_parameters()` order (the order optimizers number them in).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut params = Vec::new();
        for (index, (conv, vbn)) in self.convs.iter().zip(&self.vbns).enumerate() {
            let block = index + 1;
            params.push((format!("conv{block}.weight"), conv.weight.shallow_clone()));
            params.push((format!("conv{block}.bias"), conv.bias.shallow_clone()));
            params.push((format!("vbn{block}.gamma"), vbn.gamma.shallow_clone()));
            params.push((format!("vbn{block}.beta"), vbn.beta.shallow_clone()));
        }
        params.push((
            "conv_final.weight".into(),
            self.conv_final.weight.shallow_clone(),
        ));
        params.push((
            "conv_final.bias".into(),
            self.conv_final.bias.shallow_clone(),
        ));
        params.push((
            "fully_connected.weight".into(),
            self.fully_connected.weight.shallow_clone(),
        ));
        params.push((
            "fully_connected.bias".into(),
            self.fully_connected.bias.shallow_clone(),
        ));
        params
    }

    /// Judges `x` with virtual batch normalization against `ref_x`; the
    /// Python's `forward(x, ref_x)`.
    pub fn forward(&self, x: &Tensor, ref_x: &Tensor) -> Result<Tensor> {
        self.check_input("discriminator input", x)?;
        self.check_input("discriminator reference batch", ref_x)?;

        let stats = self.reference_stats(ref_x)?;
        self.forward_with_stats(x, &stats)
    }

    /// Runs the reference pass and returns the statistics of `vbn1` …
    /// `vbn11`, detached.
    pub fn reference_stats(&self, ref_x: &Tensor) -> Result<Vec<VbnStats>> {
        self.check_input("discriminator reference batch", ref_x)?;

        let mut stats = Vec::with_capacity(self.vbns.len());
        let mut h = ref_x.shallow_clone();
        for (index, (conv, vbn)) in self.convs.iter().zip(&self.vbns).enumerate() {
            h = self.conv_and_dropout(index + 1, conv, &h)?;
            let output = vbn.forward(&h, None)?;
            stats.push(output.stats);
            let is_last = index + 1 == self.convs.len();
            if !is_last {
                h = leaky_relu(&output.out, LEAKY_SLOPE)?;
            }
        }
        Ok(stats)
    }

    /// Judges `x` with VBN statistics from an earlier reference pass (one
    /// entry per VBN layer, as [`Self::reference_stats`] returns them).
    pub fn forward_with_stats(&self, x: &Tensor, stats: &[VbnStats]) -> Result<Tensor> {
        self.check_input("discriminator input", x)?;
        ensure!(
            stats.len() == self.vbns.len(),
            "discriminator: expected reference statistics for {} VBN layers, got {}",
            self.vbns.len(),
            stats.len()
        );

        let mut h = x.shallow_clone();
        for (index, ((conv, vbn), reference)) in
            self.convs.iter().zip(&self.vbns).zip(stats).enumerate()
        {
            h = self.conv_and_dropout(index + 1, conv, &h)?;
            h = vbn.forward(&h, Some(reference))?.out;
            h = leaky_relu(&h, LEAKY_SLOPE)?;
        }

        h = self.conv_final.forward(&h)?;
        h = leaky_relu(&h, LEAKY_SLOPE)?;
        let features = h.f_squeeze_dim(1)?;
        let logits = self.fully_connected.forward(&features)?;
        match self.config.output {
            DiscriminatorOutput::Sigmoid => Ok(logits.f_sigmoid()?),
            DiscriminatorOutput::Logits => Ok(logits),
        }
    }

    /// Computes every VBN layer's reference statistics once from `ref_x`
    /// (without gradients, in the current mode, so call it in evaluation
    /// mode for dropout-free statistics) and stores them, so that
    /// [`Self::forward_frozen`] needs no reference batch. They are saved and
    /// loaded with [`Self::named_buffers`] and [`Self::load_buffers`].
    pub fn freeze_reference_stats(&mut self, ref_x: &Tensor) -> Result<()> {
        let stats = tch::no_grad(|| self.reference_stats(ref_x))?;
        self.frozen = Some(stats.iter().map(VbnStats::detach).collect());
        Ok(())
    }

    /// Forgets the frozen reference statistics.
    pub fn clear_frozen_stats(&mut self) {
        self.frozen = None;
    }

    /// Returns the frozen reference statistics, one entry per VBN layer, if any.
    pub fn frozen_stats(&self) -> Option<&[VbnStats]> {
        self.frozen.as_deref()
    }

    /// Judges `x` with the frozen reference statistics. In evaluation mode
    /// the result is bit-identical to `forward(x, ref_x)` with the batch the
    /// statistics were frozen from, at half the work.
    pub fn forward_frozen(&self, x: &Tensor) -> Result<Tensor> {
        let Some(stats) = &self.frozen else {
            bail!(
                "discriminator: no frozen reference statistics; call freeze_reference_stats \
                 or load_buffers first, or pass a reference batch to forward"
            );
        };
        self.forward_with_stats(x, stats)
    }

    /// Returns the frozen statistics as state-dict buffers `vbn{i}.ref_mean`,
    /// `vbn{i}.ref_mean_sq` (`[1, C, 1]`) and `vbn{i}.ref_count` (0-d int64,
    /// the reference batch size); empty when nothing is frozen.
    pub fn named_buffers(&self) -> Result<Vec<(String, Tensor)>> {
        let mut buffers = Vec::new();
        for (index, stats) in self.frozen.iter().flatten().enumerate() {
            let block = index + 1;
            buffers.push((format!("vbn{block}.ref_mean"), stats.mean.shallow_clone()));
            buffers.push((
                format!("vbn{block}.ref_mean_sq"),
                stats.mean_sq.shallow_clone(),
            ));
            let count = Tensor::f_from_slice(&[stats.count])?.f_reshape([] as [i64; 0])?;
            buffers.push((format!("vbn{block}.ref_count"), count));
        }
        Ok(buffers)
    }

    /// Restores frozen statistics from state-dict entries named as
    /// [`Self::named_buffers`] names them. Returns `false`, changing
    /// nothing, when the entries hold no `vbn1.ref_mean`; fails when only
    /// some layers' buffers are present or a shape is wrong.
    pub fn load_buffers(&mut self, entries: &[(String, Tensor)]) -> Result<bool> {
        let find = |name: &str| entries.iter().find(|(key, _)| key == name).map(|(_, t)| t);
        if find("vbn1.ref_mean").is_none() {
            return Ok(false);
        }
        let like = &self.fully_connected.weight;
        let mut frozen = Vec::with_capacity(self.vbns.len());
        for (index, vbn) in self.vbns.iter().enumerate() {
            let block = index + 1;
            let get = |suffix: &str| -> Result<&Tensor> {
                find(&format!("vbn{block}.{suffix}"))
                    .with_context(|| format!("frozen statistics: missing vbn{block}.{suffix}"))
            };
            let expected = vec![1, vbn.num_features(), 1];
            let load = |suffix: &str| -> Result<Tensor> {
                let tensor = get(suffix)?;
                ensure!(
                    tensor.size() == expected,
                    "frozen statistics: vbn{block}.{suffix} has shape {:?}, expected {expected:?}",
                    tensor.size()
                );
                Ok(tensor.f_to_device(like.device())?.f_to_kind(like.kind())?)
            };
            let (mean, mean_sq) = (load("ref_mean")?, load("ref_mean_sq")?);
            let count = match find(&format!("vbn{block}.ref_count")) {
                Some(count) => count.f_int64_value(&[])?,
                None => 1,
            };
            frozen.push(VbnStats::new(mean, mean_sq, count));
        }
        self.frozen = Some(frozen);
        Ok(true)
    }

    fn conv_and_dropout(&self, block: usize, conv: &Conv1d, h: &Tensor) -> Result<Tensor> {
        let h = conv.forward(h)?;
        if DROPOUT_AFTER.contains(&block) {
            Ok(h.f_dropout(DROPOUT, self.train)?)
        } else {
            Ok(h)
        }
    }

    fn check_input(&self, what: &str, x: &Tensor) -> Result<()> {
        expect_rank(what, x, 3, "[batch, 2, 16384]")?;
        let size = x.size();
        if size[1] != INPUT_CHANNELS {
            bail!(
                "{what}: expected {INPUT_CHANNELS} channels (signal and noisy signal), \
                 shape [B, {INPUT_CHANNELS}, {WINDOW}], got shape {size:?}"
            );
        }
        if size[2] != WINDOW {
            bail!(
                "{what}: expected length {WINDOW}, shape [B, {INPUT_CHANNELS}, {WINDOW}], \
                 got shape {size:?}; the final linear layer takes {FEATURES} features, \
                 which fixes the length at {WINDOW}"
            );
        }
        ensure!(size[0] > 0, "{what}: the batch is empty, shape {size:?}");
        expect_like(what, x, &self.fully_connected.weight)
    }
}
