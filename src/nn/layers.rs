//! `Conv1d`, `ConvTranspose1d`, `Linear` and `PReLU` with PyTorch's default
//! initialization, drawn in PyTorch's order from the global libtorch
//! generator, and `xavier_normal_`.
//!
//! tch's own layers initialize differently, so seeded weights would not match
//! PyTorch's; these draw `kaiming_uniform_(a = √5)` for the weight and
//! `uniform_(−1/√fan_in, 1/√fan_in)` for the bias, as
//! `torch.nn.Conv1d.reset_parameters` and `torch.nn.Linear.reset_parameters`
//! do (PyTorch 2.x), computing the bounds with the same double arithmetic.

use std::borrow::Borrow;

use anyhow::Result;
use tch::{nn::Path, Tensor};

/// 1-D convolution; weight `[out, in, kernel]`, bias `[out]`.
#[derive(Debug)]
pub struct Conv1d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
    pub padding: i64,
}

/// 1-D transposed convolution; weight `[in, out, kernel]`, bias `[out]`.
#[derive(Debug)]
pub struct ConvTranspose1d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
    pub padding: i64,
}

/// Fully connected layer; weight `[out, in]`, bias `[out]`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

/// Parametric ReLU with one shared slope, initialized to 0.25 like
/// `torch.nn.PReLU()`.
#[derive(Debug)]
pub struct PRelu {
    pub weight: Tensor,
}

/// Geometry of a convolution: channels in and out, kernel size, stride,
/// padding.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

/// Builds a `Conv1d` under `vs` with PyTorch's default initialization.
pub fn conv1d<'a, T: Borrow<Path<'a>>>(vs: T, spec: ConvSpec) -> Result<Conv1d> {
    let vs = vs.borrow();
    let weight_shape = [spec.out_channels, spec.in_channels, spec.kernel];
    let (weight, bias) = default_init(vs, &weight_shape, spec.out_channels)?;
    Ok(Conv1d {
        weight,
        bias,
        stride: spec.stride,
        padding: spec.padding,
    })
}

/// Builds a `ConvTranspose1d` under `vs` with PyTorch's default
/// initialization (its fan-in is `out_channels · kernel`, because PyTorch
/// computes it from dimension 1 of the `[in, out, kernel]` weight).
pub fn conv_transpose1d<'a, T: Borrow<Path<'a>>>(vs: T, spec: ConvSpec) -> Result<ConvTranspose1d> {
    let vs = vs.borrow();
    let weight_shape = [spec.in_channels, spec.out_channels, spec.kernel];
    let (weight, bias) = default_init(vs, &weight_shape, spec.out_channels)?;
    Ok(ConvTranspose1d {
        weight,
        bias,
        stride: spec.stride,
        padding: spec.padding,
    })
}

/// Builds a `Linear` under `vs` with PyTorch's default initialization.
pub fn linear<'a, T: Borrow<Path<'a>>>(
    vs: T,
    in_features: i64,
    out_features: i64,
) -> Result<Linear> {
    let (weight, bias) = default_init(vs.borrow(), &[out_features, in_features], out_features)?;
    Ok(Linear { weight, bias })
}

/// Builds a `PReLU` with one slope under `vs`.
pub fn prelu<'a, T: Borrow<Path<'a>>>(vs: T) -> Result<PRelu> {
    let weight = vs.borrow().f_zeros("weight", &[1])?;
    let _ = tch::no_grad(|| weight.shallow_clone().f_fill_(0.25))?;
    Ok(PRelu { weight })
}

impl Conv1d {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_conv1d(
            &self.weight,
            Some(&self.bias),
            [self.stride],
            [self.padding],
            [1],
            1,
        )?)
    }
}

impl ConvTranspose1d {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_conv_transpose1d(
            &self.weight,
            Some(&self.bias),
            [self.stride],
            [self.padding],
            [0],
            1,
            [1],
        )?)
    }
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linear(&self.weight, Some(&self.bias))?)
    }
}

impl PRelu {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_prelu(&self.weight)?)
    }
}

/// `torch.nn.LeakyReLU(negative_slope)`: `x` where `x > 0`, else
/// `negative_slope · x`.
///
/// tch 0.26 exposes `leaky_relu` only with the default slope 0.01, so this
/// calls the PReLU kernel with the slope as a constant one-element weight.
/// Its values and input gradients equal ATen's `leaky_relu` bit for bit: both
/// multiply by the slope in the input's dtype where `x ≤ 0` and pass the
/// value and gradient through unchanged where `x > 0`. It is one pass forward
/// and one backward, like `leaky_relu`.
pub fn leaky_relu(x: &Tensor, negative_slope: f64) -> Result<Tensor> {
    let slope = Tensor::f_full([1], negative_slope, (x.kind(), x.device()))?;
    Ok(x.f_prelu(&slope)?)
}

/// Draws `weight` with `kaiming_uniform_(a = √5)` and `bias` with
/// `uniform_(−1/√fan_in, 1/√fan_in)`, in that order.
fn default_init(vs: &Path, weight_shape: &[i64], bias_len: i64) -> Result<(Tensor, Tensor)> {
    let weight = vs.f_zeros("weight", weight_shape)?;
    let bias = vs.f_zeros("bias", &[bias_len])?;
    let fan_in = fan_in_and_fan_out(weight_shape).0;

    tch::no_grad(|| -> Result<()> {
        let bound = kaiming_uniform_bound(fan_in, 5f64.sqrt());
        let _ = weight.shallow_clone().f_uniform_(-bound, bound)?;
        if fan_in > 0 {
            let bound = 1.0 / (fan_in as f64).sqrt();
            let _ = bias.shallow_clone().f_uniform_(-bound, bound)?;
        }
        Ok(())
    })?;
    Ok((weight, bias))
}

/// `torch.nn.init.kaiming_uniform_`'s bound for leaky-ReLU gain with slope
/// `a`, fan-in mode, in the same operation order as PyTorch's Python code.
fn kaiming_uniform_bound(fan_in: i64, a: f64) -> f64 {
    let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// `torch.nn.init._calculate_fan_in_and_fan_out`: dimension 1 and 0 times
/// the receptive field (the product of the remaining dimensions).
fn fan_in_and_fan_out(shape: &[i64]) -> (i64, i64) {
    let receptive: i64 = shape.iter().skip(2).product();
    (shape[1] * receptive, shape[0] * receptive)
}

/// `torch.nn.init.xavier_normal_(weight)` with gain 1: draws
/// `normal_(0, √(2 / (fan_in + fan_out)))` in place.
pub fn xavier_normal_(weight: &Tensor) -> Result<()> {
    let (fan_in, fan_out) = fan_in_and_fan_out(&weight.size());
    let std = 1.0 * (2.0 / (fan_in + fan_out) as f64).sqrt();
    let _ = tch::no_grad(|| weight.shallow_clone().f_normal_(0.0, std))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Returns the output and the input gradient for the upstream gradient
    /// `upstream`.
    fn value_and_grad(
        x: &Tensor,
        upstream: &Tensor,
        f: impl Fn(&Tensor) -> Tensor,
    ) -> (Tensor, Tensor) {
        let input = x.detach().set_requires_grad(true);
        let out = f(&input);
        let grad = Tensor::run_backward(&[(&out * upstream).sum(None)], &[&input], false, false);
        (out.detach(), grad[0].shallow_clone())
    }

    #[test]
    fn leaky_relu_matches_aten_bitwise() {
        let x = Tensor::randn([4, 3, 257], (Kind::Float, Device::Cpu));
        // Exact zeros take the negative branch in both.
        let _ = x.narrow(2, 0, 5).shallow_clone().fill_(0.0);
        let upstream = Tensor::randn([4, 3, 257], (Kind::Float, Device::Cpu));

        // ATen's leaky_relu with its default slope 0.01, the only slope tch
        // exposes.
        let (out, grad) = value_and_grad(&x, &upstream, |t| leaky_relu(t, 0.01).unwrap());
        let (expected_out, expected_grad) = value_and_grad(&x, &upstream, Tensor::leaky_relu);
        assert!(out.equal(&expected_out), "values differ from ATen");
        assert!(grad.equal(&expected_grad), "gradients differ from ATen");
    }

    #[test]
    fn leaky_relu_applies_slope() {
        let x = Tensor::from_slice(&[-2.0f32, -0.0, 0.0, 1.5]);
        let upstream = Tensor::ones([4], (Kind::Float, Device::Cpu));
        let (out, grad) = value_and_grad(&x, &upstream, |t| leaky_relu(t, 0.3).unwrap());
        let slope = 0.3f32;
        let expected_out = Tensor::from_slice(&[-2.0 * slope, 0.0, 0.0, 1.5]);
        let expected_grad = Tensor::from_slice(&[slope, slope, slope, 1.0]);
        assert!(out.equal(&expected_out), "values: {out:?}");
        assert!(grad.equal(&expected_grad), "gradients: {grad:?}");
    }
}
