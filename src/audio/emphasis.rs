//! First-order pre-emphasis and de-emphasis filters.
//!
//! SEGAN pre-emphasizes every window before it enters the generator and
//! de-emphasizes the generator output. The filters work in f64 and round to
//! f32 once per output sample.

/// Emphasis coefficient used by SEGAN.
pub const EMPHASIS: f32 = 0.95;

/// Applies pre-emphasis: `y[0] = x[0]`, `y[n] = x[n] - coeff * x[n-1]`.
pub fn pre_emphasis(x: &[f32], coeff: f32) -> Vec<f32> {
    let coeff = f64::from(coeff);
    let mut previous = 0.0f64;
    x.iter()
        .map(|&sample| {
            let sample = f64::from(sample);
            let y = sample - coeff * previous;
            previous = sample;
            y as f32
        })
        .collect()
}

/// Applies de-emphasis, the exact inverse of [`pre_emphasis`]:
/// `y[0] = x[0]`, `y[n] = x[n] + coeff * y[n-1]`.
///
/// This is the all-pole filter `1 / (1 - coeff z^-1)`, the same as
/// `scipy.signal.lfilter([1], [1, -coeff], x)`. The recursion carries the
/// unrounded f64 value of `y[n-1]`.
pub fn de_emphasis(x: &[f32], coeff: f32) -> Vec<f32> {
    let coeff = f64::from(coeff);
    let mut previous = 0.0f64;
    x.iter()
        .map(|&sample| {
            previous = f64::from(sample) + coeff * previous;
            previous as f32
        })
        .collect()
}

/// Applies the de-emphasis of the PyTorch SEGAN code:
/// `y[0] = x[0]`, `y[n] = x[n] + coeff * x[n-1]`.
///
/// This FIR filter does not invert [`pre_emphasis`]: applied after it, the
/// result is `x[n] - coeff^2 * x[n-2]`. It exists to reproduce outputs of
/// the reference code; use [`de_emphasis`] otherwise.
pub fn de_emphasis_reference(x: &[f32], coeff: f32) -> Vec<f32> {
    let coeff = f64::from(coeff);
    let mut previous = 0.0f64;
    x.iter()
        .map(|&sample| {
            let sample = f64::from(sample);
            let y = sample + coeff * previous;
            previous = sample;
            y as f32
        })
        .collect()
}
