//! The SEGAN generator, mirroring the PyTorch SEGAN `Generator`: a U-Net
//! encoder–decoder over 16384-sample windows.
//!
//! Encoder `enc1` … `enc11` (Conv1d kernel 32, stride 2, padding 15), each
//! followed by `enc{i}_nl` (PReLU); the code `[B, 1024, 8]` is concatenated
//! on channels with the latent `z` `[B, 1024, 8]`. Decoder `dec10` … `dec1`
//! (ConvTranspose1d kernel 32, stride 2, padding 15): each output is
//! concatenated with the matching encoder output taken *before* its PReLU,
//! then passed through `dec{k}_nl` (PReLU). `dec_final` (32 → 1) and a tanh
//! give the enhanced window.

use std::borrow::Borrow;

use anyhow::{bail, ensure, Result};
use tch::{nn::Path, Tensor};

use super::check::{expect_like, expect_rank};
use super::layers::{
    conv1d, conv_transpose1d, prelu, xavier_normal_, Conv1d, ConvSpec, ConvTranspose1d, PRelu,
};

/// Length of the windows the generator takes.
pub const WINDOW: i64 = 16384;
/// Channels of the encoder: input, then the outputs of `enc1` … `enc11`.
pub const ENC_CHANNELS: [i64; 12] = [1, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 1024];
/// Shape `[channels, length]` of the latent `z` for one window.
pub const LATENT_SHAPE: [i64; 2] = [1024, 8];

const KERNEL: i64 = 32;

/// The SEGAN generator.
///
/// # Shapes
/// - `x`: `[B, 1, 16384]`, the noisy window (pre-emphasized)
/// - `z`: `[B, 1024, 8]`, the latent, usually standard normal
/// - output: `[B, 1, 16384]` in (−1, 1)
#[derive(Debug)]
pub struct Generator {
    /// `enc1` … `enc11`.
    pub encoders: Vec<Conv1d>,
    /// `enc1_nl` … `enc11_nl`.
    pub encoder_nls: Vec<PRelu>,
    /// `dec10` … `dec1`, in that order.
    pub decoders: Vec<ConvTranspose1d>,
    /// `dec10_nl` … `dec1_nl`, in that order.
    pub decoder_nls: Vec<PRelu>,
    pub dec_final: ConvTranspose1d,
}

impl Generator {
    /// Builds the network under `vs`.
    ///
    /// The draws from the global libtorch generator are PyTorch's, in
    /// PyTorch's order: default initialization of `enc1` … `enc11`, `dec10`
    /// … `dec1` and `dec_final` as constructed (PReLU draws nothing), then
    /// `xavier_normal_` on every convolution weight in module order. After
    /// `tch::manual_seed(s)` the parameters equal those of
    /// `torch.manual_seed(s); Generator()`.
    pub fn new<'a, T: Borrow<Path<'a>>>(vs: T) -> Result<Self> {
        let vs = vs.borrow();

        let mut encoders = Vec::with_capacity(11);
        let mut encoder_nls = Vec::with_capacity(11);
        for index in 1..ENC_CHANNELS.len() {
            let spec = spec(ENC_CHANNELS[index - 1], ENC_CHANNELS[index]);
            encoders.push(conv1d(vs / format!("enc{index}"), spec)?);
            encoder_nls.push(prelu(vs / format!("enc{index}_nl"))?);
        }

        let mut decoders = Vec::with_capacity(10);
        let mut decoder_nls = Vec::with_capacity(10);
        for index in (1..=10).rev() {
            let spec = spec(2 * ENC_CHANNELS[index + 1], ENC_CHANNELS[index]);
            decoders.push(conv_transpose1d(vs / format!("dec{index}"), spec)?);
            decoder_nls.push(prelu(vs / format!("dec{index}_nl"))?);
        }
        let dec_final = conv_transpose1d(vs / "dec_final", spec(2 * ENC_CHANNELS[1], 1))?;

        let encoder_weights = encoders.iter().map(|conv| &conv.weight);
        let decoder_weights = decoders
            .iter()
            .chain(std::iter::once(&dec_final))
            .map(|conv| &conv.weight);
        for weight in encoder_weights.chain(decoder_weights) {
            xavier_normal_(weight)?;
        }

        Ok(Self {
            encoders,
            encoder_nls,
            decoders,
            decoder_nls,
            dec_final,
        })
    }

    /// Parameters with their state-dict keys, in PyTorch's
    /// `named_parameters()` order (the order optimizers number them in).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut params = Vec::new();
        for (index, (conv, nl)) in self.encoders.iter().zip(&self.encoder_nls).enumerate() {
            let name = format!("enc{}", index + 1);
            params.push((format!("{name}.weight"), conv.weight.shallow_clone()));
            params.push((format!("{name}.bias"), conv.bias.shallow_clone()));
            params.push((format!("{name}_nl.weight"), nl.weight.shallow_clone()));
        }
        for (index, (deconv, nl)) in self.decoders.iter().zip(&self.decoder_nls).enumerate() {
            let name = format!("dec{}", 10 - index);
            params.push((format!("{name}.weight"), deconv.weight.shallow_clone()));
            params.push((format!("{name}.bias"), deconv.bias.shallow_clone()));
            params.push((format!("{name}_nl.weight"), nl.weight.shallow_clone()));
        }
        params.push((
            "dec_final.weight".into(),
            self.dec_final.weight.shallow_clone(),
        ));
        params.push(("dec_final.bias".into(), self.dec_final.bias.shallow_clone()));
        params
    }

    /// Enhances `x` given the latent `z`; the Python's `forward(x, z)`.
    pub fn forward(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.check_inputs(x, z)?;

        // `skips[k - 1]` is e_k, the output of enc_k before its PReLU.
        let mut skips = Vec::with_capacity(self.encoders.len());
        let mut h = x.shallow_clone();
        for (conv, nl) in self.encoders.iter().zip(&self.encoder_nls) {
            let e = conv.forward(&h)?;
            h = nl.forward(&e)?;
            skips.push(e);
        }

        h = Tensor::f_cat(&[&h, z], 1)?;
        for ((deconv, nl), skip) in self
            .decoders
            .iter()
            .zip(&self.decoder_nls)
            .zip(skips.iter().take(10).rev())
        {
            let d = deconv.forward(&h)?;
            h = nl.forward(&Tensor::f_cat(&[&d, skip], 1)?)?;
        }

        Ok(self.dec_final.forward(&h)?.f_tanh()?)
    }

    fn check_inputs(&self, x: &Tensor, z: &Tensor) -> Result<()> {
        expect_rank("generator input", x, 3, "[batch, 1, 16384]")?;
        let size = x.size();
        if size[1] != 1 || size[2] != WINDOW {
            bail!("generator input: expected shape [B, 1, {WINDOW}], got {size:?}");
        }
        ensure!(
            size[0] > 0,
            "generator input: the batch is empty, shape {size:?}"
        );
        expect_like("generator input", x, &self.dec_final.weight)?;

        let expected_z = [size[0], LATENT_SHAPE[0], LATENT_SHAPE[1]];
        let z_size = z.size();
        if z_size != expected_z {
            bail!(
                "generator latent z: expected shape {expected_z:?} for a batch of {}, got {z_size:?}",
                size[0]
            );
        }
        expect_like("generator latent z", z, &self.dec_final.weight)
    }
}

fn spec(in_channels: i64, out_channels: i64) -> ConvSpec {
    ConvSpec {
        in_channels,
        out_channels,
        kernel: KERNEL,
        stride: 2,
        padding: 15,
    }
}
