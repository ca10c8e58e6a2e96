//! CUDA checks, compiled only with `--features cuda-tests`. They fail, not
//! skip, when libtorch finds no GPU, so a GPU run cannot pass vacuously.
//!
//! `scripts/gpu_check.sh` exports CUDA fixtures with PyTorch on the GPU
//! into `SEGAN_CUDA_FIXTURES` and runs this suite.
#![cfg(feature = "cuda-tests")]

mod common;

use std::path::PathBuf;

use segan::nn::{Discriminator, DiscriminatorConfig, Formula, Generator};
use segan::parity::{find_cases, RunOptions};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn cuda() -> Device {
    assert!(
        tch::Cuda::is_available(),
        "the CUDA tests were requested but libtorch sees no GPU (tch::Cuda::is_available() is false)"
    );
    Device::Cuda(0)
}

fn cuda_fixtures() -> Vec<PathBuf> {
    let dir = std::env::var_os("SEGAN_CUDA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::fixtures().join("cuda"));
    let cases = find_cases(&[dir.clone()])
        .unwrap_or_else(|error| panic!("CUDA fixtures in {}: {error:#}", dir.display()));
    assert!(
        !cases.is_empty(),
        "no CUDA fixtures in {}; export them with scripts/gpu_check.sh",
        dir.display()
    );
    cases
}

#[test]
fn cuda_is_visible() {
    cuda();
    assert!(tch::Cuda::device_count() >= 1);
}

#[test]
fn cuda_fixtures_match_pytorch_on_gpu() {
    let device = cuda();
    common::assert_cases_pass(
        &cuda_fixtures(),
        RunOptions {
            device,
            formula: Formula::Reference,
        },
    );
}

#[test]
fn cuda_fixtures_match_with_fused_formula() {
    let device = cuda();
    common::assert_cases_pass(
        &cuda_fixtures(),
        RunOptions {
            device,
            formula: Formula::Fused,
        },
    );
}

#[test]
fn cpu_fixtures_hold_on_gpu() {
    let device = cuda();
    for prefix in ["vbn-", "generator-", "discriminator-eval"] {
        common::assert_cases_pass(
            &common::cpu_cases(prefix),
            RunOptions {
                device,
                formula: Formula::Reference,
            },
        );
    }
}

#[test]
fn networks_run_forward_and_backward_on_gpu() {
    let device = cuda();
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(device);
    let disc = Discriminator::new(vs.root(), DiscriminatorConfig::default()).unwrap();
    let gen = Generator::new(vs.root() / "g").unwrap();
    let noisy = Tensor::randn([2, 1, 16384], (Kind::Float, device)) * 0.1;
    let z = Tensor::randn([2, 1024, 8], (Kind::Float, device));
    let enhanced = gen.forward(&noisy, &z).unwrap();
    let pair = Tensor::cat(&[&enhanced, &noisy], 1);
    let out = disc.forward(&pair, &pair.detach()).unwrap();
    out.sum(Kind::Float).backward();
    assert_eq!(out.device(), device);
    assert!(disc.convs[0].weight.grad().defined());
    assert!(gen.encoders[0].weight.grad().defined());
}

#[test]
fn half_precision_vbn_matches_float32_on_gpu() {
    let device = cuda();
    let _generator = segan::rng::lock_global_generator();
    let x = Tensor::randn([8, 64, 512], (Kind::Float, device)) * 3.0 + 2.0;
    let vs = VarStore::new(device);
    let vbn = segan::nn::virtual_batch_norm1d(vs.root(), 64, Default::default()).unwrap();
    let reference = vbn.forward(&x, None).unwrap();
    let expected = vbn.forward(&x, Some(&reference.stats)).unwrap().out;

    for kind in [Kind::Half, Kind::BFloat16] {
        let mut vs_low = VarStore::new(device);
        let low = segan::nn::virtual_batch_norm1d(vs_low.root(), 64, Default::default()).unwrap();
        tch::no_grad(|| low.gamma.shallow_clone().copy_(&vbn.gamma));
        vs_low.set_kind(kind);
        let input = x.to_kind(kind);
        let stats = low.forward(&input, None).unwrap().stats;
        assert_eq!(
            stats.mean.kind(),
            Kind::Float,
            "{kind:?} statistics are not float32"
        );
        let out = low.forward(&input, Some(&stats)).unwrap().out;
        assert_eq!(out.kind(), kind);
        let error = (out.to_kind(Kind::Float) - &expected)
            .abs()
            .max()
            .double_value(&[]);
        // Half keeps 11 significant bits and bfloat16 8: errors of 2^-10 and
        // 2^-7 relative on O(1) outputs, plus the rounding of the input.
        let bound = if kind == Kind::Half { 5e-3 } else { 5e-2 };
        assert!(error < bound, "{kind:?} output off by {error}");
    }
}
