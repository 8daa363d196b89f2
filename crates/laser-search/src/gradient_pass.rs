//! One gradient pass over task items: each item's gold answer after its prompt (or at its masks,
//! for a masked model), in micro-batches of similar lengths.

use laser_model::{Model, TokenTarget};

use crate::error::{Result, SearchError};
use crate::masked::{MaskedLayout, check_scorable, masked_prompt, suffix_text};
use crate::task::Item;
use crate::tokens::{encode, encode_prompt};

/// One gradient pass over `items`: the mean gold-answer NLL and `∂L/∂W` for each named matrix.
pub fn gradient_pass(
    model: &Model,
    items: &[Item],
    names: &[String],
    micro_batch: usize,
) -> Result<laser_model::GradientPass> {
    let tok = model
        .tokenizer()
        .ok_or_else(|| SearchError::Config("the model has no tokenizer; tasks need one".into()))?;
    let masked = MaskedLayout::of(model, tok)?;
    // Per item: the sequence and its gold answer's targets (sequence index set after sorting).
    let target = |position, token| TokenTarget { seq: 0, position, token };
    let mut scored: Vec<(Vec<u32>, Vec<TokenTarget>)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let c = encode(tok, &item.gold_continuation(), i, "answer")?;
        scored.push(match &masked {
            Some(layout) => {
                check_scorable(model, i, &item.target)?;
                let p = encode(tok, masked_prompt(&item.prompt), i, "prompt")?;
                let (seq, at) =
                    layout.sequence(&p, c.len(), &tok.encode(suffix_text(&item.target))?);
                (seq, at.into_iter().zip(c).map(|(p, t)| target(p, t)).collect())
            }
            None => {
                let p = encode_prompt(tok, &item.prompt, i)?;
                let at = (0..c.len()).map(|k| p.len() + k - 1);
                let targets = at.zip(c.iter().copied()).map(|(p, t)| target(p, t)).collect();
                (p.into_iter().chain(c).collect(), targets)
            }
        });
    }
    // Micro-batches of similar lengths waste little on padding; the gradient is a sum over
    // items, so their order does not change it (beyond float rounding).
    scored.sort_by_key(|(seq, _)| seq.len());
    let mut seqs = Vec::with_capacity(scored.len());
    let mut targets = Vec::new();
    for (i, (seq, at)) in scored.into_iter().enumerate() {
        targets.extend(at.into_iter().map(|t| TokenTarget { seq: i, ..t }));
        seqs.push(seq);
    }
    Ok(model.loss_and_gradients(&seqs, &targets, names, micro_batch)?)
}
