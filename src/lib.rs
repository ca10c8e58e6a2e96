//! SEGAN (Speech Enhancement GAN) on libtorch through tch, mirroring the
//! PyTorch SEGAN code and its `VirtualBatchNorm1d` layer: same layer names,
//! same state-dict keys, same numbers.
//!
//! - [`nn`]: the `VirtualBatchNorm1d` layer and the two networks.
//! - [`checkpoint`]: reading and writing `torch.save` files and safetensors.
//! - [`audio`]: WAV I/O, resampling, framing, emphasis and quality measures.
//! - [`parity`]: running fixture cases exported from PyTorch.
//! - [`train`] and [`enhance`]: the SEGAN training loop and inference.

pub mod audio;
pub mod checkpoint;
pub mod device;
pub mod enhance;
pub mod malloc;
pub mod nn;
pub mod parity;
pub mod precision;
pub mod rng;
pub mod train;
