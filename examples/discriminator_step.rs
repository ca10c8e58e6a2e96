//! One discriminator step of the SEGAN training loop, written for readers who
//! know the PyTorch code: each step is preceded by the Python line it
//! corresponds to.
//!
//! ```text
//! cargo run --release --example discriminator_step            # batch 2
//! cargo run --release --example discriminator_step -- 8       # batch 8
//! ```
//!
//! It runs on the first GPU when `tch::Device::cuda_if_available()` finds
//! one, and on the CPU otherwise.

use anyhow::{Context, Result};
use segan::nn::{Discriminator, DiscriminatorConfig, Generator};
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// Samples per window, the input length of both networks.
const WINDOW: i64 = 16384;

fn main() -> Result<()> {
    let batch_size: i64 = match std::env::args().nth(1) {
        Some(text) => text
            .parse()
            .with_context(|| format!("invalid batch size {text:?}: expected a positive integer"))?,
        None => 2,
    };
    anyhow::ensure!(
        batch_size > 0,
        "invalid batch size {batch_size}: expected a positive integer"
    );

    let device = Device::cuda_if_available();
    println!("device: {device:?}, batch size: {batch_size}");

    // torch.manual_seed(0)
    tch::manual_seed(0);

    // discriminator = Discriminator(); generator = Generator()
    // (then .cuda() when a GPU is used). In Rust the parameters live in a
    // VarStore, one per network, so that each optimizer updates one network.
    let d_vs = VarStore::new(device);
    let g_vs = VarStore::new(device);
    let mut discriminator = Discriminator::new(d_vs.root(), DiscriminatorConfig::default())?;
    let generator = Generator::new(g_vs.root())?;

    // d_optimizer = optim.RMSprop(discriminator.parameters(), lr=0.0001)
    let mut d_optimizer = nn::RmsProp::default().build(&d_vs, 1e-4)?;

    // discriminator.train()
    discriminator.set_train(true);

    // ref_batch = reference_batch(...): [N, 2, 16384], clean and noisy stacked
    // on the channel axis. Real code loads pre-emphasized windows of the
    // training set here; random tensors of the right shapes stand in.
    let options = (Kind::Float, device);
    let ref_batch = Tensor::f_randn([batch_size, 2, WINDOW], options)?;

    // for train_batch, train_clean, train_noisy in data_loader:
    //     train_batch: [B, 2, 16384], train_clean / train_noisy: [B, 1, 16384]
    let train_clean = Tensor::f_randn([batch_size, 1, WINDOW], options)?;
    let train_noisy = Tensor::f_randn([batch_size, 1, WINDOW], options)?;
    let train_batch = Tensor::f_cat(&[&train_clean, &train_noisy], 1)?;

    // z = nn.init.normal(torch.Tensor(train_batch.size(0), 1024, 8))
    let z = Tensor::f_randn([batch_size, 1024, 8], options)?;

    // discriminator.zero_grad()
    d_optimizer.zero_grad();

    // outputs = discriminator(train_batch, ref_batch)
    let outputs = discriminator.forward(&train_batch, &ref_batch)?;
    // clean_loss = torch.mean((outputs - 1.0) ** 2)  # we want them all to be 1
    let clean_loss = outputs.f_sub_scalar(1.0)?.f_square()?.f_mean(None)?;
    // clean_loss.backward()
    clean_loss.f_backward()?;

    // generated_outputs = generator(train_noisy, z)
    let generated_outputs = generator.forward(&train_noisy, &z)?;
    // outputs = discriminator(torch.cat((generated_outputs, train_noisy), dim=1), ref_batch)
    // The Python lets gradients reach G here and clears them with
    // `generator.zero_grad()` before the generator step. Detaching skips that
    // wasted backward pass through G and gives D the same gradients.
    let fake_batch = Tensor::f_cat(&[&generated_outputs.detach(), &train_noisy], 1)?;
    let outputs = discriminator.forward(&fake_batch, &ref_batch)?;
    // noisy_loss = torch.mean(outputs ** 2)  # we want them all to be 0
    let noisy_loss = outputs.f_square()?.f_mean(None)?;
    // noisy_loss.backward()
    noisy_loss.f_backward()?;

    // d_optimizer.step()
    d_optimizer.step();

    // 'd_clean_loss {:.4f}, d_noisy_loss {:.4f}'.format(clean_loss.item(), noisy_loss.item())
    println!(
        "d_clean_loss {:.4}, d_noisy_loss {:.4}",
        clean_loss.f_double_value(&[])?,
        noisy_loss.f_double_value(&[])?
    );
    Ok(())
}
