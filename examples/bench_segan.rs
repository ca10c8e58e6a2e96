//! Timing binary behind `scripts/bench.sh`. It times one training-style step
//! (forward and backward) of `VirtualBatchNorm1d`, the discriminator or the
//! generator on the CPU. It prints one JSON line with the wall-clock and CPU
//! time of every timed iteration, in seconds, and the process's resident
//! memory.
//!
//! `scripts/bench_reference.py` times the PyTorch code the same way and
//! prints the same fields, so that `bench_reference.py report` can put both
//! side by side. Run a single case per process, because the peak resident
//! set size (`VmHWM`) covers the whole life of the process.
//!
//! ```text
//! cargo run --release --example bench_segan -- --threads 2 vbn --shape 50,32,8192 --formula fused
//! cargo run --release --example bench_segan -- --warmup 1 --iters 3 discriminator
//! ```

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use segan::nn::{
    virtual_batch_norm1d, Discriminator, DiscriminatorConfig, Formula, Generator, VbnConfig,
};
use serde_json::json;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Length of the windows both networks take.
const WINDOW: i64 = 16384;

#[derive(Debug, Parser)]
#[command(about = "Time forward and backward passes of the SEGAN layers on the CPU")]
struct Args {
    /// Intra-op threads for libtorch (`tch::set_num_threads`). 0 keeps
    /// libtorch's default.
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// Untimed iterations run first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Keeps glibc's default malloc thresholds instead of the steady ones
    /// that the `segan` binary sets (`segan::malloc`); the implementation
    /// name gets the suffix `-default-malloc`.
    #[arg(long, global = true)]
    default_malloc: bool,
    /// Seed of the global libtorch generator, set before the parameters and
    /// inputs are drawn.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    #[command(subcommand)]
    case: Case,
}

#[derive(Debug, Subcommand)]
enum Case {
    /// A reference pass on a reference batch, then a mixed pass on the
    /// input, loss = sum of both outputs times fixed random upstream
    /// gradients, and the gradients of the loss with respect to both
    /// batches, `gamma` and `beta`.
    Vbn {
        /// Shape `B,C,L` of the input and of the reference batch.
        #[arg(long, value_parser = parse_shape)]
        shape: Shape,
        #[arg(long, value_enum, default_value_t = FormulaArg::Reference)]
        formula: FormulaArg,
        /// Sets `VbnConfig::stable`: two-pass variances instead of
        /// `mean_sq − mean²`.
        #[arg(long)]
        stable: bool,
    },
    /// One step of the discriminator in training mode (dropout active):
    /// loss = mean((D(x, ref_x) − 1)²) and its gradients with respect to
    /// every parameter.
    Discriminator {
        /// Batch size of the judged batch `x`, shape `[B, 2, 16384]`.
        #[arg(long, default_value_t = 8)]
        batch: i64,
        /// Size of the reference batch, shape `[N, 2, 16384]`.
        #[arg(long, default_value_t = 8)]
        ref_batch: i64,
        /// Formula of every VBN layer.
        #[arg(long, value_enum, default_value_t = FormulaArg::Reference)]
        formula: FormulaArg,
    },
    /// One step of the generator: loss = sum(G(x, z) · upstream) with a
    /// fixed random upstream, and its gradients with respect to every
    /// parameter.
    Generator {
        /// Batch size, inputs `[B, 1, 16384]` and `[B, 1024, 8]`.
        #[arg(long, default_value_t = 8)]
        batch: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormulaArg {
    Reference,
    Fused,
}

impl From<FormulaArg> for Formula {
    fn from(value: FormulaArg) -> Self {
        match value {
            FormulaArg::Reference => Formula::Reference,
            FormulaArg::Fused => Formula::Fused,
        }
    }
}

impl FormulaArg {
    fn implementation_name(self) -> &'static str {
        match self {
            Self::Reference => "rust-reference",
            Self::Fused => "rust-fused",
        }
    }
}

type Shape = [i64; 3];

fn parse_shape(text: &str) -> Result<Shape> {
    let dims: Vec<i64> = text
        .split(',')
        .map(|dim| dim.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid shape {text:?}: expected three integers B,C,L"))?;
    let Ok(shape) = Shape::try_from(dims.as_slice()) else {
        bail!("invalid shape {text:?}: expected three integers B,C,L");
    };
    ensure!(
        shape.iter().all(|&dim| dim > 0),
        "invalid shape {text:?}: every dimension must be positive"
    );
    Ok(shape)
}

/// A prepared step: the closure runs one forward and backward pass.
struct Bench {
    case: String,
    implementation: String,
    details: serde_json::Value,
    step: Box<dyn FnMut() -> Result<()>>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.iters > 0, "--iters must be at least 1");
    if !args.default_malloc {
        // SAFETY: no other thread exists yet.
        let applied = unsafe { segan::malloc::set_steady_thresholds() };
        ensure!(
            applied,
            "the malloc thresholds were not applied (malloc settings in the \
             environment, or not 64-bit glibc); rerun with --default-malloc"
        );
    }
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    tch::manual_seed(args.seed);

    let mut bench = match args.case {
        Case::Vbn {
            shape,
            formula,
            stable,
        } => vbn_bench(shape, formula, stable)?,
        Case::Discriminator {
            batch,
            ref_batch,
            formula,
        } => discriminator_bench(batch, ref_batch, formula)?,
        Case::Generator { batch } => generator_bench(batch)?,
    };
    if args.default_malloc {
        bench.implementation.push_str("-default-malloc");
    }

    // Resident memory once the parameters and inputs exist, before any pass.
    let rss_setup_kb = read_status_kb("VmRSS")?;
    for _ in 0..args.warmup {
        (bench.step)()?;
    }
    let mut times_s = Vec::with_capacity(args.iters);
    let mut cpu_times_s = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let cpu_start = process_cpu_time_s()?;
        let start = Instant::now();
        (bench.step)()?;
        times_s.push(start.elapsed().as_secs_f64());
        cpu_times_s.push(process_cpu_time_s()? - cpu_start);
    }
    let peak_rss_kb = read_status_kb("VmHWM")?;

    let record = json!({
        "case": bench.case,
        "impl": bench.implementation,
        "details": bench.details,
        "threads": tch::get_num_threads(),
        "warmup": args.warmup,
        "times_s": times_s,
        "cpu_times_s": cpu_times_s,
        "rss_setup_kb": rss_setup_kb,
        "peak_rss_kb": peak_rss_kb,
    });
    println!("{record}");
    Ok(())
}

fn vbn_bench(shape: Shape, formula: FormulaArg, stable: bool) -> Result<Bench> {
    let options = (Kind::Float, Device::Cpu);
    let vs = VarStore::new(Device::Cpu);
    let vbn = virtual_batch_norm1d(
        vs.root(),
        shape[1],
        VbnConfig {
            eps: 1e-5,
            formula: formula.into(),
            stable,
            // The PyTorch SEGAN code's statistics and mixing, which the
            // Python side runs.
            ..VbnConfig::default()
        },
    )?;
    let ref_x = Tensor::f_randn(shape, options)?.set_requires_grad(true);
    let x = Tensor::f_randn(shape, options)?.set_requires_grad(true);
    let upstream_ref = Tensor::f_randn(shape, options)?;
    let upstream_x = Tensor::f_randn(shape, options)?;

    let step = move || -> Result<()> {
        let reference = vbn.forward(&ref_x, None)?;
        let mixed = vbn.forward(&x, Some(&reference.stats))?;
        let loss = reference
            .out
            .f_mul(&upstream_ref)?
            .f_sum(None)?
            .f_add(&mixed.out.f_mul(&upstream_x)?.f_sum(None)?)?;
        let inputs = [&x, &ref_x, &vbn.gamma, &vbn.beta];
        let gradients = Tensor::f_run_backward(&[loss], &inputs, false, false)?;
        ensure!(gradients.len() == inputs.len(), "missing VBN gradients");
        Ok(())
    };
    let implementation = match (formula, stable) {
        (FormulaArg::Reference, true) => "rust-reference-stable",
        (FormulaArg::Fused, true) => "rust-fused-stable",
        (_, false) => formula.implementation_name(),
    };
    Ok(Bench {
        case: "vbn".into(),
        implementation: implementation.into(),
        details: json!({ "shape": shape }),
        step: Box::new(step),
    })
}

fn discriminator_bench(batch: i64, ref_batch: i64, formula: FormulaArg) -> Result<Bench> {
    let options = (Kind::Float, Device::Cpu);
    let vs = VarStore::new(Device::Cpu);
    let mut config = DiscriminatorConfig::default();
    config.vbn.formula = formula.into();
    let mut disc = Discriminator::new(vs.root(), config)?;
    disc.set_train(true);
    let parameters = vs.trainable_variables();
    let x = Tensor::f_randn([batch, 2, WINDOW], options)?;
    let ref_x = Tensor::f_randn([ref_batch, 2, WINDOW], options)?;

    let step = move || -> Result<()> {
        let out = disc.forward(&x, &ref_x)?;
        let loss = out.f_sub_scalar(1.0)?.f_square()?.f_mean(None)?;
        let gradients = Tensor::f_run_backward(&[loss], &parameters, false, false)?;
        ensure!(
            gradients.len() == parameters.len(),
            "missing discriminator gradients"
        );
        Ok(())
    };
    Ok(Bench {
        case: "discriminator".into(),
        implementation: formula.implementation_name().into(),
        details: json!({ "batch": batch, "ref_batch": ref_batch }),
        step: Box::new(step),
    })
}

fn generator_bench(batch: i64) -> Result<Bench> {
    let options = (Kind::Float, Device::Cpu);
    let vs = VarStore::new(Device::Cpu);
    let gen = Generator::new(vs.root())?;
    let parameters = vs.trainable_variables();
    let x = Tensor::f_randn([batch, 1, WINDOW], options)?;
    let z = Tensor::f_randn([batch, 1024, 8], options)?;
    let upstream = Tensor::f_randn([batch, 1, WINDOW], options)?;

    let step = move || -> Result<()> {
        let out = gen.forward(&x, &z)?;
        let loss = out.f_mul(&upstream)?.f_sum(None)?;
        let gradients = Tensor::f_run_backward(&[loss], &parameters, false, false)?;
        ensure!(
            gradients.len() == parameters.len(),
            "missing generator gradients"
        );
        Ok(())
    };
    Ok(Bench {
        case: "generator".into(),
        // The generator has no VBN layer, so there is a single Rust variant.
        implementation: "rust".into(),
        details: json!({ "batch": batch }),
        step: Box::new(step),
    })
}

/// Returns the CPU time of all threads of this process, in seconds, like
/// Python's `time.process_time()`.
fn process_cpu_time_s() -> Result<f64> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable `timespec` for the whole call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    ensure!(
        status == 0,
        "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed: {}",
        std::io::Error::last_os_error()
    );
    Ok(time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9)
}

/// Reads a `kB` field such as `VmRSS` or `VmHWM` from `/proc/self/status`.
fn read_status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("failed to read /proc/self/status (the benchmark needs Linux)")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("field {field} not found in /proc/self/status"))?;
    let value = line.trim().trim_end_matches("kB").trim();
    value
        .parse()
        .with_context(|| format!("invalid {field} value {value:?} in /proc/self/status"))
}
