//! The tokenizer a GGUF carries in its metadata (`tokenizer.ggml.*`), rebuilt as the family's
//! HF tokenizer: `gpt2` (byte-level BPE: Llama 3, Qwen, SmolLM2) or `llama` (SentencePiece:
//! Llama 2, Phi-3, Gemma), with the BOS convention llama.cpp applies.

use std::path::Path;

use super::{GgufFile, GgufValue};
use crate::error::{ModelError, Result};
use crate::tokenizer::{PieceKind, Tokenizer};

/// llama.cpp's SentencePiece token type for "normal", used where a file gives none.
const NORMAL: u64 = 1;

/// Builds the tokenizer of `f` (`path` names the file in errors).
pub(crate) fn tokenizer(f: &GgufFile, path: &Path) -> Result<Tokenizer> {
    let in_file = |e: ModelError| ModelError::InFile { path: path.to_owned(), error: Box::new(e) };
    let tokens = f.meta_strings("tokenizer.ggml.tokens")?;
    let model_kind = f.meta("tokenizer.ggml.model")?.as_str().unwrap_or_default().to_owned();
    let pre = f.metadata.get("tokenizer.ggml.pre").and_then(GgufValue::as_str).unwrap_or("default");
    let types: Vec<u64> = match f.metadata.get("tokenizer.ggml.token_type") {
        Some(GgufValue::Array(types)) => {
            types.iter().map(|t| t.as_u64().unwrap_or(NORMAL)).collect()
        }
        _ => Vec::new(),
    };
    let (tokenizer, bos_by_default) = match model_kind.as_str() {
        "gpt2" => {
            let merges = f.meta_strings("tokenizer.ggml.merges")?;
            let special: Vec<u32> = types
                .iter()
                .enumerate()
                .filter(|&(_, &t)| PieceKind::from_code(t) == Some(PieceKind::Control))
                .map(|(i, _)| i as u32)
                .collect();
            let t = Tokenizer::byte_level_bpe(&tokens, &merges, pre, &special).map_err(in_file)?;
            // llama.cpp puts BOS before a Llama 3 prompt unless the file says otherwise.
            (t, pre == "llama-bpe")
        }
        "llama" => {
            let scores: Vec<f64> = match f.meta("tokenizer.ggml.scores")? {
                GgufValue::Array(s) => s.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect(),
                _ => {
                    return Err(ModelError::config(
                        path,
                        "GGUF `tokenizer.ggml.scores` is not an array",
                    ));
                }
            };
            let kinds = types
                .iter()
                .enumerate()
                .map(|(i, &code)| {
                    PieceKind::from_code(code).ok_or_else(|| {
                        ModelError::config(
                            path,
                            format!("GGUF token {i} has unknown token type {code}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let space_prefix = match f.metadata.get("tokenizer.ggml.add_space_prefix") {
                Some(GgufValue::Bool(b)) => *b,
                _ => true,
            };
            let t = Tokenizer::sentencepiece(&tokens, &scores, &kinds, space_prefix)
                .map_err(in_file)?;
            // SentencePiece models put BOS before a prompt unless the file says otherwise.
            (t, true)
        }
        other => {
            return Err(ModelError::Unsupported(format!(
                "{}: GGUF tokenizer model `{other}` (supported: gpt2 byte-level BPE, llama SentencePiece)",
                path.display()
            )));
        }
    };
    let add_bos = match f.metadata.get("tokenizer.ggml.add_bos_token") {
        Some(GgufValue::Bool(b)) => *b,
        _ => bos_by_default,
    };
    let bos = f
        .metadata
        .get("tokenizer.ggml.bos_token_id")
        .and_then(GgufValue::as_u64)
        .filter(|&id| add_bos && (id as usize) < tokens.len())
        .map(|id| id as u32);
    Ok(tokenizer.with_bos(bos))
}
