//! The family registry: one line per family, each family one file of this folder. Config parsing
//! (`config.json`'s `model_type`), the GGUF loader (`general.architecture`), model building and
//! the tests all iterate [`FAMILIES`]; a new family is its file, its fixture and its line here.
//!
//! Config parsing lives here rather than in `config.rs`, which holds the shared types the
//! families fill in: that way no family file and `config.rs` import each other.

mod gemma2;
mod gemma3;
pub(crate) mod gguf;
mod gpt2;
mod gpt_neox;
mod gptj;
mod llama;
mod phi3;
mod roberta;

use std::path::Path;

use crate::arch::{Architecture, FamilyEntry};
use crate::config::{ConfigReader, Family, ModelConfig, required};
use crate::error::{ModelError, Result};

/// Every family, in report order.
const FAMILIES: &[FamilyEntry] = &[
    llama::LLAMA,
    llama::MISTRAL,
    llama::QWEN2,
    llama::QWEN3,
    phi3::PHI3,
    gemma2::GEMMA2,
    gemma3::GEMMA3,
    gpt2::GPT2,
    gptj::GPTJ,
    gpt_neox::GPT_NEOX,
    roberta::ROBERTA,
];

/// A registered family, as the library's users see it.
#[derive(Debug, Clone, Copy)]
pub struct RegisteredFamily(&'static FamilyEntry);

impl RegisteredFamily {
    /// The family.
    pub fn family(self) -> Family {
        self.0.family
    }

    /// The `config.json` `model_type`s it reads.
    pub fn model_types(self) -> &'static [&'static str] {
        self.0.model_types
    }

    /// The GGUF architectures (llama.cpp's `general.architecture`) it reads.
    pub fn gguf_architectures(self) -> &'static [&'static str] {
        self.0.gguf.map_or(&[], |g| g.architectures)
    }
}

/// Every supported family, in report order.
pub fn families() -> impl Iterator<Item = RegisteredFamily> {
    FAMILIES.iter().map(RegisteredFamily)
}

/// The architecture of a parsed config.
pub(crate) fn build(cfg: ModelConfig) -> Result<Box<dyn Architecture>> {
    let entry = FAMILIES
        .iter()
        .find(|e| e.family == cfg.family)
        .expect("every config is parsed by a registered family");
    (entry.build)(cfg)
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses and validates the bytes of a `config.json`; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let raw: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ModelError::config(path, format!("not JSON: {e}")))?;
        Self::from_json(raw, path)
    }

    /// Builds a config from parsed JSON, through the family whose `model_type` it names; `path`
    /// is only used in error messages.
    pub fn from_json(raw: serde_json::Value, path: &Path) -> Result<Self> {
        if !raw.is_object() {
            return Err(ModelError::config(path, "expected a JSON object"));
        }
        let model_type: String = required(&raw, &["model_type"], path)?;
        let Some(entry) = FAMILIES.iter().find(|e| e.model_types.contains(&model_type.as_str()))
        else {
            let supported: Vec<&str> =
                FAMILIES.iter().flat_map(|e| e.model_types.iter().copied()).collect();
            return Err(ModelError::Unsupported(format!(
                "{}: model_type `{model_type}` (supported: {})",
                path.display(),
                supported.join(", ")
            )));
        };
        let r = ConfigReader::new(&raw, path)?;
        let mut cfg = (entry.parse_config)(&r, &model_type)?;
        // Linear RoPE scaling means the same for every rotary family (HF divides the inverse
        // frequencies); a family that reads its own (Gemma 3's per-layer-type form) has set it.
        if cfg.rope_linear_factor.is_none() {
            cfg.rope_linear_factor = r.rope_linear_factor;
        }
        cfg.validate(path)?;
        Ok(cfg)
    }
}
