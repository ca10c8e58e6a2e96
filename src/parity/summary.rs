//! Summaries of large tensors: `[sum, sum of squares, sum of |t|, t[i_0],
//! ..., t[i_{K-1}]]` in float64, with `K = min(256, n)` and
//! `i_j = floor(j · n / K)` over the row-major flattening.

use anyhow::Result;
use tch::{Kind, Tensor};

/// Tensors with more elements than this are stored as summaries.
pub const SUMMARY_THRESHOLD: i64 = 65536;
/// Number of sampled elements in a summary.
pub const SUMMARY_SAMPLES: i64 = 256;

/// Computes the summary of `t` (any device and floating dtype).
pub fn summarize(t: &Tensor) -> Result<Tensor> {
    let flat = t
        .f_detach()?
        .f_to_device(tch::Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .f_reshape([-1])?;
    let n = flat.numel() as i64;
    let k = SUMMARY_SAMPLES.min(n);

    let indices: Vec<i64> = (0..k).map(|j| j * n / k).collect();
    let samples = flat.f_index_select(0, &Tensor::f_from_slice(&indices)?)?;
    let head = Tensor::f_stack(
        &[
            flat.f_sum(Kind::Double)?,
            flat.f_square()?.f_sum(Kind::Double)?,
            flat.f_abs()?.f_sum(Kind::Double)?,
        ],
        0,
    )?;
    Ok(Tensor::f_cat(&[head, samples], 0)?)
}
