//! The other VBN definitions, frozen reference statistics, stable
//! statistics and reduced-precision inputs.

mod common;

use std::process::Command;

use segan::checkpoint::{self, Format, StateDict};
use segan::nn::{virtual_batch_norm1d, Discriminator, DiscriminatorConfig, VbnConfig, VbnVariant};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn layer(
    variant: VbnVariant,
    stable: bool,
    channels: i64,
) -> (VarStore, segan::nn::VirtualBatchNorm1d) {
    let vs = VarStore::new(Device::Cpu);
    let config = VbnConfig {
        variant,
        stable,
        ..VbnConfig::default()
    };
    let vbn = virtual_batch_norm1d(vs.root(), channels, config).unwrap();
    (vs, vbn)
}

#[test]
fn variant_fixtures_exist_for_both_definitions() {
    assert!(common::cpu_cases("vbn-tf-").len() >= 2);
    assert!(common::cpu_cases("vbn-salimans-").len() >= 2);
}

#[test]
fn tensorflow_variant_keeps_reference_gradients() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, vbn) = layer(VbnVariant::TensorFlow, false, 3);
    let reference = Tensor::randn([4, 3, 9], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let stats = vbn.forward(&reference, None).unwrap().stats;
    assert!(stats.mean.requires_grad());
    assert_eq!(stats.count, 4);

    let x = Tensor::randn([2, 3, 9], (Kind::Float, Device::Cpu));
    vbn.forward(&x, Some(&stats))
        .unwrap()
        .out
        .sum(Kind::Float)
        .backward();
    assert!(
        reference.grad().defined(),
        "no gradient reached the reference batch"
    );
}

#[test]
fn salimans_variant_mixes_per_example() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, vbn) = layer(VbnVariant::Salimans, false, 3);
    let reference = Tensor::randn([5, 3, 9], (Kind::Float, Device::Cpu));
    let stats = vbn.forward(&reference, None).unwrap().stats;
    let x = Tensor::randn([2, 3, 9], (Kind::Float, Device::Cpu));
    let mixed = vbn.forward(&x, Some(&stats)).unwrap().stats;
    assert_eq!(mixed.mean.size(), vec![2, 3, 1]);

    // Each example's output depends on that example alone.
    let first = vbn.forward(&x.narrow(0, 0, 1), Some(&stats)).unwrap().out;
    let both = vbn.forward(&x, Some(&stats)).unwrap().out.narrow(0, 0, 1);
    assert!(first.allclose(&both, 1e-6, 1e-6, false));
}

#[test]
fn discriminator_keeps_parameter_names_for_every_variant() {
    let _generator = segan::rng::lock_global_generator();
    let mut reference_names: Option<Vec<String>> = None;
    for variant in [
        VbnVariant::Reference,
        VbnVariant::TensorFlow,
        VbnVariant::Salimans,
    ] {
        let vs = VarStore::new(Device::Cpu);
        let mut config = DiscriminatorConfig::default();
        config.vbn.variant = variant;
        let disc = Discriminator::new(vs.root(), config).unwrap();
        let names: Vec<String> = disc
            .named_parameters()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        match &reference_names {
            None => reference_names = Some(names),
            Some(expected) => assert_eq!(&names, expected, "{variant:?}"),
        }
    }
}

fn eval_discriminator() -> (VarStore, Discriminator) {
    let vs = VarStore::new(Device::Cpu);
    let mut disc = Discriminator::new(vs.root(), DiscriminatorConfig::default()).unwrap();
    disc.set_train(false);
    (vs, disc)
}

#[test]
fn frozen_stats_match_reference_pass_bit_for_bit() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, mut disc) = eval_discriminator();
    let x = Tensor::randn([2, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;
    let reference = Tensor::randn([3, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;

    let error = disc.forward_frozen(&x).unwrap_err().to_string();
    assert!(error.contains("no frozen reference statistics"), "{error}");

    let expected = tch::no_grad(|| disc.forward(&x, &reference)).unwrap();
    disc.freeze_reference_stats(&reference).unwrap();
    let frozen = tch::no_grad(|| disc.forward_frozen(&x)).unwrap();
    assert!(frozen.equal(&expected));
}

#[test]
fn frozen_stats_round_trip_through_checkpoint_and_pytorch() {
    let _generator = segan::rng::lock_global_generator();
    let (_vs, mut disc) = eval_discriminator();
    let x = Tensor::randn([1, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;
    let reference = Tensor::randn([2, 2, 16384], (Kind::Float, Device::Cpu)) * 0.1;
    disc.freeze_reference_stats(&reference).unwrap();
    let expected = tch::no_grad(|| disc.forward_frozen(&x)).unwrap();

    let mut state_dict = StateDict::new();
    for (name, tensor) in disc
        .named_parameters()
        .into_iter()
        .chain(disc.named_buffers().unwrap())
    {
        state_dict.insert(name, tensor.detach());
    }
    assert!(state_dict.get("vbn1.ref_mean").is_some());
    assert!(state_dict.get("vbn11.ref_mean_sq").is_some());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frozen.pt");
    checkpoint::save_state_dict(&path, &state_dict, Format::TorchZip).unwrap();

    let loaded = checkpoint::load_state_dict(&path, None).unwrap();
    let (_vs2, mut restored) = eval_discriminator();
    assert!(restored.load_buffers(&loaded.entries).unwrap());
    let params = restored.named_parameters();
    for (name, param) in &params {
        let value = loaded.get(name).unwrap();
        tch::no_grad(|| param.shallow_clone().copy_(value));
    }
    let output = tch::no_grad(|| restored.forward_frozen(&x)).unwrap();
    assert!(output.equal(&expected));

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = format!(
        "import sys; sys.path.insert(0, {scripts:?}); import torch; from reference import Discriminator\n\
         state = torch.load({path:?}, weights_only=True)\n\
         result = Discriminator().load_state_dict(state, strict=False)\n\
         assert not result.missing_keys, result.missing_keys\n\
         assert len(result.unexpected_keys) == 33, result.unexpected_keys\n",
        scripts = root.join("scripts").to_str().unwrap(),
        path = path.to_str().unwrap()
    );
    let output = Command::new(root.join(".venv/bin/python"))
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// float64 ground truth of VBN in reference mode with gamma 1, beta 0.
fn normalized_f64(x: &Tensor) -> Tensor {
    let x = x.to_kind(Kind::Double);
    let mean = x.mean_dim([0, 2].as_slice(), true, None);
    let variance = (&x - &mean)
        .square()
        .mean_dim([0, 2].as_slice(), true, None);
    (&x - &mean) / (variance + 1e-5).sqrt()
}

#[test]
fn stable_statistics_survive_large_means_in_float32() {
    let _generator = segan::rng::lock_global_generator();
    let x = Tensor::randn([4, 2, 1000], (Kind::Float, Device::Cpu)) + 1e4;
    let truth = normalized_f64(&x);

    for (stable, should_match) in [(true, true), (false, false)] {
        let (_vs, vbn) = layer(VbnVariant::Reference, stable, 2);
        let _ = tch::no_grad(|| vbn.gamma.shallow_clone().fill_(1.0));
        let out = vbn.forward(&x, None).unwrap().out.to_kind(Kind::Double);
        let error = (&out - &truth).abs().max().double_value(&[]);
        let error = if error.is_nan() { f64::INFINITY } else { error };
        // float32 resolution of values near 1e4 is 1e-3, which bounds how well
        // x − mean, and so the output, can be known.
        let matches = error < 5e-3;
        assert_eq!(
            matches, should_match,
            "stable = {stable}: max error {error}"
        );
    }
}

#[test]
fn stable_statistics_mix_like_the_formula() {
    let _generator = segan::rng::lock_global_generator();
    let x = Tensor::randn([3, 2, 50], (Kind::Double, Device::Cpu));
    let reference = Tensor::randn([5, 2, 50], (Kind::Double, Device::Cpu)) * 2.0 + 1.0;
    let run = |stable: bool| {
        tch::manual_seed(1);
        let mut vs = VarStore::new(Device::Cpu);
        let config = VbnConfig {
            stable,
            ..VbnConfig::default()
        };
        let vbn = virtual_batch_norm1d(vs.root(), 2, config).unwrap();
        vs.double();
        let stats = vbn.forward(&reference, None).unwrap().stats;
        vbn.forward(&x, Some(&stats)).unwrap().out
    };
    assert!(run(true).allclose(&run(false), 1e-10, 1e-12, false));
}

#[test]
fn bfloat16_input_uses_float32_statistics() {
    let _generator = segan::rng::lock_global_generator();
    let x = Tensor::randn([4, 3, 64], (Kind::Float, Device::Cpu));
    let (_vs32, vbn32) = layer(VbnVariant::Reference, false, 3);
    let expected = vbn32.forward(&x, None).unwrap().out;

    let mut vs = VarStore::new(Device::Cpu);
    let vbn = virtual_batch_norm1d(vs.root(), 3, VbnConfig::default()).unwrap();
    tch::no_grad(|| vbn.gamma.shallow_clone().copy_(&vbn32.gamma));
    vs.bfloat16();
    let output = vbn.forward(&x.to_kind(Kind::BFloat16), None).unwrap();
    assert_eq!(output.out.kind(), Kind::BFloat16);
    assert_eq!(output.stats.mean.kind(), Kind::Float);
    let error = (output.out.to_kind(Kind::Float) - expected)
        .abs()
        .max()
        .double_value(&[]);
    // bfloat16 keeps 8 significant bits: 2^-8 relative on O(1) outputs,
    // plus the rounding of the input itself.
    assert!(error < 0.05, "bfloat16 output off by {error}");

    let again = vbn
        .forward(&x.to_kind(Kind::BFloat16), Some(&output.stats))
        .unwrap();
    assert_eq!(again.out.kind(), Kind::BFloat16);
}

/// First and second derivatives of a reference pass on `ref_x` and a mixed
/// pass on `x`, in float64: the gradients of `Σ out · w` with respect to
/// `x`, `ref_x` and `gamma`, then the gradients of `Σ grad · v` with respect
/// to the same three.
fn derivatives(variant: VbnVariant, formula: segan::nn::Formula) -> Vec<Tensor> {
    let options = (Kind::Double, Device::Cpu);
    tch::manual_seed(11);
    let x = (Tensor::randn([3, 4, 6], options) * 2.0 + 1.5).set_requires_grad(true);
    let ref_x = (Tensor::randn([5, 4, 6], options) * 0.5 - 1.0).set_requires_grad(true);
    let w_ref = Tensor::randn([5, 4, 6], options);
    let w = Tensor::randn([3, 4, 6], options);

    let mut vs = VarStore::new(Device::Cpu);
    let config = VbnConfig {
        variant,
        formula,
        ..VbnConfig::default()
    };
    let vbn = virtual_batch_norm1d(vs.root(), 4, config).unwrap();
    vs.double();
    let reference = vbn.forward(&ref_x, None).unwrap();
    let mixed = vbn.forward(&x, Some(&reference.stats)).unwrap();
    let loss = (&reference.out * &w_ref).sum(None) + (&mixed.out * &w).sum(None);

    let inputs = [&x, &ref_x, &vbn.gamma];
    let first = Tensor::run_backward(&[loss], &inputs, true, true);
    let second_loss = first
        .iter()
        .map(|grad| (grad * Tensor::randn(grad.size(), options)).sum(None))
        .reduce(|a, b| a + b)
        .unwrap();
    let second = Tensor::run_backward(&[second_loss], &inputs, false, false);
    first.iter().map(Tensor::detach).chain(second).collect()
}

#[test]
fn fused_second_derivatives_match_reference_formula() {
    use segan::nn::Formula;
    let _generator = segan::rng::lock_global_generator();
    let names = [
        "x",
        "ref_x",
        "gamma",
        "x (2nd)",
        "ref_x (2nd)",
        "gamma (2nd)",
    ];
    for variant in [
        VbnVariant::Reference,
        VbnVariant::TensorFlow,
        VbnVariant::Salimans,
    ] {
        let expected = derivatives(variant, Formula::Reference);
        let actual = derivatives(variant, Formula::Fused);
        for ((name, expected), actual) in names.iter().zip(&expected).zip(&actual) {
            let scale = expected.abs().max().double_value(&[]).max(1.0);
            let error = (actual - expected).abs().max().double_value(&[]);
            // float64 rounding of a few dozen operations.
            assert!(
                error <= 1e-10 * scale,
                "{variant:?} {name}: fused differs by {error:e} (scale {scale:e})"
            );
        }
    }
}
