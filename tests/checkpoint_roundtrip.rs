//! Writing checkpoints in Rust and reading them back with PyTorch and with
//! this crate; atomic replacement of the target file.

mod checkpoint_support;

use std::io::Write;
use std::path::Path;

use checkpoint_support::{
    add_var, assert_state_dict_matches, fixtures, raw_bytes, var_store_like, verify_with_pytorch,
};
use segan::checkpoint::{
    apply_state_dict, load, load_state_dict, save, save_state_dict, state_dicts, write_atomically,
    Format, StateDict, Value,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn expected(file: &str, key: &str) -> Vec<checkpoint_support::ExpectedTensor> {
    fixtures()
        .expected_state_dicts(file)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap()
        .1
}

/// Loads a state dict from a PyTorch file into a VarStore and returns the
/// VarStore's state dict, as a model would save it.
fn through_var_store(file: &str, key: Option<&str>) -> StateDict {
    let state_dict = load_state_dict(&fixtures().path(file), key).unwrap();
    let mut vs = var_store_like(&expected(file, key.unwrap_or("")));
    apply_state_dict(&mut vs, &state_dict, true).unwrap();
    StateDict::from_var_store(&vs).unwrap()
}

#[test]
fn generator_roundtrip_through_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generator.pt");
    let state_dict = through_var_store("gan_zip.pt", Some("generator"));
    save_state_dict(&out, &state_dict, Format::TorchZip).unwrap();
    let original = fixtures().path("gan_zip.pt");
    verify_with_pytorch(
        &out,
        &original,
        &["--module", "generator", "--key", "generator"],
    );
}

#[test]
fn discriminator_roundtrip_through_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("discriminator");
    let state_dict = through_var_store("gan_legacy.pth", Some("discriminator"));
    save_state_dict(&out, &state_dict, Format::TorchZip).unwrap();
    let original = fixtures().path("gan_zip.pt");
    verify_with_pytorch(
        &out,
        &original,
        &["--module", "discriminator", "--key", "discriminator"],
    );
}

#[test]
fn training_checkpoint_roundtrip_through_pytorch() {
    let original = fixtures().path("gan_zip.pt");
    let loaded = load(&original).unwrap();
    let generator = through_var_store("gan_zip.pt", Some("generator"));
    let discriminator = through_var_store("gan_zip.pt", Some("discriminator"));
    let entry = |key: &str| loaded.get(key).unwrap().shallow_clone();
    let checkpoint = Value::Dict(vec![
        (Value::Str("discriminator".into()), discriminator.to_value()),
        (Value::Str("generator".into()), generator.to_value()),
        (Value::Str("g_optimizer".into()), entry("g_optimizer")),
        (Value::Str("d_optimizer".into()), entry("d_optimizer")),
        (Value::Str("epoch".into()), Value::Int(3)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("checkpoint.pth");
    save(&out, &checkpoint, Format::TorchZip).unwrap();
    verify_with_pytorch(&out, &original, &[]);
}

#[test]
fn misc_values_roundtrip_through_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["misc.pt", "dtypes.pt", "views_legacy.pt", "gan_legacy.pth"] {
        let original = fixtures().path(file);
        let out = dir.path().join(file);
        save(&out, &load(&original).unwrap(), Format::TorchZip).unwrap();
        verify_with_pytorch(&out, &original, &[]);
    }
}

#[test]
fn rust_written_zip_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["gan_zip.pt", "dtypes.pt", "views.pt", "data_parallel.pt"] {
        let out = dir.path().join(file);
        save(
            &out,
            &load(&fixtures().path(file)).unwrap(),
            Format::TorchZip,
        )
        .unwrap();
        let found = state_dicts(&load(&out).unwrap()).unwrap();
        let want = fixtures().expected_state_dicts(file).unwrap();
        assert_eq!(found.len(), want.len(), "{file}");
        for ((key, state_dict), (_, tensors)) in found.iter().zip(&want) {
            // Written tensors are contiguous, so only values are compared.
            assert_state_dict_matches(&format!("{file} [{key}]"), state_dict, tensors, false);
            for (name, tensor) in &state_dict.entries {
                assert!(tensor.is_contiguous(), "{file}: {name} is not contiguous");
                assert_eq!(tensor.storage_offset(), 0, "{file}: {name}");
            }
        }
    }
}

#[test]
fn zip_layout_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generator.pt");
    let state_dict = load_state_dict(&fixtures().path("generator_zip"), None).unwrap();
    save_state_dict(&out, &state_dict, Format::TorchZip).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(String::from).collect();
    assert_eq!(names[0], "archive/data.pkl");
    assert!(names.contains(&"archive/byteorder".to_string()));
    assert!(names.contains(&"archive/version".to_string()));
    assert!(names.contains(&format!("archive/data/{}", state_dict.len() - 1)));
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).unwrap();
        let name = entry.name().to_string();
        assert_eq!(
            entry.compression(),
            zip::CompressionMethod::Stored,
            "{name}"
        );
        assert_eq!(entry.data_start() % 64, 0, "{name} is not 64-byte aligned");
    }
    let read = |archive: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    assert_eq!(read(&mut archive, "archive/byteorder"), "little");
    assert_eq!(read(&mut archive, "archive/version"), "3\n");
}

#[test]
fn safetensors_roundtrip_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dtypes.safetensors");
    let state_dict = load_state_dict(&fixtures().path("dtypes.pt"), None).unwrap();
    save_state_dict(&out, &state_dict, Format::Safetensors).unwrap();

    let bytes = std::fs::read(&out).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let format = metadata.metadata().as_ref().and_then(|m| m.get("format"));
    assert_eq!(format.map(String::as_str), Some("pt"));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, tensor) in &state_dict.entries {
        let view = file.tensor(name).unwrap();
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        assert_eq!(shape, tensor.size(), "{name}");
        assert_eq!(view.data(), raw_bytes(tensor).as_slice(), "{name}");
    }
    assert_eq!(
        file.tensor("bf16").unwrap().dtype(),
        safetensors::Dtype::BF16
    );
    assert_eq!(
        file.tensor("bool").unwrap().dtype(),
        safetensors::Dtype::BOOL
    );

    let reread = load_state_dict(&out, None).unwrap();
    assert_eq!(reread.len(), state_dict.len());
    for (name, tensor) in &state_dict.entries {
        let again = reread.get(name).unwrap();
        assert_eq!(again.kind(), tensor.kind(), "{name}");
        assert_eq!(raw_bytes(again), raw_bytes(tensor), "{name}");
    }
}

#[test]
fn safetensors_rejects_nested_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gan.safetensors");
    std::fs::write(&out, b"old").unwrap();
    let value = load(&fixtures().path("gan_zip.pt")).unwrap();
    let error = format!("{:#}", save(&out, &value, Format::Safetensors).unwrap_err());
    assert!(
        error.contains("entry 'discriminator' has type dict"),
        "{error}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
}

fn entries_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn failed_write_keeps_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.pt");
    std::fs::write(&out, b"previous checkpoint").unwrap();
    let result = write_atomically(&out, |file| {
        file.write_all(&[0u8; 4096])?;
        anyhow::bail!("disk full (injected)")
    });
    let error = format!("{:#}", result.unwrap_err());
    assert!(error.contains("injected"), "{error}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous checkpoint");
    assert_eq!(
        entries_in(dir.path()),
        ["model.pt"],
        "the temporary file is removed"
    );
}

#[test]
fn unsupported_dtype_keeps_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.pt");
    std::fs::write(&out, b"previous checkpoint").unwrap();
    let value = Value::Dict(vec![
        (
            Value::Str("ok".into()),
            Value::Tensor(Tensor::ones([3], (Kind::Float, Device::Cpu))),
        ),
        (
            Value::Str("complex".into()),
            Value::Tensor(Tensor::ones([3], (Kind::ComplexFloat, Device::Cpu))),
        ),
    ]);
    let error = format!("{:#}", save(&out, &value, Format::TorchZip).unwrap_err());
    assert!(error.contains("ComplexFloat"), "{error}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous checkpoint");
    assert_eq!(entries_in(dir.path()), ["model.pt"]);
}

#[test]
fn save_replaces_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.pt");
    std::fs::write(&out, b"previous checkpoint").unwrap();
    let state_dict = load_state_dict(&fixtures().path("generator_zip"), None).unwrap();
    save_state_dict(&out, &state_dict, Format::TorchZip).unwrap();
    assert_eq!(
        load_state_dict(&out, None).unwrap().names(),
        state_dict.names()
    );
    assert_eq!(entries_in(dir.path()), ["model.pt"]);
}

#[test]
fn save_into_missing_folder_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing/model.pt");
    let value = Value::Dict(vec![]);
    let error = format!("{:#}", save(&out, &value, Format::TorchZip).unwrap_err());
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn deeply_nested_value_rejected() {
    let mut value = Value::None;
    for _ in 0..300 {
        value = Value::List(vec![value]);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deep.pt");
    let error = format!("{:#}", save(&out, &value, Format::TorchZip).unwrap_err());
    assert!(error.contains("nests deeper than 256 levels"), "{error}");
    assert!(!out.exists());
}

#[test]
fn non_contiguous_tensor_written_contiguously() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.pt");
    let base = Tensor::arange(12, (Kind::Float, Device::Cpu)).reshape([3, 4]);
    let transposed = base.tr();
    assert!(!transposed.is_contiguous());
    let value = Value::Dict(vec![(
        Value::Str("t".into()),
        Value::Tensor(transposed.shallow_clone()),
    )]);
    save(&out, &value, Format::TorchZip).unwrap();
    let reread = load_state_dict(&out, None).unwrap();
    let tensor = reread.get("t").unwrap();
    assert_eq!(tensor.size(), [4, 3]);
    assert_eq!(tensor.stride(), [3, 1]);
    assert!(tensor.equal(&transposed));
}

/// Trainable variables keep creation order; buffers follow their module's
/// last variable, or go to the end sorted when their module has no other.
#[test]
fn from_var_store_keeps_creation_order() {
    let vs = VarStore::new(Device::Cpu);
    add_var(&vs, "b.weight", &[2], Kind::Float);
    add_var(&vs, "a.weight", &[2], Kind::Float);
    add_var(&vs, "z.count", &[], Kind::Int64);
    add_var(&vs, "c.bias", &[1], Kind::Float);
    add_var(&vs, "y.count", &[], Kind::Int64);
    add_var(&vs, "a.count", &[], Kind::Int64);
    add_var(&vs, "a.bias", &[2], Kind::Float);
    let state_dict = StateDict::from_var_store(&vs).unwrap();
    assert_eq!(
        state_dict.names(),
        ["b.weight", "a.weight", "c.bias", "a.bias", "a.count", "y.count", "z.count"]
    );
}

#[cfg(feature = "cuda-tests")]
#[test]
fn cuda_tensors_written_from_cpu_copies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cuda.pt");
    let cpu = Tensor::arange(6, (Kind::Float, Device::Cpu)).reshape([2, 3]);
    let cuda = cpu.to_device(Device::Cuda(0));
    let value = Value::Dict(vec![(Value::Str("w".into()), Value::Tensor(cuda.tr()))]);
    save(&out, &value, Format::TorchZip).unwrap();
    let reread = load_state_dict(&out, None).unwrap();
    let tensor = reread.get("w").unwrap();
    assert_eq!(tensor.device(), Device::Cpu);
    assert!(tensor.equal(&cpu.tr()));

    let vs = VarStore::new(Device::Cuda(0));
    add_var(&vs, "w", &[3, 2], Kind::Float);
    let mut vs = vs;
    apply_state_dict(&mut vs, &reread, true).unwrap();
    assert!(vs.variables()["w"].to_device(Device::Cpu).equal(&cpu.tr()));
}
