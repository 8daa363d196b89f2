//! Tokenizers: HF `tokenizer.json` through the pure-Rust `tokenizers` crate, or one rebuilt from
//! a GGUF's vocabulary ([`vocab`]: byte-level BPE or SentencePiece).
//!
//! Each family's BOS convention travels with its tokenizer: Llama 3 prepends
//! `<|begin_of_text|>` and Gemma `<bos>` through `tokenizer.json`'s post-processor, Qwen and
//! SmolLM2 nothing; a GGUF says so in `tokenizer.ggml.add_bos_token`. Prompts are encoded with
//! [`Tokenizer::encode_prompt`] so that a model scores exactly what its own tokenizer produces;
//! continuations and raw text ([`Tokenizer::encode`]) never get one.

use std::path::Path;

use tokenizers::AddedToken;
use tokenizers::processors::template::TemplateProcessing;

use crate::error::{ModelError, Result};

mod vocab;

pub use vocab::PieceKind;
pub(crate) use vocab::{LLAMA3_SPLIT, QWEN2_SPLIT};

/// A text tokenizer, and the BOS token its family puts before a prompt (if any).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
}

impl Tokenizer {
    /// Loads an HF `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let bos = leading_special(&inner);
        Ok(Self { inner, bos })
    }

    /// The token id put before every prompt (`None`: nothing).
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// This tokenizer with `bos` put before prompts (a GGUF's `tokenizer.ggml.add_bos_token`).
    pub fn with_bos(mut self, bos: Option<u32>) -> Self {
        self.bos = bos;
        self
    }

    /// Token ids of a prompt as the family's tokenizer presents it to the model: the BOS token
    /// first when the family uses one, then [`Tokenizer::encode`]'s ids.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self.encode(text)?;
        Ok(self.bos.into_iter().chain(ids).collect())
    }

    /// A byte-level tokenizer without merges: one token per byte (GPT-2's byte-to-unicode alphabet,
    /// ids 0..256 in byte order). Small enough for the tiny test models' 512-token vocabularies.
    pub fn bytes_only() -> Result<Self> {
        let tokens: Vec<String> = (0u8..=255).map(|b| byte_char(b).to_string()).collect();
        Self::byte_level_bpe(&tokens, &[], "gpt-2", &[])
    }

    /// This tokenizer with `tokens` added as special tokens after the vocabulary (ids
    /// `vocab_size()..`), each matched whole and never split. Tokens already present keep their
    /// ids.
    pub fn with_special_tokens(mut self, tokens: &[&str]) -> Result<Self> {
        let added: Vec<AddedToken> =
            tokens.iter().map(|t| AddedToken::from((*t).to_owned(), true)).collect();
        self.inner
            .add_special_tokens(added)
            .map_err(|e| ModelError::Tokenizer(format!("special tokens: {e}")))?;
        Ok(self)
    }

    /// The id of a token given by its exact text (`"<mask>"`), added tokens included.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of `text` (no BOS added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer(format!("cannot encode {text:?}: {e}")))
    }

    /// Text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(format!("cannot decode: {e}")))
    }

    /// The text of one token id, as it decodes alone.
    pub fn token_text(&self, id: u32) -> Result<String> {
        self.decode(&[id])
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The HF `tokenizer.json` text. A tokenizer that puts a BOS token before prompts but has no
    /// post-processor saying so (one rebuilt from a GGUF) gets one (`<bos> $A`), so that the
    /// file carries the convention to HF transformers and back to [`Tokenizer::from_file`].
    pub fn to_json(&self) -> Result<String> {
        let serialise = |t: &tokenizers::Tokenizer| {
            t.to_string(true).map_err(|e| ModelError::Tokenizer(format!("cannot serialise: {e}")))
        };
        let Some(bos) = self.bos.filter(|_| self.inner.get_post_processor().is_none()) else {
            return serialise(&self.inner);
        };
        let text = self.inner.id_to_token(bos).ok_or_else(|| {
            ModelError::Tokenizer(format!("BOS id {bos} is not in the vocabulary"))
        })?;
        let template = TemplateProcessing::builder()
            .try_single(format!("{text} $A"))
            .and_then(|b| b.try_pair(format!("{text} $A {text} $B")))
            .map_err(|e| ModelError::Tokenizer(format!("BOS template: {e}")))?
            .special_tokens(vec![(text, bos)])
            .build()
            .map_err(|e| ModelError::Tokenizer(format!("BOS template: {e}")))?;
        let mut with_bos = self.inner.clone();
        with_bos.with_post_processor(Some(template));
        serialise(&with_bos)
    }
}

/// The token the post-processor puts before a single sequence, found by encoding a probe text
/// with and without special tokens (whatever the processor's kind: a template, a sequence of
/// processors, or RoBERTa's); a trailing EOS the processor may add is not a prefix and is ignored.
fn leading_special(inner: &tokenizers::Tokenizer) -> Option<u32> {
    let probe = "a";
    let plain = inner.encode(probe, false).ok()?.get_ids().to_vec();
    let full = inner.encode(probe, true).ok()?.get_ids().to_vec();
    match full.split_first() {
        Some((&first, rest)) if !plain.is_empty() && rest.starts_with(&plain) => Some(first),
        _ => None,
    }
}

/// GPT-2's byte-to-unicode map: printable bytes map to themselves, the rest to U+0100 onwards.
fn byte_char(b: u8) -> char {
    let printable = |x: u8| {
        (b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || (0xAE..=0xFF).contains(&x)
    };
    if printable(b) {
        char::from(b)
    } else {
        let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + rank).expect("valid code point")
    }
}
