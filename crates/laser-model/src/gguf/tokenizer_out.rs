//! An HF folder's tokenizer as GGUF metadata (`tokenizer.ggml.*`), the reverse of `tokenizer.rs`:
//! a byte-level BPE becomes llama.cpp's `gpt2` model with its merges and the pre-tokenizer preset
//! whose split it matches; a SentencePiece-style BPE (byte fallback, spaces as `▁`: Gemma,
//! Llama 2) becomes llama.cpp's `llama` model, whose merge order lives in per-piece scores — a
//! piece scores minus the rank of its first merge, so the loader's score-ordered merges replay the
//! folder's. Anything else is refused, naming what does not fit.

use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::tokenizer::{LLAMA3_SPLIT, QWEN2_SPLIT};

/// llama.cpp's token types.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// The two tokenizer models llama.cpp reads here.
pub(super) enum TokenizerModel {
    /// Byte-level BPE (`gpt2`) with llama.cpp's pre-tokenizer preset and the merges.
    Gpt2 { pre: &'static str, merges: Vec<String> },
    /// SentencePiece BPE (`llama`): one score per token, and whether a space starts the text.
    Llama { scores: Vec<f32>, add_space_prefix: bool },
}

/// What `tokenizer.ggml.*` holds.
pub(super) struct TokenizerMeta {
    pub(super) model: TokenizerModel,
    pub(super) tokens: Vec<String>,
    pub(super) types: Vec<i32>,
    pub(super) bos: Option<u32>,
    pub(super) unknown: Option<u32>,
}

/// The tokenizer of `model` (from an HF folder, `vocab_size` embedding rows) as GGUF metadata.
pub(super) fn tokenizer_meta(model: &Model, vocab_size: usize) -> Result<TokenizerMeta> {
    let source = model.source();
    let refuse = |why: &str| {
        ModelError::Unsupported(format!(
            "{}: GGUF export needs the tokenizer in llama.cpp's form: {why}",
            source.display()
        ))
    };
    let tokenizer = model.tokenizer().ok_or_else(|| refuse("the model has no tokenizer.json"))?;
    let json: Value = serde_json::from_str(&tokenizer.to_json()?)
        .map_err(|e| ModelError::Tokenizer(format!("serialised tokenizer: {e}")))?;
    let bpe = &json["model"];
    if bpe["type"] != "BPE" {
        return Err(refuse("only BPE tokenizers (byte-level or SentencePiece-style) are written"));
    }
    let sentencepiece = bpe["byte_fallback"] == true;
    let add_space_prefix = if sentencepiece {
        if !json["pre_tokenizer"].is_null() {
            return Err(refuse("a pre-tokenizer before a SentencePiece-style BPE"));
        }
        Some(space_prefix(&json["normalizer"]).ok_or_else(|| {
            refuse("a normalizer other than SentencePiece's (spaces as `▁`, an optional prefix)")
        })?)
    } else {
        if !json["normalizer"].is_null() {
            return Err(refuse("a normalizer, which llama.cpp's byte-level presets do not apply"));
        }
        None
    };
    let vocab = bpe["vocab"].as_object().ok_or_else(|| refuse("no BPE vocabulary"))?;
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![NORMAL; vocab_size];
    let mut place = |id: u64, text: &str, ty: i32| -> Result<()> {
        let slot = tokens.get_mut(id as usize).ok_or_else(|| {
            refuse(&format!("token {id} `{text}` is beyond the model's {vocab_size} embeddings"))
        })?;
        *slot = Some(text.to_owned());
        types[id as usize] = ty;
        Ok(())
    };
    for (text, id) in vocab {
        let ty = if sentencepiece && is_byte_piece(text) { BYTE } else { NORMAL };
        place(id.as_u64().unwrap_or(u64::MAX), text, ty)?;
    }
    let unk_text = bpe["unk_token"].as_str();
    let mut unknown = None;
    if let Some(id) = unk_text.and_then(|u| vocab.get(u)).and_then(Value::as_u64) {
        place(id, unk_text.unwrap_or_default(), UNKNOWN)?;
        unknown = Some(id as u32);
    }
    for added in json["added_tokens"].as_array().into_iter().flatten() {
        let ty = match (added["special"] == true, added["content"].as_str() == unk_text) {
            (_, true) => UNKNOWN,
            (true, false) => CONTROL,
            (false, false) => USER_DEFINED,
        };
        place(
            added["id"].as_u64().unwrap_or(u64::MAX),
            added["content"].as_str().unwrap_or(""),
            ty,
        )?;
    }
    // Embedding rows no token names (padded vocabularies): llama.cpp's converter fills them so.
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = UNUSED;
                format!("[PAD{i}]")
            })
        })
        .collect();
    let merges = merges(bpe).ok_or_else(|| refuse("a BPE merge that is not two tokens"))?;
    let model = match add_space_prefix {
        None => TokenizerModel::Gpt2 {
            pre: pre_tokenizer_preset(&json["pre_tokenizer"]).ok_or_else(|| {
                refuse(
                    "its pre-tokenizer matches none of llama.cpp's gpt-2, smollm, llama-bpe, qwen2",
                )
            })?,
            merges,
        },
        Some(add_space_prefix) => {
            TokenizerModel::Llama { scores: merge_scores(&tokens, &merges), add_space_prefix }
        }
    };
    Ok(TokenizerMeta { model, tokens, types, bos: tokenizer.bos(), unknown })
}

/// The merges of a BPE model as `"left right"` (tokenizers writes strings or pairs).
fn merges(bpe: &Value) -> Option<Vec<String>> {
    bpe["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(pair) => match (pair.first(), pair.get(1)) {
                (Some(Value::String(a)), Some(Value::String(b))) => Some(format!("{a} {b}")),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// SentencePiece scores that order merges as `merges` does: the piece a merge makes scores minus
/// the rank of its first merge (higher merges earlier); pieces no merge makes score below all.
/// Ranks stay exact in f32 (below 2^24).
fn merge_scores(tokens: &[String], merges: &[String]) -> Vec<f32> {
    let id: std::collections::HashMap<&str, usize> =
        tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut scores = vec![-(merges.len() as f32) - 1.0; tokens.len()];
    for (rank, merge) in merges.iter().enumerate().rev() {
        let piece: String = merge.splitn(2, ' ').collect();
        if let Some(&i) = id.get(piece.as_str()) {
            scores[i] = -(rank as f32);
        }
    }
    scores
}

/// `<0xAB>`: a byte-fallback piece.
fn is_byte_piece(text: &str) -> bool {
    text.len() == 6
        && text.starts_with("<0x")
        && text.ends_with('>')
        && text[3..5].chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether a SentencePiece normalizer (`▁` for spaces) also puts one before the text; `None` for
/// any other normalizer.
fn space_prefix(normalizer: &Value) -> Option<bool> {
    let replaces_spaces =
        |v: &Value| v["type"] == "Replace" && v["pattern"]["String"] == " " && v["content"] == "▁";
    if replaces_spaces(normalizer) {
        return Some(false);
    }
    let parts =
        normalizer["normalizers"].as_array().filter(|_| normalizer["type"] == "Sequence")?;
    match parts.as_slice() {
        [only] if replaces_spaces(only) => Some(false),
        [prepend, replace] if prepend["type"] == "Prepend" && prepend["prepend"] == "▁" => {
            replaces_spaces(replace).then_some(true)
        }
        _ => None,
    }
}

/// llama.cpp's preset for a byte-level pre-tokenizer, matched on its structure.
fn pre_tokenizer_preset(pre: &Value) -> Option<&'static str> {
    let byte_level = |v: &Value| v["type"] == "ByteLevel" && v["add_prefix_space"] != true;
    if byte_level(pre) {
        return Some("gpt-2");
    }
    let parts = pre["pretokenizers"].as_array().filter(|_| pre["type"] == "Sequence")?;
    match parts.as_slice() {
        [digits, last] if digits["type"] == "Digits" && digits["individual_digits"] == true => {
            byte_level(last).then_some("smollm")
        }
        [split, last] if split["type"] == "Split" && byte_level(last) => {
            match split["pattern"]["Regex"].as_str()? {
                p if p == LLAMA3_SPLIT => Some("llama-bpe"),
                p if p == QWEN2_SPLIT => Some("qwen2"),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_scores_minus_its_first_merge_rank() {
        let tokens: Vec<String> = ["a", "b", "ab", "abb", "c"].map(String::from).to_vec();
        let merges: Vec<String> = ["a b", "ab b", "a b"].map(String::from).to_vec();
        assert_eq!(merge_scores(&tokens, &merges), [-4.0, -4.0, 0.0, -1.0, -4.0]);
    }

    #[test]
    fn only_sentencepiece_normalizers_are_recognised() {
        let replace =
            serde_json::json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
        let prepend = serde_json::json!({"type": "Prepend", "prepend": "▁"});
        assert_eq!(space_prefix(&replace), Some(false));
        let seq = serde_json::json!({"type": "Sequence", "normalizers": [prepend, replace]});
        assert_eq!(space_prefix(&seq), Some(true));
        assert_eq!(space_prefix(&serde_json::json!({"type": "NFKC"})), None);
        assert!(is_byte_piece("<0x0A>") && !is_byte_piece("<0xZZ>") && !is_byte_piece("<s>"));
    }
}
