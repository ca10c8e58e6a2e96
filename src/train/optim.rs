//! RMSprop and Adam with PyTorch's update rules and state-dict layout, so
//! that a checkpoint's optimizer state resumes here or in PyTorch.
//!
//! tch's optimizers keep their state inside libtorch where it cannot be
//! saved, which would lose the running averages on `--resume`.

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use crate::checkpoint::Value;

/// Optimizer choice and hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// `torch.optim.RMSprop(lr)` with alpha 0.99, eps 1e-8, as the SEGAN
    /// PyTorch code trains both networks (lr 1e-4).
    RmsProp { lr: f64 },
    /// `torch.optim.Adam(lr, betas)`, eps 1e-8, as SEGAN ports with
    /// lr 1e-4 and betas (0.5, 0.999) train.
    Adam { lr: f64, beta1: f64, beta2: f64 },
}

impl OptimizerKind {
    /// Returns the optimizer's usual name: "RMSprop" or "Adam".
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::RmsProp { .. } => "RMSprop",
            OptimizerKind::Adam { .. } => "Adam",
        }
    }
}

const RMSPROP_ALPHA: f64 = 0.99;
const EPS: f64 = 1e-8;

/// An optimizer over an ordered list of parameters.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    params: Vec<Tensor>,
    /// `square_avg` (RMSprop) or `exp_avg` (Adam), one per parameter.
    first: Vec<Tensor>,
    /// `exp_avg_sq` (Adam), one per parameter; empty for RMSprop.
    second: Vec<Tensor>,
    step: i64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, params: Vec<Tensor>) -> Result<Self> {
        let zeros = |params: &[Tensor]| -> Result<Vec<Tensor>> {
            params
                .iter()
                .map(|p| Ok(p.f_zeros_like()?.f_detach()?))
                .collect()
        };
        let first = zeros(&params)?;
        let second = match kind {
            OptimizerKind::Adam { .. } => zeros(&params)?,
            OptimizerKind::RmsProp { .. } => Vec::new(),
        };
        Ok(Self {
            kind,
            params,
            first,
            second,
            step: 0,
        })
    }

    /// Number of steps taken.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// Sets every parameter's gradient to zero, like `zero_grad()`.
    pub fn zero_grad(&self) -> Result<()> {
        for param in &self.params {
            let mut grad = param.grad();
            if grad.defined() {
                let _ = grad.f_detach_()?;
                let _ = grad.f_zero_()?;
            }
        }
        Ok(())
    }

    /// Applies one update from the current gradients, with PyTorch's
    /// operations (`torch/optim/rmsprop.py`, `adam.py`, single-tensor path).
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        tch::no_grad(|| -> Result<()> {
            for index in 0..self.params.len() {
                let grad = self.params[index].grad();
                if !grad.defined() {
                    continue;
                }
                match self.kind {
                    OptimizerKind::RmsProp { lr } => self.rmsprop_update(index, &grad, lr)?,
                    OptimizerKind::Adam { lr, beta1, beta2 } => {
                        self.adam_update(index, &grad, lr, beta1, beta2)?
                    }
                }
            }
            Ok(())
        })
    }

    fn rmsprop_update(&mut self, index: usize, grad: &Tensor, lr: f64) -> Result<()> {
        let square_avg = &mut self.first[index];
        let _ = square_avg.f_mul_scalar_(RMSPROP_ALPHA)?;
        let _ = square_avg.f_addcmul_(&grad.f_mul_scalar(1.0 - RMSPROP_ALPHA)?, grad)?;
        let avg = square_avg.f_sqrt()?.f_add_scalar(EPS)?;
        let update = grad.f_div(&avg)?.f_mul_scalar(lr)?;
        let _ = self.params[index].f_sub_(&update)?;
        Ok(())
    }

    fn adam_update(
        &mut self,
        index: usize,
        grad: &Tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
    ) -> Result<()> {
        let step = self.step as f64;
        let exp_avg = &mut self.first[index];
        let _ = exp_avg.f_lerp_(grad, 1.0 - beta1)?;
        let exp_avg_sq = &mut self.second[index];
        let _ = exp_avg_sq.f_mul_scalar_(beta2)?;
        let _ = exp_avg_sq.f_addcmul_(&grad.f_mul_scalar(1.0 - beta2)?, grad)?;

        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2_sqrt = (1.0 - beta2.powf(step)).sqrt();
        let step_size = lr / bias_correction1;
        let denom = exp_avg_sq
            .f_sqrt()?
            .f_div_scalar(bias_correction2_sqrt)?
            .f_add_scalar(EPS)?;
        let update = self.first[index].f_div(&denom)?.f_mul_scalar(step_size)?;
        let _ = self.params[index].f_sub_(&update)?;
        Ok(())
    }

    /// Returns the state in `torch.optim.Optimizer.state_dict()` layout:
    /// `{"state": {i: {...}}, "param_groups": [{..., "params": [0, 1, ...]}]}`.
    pub fn state_dict(&self) -> Result<Value> {
        let mut state = Vec::new();
        for index in 0..self.params.len() {
            let step = Tensor::f_from_slice(&[self.step as f32])?.f_reshape([] as [i64; 0])?;
            let mut entry = vec![(Value::Str("step".into()), Value::Tensor(step))];
            match self.kind {
                OptimizerKind::RmsProp { .. } => {
                    entry.push((
                        Value::Str("square_avg".into()),
                        cpu_tensor(&self.first[index])?,
                    ));
                }
                OptimizerKind::Adam { .. } => {
                    entry.push((
                        Value::Str("exp_avg".into()),
                        cpu_tensor(&self.first[index])?,
                    ));
                    entry.push((
                        Value::Str("exp_avg_sq".into()),
                        cpu_tensor(&self.second[index])?,
                    ));
                }
            }
            state.push((Value::Int(index as i64), Value::Dict(entry)));
        }

        let params = (0..self.params.len() as i64).map(Value::Int).collect();
        let group = self.param_group(params);
        Ok(Value::Dict(vec![
            (Value::Str("state".into()), Value::Dict(state)),
            (Value::Str("param_groups".into()), Value::List(vec![group])),
        ]))
    }

    fn param_group(&self, params: Vec<Value>) -> Value {
        let float = |key: &str, value: f64| (Value::Str(key.into()), Value::Float(value));
        let flag = |key: &str, value: bool| (Value::Str(key.into()), Value::Bool(value));
        let mut entries = match self.kind {
            OptimizerKind::RmsProp { lr } => vec![
                float("lr", lr),
                float("alpha", RMSPROP_ALPHA),
                float("eps", EPS),
                float("weight_decay", 0.0),
                float("momentum", 0.0),
                flag("centered", false),
            ],
            OptimizerKind::Adam { lr, beta1, beta2 } => vec![
                float("lr", lr),
                (
                    Value::Str("betas".into()),
                    Value::Tuple(vec![Value::Float(beta1), Value::Float(beta2)]),
                ),
                float("eps", EPS),
                float("weight_decay", 0.0),
                flag("amsgrad", false),
            ],
        };
        entries.push(flag("maximize", false));
        entries.push((Value::Str("params".into()), Value::List(params)));
        Value::Dict(entries)
    }

    /// Restores the state written by [`Self::state_dict`] (or by PyTorch for
    /// the same optimizer and parameter order).
    pub fn load_state_dict(&mut self, value: &Value) -> Result<()> {
        let state = value
            .get("state")
            .and_then(Value::as_dict)
            .context("optimizer state: missing the \"state\" dict")?;
        let names: &[&str] = match self.kind {
            OptimizerKind::RmsProp { .. } => &["square_avg"],
            OptimizerKind::Adam { .. } => &["exp_avg", "exp_avg_sq"],
        };
        let saved_kind = state.first().and_then(|(_, entry)| {
            if entry.get("exp_avg").is_some() {
                Some("Adam")
            } else if entry.get("square_avg").is_some() {
                Some("RMSprop")
            } else {
                None
            }
        });
        let kind = self.kind.name();
        if let Some(saved) = saved_kind.filter(|&saved| saved != kind) {
            bail!(
                "the saved optimizer state is {saved}'s, but this optimizer is {kind}; resume with \
                 the optimizer the checkpoint was trained with (--optimizer {})",
                saved.to_lowercase()
            );
        }
        if state.len() != self.params.len() {
            bail!(
                "optimizer state contains {} parameters, but the network has {}",
                state.len(),
                self.params.len()
            );
        }

        let mut step = 0;
        for (key, entry) in state {
            let index = key
                .as_int()
                .filter(|&i| i >= 0 && (i as usize) < self.params.len())
                .with_context(|| format!("optimizer state: invalid parameter index {key:?}"))?
                as usize;
            step = read_step(entry)?;
            for (slot, name) in names.iter().enumerate() {
                let tensor = entry
                    .get(name)
                    .and_then(Value::as_tensor)
                    .with_context(|| format!("optimizer state {index}: missing {name}"))?;
                let target = if slot == 0 {
                    &mut self.first[index]
                } else {
                    &mut self.second[index]
                };
                if tensor.size() != target.size() {
                    bail!(
                        "optimizer state {index}.{name}: shape {:?}, the parameter's is {:?}",
                        tensor.size(),
                        target.size()
                    );
                }
                let converted = tensor
                    .f_to_device(target.device())?
                    .f_to_kind(target.kind())?;
                tch::no_grad(|| target.f_copy_(&converted))?;
            }
        }
        self.step = step;
        Ok(())
    }
}

fn read_step(entry: &Value) -> Result<i64> {
    match entry.get("step") {
        Some(Value::Tensor(t)) => Ok(t.f_double_value(&[])? as i64),
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Float(f)) => Ok(*f as i64),
        _ => bail!("optimizer state: missing or invalid \"step\""),
    }
}

fn cpu_tensor(t: &Tensor) -> Result<Value> {
    Ok(Value::Tensor(
        t.f_detach()?
            .f_to_device(tch::Device::Cpu)?
            .f_to_kind(Kind::Float)?,
    ))
}
