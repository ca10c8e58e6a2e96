//! Discriminator inference with frozen reference statistics against the
//! reference's two passes per call (reference batch, then input batch).
//!
//!     cargo run --release --example bench_frozen -- [batch] [reference] [repeats]
//!
//! Prints the median time of each and their ratio. Evaluation mode, no
//! gradients, float32 on the CPU.

use std::time::Instant;

use segan::nn::{Discriminator, DiscriminatorConfig};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    // SAFETY: no other thread exists yet.
    unsafe { segan::malloc::set_steady_thresholds() };
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let batch = args.first().copied().unwrap_or(8) as i64;
    let reference_size = args.get(1).copied().unwrap_or(8) as i64;
    let repeats = args.get(2).copied().unwrap_or(5);

    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let mut disc = Discriminator::new(vs.root(), DiscriminatorConfig::default())?;
    disc.set_train(false);
    let x = Tensor::randn([batch, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;
    let reference = Tensor::randn([reference_size, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;

    let two_passes = median_seconds(repeats, || {
        let _ = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    });
    disc.freeze_reference_stats(&reference)?;
    let frozen = median_seconds(repeats, || {
        let _ = tch::no_grad(|| disc.forward_frozen(&x)).unwrap();
    });

    println!(
        "discriminator inference, batch {batch}, reference batch {reference_size}, {} threads, median of {repeats}",
        tch::get_num_threads()
    );
    println!("two passes (reference batch + input): {two_passes:.3} s");
    println!("frozen reference statistics:          {frozen:.3} s");
    println!("speed-up: {:.2}x", two_passes / frozen);
    Ok(())
}
