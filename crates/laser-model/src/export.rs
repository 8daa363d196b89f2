//! Export of a (possibly edited) model as an HF folder that `from_pretrained` loads:
//! `config.json`, `model.safetensors` (f32, HF names, tied weights stored once), `tokenizer.json`
//! and `tokenizer_config.json`. Written into a temporary sibling folder and renamed into place, so
//! a crash never leaves a half-written model.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::weights::{WeightMap, save_safetensors};

/// Writes `model` to the folder `dir`, which must not exist yet or be empty.
pub fn export_hf(model: &Model, dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?.next().is_some()
    {
        return Err(ModelError::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "output folder exists and is not empty",
            ),
        ));
    }
    let name =
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let tmp = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let result = write_into(model, &tmp).and_then(|()| {
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| ModelError::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| ModelError::io(dir, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| ModelError::format(path, e.to_string()))?;
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
}

fn write_into(model: &Model, dir: &Path) -> Result<()> {
    let cfg = model.config();
    let mut raw = cfg.raw.clone();
    raw["torch_dtype"] = "float32".into();
    raw["dtype"] = "float32".into();
    write_json(&dir.join("config.json"), &raw)?;

    let mut tensors = WeightMap::new();
    for name in model.parameter_names() {
        if let Some(t) = model.parameter(&name) {
            tensors.insert(name, t);
        }
    }
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    save_safetensors(&dir.join("model.safetensors"), &tensors, Some(metadata))?;

    if let Some(tok) = model.tokenizer() {
        std::fs::write(dir.join("tokenizer.json"), tok.to_json()?)
            .map_err(|e| ModelError::io(dir.join("tokenizer.json"), e))?;
    }
    // Keep the source's own tokenizer/generation settings when it has them.
    let src = model.source();
    let mut copied_tokenizer_config = false;
    if src.is_dir() {
        for file in ["tokenizer_config.json", "special_tokens_map.json", "generation_config.json"] {
            let from = src.join(file);
            if from.is_file() {
                std::fs::copy(&from, dir.join(file)).map_err(|e| ModelError::io(&from, e))?;
                copied_tokenizer_config |= file == "tokenizer_config.json";
            }
        }
    }
    if model.tokenizer().is_some() && !copied_tokenizer_config {
        let tok = model.tokenizer().expect("checked");
        let token = |key: &str| -> Option<String> {
            cfg.raw.get(key).and_then(|v| v.as_u64()).and_then(|id| tok.token_text(id as u32).ok())
        };
        let mut tc = serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": tok.bos().is_some(), "model_max_length": cfg.max_positions});
        if let Some(b) = token("bos_token_id") {
            tc["bos_token"] = b.into();
        }
        if let Some(e) = token("eos_token_id") {
            tc["eos_token"] = e.into();
        }
        write_json(&dir.join("tokenizer_config.json"), &tc)?;
    }
    Ok(())
}
