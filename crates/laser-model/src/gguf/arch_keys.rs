//! One architecture's metadata in a GGUF file (`{arch}.*` keys, as llama.cpp's converter names
//! them), with the values every family reads already taken out: what a family's GGUF mapping
//! (`families/`) is given to write its `config.json` keys.

use std::path::Path;

use super::{GgufFile, GgufValue};
use crate::error::Result;

/// The metadata of a GGUF's architecture, read once.
#[derive(Debug)]
pub(crate) struct ArchMetadata<'a> {
    pub(crate) file: &'a GgufFile,
    /// `general.architecture`.
    pub(crate) arch: &'a str,
    /// The file, for errors.
    pub(crate) path: &'a Path,
    pub(crate) heads: u64,
    pub(crate) hidden: u64,
    pub(crate) layers: u64,
    /// `attention.key_length` (Qwen3, the Gemmas), else d / H.
    pub(crate) head_dim: u64,
    /// `rope.dimension_count`, else the head width.
    pub(crate) rotary_dim: u64,
    /// `rope.freq_base`, else 10,000.
    pub(crate) rope_theta: f64,
    /// `attention.sliding_window`, when positive.
    pub(crate) window: Option<u64>,
}

impl<'a> ArchMetadata<'a> {
    /// Reads the keys every family has from `file`, whose architecture is `arch`.
    pub(crate) fn read(file: &'a GgufFile, arch: &'a str, path: &'a Path) -> Result<Self> {
        let key = |k: &str| format!("{arch}.{k}");
        let get = |k: &str| file.metadata.get(&key(k));
        let heads = file.meta_u64(&key("attention.head_count"))?;
        let hidden = file.meta_u64(&key("embedding_length"))?;
        let head_dim = get("attention.key_length")
            .and_then(GgufValue::as_u64)
            .unwrap_or(hidden / heads.max(1));
        Ok(Self {
            file,
            arch,
            path,
            heads,
            hidden,
            layers: file.meta_u64(&key("block_count"))?,
            head_dim,
            rotary_dim: get("rope.dimension_count").and_then(GgufValue::as_u64).unwrap_or(head_dim),
            rope_theta: get("rope.freq_base").and_then(GgufValue::as_f64).unwrap_or(10000.0),
            window: get("attention.sliding_window").and_then(GgufValue::as_u64).filter(|&w| w > 0),
        })
    }

    /// The full name of the architecture's key `k`.
    pub(crate) fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// The architecture's key `k`.
    pub(crate) fn get(&self, k: &str) -> Option<&'a GgufValue> {
        self.file.metadata.get(&self.key(k))
    }

    /// The architecture's key `k` as an integer.
    pub(crate) fn u64(&self, k: &str) -> Option<u64> {
        self.get(k).and_then(GgufValue::as_u64)
    }

    /// The architecture's key `k` as a number.
    pub(crate) fn f64(&self, k: &str) -> Option<f64> {
        self.get(k).and_then(GgufValue::as_f64)
    }

    /// The architecture's key `k` as a string.
    pub(crate) fn str(&self, k: &str) -> Option<&'a str> {
        self.get(k).and_then(GgufValue::as_str)
    }
}
