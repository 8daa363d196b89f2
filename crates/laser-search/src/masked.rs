//! LASER's protocol for masked language models (RoBERTa): the answer's place after the prompt is
//! filled with one `<mask>` per answer token, and an answer is scored by the log-probabilities of
//! its tokens at those masks — `<s> prompt <mask>… suffix </s>`, read in both directions.
//!
//! With one-token answers this is exactly what LASER's `intervention_roberta_*` scripts do: FEVER
//! and TruthfulQA compare log p(" true") with log p(" false") at `"… The claim is <mask>"`, and
//! CounterFact asks whether the top-1 token at `"{prompt} <mask>."` is the answer's first token.
//! Longer answers get one mask per token (all masked at once), which keeps the choice rule (sum of
//! token log-probabilities) and the log-loss (mean per-token NLL) of the causal protocol.
//! Generation has no masked-LM counterpart, so generative tasks are rejected.

use laser_model::{Model, Tokenizer};

use crate::error::{Result, SearchError};
use crate::task::Target;

/// The special tokens around a masked-LM input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaskedLayout {
    bos: u32,
    eos: u32,
    mask: u32,
}

impl MaskedLayout {
    /// The layout for `model`: `None` for a causal model; an error when a masked model's tokenizer
    /// lacks `<mask>` or the sequence delimiters.
    pub(crate) fn of(model: &Model, tok: &Tokenizer) -> Result<Option<Self>> {
        if model.family().is_causal() {
            return Ok(None);
        }
        let from_config = |key: &str| {
            model.config().raw.get(key).and_then(serde_json::Value::as_u64).map(|v| v as u32)
        };
        let special = |token: &str, key: &str| {
            tok.token_id(token).or_else(|| from_config(key)).ok_or_else(|| {
                SearchError::Config(format!(
                    "{} is a masked language model, but neither its tokenizer has `{token}` nor \
                     its config.json `{key}`",
                    model.family().name()
                ))
            })
        };
        let mask = tok.token_id("<mask>").ok_or_else(|| {
            SearchError::Config(format!(
                "{} is a masked language model, but its tokenizer has no `<mask>` token",
                model.family().name()
            ))
        })?;
        Ok(Some(Self {
            bos: special("<s>", "bos_token_id")?,
            eos: special("</s>", "eos_token_id")?,
            mask,
        }))
    }

    /// `<s> prompt <mask>×answer_len suffix </s>` and the positions of the masks.
    pub(crate) fn sequence(
        &self,
        prompt: &[u32],
        answer_len: usize,
        suffix: &[u32],
    ) -> (Vec<u32>, Vec<usize>) {
        let first = 1 + prompt.len();
        let mut seq = Vec::with_capacity(first + answer_len + suffix.len() + 1);
        seq.push(self.bos);
        seq.extend_from_slice(prompt);
        seq.extend(std::iter::repeat_n(self.mask, answer_len));
        seq.extend_from_slice(suffix);
        seq.push(self.eos);
        (seq, (first..first + answer_len).collect())
    }
}

/// Rejects an item a masked model cannot score: generation has no masked-LM counterpart.
pub(crate) fn check_scorable(model: &Model, item: usize, target: &Target) -> Result<()> {
    if matches!(target, Target::Generate { .. }) {
        return Err(SearchError::Config(format!(
            "item {item}: generative tasks need a causal model; {} is a masked language model",
            model.family().name()
        )));
    }
    Ok(())
}

/// The prompt as a masked model reads it: HF's RoBERTa tokenizer lets `<mask>` absorb the space
/// before it, so LASER's `"{prompt} <mask>"` is the trimmed prompt followed by the mask.
pub(crate) fn masked_prompt(prompt: &str) -> &str {
    prompt.trim_end()
}

/// Text after the masks: CounterFact's prompts end mid-sentence, and LASER closes them with a
/// full stop (`"{prompt} <mask>."`); the true/false templates end with the mask.
pub(crate) fn suffix_text(target: &Target) -> &'static str {
    match target {
        Target::NextToken { .. } => ".",
        Target::Choice { .. } | Target::Generate { .. } => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sit_between_the_prompt_and_the_suffix() {
        let layout = MaskedLayout { bos: 0, eos: 2, mask: 9 };
        let (seq, at) = layout.sequence(&[5, 6], 2, &[7]);
        assert_eq!(seq, vec![0, 5, 6, 9, 9, 7, 2]);
        assert_eq!(at, vec![3, 4]);
        assert_eq!(masked_prompt("The claim is "), "The claim is");
    }
}
