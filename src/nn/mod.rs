//! The `VirtualBatchNorm1d` layer and the SEGAN networks, with PyTorch's
//! layer names, state-dict keys and seeded initialization.

mod check;
pub mod discriminator;
pub mod generator;
pub mod layers;
pub mod vbn;

pub use discriminator::{Discriminator, DiscriminatorConfig, DiscriminatorOutput};
pub use generator::Generator;
pub use vbn::{
    virtual_batch_norm1d, Formula, VbnConfig, VbnOutput, VbnStats, VbnVariant, VirtualBatchNorm1d,
};
