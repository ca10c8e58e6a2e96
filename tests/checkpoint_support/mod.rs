//! Helpers shared by the checkpoint tests: checkpoints written by the real
//! PyTorch through `scripts/make_checkpoints.py`, and their expected values.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use segan::checkpoint::{StateDict, Value};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Checkpoints written by PyTorch into a temporary folder, once per test
/// binary.
pub struct Fixtures {
    dir: tempfile::TempDir,
    pub manifest: serde_json::Value,
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Returns the names of all checkpoint files, sorted.
    pub fn files(&self) -> Vec<String> {
        self.manifest
            .as_object()
            .expect("manifest is an object")
            .keys()
            .cloned()
            .collect()
    }

    /// Returns the expected `state_dicts()` result for a file, if the
    /// manifest lists one.
    pub fn expected_state_dicts(&self, file: &str) -> Option<Vec<(String, Vec<ExpectedTensor>)>> {
        let entries = self.manifest[file].get("state_dicts")?.as_object()?;
        let mut found: Vec<(String, Vec<ExpectedTensor>)> = entries
            .iter()
            .map(|(key, records)| {
                let tensors = records
                    .as_array()
                    .expect("state dict records are an array")
                    .iter()
                    .map(ExpectedTensor::from_json)
                    .collect();
                (key.clone(), tensors)
            })
            .collect();
        // serde_json sorts object keys; the file order is in top_keys.
        if let Some(order) = self.manifest[file]
            .get("top_keys")
            .and_then(|k| k.as_array())
        {
            let order: Vec<&str> = order.iter().filter_map(|k| k.as_str()).collect();
            found.sort_by_key(|(key, _)| order.iter().position(|k| k == key));
        }
        Some(found)
    }
}

/// Returns the PyTorch-written fixtures, generating them on first use.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        run_python(&[script().as_os_str(), dir.path().as_os_str()]);
        let manifest = std::fs::read_to_string(dir.path().join("manifest.json"))
            .expect("make_checkpoints.py wrote manifest.json");
        let manifest = serde_json::from_str(&manifest).expect("manifest.json is valid JSON");
        Fixtures { dir, manifest }
    })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn script() -> PathBuf {
    repo_root().join("scripts/make_checkpoints.py")
}

/// Returns the project's Python, which has torch; fails the test when it is
/// missing, because these tests compare against the real PyTorch.
pub fn python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/setup.sh` to install PyTorch, which the checkpoint \
         tests use to write and verify real torch.save files",
        python.display()
    );
    python
}

/// Runs the project's Python with `args` and fails the test on error,
/// showing its output.
pub fn run_python<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let output = Command::new(python())
        .args(args)
        .output()
        .expect("starting the project's Python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python {:?} failed with {}:\n{stdout}\n{stderr}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        output.status
    );
    stdout
}

/// Runs `make_checkpoints.py verify FILE --expect ORIGINAL [extra...]`.
pub fn verify_with_pytorch(file: &Path, original: &Path, extra: &[&str]) -> String {
    let mut args: Vec<std::ffi::OsString> = vec![
        script().into(),
        "verify".into(),
        file.into(),
        "--expect".into(),
        original.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    run_python(&args)
}

/// A tensor as PyTorch saw it when it wrote the fixture.
#[derive(Debug)]
pub struct ExpectedTensor {
    pub name: String,
    pub kind: Kind,
    pub shape: Vec<i64>,
    pub stride: Vec<i64>,
    pub offset: i64,
    /// Elements in row-major order, as raw little-endian bytes.
    pub bytes: Vec<u8>,
}

impl ExpectedTensor {
    fn from_json(record: &serde_json::Value) -> Self {
        let ints = |key: &str| -> Vec<i64> {
            record[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} is an array in {record}"))
                .iter()
                .map(|v| v.as_i64().expect("integer"))
                .collect()
        };
        ExpectedTensor {
            name: record["name"].as_str().expect("name").to_string(),
            kind: kind_of(record["dtype"].as_str().expect("dtype")),
            shape: ints("shape"),
            stride: ints("stride"),
            offset: record["offset"].as_i64().expect("offset"),
            bytes: decode_hex(record["hex"].as_str().expect("hex")),
        }
    }
}

pub fn kind_of(dtype: &str) -> Kind {
    match dtype {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        "float16" => Kind::Half,
        "bfloat16" => Kind::BFloat16,
        "int64" => Kind::Int64,
        "int32" => Kind::Int,
        "int16" => Kind::Int16,
        "int8" => Kind::Int8,
        "uint8" => Kind::Uint8,
        "bool" => Kind::Bool,
        other => panic!("unexpected dtype {other} in the manifest"),
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Returns a tensor's elements in row-major order as raw bytes.
pub fn raw_bytes(tensor: &Tensor) -> Vec<u8> {
    let numel = tensor.numel();
    let mut bytes = vec![0u8; numel * tensor.kind().elt_size_in_bytes()];
    tensor.copy_data_u8(&mut bytes, numel);
    bytes
}

/// Checks dtype, shape and bit-exact values; with `layout`, also stride
/// and storage offset.
pub fn assert_tensor_matches(
    context: &str,
    actual: &Tensor,
    expected: &ExpectedTensor,
    layout: bool,
) {
    let name = &expected.name;
    assert_eq!(actual.kind(), expected.kind, "{context}: dtype of {name}");
    assert_eq!(actual.size(), expected.shape, "{context}: shape of {name}");
    assert!(
        raw_bytes(actual) == expected.bytes,
        "{context}: values of {name} differ from PyTorch's"
    );
    if layout {
        assert_eq!(
            actual.stride(),
            expected.stride,
            "{context}: stride of {name}"
        );
        assert_eq!(
            actual.storage_offset(),
            expected.offset,
            "{context}: storage offset of {name}"
        );
    }
}

/// Checks a state dict against the manifest: names in order and values.
pub fn assert_state_dict_matches(
    context: &str,
    actual: &StateDict,
    expected: &[ExpectedTensor],
    layout: bool,
) {
    let expected_names: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(actual.names(), expected_names, "{context}: names and order");
    for ((_, tensor), want) in actual.entries.iter().zip(expected) {
        assert_tensor_matches(context, tensor, want, layout);
    }
}

/// Creates a VarStore with one zero variable per expected tensor, of the
/// same name, shape and dtype; floating-point ones are trainable.
pub fn var_store_like(expected: &[ExpectedTensor]) -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    for tensor in expected {
        add_var(&vs, &tensor.name, &tensor.shape, tensor.kind);
    }
    vs
}

/// Adds a zero variable under a dotted name such as `enc.weight`.
pub fn add_var(vs: &VarStore, name: &str, shape: &[i64], kind: Kind) {
    let mut path = vs.root();
    let mut parts: Vec<&str> = name.split('.').collect();
    let leaf = parts.pop().expect("non-empty name");
    for part in parts {
        path = path.sub(part);
    }
    let zeros = Tensor::zeros(shape, (kind, vs.device()));
    let trainable = zeros.is_floating_point();
    let _ = path.add(leaf, zeros, trainable);
}

/// Returns the keys of a dict value, as strings.
pub fn dict_keys(value: &Value) -> Vec<String> {
    value
        .as_dict()
        .expect("value is a dict")
        .iter()
        .map(|(k, _)| match k {
            Value::Str(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}
