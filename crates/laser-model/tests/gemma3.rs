//! What Gemma 3 adds beyond the oracle parity of `tiny_parity.rs` (whose tiny model already
//! attends within a 4-token window on layer 0 over 9-token sequences): the older config spelling
//! loads to the same model, the window and the per-layer RoPE bases really act, a multimodal
//! Gemma3ForConditionalGeneration folder yields its language model, and bad settings are refused.

mod common;

use common::*;
use laser_model::Model;

/// A copy of the tiny Gemma 3 fixture whose `config.json` is rewritten by `edit` and whose
/// tensors are renamed by `rename` (plus any `extra` tensors).
fn variant(
    tag: &str,
    edit: impl Fn(&mut serde_json::Value),
    rename: impl Fn(&str) -> String,
    extra: &[(&str, Vec<usize>)],
) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("laser-gemma3-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = tiny_dir("gemma3");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (rename(&name), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    for (name, shape) in extra {
        let n: usize = shape.iter().product();
        tensors.push(((*name).to_owned(), shape.clone(), vec![0u8; 4 * n]));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

fn load(dir: &std::path::Path) -> laser_model::Result<Model> {
    Model::load(dir, backend().device().unwrap())
}

fn logits(dir: &std::path::Path) -> Vec<f32> {
    load(dir).unwrap().all_logits(&reference("gemma3").ids).unwrap()
}

/// Hub configs (transformers 4) spell the RoPE bases `rope_theta` / `rope_local_base_freq`, the
/// scaling `rope_scaling`, and the layer kinds `sliding_window_pattern`: the same model.
#[test]
fn the_older_config_spelling_loads_to_the_same_model() {
    let fixture = load_tiny("gemma3").all_logits(&reference("gemma3").ids).unwrap();
    let hub = variant(
        "hub",
        |c| {
            let o = c.as_object_mut().unwrap();
            o.remove("rope_parameters");
            o.remove("layer_types");
            o.insert("rope_theta".into(), 1_000_000.0.into());
            o.insert("rope_local_base_freq".into(), 10_000.0.into());
            o.insert(
                "rope_scaling".into(),
                serde_json::json!({"rope_type": "linear", "factor": 2.0}),
            );
            o.insert("sliding_window_pattern".into(), 2.into());
        },
        str::to_owned,
        &[],
    );
    assert_eq!(logits(&hub), fixture);
}

/// Widening the window, unscaling the full layer's RoPE or changing the local base each change
/// the logits: every one of them is applied.
#[test]
fn the_window_and_both_rope_settings_act() {
    let fixture = load_tiny("gemma3").all_logits(&reference("gemma3").ids).unwrap();
    let wide = logits(&variant("wide", |c| c["sliding_window"] = 64.into(), str::to_owned, &[]));
    // Inside the window nothing changes: positions 0..4 of the first sequence see every key.
    let first = 4 * 512;
    for (a, b) in wide[..first].iter().zip(&fixture[..first]) {
        assert!((a - b).abs() < 1e-5, "inside the window: {a} vs {b}");
    }
    let unscaled = variant(
        "unscaled",
        |c| c["rope_parameters"]["full_attention"] = serde_json::json!({"rope_theta": 1e6}),
        str::to_owned,
        &[],
    );
    let local = variant(
        "local",
        |c| c["rope_parameters"]["sliding_attention"]["rope_theta"] = 500.0.into(),
        str::to_owned,
        &[],
    );
    for (what, other) in
        [("window", wide), ("scaling", logits(&unscaled)), ("local base", logits(&local))]
    {
        let differs = other.iter().zip(&fixture).any(|(a, b)| (a - b).abs() > 1e-3);
        assert!(differs, "{what} made no difference");
    }
}

/// A Gemma3ForConditionalGeneration folder: the text config nested, the language model's tensors
/// under `model.language_model.` (transformers 5) or `language_model.model.` (transformers 4), a
/// vision tower beside them. Its language model loads, says what it skipped, and exports as the
/// Gemma3ForCausalLM that transformers loads.
#[test]
fn a_multimodal_folder_yields_its_language_model() {
    let fixture = load_tiny("gemma3").all_logits(&reference("gemma3").ids).unwrap();
    let nest = |c: &mut serde_json::Value| {
        let text = c.take();
        *c = serde_json::json!({
            "architectures": ["Gemma3ForConditionalGeneration"],
            "model_type": "gemma3",
            "text_config": text,
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8},
        });
    };
    let vision = [("vision_tower.vision_model.post_layernorm.weight", vec![8])];
    for (tag, prefix) in [("v5", "model.language_model."), ("v4", "language_model.model.")] {
        let dir = variant(
            tag,
            nest,
            |n| match n.strip_prefix("model.") {
                Some(rest) => format!("{prefix}{rest}"),
                None => n.to_owned(),
            },
            &vision,
        );
        let model = load(&dir).unwrap();
        assert_eq!(model.family().name(), "gemma3");
        assert!(
            model.load_notes().iter().any(|n| n.contains("vision")),
            "{:?}",
            model.load_notes()
        );
        assert_eq!(model.all_logits(&reference("gemma3").ids).unwrap(), fixture, "{tag}");
        let out =
            std::env::temp_dir().join(format!("laser-gemma3-export-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        laser_model::export_hf(&model, &out).unwrap();
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(cfg["model_type"], "gemma3_text");
        assert_eq!(cfg["architectures"][0], "Gemma3ForCausalLM");
        assert_eq!(logits(&out), fixture, "{tag} exported");
        std::fs::remove_dir_all(out).unwrap();
    }
}

/// A config edit of a refusal case.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn bad_gemma3_settings_are_refused_naming_them() {
    let cases: [(&str, Edit, &str); 5] = [
        (
            "types",
            Box::new(|c| c["layer_types"] = serde_json::json!(["full_attention"])),
            "layer_types",
        ),
        (
            "kind",
            Box::new(|c| c["layer_types"][0] = "chunked_attention".into()),
            "chunked_attention",
        ),
        ("window", Box::new(|c| c["sliding_window"] = 0.into()), "sliding_window"),
        (
            "rope",
            Box::new(|c| c["rope_parameters"]["full_attention"]["rope_type"] = "yarn".into()),
            "yarn",
        ),
        (
            "bidirectional",
            Box::new(|c| c["use_bidirectional_attention"] = true.into()),
            "bidirectional",
        ),
    ];
    for (tag, edit, needle) in cases {
        let dir = variant(&format!("bad-{tag}"), edit, str::to_owned, &[]);
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains(needle), "{tag}: {err}");
    }
}
