//! A real SEGAN generator checkpoint from PyTorch (legacy format, `module.`
//! keys) loads into the Rust generator and gives PyTorch's output; the
//! checkpoint Rust writes loads in PyTorch with strict key checking and
//! gives the same output there.

use std::path::Path;
use std::process::Command;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use segan::checkpoint::{self, apply_state_dict, Format, StateDict};
use segan::nn::Generator;
use tch::{nn::VarStore, Device, Tensor};

fn python(args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/setup.sh",
        python.display()
    );
    let output = Command::new(python)
        .arg(root.join("scripts/network_checkpoint.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "network_checkpoint.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tensor(path: &Path) -> Tensor {
    let array: ArrayD<f32> = read_npy(path).unwrap();
    let shape: Vec<i64> = array.shape().iter().map(|&d| d as i64).collect();
    Tensor::from_slice(array.as_standard_layout().as_slice().unwrap()).reshape(shape)
}

#[test]
fn generator_checkpoint_round_trips_with_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    python(&["write", dir_text]);

    let state_dict =
        checkpoint::load_state_dict(&dir.path().join("generator-legacy.pkl"), None).unwrap();
    assert!(
        state_dict.get("enc1.weight").is_some(),
        "module. prefix was not stripped"
    );

    let mut vs = VarStore::new(Device::Cpu);
    let generator = Generator::new(vs.root()).unwrap();
    apply_state_dict(&mut vs, &state_dict, true).unwrap();

    let (x, z) = (
        tensor(&dir.path().join("x.npy")),
        tensor(&dir.path().join("z.npy")),
    );
    let out = tch::no_grad(|| generator.forward(&x, &z)).unwrap();
    let expected = tensor(&dir.path().join("out.npy"));
    let error = (&out - &expected).abs().max().double_value(&[]);
    assert_eq!(error, 0.0, "Rust output differs from PyTorch's by {error}");

    let written = StateDict::from_var_store(&vs).unwrap();
    checkpoint::save_state_dict(&dir.path().join("from_rust.pt"), &written, Format::TorchZip)
        .unwrap();
    python(&["verify", dir_text]);
}
