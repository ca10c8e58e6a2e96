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
