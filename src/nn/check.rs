//! Input checks shared by the layers: rank, dtype and device against the
//! parameters, with messages that name the value received and the expected one.

use anyhow::{bail, Result};
use tch::Tensor;

/// Fails unless `x` has `rank` dimensions.
pub(crate) fn expect_rank(what: &str, x: &Tensor, rank: usize, layout: &str) -> Result<()> {
    let size = x.size();
    if size.len() != rank {
        bail!(
            "{what}: expected a {rank}-D tensor {layout}, got shape {size:?} ({}-D)",
            size.len()
        );
    }
    Ok(())
}

/// Fails unless `x` has the dtype and device of `param`.
pub(crate) fn expect_like(what: &str, x: &Tensor, param: &Tensor) -> Result<()> {
    let (kind, expected_kind) = (x.kind(), param.kind());
    if kind != expected_kind {
        bail!(
            "{what}: dtype {kind:?} does not match the parameters' {expected_kind:?}; \
             convert the input with `to_kind` or the network with `VarStore::set_kind`"
        );
    }
    let (device, expected_device) = (x.device(), param.device());
    if device != expected_device {
        bail!(
            "{what}: input is on {device:?} but the parameters are on {expected_device:?}; \
             move one of them with `to_device`"
        );
    }
    Ok(())
}
