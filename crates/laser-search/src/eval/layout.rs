//! How an evaluator lays its items out, once: tokenized rows (a prompt and the continuations
//! scored in it), the task prefix every prompt shares, blocks of items (racing can stop between
//! two) and, in each block, length-sorted batches uploaded for every candidate to reuse.

use laser_model::{Model, Pass, PreparedBatch, RowShape, TokenTarget};

use super::{Batch, Block, EvalLayout, Evaluator, Scoring, SeqSlot};
use crate::batching;
use crate::error::{Result, SearchError};
use crate::masked::{MaskedLayout, check_scorable, masked_prompt, suffix_text};
use crate::task::{Item, Target};
use crate::tokens::{encode, encode_prompt, normalise_answer};

/// One input row: a prompt and the continuations (sequence id, tokens) scored in it — packed after
/// the prompt (causal), or sharing one run of masks before `suffix` (masked; all one length).
#[derive(Debug, Clone)]
struct Row {
    /// The item it scores.
    item: usize,
    prompt: Vec<u32>,
    conts: Vec<(usize, Vec<u32>)>,
    suffix: Vec<u32>,
}

/// Uploads rows (after the shared `prefix`, causal only) as one batch and returns, per row and
/// continuation, the positions whose outputs score each continuation token.
fn prepare_rows(
    model: &Model,
    masked: Option<&MaskedLayout>,
    prefix: &[u32],
    rows: &[&Row],
) -> Result<(PreparedBatch, Vec<Vec<Vec<usize>>>)> {
    match masked {
        None => {
            let packed: Vec<(Vec<u32>, Vec<Vec<u32>>)> = rows
                .iter()
                .map(|r| (r.prompt.clone(), r.conts.iter().map(|(_, c)| c.clone()).collect()))
                .collect();
            Ok(model.prepare_packed_after(prefix, &packed)?)
        }
        Some(layout) => {
            let mut seqs = Vec::with_capacity(rows.len());
            let mut predictors = Vec::with_capacity(rows.len());
            for r in rows {
                let (seq, at) = layout.sequence(&r.prompt, r.conts[0].1.len(), &r.suffix);
                seqs.push(seq);
                predictors.push(vec![at; r.conts.len()]);
            }
            Ok((model.prepare(&seqs)?, predictors))
        }
    }
}

impl Evaluator {
    /// Every constructor's work: `items` tokenized as `layout` says, the `parts` scored one after
    /// the other in blocks of `block` items, each block in batches of about `batch_tokens`
    /// tokens (within the memory budget).
    pub(super) fn build(
        model: &Model,
        items: &[Item],
        batch_tokens: usize,
        layout: EvalLayout,
        parts: &[Vec<usize>],
        block: usize,
    ) -> Result<Self> {
        let tok = model.tokenizer().ok_or_else(|| {
            SearchError::Config("the model has no tokenizer; tasks need one".into())
        })?;
        if items.is_empty() {
            return Err(SearchError::Config("no items to evaluate".into()));
        }
        let masked = MaskedLayout::of(model, tok)?;
        // Causal rows: the prompt once, then every continuation scored after it (each choice, or
        // the gold answer). Masked rows: one per answer length, all its continuations scored at
        // the same masks. Sequence ids number the continuations globally.
        let mut rows: Vec<Row> = Vec::with_capacity(items.len());
        let mut n_seqs = 0usize;
        let mut scoring = Vec::with_capacity(items.len());
        let mut gold_seq = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let prompt = match masked {
                Some(_) => encode(tok, masked_prompt(&item.prompt), i, "prompt")?,
                None => encode_prompt(tok, &item.prompt, i)?,
            };
            let conts = match &item.target {
                Target::Choice { choices, answer } => {
                    gold_seq.push(n_seqs + answer);
                    let names = choices.iter().map(|c| c.trim().to_owned()).collect();
                    scoring.push(Scoring::Choice {
                        first: n_seqs,
                        n: choices.len(),
                        answer: *answer,
                        names,
                    });
                    choices
                        .iter()
                        .map(|c| encode(tok, c, i, "choice"))
                        .collect::<Result<Vec<_>>>()?
                }
                Target::NextToken { .. } => {
                    let cont = encode(tok, &item.gold_continuation(), i, "answer")?;
                    gold_seq.push(n_seqs);
                    scoring.push(Scoring::NextToken {
                        seq: n_seqs,
                        answer_text: tok.token_text(cont[0])?,
                    });
                    vec![cont]
                }
                Target::Generate { answers, max_tokens } => {
                    if masked.is_some() {
                        check_scorable(model, i, &item.target)?;
                    }
                    let cont = encode(tok, &item.gold_continuation(), i, "answer")?;
                    gold_seq.push(n_seqs);
                    let answers = answers
                        .iter()
                        .map(|a| normalise_answer(a))
                        .filter(|a| !a.is_empty())
                        .collect::<Vec<_>>();
                    if answers.is_empty() {
                        return Err(SearchError::Config(format!(
                            "item {i}: the answer normalises to nothing"
                        )));
                    }
                    scoring.push(Scoring::Generate {
                        prompt: prompt.clone(),
                        answers,
                        max_tokens: *max_tokens,
                    });
                    vec![cont]
                }
            };
            let suffix = match masked {
                Some(_) => tok.encode(suffix_text(&item.target))?,
                None => Vec::new(),
            };
            let conts: Vec<(usize, Vec<u32>)> =
                conts.into_iter().enumerate().map(|(c, ids)| (n_seqs + c, ids)).collect();
            n_seqs += conts.len();
            let row = |conts: Vec<(usize, Vec<u32>)>| Row {
                item: i,
                prompt: prompt.clone(),
                conts,
                suffix: suffix.clone(),
            };
            if !layout.share_prompts {
                rows.extend(conts.into_iter().map(|c| row(vec![c])));
            } else if masked.is_some() {
                // Continuations of one length share one run of masks.
                let mut lengths: Vec<usize> = Vec::new();
                for (_, c) in &conts {
                    if !lengths.contains(&c.len()) {
                        lengths.push(c.len());
                    }
                }
                for len in lengths {
                    rows.push(row(conts.iter().filter(|(_, c)| c.len() == len).cloned().collect()));
                }
            } else {
                rows.push(row(conts));
            }
        }
        // The common prefix leaves at least one token in every prompt: a prompt's last token
        // predicts its continuations' first tokens.
        let prefix = match rows.iter().map(|r| r.prompt.len() - 1).min() {
            Some(cap) if masked.is_none() && layout.share_prefix => {
                let first = &rows[0].prompt;
                let common = rows.iter().fold(cap, |n, r| {
                    n.min(first.iter().zip(&r.prompt).take_while(|(a, b)| a == b).count())
                });
                let prefix = first[..common].to_vec();
                for r in &mut rows {
                    r.prompt.drain(..common);
                }
                prefix
            }
            _ => Vec::new(),
        };
        // Length-sorted batches waste little on padding.
        let row_len = |r: &Row| match masked {
            Some(_) => r.prompt.len() + r.conts[0].1.len() + r.suffix.len() + 2,
            None => r.prompt.len() + r.conts.iter().map(|(_, c)| c.len()).sum::<usize>(),
        };
        tracing::debug!(
            rows = rows.len(),
            shared_prefix_tokens = prefix.len(),
            row_tokens = rows.iter().map(row_len).sum::<usize>(),
            "evaluation layout"
        );
        let mut slots = vec![SeqSlot { batch: 0, first_target: 0, n_targets: 0 }; n_seqs];
        let scored = |r: usize| rows[r].conts.iter().map(|(_, c)| c.len()).sum::<usize>();
        let mut rows_of_item: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
        for (r, row) in rows.iter().enumerate() {
            rows_of_item[row.item].push(r);
        }
        // A part cut into several blocks is cut shortest items first (stable: ties in the
        // part's order), so that each block's rows are alike in length.
        let item_tokens =
            |i: usize| -> usize { rows_of_item[i].iter().map(|&r| row_len(&rows[r])).sum() };
        let blocks: Vec<Vec<usize>> = parts
            .iter()
            .enumerate()
            .flat_map(|(p, part)| {
                let mut part = part.clone();
                if part.len() > block {
                    part.sort_by_key(|&i| item_tokens(i));
                }
                let mut cut: Vec<Vec<usize>> = part.chunks(block).map(<[usize]>::to_vec).collect();
                // The first part's first block is scored in two halves: a race looks after half
                // a block too, where it stops most of what it stops, and every later boundary
                // stays where it was.
                if p == 0 && cut.len() > 1 && block > 1 {
                    let second = cut[0].split_off(block / 2);
                    cut.insert(1, second);
                }
                cut
            })
            .collect();
        let mut batches = Vec::new();
        let mut block_list = Vec::with_capacity(blocks.len());
        let mut padded_tokens = 0usize;
        for block_items in blocks.iter().filter(|b| !b.is_empty()) {
            let first_batch = batches.len();
            let mut order: Vec<usize> =
                block_items.iter().flat_map(|&i| rows_of_item[i].iter().copied()).collect();
            order.sort_by_key(|&r| std::cmp::Reverse(row_len(&rows[r])));
            let lengths: Vec<usize> = order.iter().map(|&r| row_len(&rows[r])).collect();
            // A batch's rows are padded to its first (longest) row; the activation budget may
            // cut it shorter than `batch_tokens` does (a single row over it was refused by
            // `check_context`).
            let max_end = |start: usize| {
                let per_batch = (batch_tokens / lengths[start].max(1)).clamp(1, 256);
                let mut most_scored = scored(order[start]);
                let mut end = start + 1;
                while end < order.len() && end - start < per_batch {
                    most_scored = most_scored.max(scored(order[end]));
                    let shape = RowShape {
                        tokens: lengths[start],
                        prefix: prefix.len(),
                        scored: most_scored,
                    };
                    if !model.fits_budget(Pass::Forward, end + 1 - start, shape) {
                        break;
                    }
                    end += 1;
                }
                end
            };
            let cuts = batching::partition(&lengths, batching::BATCH_COST_TOKENS, max_end);
            padded_tokens += cuts.iter().map(|b| b.len() * lengths[b.start]).sum::<usize>();
            for cut in cuts {
                let members: Vec<&Row> = order[cut].iter().map(|&r| &rows[r]).collect();
                let (prep, predictors) = prepare_rows(model, masked.as_ref(), &prefix, &members)?;
                let mut targets = Vec::new();
                for (row, r) in members.iter().enumerate() {
                    for (c, (seq, cont)) in r.conts.iter().enumerate() {
                        slots[*seq] = SeqSlot {
                            batch: batches.len(),
                            first_target: targets.len(),
                            n_targets: cont.len(),
                        };
                        for (&position, &token) in predictors[row][c].iter().zip(cont) {
                            targets.push(TokenTarget { seq: row, position, token });
                        }
                    }
                }
                batches.push(Batch { prep, targets });
            }
            block_list
                .push(Block { items: block_items.clone(), batches: first_batch..batches.len() });
        }
        tracing::debug!(
            blocks = block_list.len(),
            batches = batches.len(),
            padded_tokens,
            "evaluation batches"
        );
        let stop_tokens = model
            .config()
            .raw
            .get("eos_token_id")
            .and_then(|v| v.as_u64())
            .map(|v| vec![v as u32])
            .unwrap_or_default();
        Ok(Self {
            scoring,
            gold_seq,
            slots,
            batches,
            blocks: block_list,
            cache: None,
            checkpoints: Vec::new(),
            state_tokens: padded_tokens + prefix.len(),
            stop_tokens,
        })
    }
}
