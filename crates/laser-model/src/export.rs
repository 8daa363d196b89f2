//! Export of a (possibly edited) model as an HF folder that `from_pretrained` loads:
//! `config.json`, `model.safetensors` (HF names, tied weights stored once; in the source's dtype
//! by default), `tokenizer.json` and `tokenizer_config.json`. Written into a temporary sibling
//! folder and renamed into place, so a crash never leaves a half-written model.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{ModelError, Result};
use crate::gguf::{GgmlType, GgufFile};
use crate::model::Model;
use crate::weights::{StoredFloat, WeightMap, save_safetensors_as};

/// The dtype of an exported HF folder's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HfDtype {
    /// The source's: an HF folder's `torch_dtype`; a GGUF's float type when all its tensors
    /// share one (F32, F16, BF16), bf16 for a quantized GGUF.
    #[default]
    Source,
    /// float32.
    F32,
    /// bfloat16.
    Bf16,
    /// float16.
    F16,
}

impl FromStr for HfDtype {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "source" => Ok(Self::Source),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!("unknown dtype `{other}` (expected source, f32, bf16 or f16)")),
        }
    }
}

impl fmt::Display for HfDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        })
    }
}

impl HfDtype {
    /// The concrete dtype for `model` (never [`HfDtype::Source`]).
    pub fn resolve(self, model: &Model) -> Self {
        if self != Self::Source {
            return self;
        }
        let source = model.source();
        if source.is_dir() {
            let raw = &model.config().raw;
            let stated = raw.get("torch_dtype").or_else(|| raw.get("dtype"));
            return match stated.and_then(|v| v.as_str()) {
                Some("bfloat16") => Self::Bf16,
                Some("float16") => Self::F16,
                _ => Self::F32,
            };
        }
        let Ok(file) = GgufFile::open(source) else { return Self::F32 };
        let all = |types: &[GgmlType]| file.tensors.iter().all(|t| types.contains(&t.ty));
        if all(&[GgmlType::F32]) {
            Self::F32
        } else if all(&[GgmlType::F32, GgmlType::F16]) {
            Self::F16
        } else {
            // BF16 tensors, or quantized ones: bf16 holds their range at half of f32's size.
            Self::Bf16
        }
    }

    /// The `torch_dtype` name.
    fn torch_name(self) -> &'static str {
        match self {
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
            Self::Source | Self::F32 => "float32",
        }
    }
}

/// Writes `model` to the folder `dir` (which must not exist yet or be empty) in the source's
/// dtype.
pub fn export_hf(model: &Model, dir: &Path) -> Result<()> {
    export_hf_as(model, dir, HfDtype::Source).map(|_| ())
}

/// [`export_hf`] in `dtype`; returns the dtype written.
pub fn export_hf_as(model: &Model, dir: &Path, dtype: HfDtype) -> Result<HfDtype> {
    export_hf_parts(model, dir, dtype, &HfParts::default())
}

/// What [`export_hf_parts`] writes instead of, or besides, the model's own tensors.
#[derive(Debug, Clone, Default)]
pub struct HfParts {
    /// Parameters left out of `model.safetensors`.
    pub drop: Vec<String>,
    /// Tensors added to it.
    pub add: WeightMap,
    /// Files added to the folder (name, contents).
    pub files: Vec<(String, Vec<u8>)>,
}

/// [`export_hf_as`] with `parts` dropped, added and written beside (a factorized export).
pub fn export_hf_parts(
    model: &Model,
    dir: &Path,
    dtype: HfDtype,
    parts: &HfParts,
) -> Result<HfDtype> {
    let dtype = dtype.resolve(model);
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
    let result = write_into(model, &tmp, dtype, parts).and_then(|()| {
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| ModelError::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| ModelError::io(dir, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| dtype)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| ModelError::format(path, e.to_string()))?;
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
}

fn write_into(model: &Model, dir: &Path, dtype: HfDtype, parts: &HfParts) -> Result<()> {
    let cfg = model.config();
    let mut raw = cfg.raw.clone();
    raw["torch_dtype"] = dtype.torch_name().into();
    raw["dtype"] = dtype.torch_name().into();
    write_json(&dir.join("config.json"), &raw)?;

    let mut tensors = WeightMap::new();
    for name in model.parameter_names() {
        if parts.drop.contains(&name) {
            continue;
        }
        if let Some(t) = model.parameter(&name) {
            tensors.insert(name, t);
        }
    }
    tensors.extend(parts.add.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (name, bytes) in &parts.files {
        std::fs::write(dir.join(name), bytes).map_err(|e| ModelError::io(dir.join(name), e))?;
    }
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let stored = match dtype {
        HfDtype::Bf16 => StoredFloat::Bf16,
        HfDtype::F16 => StoredFloat::F16,
        HfDtype::Source | HfDtype::F32 => StoredFloat::F32,
    };
    save_safetensors_as(&dir.join("model.safetensors"), &tensors, Some(metadata), stored)?;

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
