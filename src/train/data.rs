//! Batches of pre-emphasized `[B, 2, 16384]` (clean, noisy) windows, and the
//! fixed reference batch of virtual batch normalization.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tch::{Device, Tensor};

use crate::audio::{pre_emphasis, WindowDataset, EMPHASIS, WINDOW};

/// Loads windows `indices` of `dataset`, pre-emphasizes both channels, and
/// stacks them as a `[len, 2, 16384]` float32 tensor on `device`.
pub fn load_batch(dataset: &WindowDataset, indices: &[usize], device: Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(indices.len() * 2 * WINDOW);
    for &index in indices {
        let (clean, noisy) = dataset
            .get(index)
            .with_context(|| format!("cannot load training window {index}"))?;
        data.extend(pre_emphasis(&clean, EMPHASIS));
        data.extend(pre_emphasis(&noisy, EMPHASIS));
    }
    let shape = [indices.len() as i64, 2, WINDOW as i64];
    Ok(Tensor::f_from_slice(&data)?
        .f_reshape(shape)?
        .f_to_device(device)?)
}

/// Draws the reference batch: `size` windows chosen uniformly with
/// replacement, as the SEGAN PyTorch code's `ref_batch` does with
/// `np.random.choice`, from a generator seeded with `seed`.
pub fn reference_indices(dataset_len: usize, size: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..size)
        .map(|_| rng.random_range(0..dataset_len))
        .collect()
}

/// Returns the window order of `epoch` (1-based): a shuffle seeded by the run's seed
/// and the epoch, so a resumed run visits the windows in the same order.
pub fn epoch_order(dataset_len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..dataset_len).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}
