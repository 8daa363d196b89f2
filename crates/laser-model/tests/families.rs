//! What the newer families add beyond the oracle parity of `tiny_parity.rs`: Llama 3's two config
//! spellings of its RoPE scaling agree, Mistral's sliding window refuses what it cannot attend
//! exactly, and an unknown family is an error that lists the supported ones.

mod common;

use common::*;
use laser_model::Model;

/// A copy of the tiny `family` fixture whose `config.json` is rewritten by `edit`.
fn with_config(
    family: &str,
    tag: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("laser-family-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = tiny_dir(family);
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

fn load(dir: &std::path::Path) -> laser_model::Result<Model> {
    Model::load(dir, backend().device().unwrap())
}

/// Hub checkpoints of Llama 3.1/3.2 carry `rope_scaling` plus a top-level `rope_theta`;
/// transformers 5 writes `rope_parameters`. Both load to the same model; dropping the scaling
/// changes the logits (so the scaling is really applied).
#[test]
fn llama3_rope_scaling_reads_both_config_spellings() {
    let r = reference("llama3");
    let fixture = load_tiny("llama3").all_logits(&r.ids).unwrap();
    let hub = with_config("llama3", "hub", |c| {
        let mut p = c["rope_parameters"].take();
        c["rope_theta"] = p["rope_theta"].take();
        p.as_object_mut().unwrap().remove("rope_theta");
        c["rope_scaling"] = p;
        c.as_object_mut().unwrap().remove("rope_parameters");
    });
    assert_eq!(load(&hub).unwrap().all_logits(&r.ids).unwrap(), fixture);
    let unscaled = with_config("llama3", "unscaled", |c| {
        c["rope_parameters"] = serde_json::json!({"rope_theta": 500000.0, "rope_type": "default"});
    });
    assert_ne!(load(&unscaled).unwrap().all_logits(&r.ids).unwrap(), fixture);
    let bad = with_config("llama3", "bad", |c| {
        c["rope_parameters"]["rope_type"] = "yarn".into();
    });
    let err = load(&bad).unwrap_err().to_string();
    assert!(err.contains("yarn") && err.contains("llama3"), "{err}");
}

/// A sequence within Mistral's window is scored exactly (the window hides nothing); a longer one
/// is refused with a message that names the window, never silently mis-attended.
#[test]
fn mistral_refuses_sequences_longer_than_its_sliding_window() {
    let r = reference("mistral");
    let t = r.ids[0].len();
    let full = load_tiny("mistral");
    let windowed = load(&with_config("mistral", "window", |c| {
        c["sliding_window"] = t.into();
    }))
    .unwrap();
    assert_eq!(windowed.all_logits(&r.ids).unwrap(), full.all_logits(&r.ids).unwrap());
    let narrow = load(&with_config("mistral", "narrow", |c| {
        c["sliding_window"] = (t - 1).into();
    }))
    .unwrap();
    let err = narrow.all_logits(&r.ids).unwrap_err().to_string();
    assert!(err.contains("sliding attention window") && err.contains(&t.to_string()), "{err}");
    // Qwen2 uses its window only with `use_sliding_window: true`.
    let qwen = load(&with_config("qwen2", "qwen-window", |c| {
        c["sliding_window"] = 2.into();
    }))
    .unwrap();
    assert!(qwen.all_logits(&r.ids).is_ok());
}

#[test]
fn an_unknown_family_lists_the_supported_ones() {
    let dir = with_config("llama", "unknown", |c| c["model_type"] = "mamba".into());
    let err = load(&dir).unwrap_err().to_string();
    for family in laser_model::families() {
        for model_type in family.model_types() {
            assert!(err.contains(&format!(" {model_type}")), "{model_type}: {err}");
        }
    }
    assert!(err.contains("mamba"), "{err}");
}

/// The registry and the fixtures agree: every registered family has a tiny fixture that loads
/// as it (so every test iterating the fixtures covers it), every fixture loads as a registered
/// family, and each `model_type` and GGUF architecture belongs to one family only.
#[test]
fn every_registered_family_has_a_fixture_and_every_fixture_a_family() {
    let registered: Vec<_> = laser_model::families().map(|f| f.family()).collect();
    let loaded: Vec<_> = fixtures().map(|f| (f, load_tiny(f).family())).collect();
    for family in &registered {
        assert!(
            loaded.iter().any(|(_, f)| f == family),
            "family {} has no fixture under tests/fixtures/tiny",
            family.name()
        );
    }
    for (fixture, family) in &loaded {
        assert!(registered.contains(family), "{fixture}: unregistered family {}", family.name());
    }
    let mut model_types: Vec<&str> =
        laser_model::families().flat_map(|f| f.model_types().iter().copied()).collect();
    let mut archs: Vec<&str> =
        laser_model::families().flat_map(|f| f.gguf_architectures().iter().copied()).collect();
    let (types, arch_count) = (model_types.len(), archs.len());
    model_types.sort_unstable();
    model_types.dedup();
    archs.sort_unstable();
    archs.dedup();
    assert_eq!(model_types.len(), types, "a model_type is claimed twice");
    assert_eq!(archs.len(), arch_count, "a GGUF architecture is claimed twice");
    assert_eq!(laser_model::gguf_architectures().len(), arch_count);
}

/// Each new family reports its own name, and Qwen2's q/k/v biases and Qwen3's q/k norms are
/// parameters of the loaded model (the loader validated their shapes).
#[test]
fn newer_families_name_themselves_and_load_their_extra_tensors() {
    for (family, name) in
        [("llama3", "llama"), ("qwen2", "qwen2"), ("mistral", "mistral"), ("qwen3", "qwen3")]
    {
        assert_eq!(load_tiny(family).family().name(), name);
    }
    let qwen2 = load_tiny("qwen2");
    assert!(qwen2.parameter("model.layers.0.self_attn.k_proj.bias").is_some());
    assert!(qwen2.parameter("model.layers.0.self_attn.o_proj.bias").is_none());
    let qwen3 = load_tiny("qwen3");
    assert_eq!(qwen3.parameter("model.layers.1.self_attn.q_norm.weight").unwrap().data().len(), 16);
}
