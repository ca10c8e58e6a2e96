//! Discriminator and generator: state-dict keys, seeded initialization,
//! dropout, outputs and gradients against the PyTorch fixtures, and errors.

mod common;

use std::fs;

use segan::nn::{Discriminator, DiscriminatorConfig, DiscriminatorOutput, Formula, Generator};
use segan::parity::RunOptions;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn options(formula: Formula) -> RunOptions {
    RunOptions {
        device: Device::Cpu,
        formula,
    }
}

/// `(key, shape)` pairs of a VarStore, in PyTorch's state-dict order.
fn keys_of(vs: &VarStore, expected_order: &[(String, Vec<i64>)]) -> Vec<(String, Vec<i64>)> {
    let variables = vs.variables();
    let mut keys: Vec<(String, Vec<i64>)> = variables
        .iter()
        .map(|(name, tensor)| (name.clone(), tensor.size()))
        .collect();
    let position = |name: &str| expected_order.iter().position(|(key, _)| key == name);
    keys.sort_by_key(|(name, _)| position(name).unwrap_or(usize::MAX));
    keys
}

fn pytorch_keys(network: &str) -> Vec<(String, Vec<i64>)> {
    let path = common::fixtures().join(format!("state_dict/state-dict-{network}.txt"));
    fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| {
            let (key, shape) = line.split_once(' ').unwrap();
            let shape = shape.split(',').map(|d| d.parse().unwrap()).collect();
            (key.to_owned(), shape)
        })
        .collect()
}

#[test]
fn discriminator_keys_and_shapes_match_pytorch() {
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(Device::Cpu);
    let _disc = Discriminator::new(vs.root(), DiscriminatorConfig::default()).unwrap();
    let expected = pytorch_keys("discriminator");
    assert_eq!(keys_of(&vs, &expected), expected);
}

#[test]
fn generator_keys_and_shapes_match_pytorch() {
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(Device::Cpu);
    let _gen = Generator::new(vs.root()).unwrap();
    let expected = pytorch_keys("generator");
    assert_eq!(keys_of(&vs, &expected), expected);
}

#[test]
fn discriminator_fixtures_match_pytorch() {
    common::assert_cases_pass(
        &common::cpu_cases("discriminator-"),
        options(Formula::Reference),
    );
}

#[test]
fn discriminator_fixtures_match_pytorch_fused_vbn() {
    // The training case with batch 4 has the worst-conditioned gradients.
    common::assert_cases_pass(
        &common::cpu_cases("discriminator-train-b4"),
        options(Formula::Fused),
    );
}

#[test]
fn generator_fixtures_match_pytorch() {
    common::assert_cases_pass(
        &common::cpu_cases("generator-"),
        options(Formula::Reference),
    );
}

#[test]
fn network_fixtures_check_seeded_parameters() {
    for path in common::cpu_cases("discriminator-")
        .iter()
        .chain(&common::cpu_cases("generator-"))
    {
        let rows = segan::parity::run_case_file(path, options(Formula::Reference)).unwrap();
        let params = rows
            .iter()
            .filter(|row| row.tensor.starts_with("param."))
            .count();
        assert!(
            params > 40,
            "{}: only {params} seeded parameters compared",
            path.display()
        );
        for row in rows.iter().filter(|row| row.tensor.starts_with("param.")) {
            assert!(row.pass, "{} {} is not bit-identical", row.case, row.tensor);
            assert_eq!(row.max_abs, 0.0, "{} {}", row.case, row.tensor);
        }
    }
}

#[test]
fn discriminator_fixtures_cover_modes_and_batches() {
    let _generator = segan::rng::lock_global_generator();
    let names: Vec<String> = common::cpu_cases("discriminator-")
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for needle in [
        "eval-b1", "eval-b2", "eval-b4", "train-b1", "train-b2", "train-b4",
    ] {
        assert!(
            names.iter().any(|name| name.contains(needle)),
            "no case {needle}"
        );
    }
}

fn windows(batch: i64, channels: i64) -> Tensor {
    Tensor::randn([batch, channels, 16384], (Kind::Float, Device::Cpu)) * 0.1
}

fn discriminator(output: DiscriminatorOutput) -> (VarStore, Discriminator) {
    let vs = VarStore::new(Device::Cpu);
    let config = DiscriminatorConfig {
        output,
        ..DiscriminatorConfig::default()
    };
    let disc = Discriminator::new(vs.root(), config).unwrap();
    (vs, disc)
}

fn error_of<T: std::fmt::Debug>(result: anyhow::Result<T>) -> String {
    format!("{:#}", result.expect_err("expected an error"))
}

#[test]
fn discriminator_returns_batch_by_one_for_every_batch() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, mut disc) = discriminator(DiscriminatorOutput::Sigmoid);
    disc.set_train(false);
    let reference = windows(2, 2);
    for batch in [1, 3] {
        let out = tch::no_grad(|| disc.forward(&windows(batch, 2), &reference)).unwrap();
        assert_eq!(out.size(), vec![batch, 1]);
    }
}

#[test]
fn discriminator_logits_option_skips_sigmoid() {
    let _generator = segan::rng::lock_global_generator();
    tch::manual_seed(3);
    let (_vs, mut sigmoid) = discriminator(DiscriminatorOutput::Sigmoid);
    tch::manual_seed(3);
    let (_vs2, mut logits) = discriminator(DiscriminatorOutput::Logits);
    sigmoid.set_train(false);
    logits.set_train(false);
    let (x, reference) = (windows(2, 2), windows(2, 2));
    let probabilities = tch::no_grad(|| sigmoid.forward(&x, &reference)).unwrap();
    let raw = tch::no_grad(|| logits.forward(&x, &reference)).unwrap();
    assert!(raw.sigmoid().allclose(&probabilities, 1e-6, 1e-7, false));
}

#[test]
fn discriminator_dropout_follows_mode() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, mut disc) = discriminator(DiscriminatorOutput::Sigmoid);
    let (x, reference) = (windows(2, 2), windows(2, 2));
    disc.set_train(false);
    let first = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    let second = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    assert!(first.equal(&second));

    disc.set_train(true);
    tch::manual_seed(1);
    let first = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    tch::manual_seed(2);
    let second = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    assert!(
        !first.equal(&second),
        "dropout masks did not change with the seed"
    );
}

#[test]
fn discriminator_rejects_bad_shapes() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, disc) = discriminator(DiscriminatorOutput::Sigmoid);
    let reference = windows(1, 2);

    let message = error_of(disc.forward(
        &Tensor::zeros([2, 16384], (Kind::Float, Device::Cpu)),
        &reference,
    ));
    assert!(message.contains("expected a 3-D tensor"), "{message}");

    let message = error_of(disc.forward(&windows(1, 1), &reference));
    assert!(message.contains("expected 2 channels"), "{message}");
    assert!(message.contains("[1, 1, 16384]"), "{message}");

    let short = Tensor::zeros([1, 2, 8000], (Kind::Float, Device::Cpu));
    let message = error_of(disc.forward(&short, &reference));
    assert!(message.contains("expected length 16384"), "{message}");
    assert!(message.contains("final linear layer"), "{message}");

    let message = error_of(disc.forward(&windows(1, 2), &windows(1, 3)));
    assert!(message.contains("reference batch"), "{message}");
    assert!(message.contains("[1, 3, 16384]"), "{message}");

    let message = error_of(disc.forward(&windows(1, 2), &short));
    assert!(
        message.contains("reference batch: expected length 16384"),
        "{message}"
    );
}

#[test]
fn discriminator_rejects_dtype_unlike_parameters() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, disc) = discriminator(DiscriminatorOutput::Sigmoid);
    let x = windows(1, 2).to_kind(Kind::Double);
    let message = error_of(disc.forward(&x, &windows(1, 2)));
    assert!(message.contains("dtype Double does not match"), "{message}");
}

#[test]
fn generator_rejects_bad_shapes() {
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(Device::Cpu);
    let gen = Generator::new(vs.root()).unwrap();
    let z = Tensor::zeros([2, 1024, 8], (Kind::Float, Device::Cpu));

    let message = error_of(gen.forward(&windows(2, 2), &z));
    assert!(
        message.contains("expected shape [B, 1, 16384], got [2, 2, 16384]"),
        "{message}"
    );

    let message =
        error_of(gen.forward(&Tensor::zeros([2, 1, 100], (Kind::Float, Device::Cpu)), &z));
    assert!(message.contains("got [2, 1, 100]"), "{message}");

    let message = error_of(gen.forward(&windows(3, 1), &z));
    assert!(
        message.contains("expected shape [3, 1024, 8] for a batch of 3, got [2, 1024, 8]"),
        "{message}"
    );

    let z_double = z.to_kind(Kind::Double);
    let message = error_of(gen.forward(&windows(2, 1), &z_double));
    assert!(message.contains("latent z: dtype Double"), "{message}");
}

#[test]
fn generator_output_is_bounded_and_shaped() {
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(Device::Cpu);
    let gen = Generator::new(vs.root()).unwrap();
    let z = Tensor::randn([1, 1024, 8], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| gen.forward(&windows(1, 1), &z)).unwrap();
    assert_eq!(out.size(), vec![1, 1, 16384]);
    assert!(out.abs().max().double_value(&[]) <= 1.0);
}

#[test]
fn named_parameters_follow_pytorch_state_dict_order() {
    let _generator = segan::rng::lock_global_generator();
    let vs = VarStore::new(Device::Cpu);
    let disc = Discriminator::new(vs.root(), DiscriminatorConfig::default()).unwrap();
    let names: Vec<String> = disc
        .named_parameters()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let expected: Vec<String> = pytorch_keys("discriminator")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(names, expected);

    let vs = VarStore::new(Device::Cpu);
    let gen = Generator::new(vs.root()).unwrap();
    let names: Vec<String> = gen
        .named_parameters()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let expected: Vec<String> = pytorch_keys("generator")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(names, expected);
}
