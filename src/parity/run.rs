//! Runs a case through the Rust port and compares every stored tensor.
//!
//! Each case is replayed as the exporter recorded it: the module is built
//! (from `config.init_seed`, or with the stored `param.*` values), the inputs
//! go through the forward pass, the loss `Σ (output · upstream).sum()` is
//! back-propagated, and every `output.*`, `grad.*` and `param.*` array (or
//! its summary) is compared with the Rust tensor of the same name.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use tch::{nn::VarStore, Device, Kind, Tensor};

use super::case::{Case, Module};
use super::compare::{compare_full, compare_summary, Comparison, Tolerance};
use super::tolerance::{for_module, SEEDED_INIT};
use crate::nn::{
    virtual_batch_norm1d, Discriminator, DiscriminatorConfig, Formula, Generator, VbnConfig,
    VbnVariant,
};

/// Options of a parity run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub device: Device,
    /// VBN evaluation strategy under test.
    pub formula: Formula,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            formula: Formula::default(),
        }
    }
}

/// Tensors the Rust side produced for a case.
struct Replay {
    vs: VarStore,
    outputs: BTreeMap<String, Tensor>,
    /// Leaf tensors whose gradients are compared, by `grad.*` name.
    leaves: BTreeMap<String, Tensor>,
    /// Whether the parameters came from `config.init_seed` (and so must equal
    /// any stored `param.*` exactly) rather than from the stored values.
    seeded: bool,
}

/// Runs one case and returns one comparison per stored tensor.
pub fn run_case(case: &Case, options: RunOptions) -> Result<Vec<Comparison>> {
    // Seeded initialization and dropout draw from the global generator from
    // the seed to the end of the backward pass.
    let _generator = crate::rng::lock_global_generator();
    // The exporter turns TF32 off on CUDA, as do these replays. The guard is
    // taken under the generator lock, which every replay holds.
    let _tf32 = match options.device {
        Device::Cuda(_) => Some(crate::precision::disable_tf32()?),
        _ => None,
    };
    let replay = match case.module {
        Module::Vbn => replay_vbn(case, options)?,
        Module::Discriminator => replay_discriminator(case, options)?,
        Module::Generator => replay_generator(case, options)?,
    };
    backward(case, &replay)?;
    compare_all(case, &replay, options.formula)
}

fn replay_vbn(case: &Case, options: RunOptions) -> Result<Replay> {
    case.expect_inputs(&["x", "ref_x"])?;
    case.expect_configs(&VBN_CONFIGS)?;
    let kind = case.kind()?;
    let num_features = case.input("x")?.size().get(1).copied().unwrap_or(0);
    let config = vbn_config(case, options)?;

    let (vs, vbn, seeded) = build(case, kind, options.device, |vs| {
        virtual_batch_norm1d(vs.root(), num_features, config)
    })?;

    let x = case.input_on("x", options.device)?;
    let mut outputs = BTreeMap::new();
    let mut leaves = BTreeMap::from([("x".to_owned(), x.shallow_clone())]);
    let reference = match case.inputs.contains_key("ref_x") {
        true => {
            let ref_x = case.input_on("ref_x", options.device)?;
            let reference = vbn.forward(&ref_x, None)?;
            leaves.insert("ref_x".into(), ref_x);
            outputs.insert("ref_out".into(), reference.out);
            outputs.insert("ref_mean".into(), reference.stats.mean.shallow_clone());
            outputs.insert(
                "ref_mean_sq".into(),
                reference.stats.mean_sq.shallow_clone(),
            );
            Some(reference.stats)
        }
        false => None,
    };
    let output = vbn.forward(&x, reference.as_ref())?;
    outputs.insert("out".into(), output.out);
    outputs.insert("mean".into(), output.stats.mean);
    outputs.insert("mean_sq".into(), output.stats.mean_sq);

    add_parameter_leaves(&vs, &mut leaves);
    Ok(Replay {
        vs,
        outputs,
        leaves,
        seeded,
    })
}

fn replay_discriminator(case: &Case, options: RunOptions) -> Result<Replay> {
    case.expect_inputs(&["x", "ref_x"])?;
    case.expect_configs(&VBN_CONFIGS)?;
    let kind = case.kind()?;
    let config = DiscriminatorConfig {
        vbn: vbn_config(case, options)?,
        ..DiscriminatorConfig::default()
    };

    let (vs, mut disc, seeded) = build(case, kind, options.device, |vs| {
        Discriminator::new(vs.root(), config)
    })?;
    let train = train_mode(case)?;
    disc.set_train(train);

    let x = case.input_on("x", options.device)?;
    let ref_x = case.input_on("ref_x", options.device)?;
    seed_dropout(case, train)?;
    let out = disc.forward(&x, &ref_x)?;

    let mut leaves = BTreeMap::from([("x".to_owned(), x), ("ref_x".to_owned(), ref_x)]);
    add_parameter_leaves(&vs, &mut leaves);
    Ok(Replay {
        vs,
        outputs: BTreeMap::from([("out".to_owned(), out)]),
        leaves,
        seeded,
    })
}

fn replay_generator(case: &Case, options: RunOptions) -> Result<Replay> {
    case.expect_inputs(&["x", "z"])?;
    case.expect_configs(&["init_seed", "train", "dropout_seed"])?;
    let kind = case.kind()?;

    let (vs, generator, seeded) =
        build(case, kind, options.device, |vs| Generator::new(vs.root()))?;

    let x = case.input_on("x", options.device)?;
    let z = case.input_on("z", options.device)?;
    seed_dropout(case, train_mode(case)?)?;
    let out = generator.forward(&x, &z)?;

    let mut leaves = BTreeMap::from([("x".to_owned(), x), ("z".to_owned(), z)]);
    add_parameter_leaves(&vs, &mut leaves);
    Ok(Replay {
        vs,
        outputs: BTreeMap::from([("out".to_owned(), out)]),
        leaves,
        seeded,
    })
}

/// Config entries of cases with VBN layers.
const VBN_CONFIGS: [&str; 6] = [
    "eps",
    "init_seed",
    "train",
    "dropout_seed",
    "variant",
    "stable",
];

/// Reads the VBN configuration of a case: `config.eps` (default 1e-5),
/// `config.variant` (0 reference, 1 TensorFlow SEGAN, 2 Salimans et al.),
/// `config.stable` (0 or 1).
fn vbn_config(case: &Case, options: RunOptions) -> Result<VbnConfig> {
    let variant = match case.config_int("variant")? {
        None | Some(0) => VbnVariant::Reference,
        Some(1) => VbnVariant::TensorFlow,
        Some(2) => VbnVariant::Salimans,
        Some(other) => bail!(
            "case {}: config.variant must be 0 (reference), 1 (TensorFlow) or 2 (Salimans), got {other}",
            case.name
        ),
    };
    let stable = match case.config_int("stable")? {
        None | Some(0) => false,
        Some(1) => true,
        Some(other) => bail!(
            "case {}: config.stable must be 0 or 1, got {other}",
            case.name
        ),
    };
    Ok(VbnConfig {
        eps: case.config_float("eps")?.unwrap_or(1e-5),
        formula: options.formula,
        variant,
        stable,
    })
}

/// Builds a module on the CPU in float32, from the seed when the case has
/// one (as the exporter does: build, then move and convert), else with the
/// stored parameter values; then moves it to `device` and `kind`.
fn build<M>(
    case: &Case,
    kind: Kind,
    device: Device,
    make: impl FnOnce(&VarStore) -> Result<M>,
) -> Result<(VarStore, M, bool)> {
    let mut vs = VarStore::new(Device::Cpu);
    let seed = case.config_int("init_seed")?;
    if let Some(seed) = seed {
        tch::manual_seed(seed);
    }
    let module = make(&vs)?;
    if seed.is_none() {
        load_params(case, &vs)?;
    }
    vs.set_kind(kind);
    vs.set_device(device);
    Ok((vs, module, seed.is_some()))
}

fn load_params(case: &Case, vs: &VarStore) -> Result<()> {
    let variables = vs.variables();
    for (name, variable) in &variables {
        let value = match case.params.get(name) {
            Some(value) => value,
            None if case.summary_params.contains_key(name) => bail!(
                "case {}: param.{name} is stored only as a summary, which cannot be loaded; \
                 store it in full or give config.init_seed",
                case.name
            ),
            None => bail!(
                "case {}: missing param.{name}; give every parameter or config.init_seed",
                case.name
            ),
        };
        if value.size() != variable.size() {
            bail!(
                "case {}: param.{name} has shape {:?}, the module's is {:?}",
                case.name,
                value.size(),
                variable.size()
            );
        }
        tch::no_grad(|| {
            variable
                .shallow_clone()
                .f_copy_(&value.f_to_kind(variable.kind())?)
        })?;
    }
    for name in case.params.keys() {
        if !variables.contains_key(name) {
            bail!(
                "case {}: param.{name} is not a parameter of the module",
                case.name
            );
        }
    }
    Ok(())
}

fn train_mode(case: &Case) -> Result<bool> {
    match case.config_int("train")? {
        None | Some(1) => Ok(true),
        Some(0) => Ok(false),
        Some(other) => bail!(
            "case {}: config.train must be 0 or 1, got {other}",
            case.name
        ),
    }
}

fn seed_dropout(case: &Case, train: bool) -> Result<()> {
    match case.config_int("dropout_seed")? {
        Some(seed) => tch::manual_seed(seed),
        None if train && case.module == Module::Discriminator => bail!(
            "case {}: the discriminator runs in training mode (config.train absent or 1) \
             but the case has no config.dropout_seed, so its dropout masks cannot be replayed",
            case.name
        ),
        None => {}
    }
    Ok(())
}

fn add_parameter_leaves(vs: &VarStore, leaves: &mut BTreeMap<String, Tensor>) {
    for (name, variable) in vs.variables() {
        leaves.insert(name, variable);
    }
}

fn backward(case: &Case, replay: &Replay) -> Result<()> {
    let mut loss: Option<Tensor> = None;
    for name in &case.upstream_order {
        let upstream = &case.upstreams[name];
        let output = replay.outputs.get(name).with_context(|| {
            format!(
                "case {}: upstream.{name} has no matching output; the module produces {:?}",
                case.name,
                replay.outputs.keys().collect::<Vec<_>>()
            )
        })?;
        let upstream = upstream
            .f_to_device(output.device())?
            .f_to_kind(output.kind())?
            .f_reshape(output.size())
            .with_context(|| {
                format!(
                    "case {}: upstream.{name} of shape {:?} does not fit output shape {:?}",
                    case.name,
                    upstream.size(),
                    output.size()
                )
            })?;
        let term = output.f_mul(&upstream)?.f_sum(output.kind())?;
        loss = Some(match loss {
            Some(total) => total.f_add(&term)?,
            None => term,
        });
    }
    match loss {
        Some(loss) if loss.requires_grad() => Ok(loss.f_backward()?),
        Some(_) => bail!(
            "case {}: no output depends on a tensor with gradients",
            case.name
        ),
        None if case.grads.is_empty() && case.summary_grads.is_empty() => Ok(()),
        None => bail!(
            "case {}: gradients are stored but no upstream.* array defines the loss",
            case.name
        ),
    }
}

fn compare_all(case: &Case, replay: &Replay, formula: Formula) -> Result<Vec<Comparison>> {
    let kind = case.kind()?;
    let tolerance = for_module(case.module, kind, formula);
    let variables = replay.vs.variables();

    let mut results = Vec::new();
    let mut compare = |role: &str,
                       full: &BTreeMap<String, Tensor>,
                       summaries: &BTreeMap<String, Tensor>,
                       lookup: &dyn Fn(&str) -> Option<Tensor>,
                       tolerance: Tolerance|
     -> Result<()> {
        for (name, expected) in full.iter().chain(summaries) {
            let label = format!("{role}.{name}");
            let Some(actual) = lookup(name) else {
                results.push(Comparison::failed(
                    &case.name,
                    &label,
                    tolerance,
                    format!("the Rust side produced no {role} named {name}"),
                ));
                continue;
            };
            let comparison = if summaries.contains_key(name) && !full.contains_key(name) {
                compare_summary(&case.name, &label, &actual, expected, tolerance)?
            } else {
                compare_full(&case.name, &label, &actual, expected, tolerance)?
            };
            results.push(comparison);
        }
        Ok(())
    };

    let output_lookup = |name: &str| replay.outputs.get(name).map(Tensor::shallow_clone);
    compare(
        "output",
        &case.outputs,
        &case.summary_outputs,
        &output_lookup,
        tolerance,
    )?;

    let grad_lookup = |name: &str| {
        replay
            .leaves
            .get(name)
            .map(Tensor::grad)
            .filter(Tensor::defined)
    };
    compare(
        "grad",
        &case.grads,
        &case.summary_grads,
        &grad_lookup,
        tolerance,
    )?;

    // Loaded parameters equal the stored ones by construction; seeded ones
    // test the initialization.
    if replay.seeded {
        let param_lookup = |name: &str| variables.get(name).map(Tensor::shallow_clone);
        compare(
            "param",
            &case.params,
            &case.summary_params,
            &param_lookup,
            SEEDED_INIT,
        )?;
    }

    Ok(results)
}
