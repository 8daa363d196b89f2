//! Tokenizers rebuilt from a bare vocabulary, as a GGUF stores one: a GPT-2-style byte-level BPE
//! (`tokenizer.ggml.model = gpt2`: tokens and merges, with llama.cpp's pre-tokenizer preset), or
//! a SentencePiece BPE (`llama`: tokens, scores and token types, as Llama 2, Phi-3 and Gemma ship).
//!
//! Each is built as the `tokenizer.json` HF transformers would use for the same model, so text
//! encodes to the same ids either way: the Llama 3 and Qwen2 pre-tokenizers are their exact
//! split regexes, and a SentencePiece vocabulary becomes a byte-fallback BPE whose merges are
//! ranked by the score of the merged piece (HF's `SentencePieceExtractor`).

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{
    NormalizerWrapper, Prepend, Replace, Sequence as NormalizerSequence,
};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, DecoderWrapper, SplitDelimiterBehavior};

use super::Tokenizer;
use crate::error::{ModelError, Result};

/// Llama 3's split pattern (llama.cpp's `llama-bpe` preset; HF's `tokenizer.json`).
pub(crate) const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's (and Qwen3's) split pattern: Llama 3's with single digits.
pub(crate) const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Pieces longer than this many bytes take part in no merge: SentencePiece trains pieces of at
/// most 16 characters (Gemma's whitespace runs reach 31), and a hostile vocabulary of
/// megabyte-long pieces must not cost time quadratic in their length.
const MAX_MERGED_PIECE_BYTES: usize = 512;

/// SentencePiece's word-boundary mark, which stands for a space.
const SPACE_MARK: &str = "\u{2581}";

/// The kind of each token in a SentencePiece vocabulary (llama.cpp's `tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// A piece of text (1).
    Normal,
    /// The unknown-token piece (2).
    Unknown,
    /// A control token such as `<s>` (3): never produced from text.
    Control,
    /// A user-defined piece (4), matched whole before the model splits the rest.
    UserDefined,
    /// An unused slot (5).
    Unused,
    /// A byte-fallback piece `<0xAB>` (6).
    Byte,
}

impl PieceKind {
    /// llama.cpp's numeric token type; `None` for codes it does not define.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }
}

fn vocab_of(tokens: &[String]) -> Result<Vocab> {
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    if vocab.len() != tokens.len() {
        return Err(ModelError::Tokenizer("vocabulary has duplicate tokens".into()));
    }
    Ok(vocab)
}

fn split_then_bytes(pattern: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(pattern.to_owned()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| ModelError::Tokenizer(format!("split pattern: {e}")))?;
    Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
    ])))
}

impl Tokenizer {
    /// A GPT-2-style byte-level BPE from a vocabulary and `"a b"` merges. `pre` is llama.cpp's
    /// `tokenizer.ggml.pre`: `gpt-2` (GPT-2's split), `smollm` / `starcoder` / `refact` (digits
    /// one by one, then GPT-2's split), `llama-bpe` (Llama 3's split) or `qwen2` (Qwen's).
    pub fn byte_level_bpe(
        tokens: &[String],
        merges: &[String],
        pre: &str,
        special: &[u32],
    ) -> Result<Self> {
        let vocab = vocab_of(tokens)?;
        let merges: Vec<(String, String)> = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| {
                    ModelError::Tokenizer(format!(
                        "merge {i} `{m}` is not two tokens separated by a space"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| ModelError::Tokenizer(format!("invalid BPE: {e}")))?;
        let byte_level = PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true));
        let pre_tokenizer = match pre {
            "smollm" | "starcoder" | "refact" => {
                PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    PreTokenizerWrapper::Digits(Digits::new(true)),
                    byte_level,
                ]))
            }
            "gpt-2" | "gpt2" | "default" | "" => byte_level,
            "llama-bpe" | "llama3" => split_then_bytes(LLAMA3_SPLIT)?,
            "qwen2" => split_then_bytes(QWEN2_SPLIT)?,
            other => {
                return Err(ModelError::Unsupported(format!(
                    "GGUF tokenizer pre-tokenizer `{other}` (supported: gpt-2, smollm, starcoder, refact, llama-bpe, qwen2)"
                )));
            }
        };
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())));
        let specials: Vec<AddedToken> = special
            .iter()
            .filter_map(|&id| tokens.get(id as usize))
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        inner
            .add_special_tokens(specials)
            .map_err(|e| ModelError::Tokenizer(format!("special tokens: {e}")))?;
        Ok(Self { inner, bos: None })
    }

    /// A SentencePiece BPE vocabulary: `tokens` with their `scores` and `kinds` (all
    /// [`PieceKind::Normal`] when empty). Spaces become `▁`, and `add_space_prefix` puts one
    /// before the text (Llama 2 and Phi-3 do, Gemma does not); a character no piece covers falls
    /// back to its UTF-8 bytes (`<0xAB>` pieces), or to the unknown piece when those are absent.
    pub fn sentencepiece(
        tokens: &[String],
        scores: &[f64],
        kinds: &[PieceKind],
        add_space_prefix: bool,
    ) -> Result<Self> {
        if scores.len() != tokens.len() || !(kinds.is_empty() || kinds.len() == tokens.len()) {
            return Err(ModelError::Tokenizer(format!(
                "{} tokens but {} scores and {} token types",
                tokens.len(),
                scores.len(),
                kinds.len()
            )));
        }
        let kind = |i: usize| kinds.get(i).copied().unwrap_or(PieceKind::Normal);
        let vocab = vocab_of(tokens)?;
        // Merge (l, r) exists when l, r and l + r are text pieces; the higher the score of l + r,
        // the earlier it merges.
        let pieces: HashMap<&str, usize> = tokens
            .iter()
            .enumerate()
            .filter(|&(i, _)| kind(i) == PieceKind::Normal)
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let mut ranked: Vec<(f64, usize, usize, &str, &str)> = Vec::new();
        for (&text, &id) in &pieces {
            if text.len() > MAX_MERGED_PIECE_BYTES {
                continue;
            }
            for (cut, _) in text.char_indices().skip(1) {
                let (left, right) = text.split_at(cut);
                if let (Some(&l), Some(_)) = (pieces.get(left), pieces.get(right)) {
                    ranked.push((scores[id], id, l, left, right));
                }
            }
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let merges: Vec<(String, String)> =
            ranked.into_iter().map(|(_, _, _, l, r)| (l.to_owned(), r.to_owned())).collect();
        let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true);
        if let Some(unk) = (0..tokens.len()).find(|&i| kind(i) == PieceKind::Unknown) {
            builder = builder.unk_token(tokens[unk].clone()).fuse_unk(true);
        }
        let bpe =
            builder.build().map_err(|e| ModelError::Tokenizer(format!("invalid BPE: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let spaces = Replace::new(" ", SPACE_MARK)
            .map_err(|e| ModelError::Tokenizer(format!("normalizer: {e}")))?;
        let normalizer = if add_space_prefix {
            NormalizerWrapper::Sequence(NormalizerSequence::new(vec![
                NormalizerWrapper::Prepend(Prepend::new(SPACE_MARK.to_owned())),
                NormalizerWrapper::Replace(spaces),
            ]))
        } else {
            NormalizerWrapper::Replace(spaces)
        };
        inner
            .with_normalizer(Some(normalizer))
            .map_err(|e| ModelError::Tokenizer(format!("normalizer: {e}")))?;
        let marks = Replace::new(SPACE_MARK, " ")
            .map_err(|e| ModelError::Tokenizer(format!("decoder: {e}")))?;
        let mut decoders = vec![
            DecoderWrapper::Replace(marks),
            DecoderWrapper::ByteFallback(ByteFallback::new()),
            DecoderWrapper::Fuse(Fuse::new()),
        ];
        if add_space_prefix {
            decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
        }
        inner.with_decoder(Some(DecoderWrapper::Sequence(DecoderSequence::new(decoders))));
        let added = |k: PieceKind, special: bool| -> Vec<AddedToken> {
            (0..tokens.len())
                .filter(|&i| kind(i) == k)
                .map(|i| AddedToken::from(tokens[i].clone(), special).normalized(false))
                .collect()
        };
        inner
            .add_special_tokens(added(PieceKind::Control, true))
            .map_err(|e| ModelError::Tokenizer(format!("control tokens: {e}")))?;
        inner
            .add_tokens(added(PieceKind::UserDefined, false))
            .map_err(|e| ModelError::Tokenizer(format!("user-defined tokens: {e}")))?;
        Ok(Self { inner, bos: None })
    }
}
