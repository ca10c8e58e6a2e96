//! Element-wise comparison of a tensor against its expected value, in full
//! or through a summary.

use std::fmt;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::summary::summarize;

/// Relative slack of float64 sums of the same values added in another order
/// (numpy's pairwise summation against libtorch's): about n·2⁻⁵³ for the
/// summarized sizes, which stay under 10⁸ elements.
const SUM_ORDER_RTOL: f64 = 1e-8;

/// `|actual − expected| ≤ atol + rtol · |expected|`, element-wise, as
/// `numpy.allclose` tests it. NaN matches only NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    /// Bit-identical values.
    pub const EXACT: Self = Self {
        atol: 0.0,
        rtol: 0.0,
    };
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0e}+{:.0e}·|e|", self.atol, self.rtol)
    }
}

/// Result of comparing one tensor.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub case: String,
    pub tensor: String,
    pub max_abs: f64,
    pub max_rel: f64,
    pub tolerance: Tolerance,
    pub pass: bool,
    /// Reason the comparison failed before any value was compared, if it did.
    pub note: Option<String>,
}

impl Comparison {
    /// Builds a failed comparison that compared no values (missing gradient, shape
    /// mismatch).
    pub fn failed(case: &str, tensor: &str, tolerance: Tolerance, note: String) -> Self {
        Self {
            case: case.to_owned(),
            tensor: tensor.to_owned(),
            max_abs: f64::NAN,
            max_rel: f64::NAN,
            tolerance,
            pass: false,
            note: Some(note),
        }
    }
}

/// Compares `actual` with the full `expected` tensor. Shapes must be equal
/// up to axes of size one (the discriminator returns `[1, 1]` where PyTorch
/// returns `[1]`).
pub fn compare_full(
    case: &str,
    tensor: &str,
    actual: &Tensor,
    expected: &Tensor,
    tolerance: Tolerance,
) -> Result<Comparison> {
    let (actual_size, expected_size) = (actual.size(), expected.size());
    if squeezed(&actual_size) != squeezed(&expected_size) {
        return Ok(Comparison::failed(
            case,
            tensor,
            tolerance,
            format!("shape {actual_size:?}, expected {expected_size:?}"),
        ));
    }
    let actual = to_f64_flat(actual)?;
    let expected = to_f64_flat(expected)?;
    compare_values(case, tensor, &actual, &expected, tolerance)
}

/// Compares `actual` with a stored summary of the expected tensor: the
/// three sums relative to `sum |expected|`, and the sampled elements
/// element-wise.
pub fn compare_summary(
    case: &str,
    tensor: &str,
    actual: &Tensor,
    expected_summary: &Tensor,
    tolerance: Tolerance,
) -> Result<Comparison> {
    let actual_summary = to_f64_flat(&summarize(actual)?)?;
    let expected = to_f64_flat(expected_summary)?;
    if actual_summary.len() != expected.len() {
        return Ok(Comparison::failed(
            case,
            tensor,
            tolerance,
            format!(
                "summary of {} values, expected {} (different element count)",
                actual_summary.len(),
                expected.len()
            ),
        ));
    }
    if expected.len() < 3 {
        bail!(
            "case {case}: summary of {tensor} has {} values, fewer than 3",
            expected.len()
        );
    }

    // A sum of n terms, each off by at most atol + rtol·|t|, is off by at
    // most n·atol + rtol·Σ|t|; the sampled count is used for n.
    let n = (expected.len() - 3) as f64;
    let scale = expected[2].abs();
    let sums_tolerance = Tolerance {
        atol: tolerance.atol * n.max(1.0) + (tolerance.rtol + SUM_ORDER_RTOL) * scale,
        rtol: 0.0,
    };
    let sums = compare_values(
        case,
        tensor,
        &actual_summary[..1],
        &expected[..1],
        sums_tolerance,
    )?;
    let abs_sum = compare_values(
        case,
        tensor,
        &actual_summary[2..3],
        &expected[2..3],
        sums_tolerance,
    )?;
    let samples = compare_values(
        case,
        tensor,
        &actual_summary[3..],
        &expected[3..],
        tolerance,
    )?;
    let square_sum_tolerance = Tolerance {
        atol: 0.0,
        rtol: 4.0 * tolerance.rtol.max(tolerance.atol) + SUM_ORDER_RTOL,
    };
    let squares = compare_values(
        case,
        tensor,
        &actual_summary[1..2],
        &expected[1..2],
        square_sum_tolerance,
    )?;

    let parts = [&sums, &squares, &abs_sum, &samples];
    Ok(Comparison {
        case: case.to_owned(),
        tensor: tensor.to_owned(),
        max_abs: samples.max_abs,
        max_rel: samples.max_rel,
        tolerance,
        pass: parts.iter().all(|part| part.pass),
        note: (!parts.iter().all(|part| part.pass)).then(|| {
            format!(
                "summary: sum {}, sum of squares {}, sum of |t| {}, samples {}",
                verdict(&sums),
                verdict(&squares),
                verdict(&abs_sum),
                verdict(&samples)
            )
        }),
    })
}

fn verdict(comparison: &Comparison) -> &'static str {
    if comparison.pass {
        "ok"
    } else {
        "FAILED"
    }
}

fn compare_values(
    case: &str,
    tensor: &str,
    actual: &[f64],
    expected: &[f64],
    tolerance: Tolerance,
) -> Result<Comparison> {
    let mut max_abs = 0f64;
    let mut max_rel = 0f64;
    let mut pass = true;
    for (&a, &e) in actual.iter().zip(expected) {
        if a.is_nan() || e.is_nan() {
            if !(a.is_nan() && e.is_nan()) {
                pass = false;
                max_abs = f64::INFINITY;
            }
            continue;
        }
        let error = (a - e).abs();
        if a == e {
            continue;
        }
        max_abs = max_abs.max(error);
        max_rel = max_rel.max(error / e.abs().max(f64::MIN_POSITIVE));
        if !(error <= tolerance.atol + tolerance.rtol * e.abs()) {
            pass = false;
        }
    }
    Ok(Comparison {
        case: case.to_owned(),
        tensor: tensor.to_owned(),
        max_abs,
        max_rel,
        tolerance,
        pass,
        note: None,
    })
}

fn squeezed(size: &[i64]) -> Vec<i64> {
    size.iter().copied().filter(|&d| d != 1).collect()
}

fn to_f64_flat(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t
        .f_detach()?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .f_contiguous()?
        .f_reshape([-1])?;
    Ok(Vec::<f64>::try_from(&flat)?)
}
