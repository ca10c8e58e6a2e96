//! One fixture case: the arrays of an `.npz` file exported from PyTorch,
//! sorted by role.
//!
//! Array names are `<role>.<name>`, roles being `input`, `param`, `config`,
//! `upstream`, `output`, `grad`, and `summary.<param|output|grad>` for
//! tensors stored as a summary (see [`crate::parity::summary`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, ReadNpzError};
use tch::{Device, Kind, Tensor};

/// The module a case exercises, taken from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Vbn,
    Discriminator,
    Generator,
}

impl Module {
    fn from_file_name(name: &str) -> Option<Self> {
        [
            ("vbn-", Self::Vbn),
            ("discriminator-", Self::Discriminator),
            ("generator-", Self::Generator),
        ]
        .into_iter()
        .find_map(|(prefix, module)| name.starts_with(prefix).then_some(module))
    }
}

/// A case file, its arrays grouped by role as CPU tensors of their stored
/// dtype.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub path: PathBuf,
    pub module: Module,
    pub inputs: BTreeMap<String, Tensor>,
    pub params: BTreeMap<String, Tensor>,
    pub configs: BTreeMap<String, Tensor>,
    pub upstreams: BTreeMap<String, Tensor>,
    /// Names of the upstream arrays in file order, which is the order the
    /// exporter summed the loss terms in; autograd accumulates gradients in
    /// an order that follows it.
    pub upstream_order: Vec<String>,
    pub outputs: BTreeMap<String, Tensor>,
    pub grads: BTreeMap<String, Tensor>,
    pub summary_params: BTreeMap<String, Tensor>,
    pub summary_outputs: BTreeMap<String, Tensor>,
    pub summary_grads: BTreeMap<String, Tensor>,
}

impl Case {
    /// Reads a case file, failing on an unknown module prefix, an unknown
    /// role or an array of an unsupported dtype.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .with_context(|| format!("{}: file name is not valid UTF-8", path.display()))?
            .to_owned();
        let module = Module::from_file_name(&name).with_context(|| {
            format!(
                "{}: the file name must start with vbn-, discriminator- or generator-",
                path.display()
            )
        })?;

        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // ndarray-npy errors print their source's message in their own, so
        // they are flattened into one message instead of kept as a source.
        let mut npz = NpzReader::new(file)
            .map_err(|e| anyhow!("{}: not a valid .npz archive: {}", path.display(), e))?;
        let names = npz
            .names()
            .map_err(|e| anyhow!("{}: cannot list the arrays: {}", path.display(), e))?;

        let mut case = Case {
            name,
            path: path.to_owned(),
            module,
            inputs: BTreeMap::new(),
            params: BTreeMap::new(),
            configs: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            upstream_order: Vec::new(),
            outputs: BTreeMap::new(),
            grads: BTreeMap::new(),
            summary_params: BTreeMap::new(),
            summary_outputs: BTreeMap::new(),
            summary_grads: BTreeMap::new(),
        };
        for array_name in names {
            let tensor = read_array(&mut npz, &array_name)
                .with_context(|| format!("{}: array {array_name:?}", path.display()))?;
            case.insert(&array_name, tensor)
                .with_context(|| format!("{}", path.display()))?;
        }
        Ok(case)
    }

    fn insert(&mut self, array_name: &str, tensor: Tensor) -> Result<()> {
        let roles: [(&str, &mut BTreeMap<String, Tensor>); 9] = [
            ("summary.param.", &mut self.summary_params),
            ("summary.output.", &mut self.summary_outputs),
            ("summary.grad.", &mut self.summary_grads),
            ("input.", &mut self.inputs),
            ("param.", &mut self.params),
            ("config.", &mut self.configs),
            ("upstream.", &mut self.upstreams),
            ("output.", &mut self.outputs),
            ("grad.", &mut self.grads),
        ];
        for (prefix, map) in roles {
            if let Some(key) = array_name.strip_prefix(prefix) {
                if key.is_empty() {
                    bail!("array {array_name:?} has an empty name after its role");
                }
                if prefix == "upstream." {
                    self.upstream_order.push(key.to_owned());
                }
                map.insert(key.to_owned(), tensor);
                return Ok(());
            }
        }
        bail!(
            "array {array_name:?} has an unknown role; expected a name starting with input., \
             param., config., upstream., output., grad. or summary.<param|output|grad>."
        )
    }

    /// Returns input `name`, failing when the case lacks it.
    pub fn input(&self, name: &str) -> Result<&Tensor> {
        self.inputs
            .get(name)
            .with_context(|| format!("case {}: missing array input.{name}", self.name))
    }

    /// Reads an integer config scalar.
    pub fn config_int(&self, name: &str) -> Result<Option<i64>> {
        let Some(value) = self.configs.get(name) else {
            return Ok(None);
        };
        if value.numel() != 1 || value.is_floating_point() {
            bail!(
                "case {}: config.{name} must be an integer scalar, got dtype {:?} shape {:?}",
                self.name,
                value.kind(),
                value.size()
            );
        }
        Ok(Some(value.f_int64_value(&[])?))
    }

    /// Reads a float config scalar.
    pub fn config_float(&self, name: &str) -> Result<Option<f64>> {
        let Some(value) = self.configs.get(name) else {
            return Ok(None);
        };
        if value.numel() != 1 {
            bail!(
                "case {}: config.{name} must be a scalar, got shape {:?}",
                self.name,
                value.size()
            );
        }
        Ok(Some(value.f_double_value(&[])?))
    }

    /// Fails when the case contains config entries other than `allowed`.
    pub fn expect_configs(&self, allowed: &[&str]) -> Result<()> {
        for key in self.configs.keys() {
            if !allowed.contains(&key.as_str()) {
                bail!(
                    "case {}: config.{key} does not apply to this module; expected one of {allowed:?}",
                    self.name
                );
            }
        }
        Ok(())
    }

    /// Fails when the case contains inputs other than `allowed`.
    pub fn expect_inputs(&self, allowed: &[&str]) -> Result<()> {
        for key in self.inputs.keys() {
            if !allowed.contains(&key.as_str()) {
                bail!(
                    "case {}: input.{key} does not apply to this module; expected {allowed:?}",
                    self.name
                );
            }
        }
        Ok(())
    }

    /// Returns the input on `device`, with gradients recorded.
    pub fn input_on(&self, name: &str, device: Device) -> Result<Tensor> {
        Ok(self
            .input(name)?
            .f_to_device(device)?
            .detach()
            .set_requires_grad(true))
    }

    /// Returns the floating-point dtype of input `x`, which fixes the module's dtype.
    pub fn kind(&self) -> Result<Kind> {
        let kind = self.input("x")?.kind();
        match kind {
            Kind::Float | Kind::Double => Ok(kind),
            other => bail!(
                "case {}: input.x has dtype {other:?}; expected float32 or float64",
                self.name
            ),
        }
    }
}

fn read_array(npz: &mut NpzReader<File>, name: &str) -> Result<Tensor> {
    macro_rules! try_kind {
        ($elem:ty) => {
            match npz.by_name::<OwnedRepr<$elem>, IxDyn>(name) {
                Ok(array) => return to_tensor(array),
                Err(ReadNpzError::Npy(ndarray_npy::ReadNpyError::WrongDescriptor(_))) => {}
                Err(error) => bail!("{error}"),
            }
        };
    }
    try_kind!(f32);
    try_kind!(f64);
    try_kind!(i64);
    try_kind!(i32);
    try_kind!(bool);
    bail!("unsupported dtype; expected float32, float64, int64, int32 or bool")
}

fn to_tensor<T: tch::kind::Element + Clone>(array: ArrayD<T>) -> Result<Tensor> {
    let shape: Vec<i64> = array.shape().iter().map(|&d| d as i64).collect();
    let data: Vec<T> = array.as_standard_layout().iter().cloned().collect();
    Ok(Tensor::f_from_slice(&data)?.f_reshape(&shape)?)
}
