//! Tolerances of the parity checks, one per module and dtype.
//!
//! The Rust layers call the same ATen kernels as PyTorch in the same order
//! with [`Formula::Reference`], and on the machine that exported the
//! committed fixtures `segan parity fixtures/cpu` finds every tensor
//! bit-identical. The bounds leave room for what can still differ: kernels
//! that pick another reduction order on another CPU or thread count, and the
//! reordered arithmetic of [`Formula::Fused`]; the errors observed with the
//! fused formula are in each comment.

use tch::Kind;

use super::case::Module;
use super::compare::Tolerance;
use crate::nn::Formula;

/// VBN in float32. Outputs are O(1) normalized values; the fused formula
/// multiplies by `gamma / std` once instead of dividing every element, a
/// few float32 ulps (≈ 1e-7 relative) apart; observed 3e-6. Gradients of
/// `gamma` sum up to 16·257 terms of magnitude up to 10, in another order
/// (the batch-norm kernel accumulates in float64); observed 5e-5.
pub const VBN_F32: Tolerance = Tolerance {
    atol: 2e-5,
    rtol: 1e-4,
};

/// VBN in float64: the same reordering at float64 precision.
pub const VBN_F64: Tolerance = Tolerance {
    atol: 1e-12,
    rtol: 1e-10,
};

/// The discriminator in float32 with the reference VBN formula: eleven
/// convolutions with reductions over up to 31·1024 products, each followed
/// by VBN; rounding differences grow through the layers, and the gradients
/// of the convolution weights sum over the batch and the length.
pub const DISCRIMINATOR_F32: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-3,
};

/// The generator in float32: the same convolutions as PyTorch with no
/// normalization; differences can come only from reduction order in the
/// kernels.
pub const GENERATOR_F32: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-3,
};

/// The discriminator in float32 with [`Formula::Fused`]. The gradients of
/// the first layers' biases are sums of large terms that nearly cancel,
/// because VBN removes most of a per-channel shift: in
/// `discriminator-train-b4-r3` the reference formula's own float32 rounding
/// moves `grad.conv1.bias` by 6.5e-3 from a float64 evaluation of the
/// normalization, and the fused formula by 4.9e-3 (4.8e-3 from the
/// reference). The bound is the reference's own error with headroom
/// (`scripts/vbn_conditioning.py` measures both).
pub const DISCRIMINATOR_FUSED_F32: Tolerance = Tolerance {
    atol: 1e-2,
    rtol: 1e-2,
};

/// Networks in float64 (cases a user exports in double precision).
pub const NETWORK_F64: Tolerance = Tolerance {
    atol: 1e-10,
    rtol: 1e-8,
};

/// Parameters drawn from a seed: the same generator draws the same values,
/// so they must be bit-identical.
pub const SEEDED_INIT: Tolerance = Tolerance::EXACT;

/// Returns the tolerance for outputs and gradients of `module` in `kind`
/// with the VBN `formula`.
pub fn for_module(module: Module, kind: Kind, formula: Formula) -> Tolerance {
    match (module, kind, formula) {
        (Module::Vbn, Kind::Double, _) => VBN_F64,
        (Module::Vbn, _, _) => VBN_F32,
        (_, Kind::Double, _) => NETWORK_F64,
        (Module::Discriminator, _, Formula::Reference) => DISCRIMINATOR_F32,
        (Module::Discriminator, _, Formula::Fused) => DISCRIMINATOR_FUSED_F32,
        (Module::Generator, _, _) => GENERATOR_F32,
    }
}
