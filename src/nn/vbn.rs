//! `VirtualBatchNorm1d`, mirroring the PyTorch SEGAN layer of the same name.
//!
//! Virtual batch normalization (Salimans et al. 2016, "Improved Techniques
//! for Training GANs") normalizes a batch with statistics mixed from a fixed
//! reference batch, so that the output for one example depends less on the
//! other examples of its batch. This layer follows the PyTorch SEGAN code:
//!
//! ```text
//! mean    = x.mean(2).mean(0)              mean_sq = (x²).mean(2).mean(0)
//! reference mode:  statistics of x itself, detached
//! mixed mode:      a = 1 / (B + 1),  mean = a·mean + (1 − a)·ref_mean  (same for mean_sq)
//! out = (x − mean) / sqrt(eps + mean_sq − mean²) · gamma + beta
//! ```
//!
//! Differences from the Python class, all deliberate:
//! - errors are returned for every malformed input instead of `assert` or a
//!   bare `Exception`, and the statistics' dtype and device are checked;
//! - `Display` prints the closing parenthesis that the Python `__repr__` lacks.

use std::borrow::Borrow;
use std::fmt;

use anyhow::{bail, ensure, Result};
use tch::{nn::Path, Tensor};

use super::check::{expect_like, expect_rank};

/// How the forward pass is evaluated. Both give the same values up to float
/// rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Formula {
    /// The Python's operations in the Python's order, which reproduces
    /// PyTorch's results bit for bit on the same device and kernels.
    #[default]
    Reference,
    /// Two element-wise passes over the batch, `beta + (x − mean) · scale`
    /// with `scale = gamma / std` computed on the `[1, C, 1]` statistics, and
    /// a single reduction per statistic, instead of the Python's four passes
    /// and two reductions per statistic. Its rounding differs from
    /// PyTorch's, and it is closer to a float64 evaluation.
    Fused,
}

/// Configuration of [`VirtualBatchNorm1d`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VbnConfig {
    /// Added to the variance before the square root; PyTorch's default 1e-5.
    pub eps: f64,
    /// Evaluation strategy of the forward pass.
    pub formula: Formula,
}

impl Default for VbnConfig {
    fn default() -> Self {
        Self {
            eps: 1e-5,
            formula: Formula::default(),
        }
    }
}

/// Per-channel statistics of a batch, each of shape `[1, C, 1]`.
#[derive(Debug)]
pub struct VbnStats {
    /// Mean over the batch and time axes.
    pub mean: Tensor,
    /// Mean of the squares over the batch and time axes.
    pub mean_sq: Tensor,
}

impl VbnStats {
    /// Returns a copy sharing the same storage.
    pub fn shallow_clone(&self) -> Self {
        Self {
            mean: self.mean.shallow_clone(),
            mean_sq: self.mean_sq.shallow_clone(),
        }
    }
}

/// Result of a forward pass: the Python's `(out, mean, mean_sq)`.
#[derive(Debug)]
pub struct VbnOutput {
    /// Normalized input, shape `[B, C, L]`.
    pub out: Tensor,
    /// Statistics used to normalize `out`: the batch's own (detached) in
    /// reference mode, the mixed ones in mixed mode.
    pub stats: VbnStats,
}

/// Virtual batch normalization over `[B, C, L]` inputs.
///
/// # Shapes
/// - input `x`: `[B, C, L]` with `C = num_features`, `B ≥ 1`, `L ≥ 1`
/// - reference statistics: `[1, C, 1]` each
/// - output: `[B, C, L]`, statistics `[1, C, 1]`
///
/// # Parameters
/// `gamma` `[1, C, 1]`, drawn like `torch.normal(mean=1.0, std=0.02,
/// size=(1, C, 1))`, and `beta` `[1, C, 1]`, zeros; state-dict keys
/// `<path>.gamma` and `<path>.beta`.
#[derive(Debug)]
pub struct VirtualBatchNorm1d {
    pub gamma: Tensor,
    pub beta: Tensor,
    num_features: i64,
    config: VbnConfig,
}

/// Builds a [`VirtualBatchNorm1d`] whose parameters live under `vs`.
///
/// `gamma` is drawn from the global libtorch generator with `normal_(1.0,
/// 0.02)`, the same draw as PyTorch's `torch.normal`, so that
/// `tch::manual_seed(s)` gives the values of `torch.manual_seed(s)`.
pub fn virtual_batch_norm1d<'a, T: Borrow<Path<'a>>>(
    vs: T,
    num_features: i64,
    config: VbnConfig,
) -> Result<VirtualBatchNorm1d> {
    let vs = vs.borrow();
    ensure!(
        num_features > 0,
        "VirtualBatchNorm1d: num_features must be positive, got {num_features}"
    );
    ensure!(
        config.eps.is_finite() && config.eps >= 0.0,
        "VirtualBatchNorm1d: eps must be finite and non-negative, got {}",
        config.eps
    );

    let shape = [1, num_features, 1];
    let gamma = vs.f_zeros("gamma", &shape)?;
    let _ = tch::no_grad(|| gamma.shallow_clone().f_normal_(1.0, 0.02))?;
    let beta = vs.f_zeros("beta", &shape)?;

    Ok(VirtualBatchNorm1d {
        gamma,
        beta,
        num_features,
        config,
    })
}

impl VirtualBatchNorm1d {
    /// Number of channels `C`.
    pub fn num_features(&self) -> i64 {
        self.num_features
    }

    /// The `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.config.eps
    }

    /// The configuration this layer was built with.
    pub fn config(&self) -> VbnConfig {
        self.config
    }

    /// Mean and mean of squares of `x` over the batch and time axes, with
    /// gradients, shape `[1, C, 1]` each.
    pub fn batch_stats(&self, x: &Tensor) -> Result<VbnStats> {
        self.check_input(x)?;
        self.stats_of(x)
    }

    /// Normalizes `x`; the Python's `forward(x, ref_mean, ref_mean_sq)`.
    ///
    /// With `reference = None` (reference mode) the statistics are those of
    /// `x`, detached. With reference statistics (mixed mode) they are mixed
    /// with coefficient `1 / (B + 1)` for the statistics of `x`, `B` being
    /// the size of this batch, and gradients flow through the statistics of
    /// `x` (not through the reference statistics, which the reference pass
    /// returns detached).
    pub fn forward(&self, x: &Tensor, reference: Option<&VbnStats>) -> Result<VbnOutput> {
        self.check_input(x)?;
        if let Some(stats) = reference {
            self.check_stats(stats)?;
        }

        let stats = match reference {
            None => {
                let own = tch::no_grad(|| self.stats_of(x))?;
                VbnStats {
                    mean: own.mean.detach(),
                    mean_sq: own.mean_sq.detach(),
                }
            }
            Some(reference) => {
                let own = self.stats_of(x)?;
                let batch_size = x.size()[0];
                mix_stats(&own, reference, batch_size)?
            }
        };

        let out = self.normalize(x, &stats)?;
        Ok(VbnOutput { out, stats })
    }

    fn stats_of(&self, x: &Tensor) -> Result<VbnStats> {
        // The mean is taken before squaring, as in the Python: autograd
        // accumulates the gradient paths into `x` in the order the forward
        // created them, and matching it keeps gradients bit-identical.
        let stats = match self.config.formula {
            Formula::Reference => {
                let mean = x.f_mean_dim(2, true, None)?.f_mean_dim(0, true, None)?;
                let squares = x.f_pow_tensor_scalar(2)?;
                let mean_sq = squares
                    .f_mean_dim(2, true, None)?
                    .f_mean_dim(0, true, None)?;
                VbnStats { mean, mean_sq }
            }
            Formula::Fused => {
                let mean = x.f_mean_dim([0, 2].as_slice(), true, None)?;
                let squares = x.f_pow_tensor_scalar(2)?;
                let mean_sq = squares.f_mean_dim([0, 2].as_slice(), true, None)?;
                VbnStats { mean, mean_sq }
            }
        };
        Ok(stats)
    }

    fn normalize(&self, x: &Tensor, stats: &VbnStats) -> Result<Tensor> {
        let variance = stats
            .mean_sq
            .f_add_scalar(self.config.eps)?
            .f_sub(&stats.mean.f_pow_tensor_scalar(2)?)?;
        let std = variance.f_sqrt()?;

        let out = match self.config.formula {
            Formula::Reference => x
                .f_sub(&stats.mean)?
                .f_div(&std)?
                .f_mul(&self.gamma)?
                .f_add(&self.beta)?,
            Formula::Fused => {
                // Centering first keeps the subtraction exact-ish: folding the
                // mean into the shift, `x·scale + (beta − mean·scale)`, cancels
                // catastrophically when |mean| ≫ std, as after a conv bias.
                let scale = self.gamma.f_div(&std)?;
                self.beta.f_addcmul(&x.f_sub(&stats.mean)?, &scale)?
            }
        };
        Ok(out)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        expect_rank("VirtualBatchNorm1d input", x, 3, "[batch, channels, length]")?;
        let size = x.size();
        if size[1] != self.num_features {
            bail!(
                "VirtualBatchNorm1d input: expected {} channels (shape [B, {}, L]), got shape {size:?}",
                self.num_features,
                self.num_features
            );
        }
        ensure!(
            size[0] > 0 && size[2] > 0,
            "VirtualBatchNorm1d input: batch and length must be non-empty, got shape {size:?}"
        );
        expect_like("VirtualBatchNorm1d input", x, &self.gamma)
    }

    fn check_stats(&self, stats: &VbnStats) -> Result<()> {
        let expected = [1, self.num_features, 1];
        for (name, tensor) in [("mean", &stats.mean), ("mean_sq", &stats.mean_sq)] {
            let size = tensor.size();
            if size != expected {
                bail!(
                    "VirtualBatchNorm1d reference {name}: expected shape {expected:?} \
                     (num_features = {}), got {size:?}",
                    self.num_features
                );
            }
            expect_like(&format!("VirtualBatchNorm1d reference {name}"), tensor, &self.gamma)?;
        }
        Ok(())
    }
}

/// Mixes the statistics of a batch of `batch_size` examples with reference
/// statistics: `a · own + (1 − a) · reference` with `a = 1 / (batch_size + 1)`.
fn mix_stats(own: &VbnStats, reference: &VbnStats, batch_size: i64) -> Result<VbnStats> {
    let new_coeff = 1.0 / (batch_size as f64 + 1.0);
    let old_coeff = 1.0 - new_coeff;
    let mix = |own: &Tensor, reference: &Tensor| -> Result<Tensor> {
        Ok(own
            .f_mul_scalar(new_coeff)?
            .f_add(&reference.f_mul_scalar(old_coeff)?)?)
    };
    Ok(VbnStats {
        mean: mix(&own.mean, &reference.mean)?,
        mean_sq: mix(&own.mean_sq, &reference.mean_sq)?,
    })
}

impl fmt::Display for VirtualBatchNorm1d {
    /// Prints `VirtualBatchNorm1d(num_features=32, eps=1e-05)`, the Python
    /// `__repr__` with its missing closing parenthesis restored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VirtualBatchNorm1d(num_features={}, eps={})",
            self.num_features,
            python_float_repr(self.config.eps)
        )
    }
}

/// Formats a float the way Python's `repr(float)` does: shortest round-trip
/// digits, scientific notation below 1e-4 and from 1e16 on, with an exponent
/// of at least two digits (`1e-05`, `0.001`, `1.0`).
pub(crate) fn python_float_repr(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }

    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always prints an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` prints an integer exponent");

    if (-4..16).contains(&exponent) {
        let plain = format!("{value}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::python_float_repr;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1e-5, "1e-05"),
            (1e-3, "0.001"),
            (1e-4, "0.0001"),
            (1.5e-7, "1.5e-07"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (2.5, "2.5"),
            (1e16, "1e+16"),
            (123456.0, "123456.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(value), expected, "repr of {value}");
        }
    }
}
