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
//! Beyond the Python class, [`VbnVariant`] selects the other published
//! definitions (the TensorFlow SEGAN's and Salimans et al.'s),
//! [`VbnConfig::stable`] computes the variance without the cancellation of
//! `mean_sq − mean²`, and float16 or bfloat16 inputs are normalized with
//! float32 statistics. The defaults are the Python's behaviour.
//!
//! Differences from the Python class, all deliberate:
//! - errors are returned for every malformed input instead of `assert` or a
//!   bare `Exception`, and the statistics' dtype and device are checked;
//! - `Display` prints the closing parenthesis that the Python `__repr__` lacks.

use std::borrow::Borrow;
use std::fmt;

use anyhow::{bail, ensure, Result};
use tch::{nn::Path, Kind, Tensor};

use super::check::{expect_like, expect_rank};

/// Evaluation strategy of the forward pass. Both strategies give the same
/// values up to float rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Formula {
    /// The Python's operations in the Python's order, which reproduces
    /// PyTorch's results bit for bit on the same device and kernels.
    #[default]
    Reference,
    /// A centering pass, then libtorch's batch-norm kernel with the
    /// statistics as constants (one pass forward, one fused pass backward)
    /// and the statistics' own gradients routed through its weight and bias.
    /// Each statistic takes a single reduction, instead of the Python's four
    /// element-wise passes and two reductions. Its rounding differs from
    /// PyTorch's.
    Fused,
}

/// Definition of virtual batch normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VbnVariant {
    /// The PyTorch SEGAN code's: batch statistics over batch and time,
    /// coefficient `1 / (B + 1)` with `B` the size of the batch being
    /// normalized, reference statistics detached.
    #[default]
    Reference,
    /// The TensorFlow SEGAN's (santi-pdp/segan): batch statistics,
    /// coefficient `1 / (N_ref + 1)` with `N_ref` the size of the reference
    /// batch, reference statistics not detached.
    TensorFlow,
    /// Salimans et al. 2016: every example is normalized with the reference
    /// statistics mixed with its own statistics alone (over time, per
    /// channel), coefficient `1 / (N_ref + 1)`; the reference batch itself
    /// is normalized with its batch statistics, not detached.
    Salimans,
}

/// Configuration of [`VirtualBatchNorm1d`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VbnConfig {
    /// Added to the variance before the square root; PyTorch's default 1e-5.
    pub eps: f64,
    /// Evaluation strategy of the forward pass.
    pub formula: Formula,
    /// Definition of the statistics and their mixing.
    pub variant: VbnVariant,
    /// Computes the variance in two passes, `mean((x − mean)²)`, and mixes
    /// variances with the law of total variance, instead of `mean_sq −
    /// mean²`, which cancels catastrophically in float32 when |mean| ≫ std
    /// (with mean 1e4 and std 1 it returns 0 or a negative value).
    pub stable: bool,
}

impl Default for VbnConfig {
    fn default() -> Self {
        Self {
            eps: 1e-5,
            formula: Formula::default(),
            variant: VbnVariant::default(),
            stable: false,
        }
    }
}

/// Per-channel statistics of a batch, `[1, C, 1]` each (`[B, C, 1]` for the
/// mixed statistics of [`VbnVariant::Salimans`]).
#[derive(Debug)]
pub struct VbnStats {
    /// Mean over the batch and time axes.
    pub mean: Tensor,
    /// Mean of the squares over the batch and time axes.
    pub mean_sq: Tensor,
    /// Two-pass variance, present when computed with [`VbnConfig::stable`].
    pub variance: Option<Tensor>,
    /// Number of examples summarized (the reference batch size `N_ref`).
    pub count: i64,
}

impl VbnStats {
    /// Statistics of `count` examples from their mean and mean of squares.
    pub fn new(mean: Tensor, mean_sq: Tensor, count: i64) -> Self {
        Self {
            mean,
            mean_sq,
            variance: None,
            count,
        }
    }

    /// Returns a copy sharing the same storage.
    pub fn shallow_clone(&self) -> Self {
        Self {
            mean: self.mean.shallow_clone(),
            mean_sq: self.mean_sq.shallow_clone(),
            variance: self.variance.as_ref().map(Tensor::shallow_clone),
            count: self.count,
        }
    }

    /// Returns the statistics detached from the autograd graph.
    pub fn detach(&self) -> Self {
        Self {
            mean: self.mean.detach(),
            mean_sq: self.mean_sq.detach(),
            variance: self.variance.as_ref().map(Tensor::detach),
            count: self.count,
        }
    }

    fn variance_or_formula(&self) -> Result<Tensor> {
        match &self.variance {
            Some(variance) => Ok(variance.shallow_clone()),
            None => Ok(self.mean_sq.f_sub(&self.mean.f_pow_tensor_scalar(2)?)?),
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

    /// Returns the `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.config.eps
    }

    /// Returns the configuration this layer was built with.
    pub fn config(&self) -> VbnConfig {
        self.config
    }

    /// Mean and mean of squares of `x` over the batch and time axes, with
    /// gradients, shape `[1, C, 1]` each.
    pub fn batch_stats(&self, x: &Tensor) -> Result<VbnStats> {
        self.check_input(x)?;
        self.stats_of(&compute_dtype(x)?, Axes::BatchAndTime)
    }

    /// Normalizes `x`; the Python's `forward(x, ref_mean, ref_mean_sq)`.
    ///
    /// With `reference = None` (reference mode) the statistics are those of
    /// `x`, detached. With reference statistics (mixed mode) they are mixed
    /// with coefficient `1 / (B + 1)` for the statistics of `x`, `B` being
    /// the size of this batch, and gradients flow through the statistics of
    /// `x` (not through the reference statistics, which the reference pass
    /// returns detached). [`VbnVariant`] describes the other definitions.
    ///
    /// float16 and bfloat16 inputs are normalized in float32 and the output
    /// is cast back to the input's dtype; the statistics stay float32.
    pub fn forward(&self, x: &Tensor, reference: Option<&VbnStats>) -> Result<VbnOutput> {
        self.check_input(x)?;
        if let Some(stats) = reference {
            self.check_stats(stats)?;
        }

        let input = compute_dtype(x)?;
        let stats = match (self.config.variant, reference) {
            (VbnVariant::Reference, None) => {
                tch::no_grad(|| self.stats_of(&input, Axes::BatchAndTime))?.detach()
            }
            (_, None) => self.stats_of(&input, Axes::BatchAndTime)?,
            (VbnVariant::Reference, Some(reference)) => {
                let own = self.stats_of(&input, Axes::BatchAndTime)?;
                mix_stats(&own, reference, x.size()[0])?
            }
            (VbnVariant::TensorFlow, Some(reference)) => {
                let own = self.stats_of(&input, Axes::BatchAndTime)?;
                mix_stats(&own, reference, reference.count)?
            }
            (VbnVariant::Salimans, Some(reference)) => {
                let own = self.stats_of(&input, Axes::Time)?;
                mix_stats(&own, reference, reference.count)?
            }
        };

        let out = self.normalize(&input, &stats)?.f_to_kind(x.kind())?;
        Ok(VbnOutput { out, stats })
    }

    fn stats_of(&self, x: &Tensor, axes: Axes) -> Result<VbnStats> {
        // The mean is taken before squaring, as in the Python: autograd
        // accumulates the gradient paths into `x` in the order the forward
        // created them, and matching it keeps gradients bit-identical.
        let reduce = |t: &Tensor| -> Result<Tensor> {
            match (axes, self.config.formula) {
                (Axes::Time, _) => Ok(t.f_mean_dim(2, true, None)?),
                (Axes::BatchAndTime, Formula::Reference) => {
                    Ok(t.f_mean_dim(2, true, None)?.f_mean_dim(0, true, None)?)
                }
                (Axes::BatchAndTime, Formula::Fused) => {
                    Ok(t.f_mean_dim([0, 2].as_slice(), true, None)?)
                }
            }
        };
        let mean = reduce(x)?;
        let mean_sq = reduce(&x.f_pow_tensor_scalar(2)?)?;
        let variance = match self.config.stable {
            true => Some(reduce(&x.f_sub(&mean)?.f_pow_tensor_scalar(2)?)?),
            false => None,
        };
        Ok(VbnStats {
            mean,
            mean_sq,
            variance,
            count: x.size()[0],
        })
    }

    fn normalize(&self, x: &Tensor, stats: &VbnStats) -> Result<Tensor> {
        let variance = match (&stats.variance, self.config.stable) {
            (Some(variance), true) => variance.f_add_scalar(self.config.eps)?,
            _ => stats
                .mean_sq
                .f_add_scalar(self.config.eps)?
                .f_sub(&stats.mean.f_pow_tensor_scalar(2)?)?,
        };
        let gamma = self.gamma.f_to_kind(x.kind())?;
        let beta = self.beta.f_to_kind(x.kind())?;

        let out = match self.config.formula {
            Formula::Reference => x
                .f_sub(&stats.mean)?
                .f_div(&variance.f_sqrt()?)?
                .f_mul(&gamma)?
                .f_add(&beta)?,
            Formula::Fused if stats.mean.size()[0] == 1 => {
                batch_norm_kernel(x, &stats.mean, &variance, &gamma, &beta)?
            }
            Formula::Fused => {
                // The batch-norm kernel takes no per-example statistics
                // (Salimans variant), so this runs two element-wise passes.
                // Centering first keeps the result accurate when |mean| ≫ std.
                let scale = gamma.f_div(&variance.f_sqrt()?)?;
                beta.f_addcmul(&x.f_sub(&stats.mean)?, &scale)?
            }
        };
        Ok(out)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        expect_rank(
            "VirtualBatchNorm1d input",
            x,
            3,
            "[batch, channels, length]",
        )?;
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
        let mut tensors = vec![("mean", &stats.mean), ("mean_sq", &stats.mean_sq)];
        if let Some(variance) = &stats.variance {
            tensors.push(("variance", variance));
        }
        // Statistics of float16 and bfloat16 layers are float32.
        let like = match self.gamma.kind() {
            Kind::Half | Kind::BFloat16 => self.gamma.f_to_kind(Kind::Float)?,
            _ => self.gamma.shallow_clone(),
        };
        for (name, tensor) in tensors {
            let size = tensor.size();
            if size != expected {
                bail!(
                    "VirtualBatchNorm1d reference {name}: expected shape {expected:?} \
                     (num_features = {}), got {size:?}",
                    self.num_features
                );
            }
            expect_like(
                &format!("VirtualBatchNorm1d reference {name}"),
                tensor,
                &like,
            )?;
        }
        ensure!(
            stats.count > 0,
            "VirtualBatchNorm1d reference statistics: count must be positive, got {}",
            stats.count
        );
        Ok(())
    }
}

/// Mixes the statistics of a batch with reference statistics:
/// `a · own + (1 − a) · reference` with `a = 1 / (size + 1)`, `size` being
/// the current batch size or the reference's, as the variant defines it.
/// Variances, when present, mix by the law of total variance:
/// `a · v_own + (1 − a) · v_ref + a (1 − a) (mean_own − mean_ref)²`.
fn mix_stats(own: &VbnStats, reference: &VbnStats, size: i64) -> Result<VbnStats> {
    let new_coeff = 1.0 / (size as f64 + 1.0);
    let old_coeff = 1.0 - new_coeff;
    let mix = |own: &Tensor, reference: &Tensor| -> Result<Tensor> {
        Ok(own
            .f_mul_scalar(new_coeff)?
            .f_add(&reference.f_mul_scalar(old_coeff)?)?)
    };
    let variance = match &own.variance {
        Some(own_variance) => {
            let spread = own
                .mean
                .f_sub(&reference.mean)?
                .f_pow_tensor_scalar(2)?
                .f_mul_scalar(new_coeff * old_coeff)?;
            Some(mix(own_variance, &reference.variance_or_formula()?)?.f_add(&spread)?)
        }
        None => None,
    };
    Ok(VbnStats {
        mean: mix(&own.mean, &reference.mean)?,
        mean_sq: mix(&own.mean_sq, &reference.mean_sq)?,
        variance,
        count: reference.count,
    })
}

/// `(x − mean) / sqrt(variance) · gamma + beta` through libtorch's
/// batch-norm kernel, with gradients for `x`, `gamma`, `beta` and, when they
/// require them, `mean` and `variance` (`[1, C, 1]` each, `eps` included).
///
/// The kernel in inference mode takes the statistics as constants: one pass
/// forward and one fused pass backward, which also reduces the gradients of
/// its weight and bias. The statistics' gradients are routed through that
/// weight and bias, whose values stay exactly `gamma` and `beta`:
///
/// ```text
/// r = 1 / sqrt(variance)                 (r̄, m̄: the same values, detached)
/// weight = gamma · r / r̄                 = gamma,  ∂/∂(mean, variance) through r
/// bias   = beta − (mean − m̄) · gamma · r  = beta,   ∂/∂mean = −gamma · r
/// kernel on x − m̄ with mean 0: (x − m̄) · r̄ · weight + bias
///                                        = (x − mean) · r · gamma + beta
/// ```
///
/// With m̄ and r̄ held constant, the last line is an identity of functions of
/// `x`, `mean`, `variance`, `gamma` and `beta`, so its first and higher
/// derivatives are the formula's.
fn batch_norm_kernel(
    x: &Tensor,
    mean: &Tensor,
    variance: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
) -> Result<Tensor> {
    let channels = x.size()[1];
    let mean_const = mean.detach();
    let variance_const = variance.detach();

    let (weight, bias) = if mean.requires_grad() || variance.requires_grad() {
        let r = variance.f_rsqrt()?;
        let r_const = r.detach();
        let weight = gamma.f_mul(&r.f_div(&r_const)?)?;
        // The scale stays attached so that second derivatives (a gradient
        // penalty, say) see the cross terms of mean with gamma and variance.
        let shift = mean.f_sub(&mean_const)?.f_mul(&gamma.f_mul(&r)?)?;
        (weight, beta.f_sub(&shift)?)
    } else {
        (gamma.shallow_clone(), beta.shallow_clone())
    };

    // The CPU kernel folds its mean into the shift, `x · a + (bias − mean · a)`,
    // which cancels when |mean| ≫ std, as after a conv bias. Centering first
    // keeps conv1.bias's gradient in the fixtures as close to float64 as the
    // reference formula is (folded, it moved 20 times further).
    let centered = x.f_sub(&mean_const)?;
    let zeros = Tensor::f_zeros([channels], (x.kind(), x.device()))?;

    // eps is already in `variance`, so the kernel adds 0. With cuDNN off,
    // CUDA runs the native kernel as well.
    Ok(centered.f_batch_norm(
        Some(weight.f_reshape([channels])?),
        Some(bias.f_reshape([channels])?),
        Some(zeros),
        Some(variance_const.f_reshape([channels])?),
        false,
        0.0,
        0.0,
        false,
    )?)
}

/// Axes the statistics are reduced over.
#[derive(Debug, Clone, Copy)]
enum Axes {
    BatchAndTime,
    /// Per example, for [`VbnVariant::Salimans`].
    Time,
}

/// `x` in the dtype its statistics are computed in: float32 for float16 and
/// bfloat16, else its own.
fn compute_dtype(x: &Tensor) -> Result<Tensor> {
    match x.kind() {
        Kind::Half | Kind::BFloat16 => Ok(x.f_to_kind(Kind::Float)?),
        _ => Ok(x.shallow_clone()),
    }
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
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
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
