//! Reading checkpoints that the real PyTorch wrote, in every format variant.

mod checkpoint_support;

use checkpoint_support::{
    assert_state_dict_matches, dict_keys, fixtures, raw_bytes, var_store_like,
};
use segan::checkpoint::{
    apply_state_dict, detect_format, load, load_state_dict, select_state_dict, state_dicts,
    FileFormat, LoadStateDictError, StateDict, Value,
};
use tch::{Device, Kind, Tensor};

#[test]
fn fixtures_decode_bit_identical() {
    let fixtures = fixtures();
    let mut checked = 0;
    for file in fixtures.files() {
        let Some(expected) = fixtures.expected_state_dicts(&file) else {
            continue;
        };
        let value = load(&fixtures.path(&file)).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let found = state_dicts(&value).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let found_keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        let expected_keys: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(found_keys, expected_keys, "{file}: state dict keys");
        for ((key, state_dict), (_, want)) in found.iter().zip(&expected) {
            assert_state_dict_matches(&format!("{file} [{key}]"), state_dict, want, true);
        }
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} fixtures had expected state dicts"
    );
}

#[test]
fn format_detected_from_content() {
    let fixtures = fixtures();
    let cases = [
        ("gan_zip.pt", FileFormat::TorchZip),
        ("gan_legacy.pth", FileFormat::TorchLegacy),
        ("generator_zip.pkl", FileFormat::TorchZip),
        ("generator_legacy.bin", FileFormat::TorchLegacy),
        ("generator_zip", FileFormat::TorchZip),
        ("generator_legacy", FileFormat::TorchLegacy),
    ];
    for (file, format) in cases {
        let bytes = std::fs::read(fixtures.path(file)).unwrap();
        assert_eq!(detect_format(&bytes).unwrap(), format, "{file}");
    }
}

#[test]
fn training_checkpoint_top_level() {
    for file in ["gan_zip.pt", "gan_legacy.pth", "gan_protocol4_legacy.pt"] {
        let value = load(&fixtures().path(file)).unwrap();
        assert_eq!(
            dict_keys(&value),
            [
                "discriminator",
                "generator",
                "g_optimizer",
                "d_optimizer",
                "epoch"
            ],
            "{file}"
        );
        assert_eq!(
            value.get("epoch").and_then(Value::as_int),
            Some(3),
            "{file}"
        );
    }
}

#[test]
fn adam_state_decodes() {
    let value = load(&fixtures().path("gan_zip.pt")).unwrap();
    let adam = value.get("g_optimizer").unwrap();
    let state = adam.get("state").and_then(Value::as_dict).unwrap();
    let ids: Vec<i64> = state.iter().map(|(k, _)| k.as_int().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    let first = &state[0].1;
    let step = first.get("step").and_then(Value::as_tensor).unwrap();
    assert_eq!(step.kind(), Kind::Float);
    assert_eq!(step.size(), Vec::<i64>::new());
    assert_eq!(step.double_value(&[]), 1.0);
    assert!(first.get("exp_avg").and_then(Value::as_tensor).is_some());
    let Some(Value::List(groups)) = adam.get("param_groups") else {
        panic!("param_groups is not a list");
    };
    let group = &groups[0];
    assert!(matches!(group.get("lr"), Some(Value::Float(lr)) if *lr == 1e-4));
    let Some(Value::Tuple(betas)) = group.get("betas") else {
        panic!("betas is not a tuple");
    };
    assert!(
        matches!(betas.as_slice(), [Value::Float(a), Value::Float(b)] if *a == 0.5 && *b == 0.999)
    );
    assert!(matches!(group.get("foreach"), Some(Value::None)));
    assert!(matches!(group.get("amsgrad"), Some(Value::Bool(false))));
    let Some(Value::List(params)) = group.get("params") else {
        panic!("params is not a list");
    };
    let params: Vec<i64> = params.iter().map(|p| p.as_int().unwrap()).collect();
    assert_eq!(params, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn rmsprop_state_decodes() {
    let value = load(&fixtures().path("gan_legacy.pth")).unwrap();
    let rmsprop = value.get("d_optimizer").unwrap();
    let state = rmsprop.get("state").and_then(Value::as_dict).unwrap();
    assert_eq!(state.len(), 8, "one state per discriminator parameter");
    assert!(state[0]
        .1
        .get("square_avg")
        .and_then(Value::as_tensor)
        .is_some());
    let Some(Value::List(groups)) = rmsprop.get("param_groups") else {
        panic!("param_groups is not a list");
    };
    assert!(matches!(groups[0].get("lr"), Some(Value::Float(lr)) if *lr == 5e-5));
}

#[test]
fn misc_values_decode() {
    for file in ["misc.pt", "misc_legacy.pt"] {
        let value = load(&fixtures().path(file)).unwrap();
        let get = |key: &str| value.get(key).unwrap_or_else(|| panic!("{file}: no {key}"));
        assert_eq!(get("s").as_str(), Some("text é"), "{file}");
        assert!(matches!(get("f"), Value::Float(f) if *f == 1.5), "{file}");
        assert!(matches!(get("n"), Value::None), "{file}");
        assert!(matches!(get("t"), Value::Bool(true)), "{file}");
        assert!(
            matches!(get("tu"), Value::Tuple(items) if items.len() == 2),
            "{file}"
        );
        assert_eq!(get("big").as_int(), Some(1 << 40), "{file}");
        assert_eq!(get("neg").as_int(), Some(-5), "{file}");
        assert_eq!(get("huge").as_int(), Some(i64::MIN), "{file}");
        assert!(
            matches!(get("l"), Value::List(items) if items.len() == 3),
            "{file}"
        );
        assert!(
            matches!(get("b"), Value::Bytes(b) if b == b"\x00\xff ab"),
            "{file}"
        );
        let nested = get("nested").as_dict().unwrap();
        assert_eq!(nested[0].0.as_int(), Some(1), "{file}");
        assert!(matches!(nested[0].1.get("x"), Some(Value::List(flags)) if flags.len() == 2));
        let Value::Tuple(size) = get("size") else {
            panic!("{file}: torch.Size is not a tuple");
        };
        let size: Vec<i64> = size.iter().map(|d| d.as_int().unwrap()).collect();
        assert_eq!(size, [2, 3], "{file}");
        let parameter = get("p").as_tensor().unwrap();
        assert_eq!(
            raw_bytes(parameter),
            raw_bytes(&Tensor::ones([2], (Kind::Float, Device::Cpu)))
        );
        let x = get("x").as_tensor().unwrap();
        assert_eq!(x.kind(), Kind::Int, "{file}");
        assert_eq!(Vec::<i32>::try_from(x).unwrap(), [0, 1, 2], "{file}");
    }
}

#[test]
fn untyped_storage_is_byte_tensor() {
    let value = load(&fixtures().path("untyped_storage.pt")).unwrap();
    let storage = value.get("storage").and_then(Value::as_tensor).unwrap();
    assert_eq!(storage.kind(), Kind::Uint8);
    assert_eq!(raw_bytes(storage), [0, 0, 1, 0, 2, 0, 3, 0]);
}

#[test]
fn views_share_one_storage() {
    for file in ["views.pt", "views_legacy.pt"] {
        let value = load(&fixtures().path(file)).unwrap();
        let a = value.get("a").and_then(Value::as_tensor).unwrap();
        let b = value.get("b").and_then(Value::as_tensor).unwrap();
        let offset = b.storage_offset() as usize * 4;
        assert_eq!(
            b.data_ptr() as usize,
            a.data_ptr() as usize + offset,
            "{file}"
        );
    }
}

#[test]
fn data_parallel_prefix_stripped() {
    let value = load(&fixtures().path("data_parallel.pt")).unwrap();
    let raw = value.as_dict().unwrap();
    assert!(raw
        .iter()
        .all(|(k, _)| k.as_str().unwrap().starts_with("module.")));
    let found = state_dicts(&value).unwrap();
    assert_eq!(found[0].1.names()[0], "enc.weight");
}

#[test]
fn partial_prefix_kept() {
    let tensor = || Value::Tensor(Tensor::zeros([1], (Kind::Float, Device::Cpu)));
    let value = Value::Dict(vec![
        (Value::Str("module.a".into()), tensor()),
        (Value::Str("b".into()), tensor()),
    ]);
    let found = state_dicts(&value).unwrap();
    assert_eq!(found[0].1.names(), ["module.a", "b"]);
}

#[test]
fn load_state_dict_by_key() {
    let path = fixtures().path("gan_zip.pt");
    let generator = load_state_dict(&path, Some("generator")).unwrap();
    assert_eq!(generator.names()[0], "enc.weight");
    let bare = load_state_dict(&fixtures().path("generator_legacy"), None).unwrap();
    assert_eq!(bare.len(), generator.len());
}

#[test]
fn load_state_dict_key_errors() {
    let path = fixtures().path("gan_zip.pt");
    let no_key = format!("{:#}", load_state_dict(&path, None).unwrap_err());
    assert!(no_key.contains("2 state dicts"), "{no_key}");
    assert!(no_key.contains("'discriminator', 'generator'"), "{no_key}");

    let unknown = format!("{:#}", load_state_dict(&path, Some("nope")).unwrap_err());
    assert!(unknown.contains("no entry 'nope'"), "{unknown}");
    assert!(
        unknown.contains("'discriminator', 'generator'"),
        "{unknown}"
    );

    let optimizer = format!(
        "{:#}",
        load_state_dict(&path, Some("g_optimizer")).unwrap_err()
    );
    assert!(optimizer.contains("optimizer state"), "{optimizer}");

    let epoch = format!("{:#}", load_state_dict(&path, Some("epoch")).unwrap_err());
    assert!(epoch.contains("has type int"), "{epoch}");

    let bare = fixtures().path("generator_zip.pkl");
    let keyed = format!(
        "{:#}",
        load_state_dict(&bare, Some("generator")).unwrap_err()
    );
    assert!(keyed.contains("bare state dict"), "{keyed}");
}

#[test]
fn no_state_dict_error_lists_entries() {
    let value = Value::Dict(vec![(Value::Str("epoch".into()), Value::Int(3))]);
    let error = format!("{:#}", select_state_dict(&value, None).unwrap_err());
    assert!(error.contains("'epoch' (int)"), "{error}");
}

fn generator_and_expected() -> (StateDict, Vec<checkpoint_support::ExpectedTensor>) {
    let state_dict = load_state_dict(&fixtures().path("gan_zip.pt"), Some("generator")).unwrap();
    let mut expected = fixtures().expected_state_dicts("gan_zip.pt").unwrap();
    let generator = expected.remove(1);
    assert_eq!(generator.0, "generator");
    (state_dict, generator.1)
}

#[test]
fn apply_strict_loads_values() {
    let (state_dict, expected) = generator_and_expected();
    let mut vs = var_store_like(&expected);
    let report = apply_state_dict(&mut vs, &state_dict, true).unwrap();
    assert!(report.is_clean(), "{report}");
    let loaded = StateDict::from_var_store(&vs).unwrap();
    for want in &expected {
        let tensor = loaded.get(&want.name).unwrap();
        assert_eq!(raw_bytes(tensor), want.bytes, "{}", want.name);
    }
}

#[test]
fn apply_strict_reports_all_problems() {
    let (state_dict, expected) = generator_and_expected();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    for want in expected.iter().filter(|t| t.name != "enc.bias") {
        let shape = if want.name == "dec.weight" {
            vec![1, 1]
        } else {
            want.shape.clone()
        };
        checkpoint_support::add_var(&vs, &want.name, &shape, want.kind);
    }
    checkpoint_support::add_var(&vs, "extra.weight", &[2], Kind::Float);
    let mut vs = vs;
    let error = apply_state_dict(&mut vs, &state_dict, true).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("missing keys: extra.weight"), "{message}");
    assert!(message.contains("unexpected keys: enc.bias"), "{message}");
    assert!(
        message.contains("dec.weight (checkpoint [4, 1, 4], model [1, 1])"),
        "{message}"
    );
    let report = &error.downcast_ref::<LoadStateDictError>().unwrap().report;
    assert_eq!(report.missing, ["extra.weight"]);
    assert_eq!(report.unexpected, ["enc.bias"]);
    assert_eq!(report.mismatched.len(), 1);
    let untouched = vs.variables()["enc.weight"]
        .abs()
        .sum(Kind::Float)
        .double_value(&[]);
    assert_eq!(untouched, 0.0, "a failed strict load copies nothing");
}

#[test]
fn apply_lenient_loads_matching_keys() {
    let (state_dict, expected) = generator_and_expected();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    for want in expected.iter().filter(|t| t.name != "enc.bias") {
        checkpoint_support::add_var(&vs, &want.name, &want.shape, want.kind);
    }
    checkpoint_support::add_var(&vs, "extra.weight", &[2], Kind::Float);
    let mut vs = vs;
    let report = apply_state_dict(&mut vs, &state_dict, false).unwrap();
    assert_eq!(report.missing, ["extra.weight"]);
    assert_eq!(report.unexpected, ["enc.bias"]);
    let enc = &vs.variables()["enc.weight"];
    assert_eq!(raw_bytes(enc), expected[0].bytes);
}

#[test]
fn apply_lenient_rejects_shape_mismatch() {
    let (state_dict, expected) = generator_and_expected();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    for want in &expected {
        let shape = if want.name == "norm.gamma" {
            vec![4]
        } else {
            want.shape.clone()
        };
        checkpoint_support::add_var(&vs, &want.name, &shape, want.kind);
    }
    let mut vs = vs;
    let error = apply_state_dict(&mut vs, &state_dict, false).unwrap_err();
    assert!(error.to_string().contains("norm.gamma"), "{error}");
}

#[test]
fn apply_converts_dtype() {
    let (state_dict, expected) = generator_and_expected();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    for want in &expected {
        checkpoint_support::add_var(&vs, &want.name, &want.shape, Kind::Double);
    }
    let mut vs = vs;
    apply_state_dict(&mut vs, &state_dict, true).unwrap();
    let loaded = &vs.variables()["enc.weight"];
    assert_eq!(loaded.kind(), Kind::Double);
    let original = state_dict.get("enc.weight").unwrap().to_kind(Kind::Double);
    assert!(loaded.equal(&original));
}
