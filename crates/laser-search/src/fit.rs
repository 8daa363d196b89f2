//! Items fitted to the model before anything is allocated for them: each must fit the model's
//! context and, as one batch row, the activation budget (`Model::set_activation_budget`). An item
//! that does not is an error naming the task file, the item and the sizes — or, when the caller
//! asks for it, its prompt is truncated until it fits and the task counts it.

use std::fmt;
use std::str::FromStr;

use laser_model::{Model, Pass, RowShape, Tokenizer, mib};

use crate::error::{Result, SearchError};
use crate::masked::{MaskedLayout, suffix_text};
use crate::task::{Item, Target, Task};

/// Which end of an over-long prompt is cut. Answers are never cut: they are what is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Truncate {
    /// Drop the prompt's first tokens (keeps the question next to the answer).
    Left,
    /// Drop the prompt's last tokens.
    Right,
}

impl Truncate {
    /// The stable name (`left`, `right`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Right => "right",
        }
    }
}

impl fmt::Display for Truncate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Truncate {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "left" => Ok(Self::Left),
            "right" => Ok(Self::Right),
            other => Err(format!("unknown truncation side {other:?} (expected left or right)")),
        }
    }
}

/// Token counts of one item's answers, independent of its prompt.
struct Answers {
    /// The longest answer.
    longest: usize,
    /// All answers (a causal row packs every choice after the prompt).
    all: usize,
    /// The gold answer (the gradient pass's sequence).
    gold: usize,
    /// Masked models: the masks, the suffix and two special tokens beyond the prompt.
    masked_extra: Option<usize>,
}

impl Answers {
    fn of(tok: &Tokenizer, item: &Item, masked: bool) -> Result<Self> {
        let answers: Vec<String> = match &item.target {
            Target::Choice { choices, .. } => choices.clone(),
            _ => vec![item.gold_continuation()],
        };
        let (mut longest, mut all) = (0, 0);
        for a in &answers {
            let n = tok.encode(a)?.len();
            longest = longest.max(n);
            all += n;
        }
        let gold = tok.encode(&item.gold_continuation())?.len();
        let masked_extra = if masked {
            Some(longest + tok.encode(suffix_text(&item.target))?.len() + 2)
        } else {
            None
        };
        Ok(Self { longest, all, gold, masked_extra })
    }

    /// Tokens one sequence needs with a prompt of `prompt` tokens (checked against the context).
    fn need(&self, prompt: usize) -> usize {
        prompt + self.longest + self.masked_extra.unwrap_or(0)
    }

    /// The evaluation row: the prompt with every answer packed after it (causal), or the prompt,
    /// masks and suffix (masked).
    fn eval_row(&self, prompt: usize) -> RowShape {
        let tokens = match self.masked_extra {
            Some(_) => self.need(prompt),
            None => prompt + self.all,
        };
        RowShape { tokens, prefix: 0, scored: self.all }
    }

    /// The gradient pass's sequence: the prompt and the gold answer.
    fn gradient_row(&self, prompt: usize) -> RowShape {
        RowShape { tokens: prompt + self.gold, prefix: 0, scored: self.gold }
    }
}

/// What a prompt of some length fails on, if anything.
enum Misfit {
    Context { need: usize },
    Memory { pass: Pass, shape: RowShape },
}

fn misfit(model: &Model, answers: &Answers, prompt: usize, pass: Pass) -> Option<Misfit> {
    let need = answers.need(prompt);
    if need > model.context_length().0 {
        return Some(Misfit::Context { need });
    }
    let mut rows = vec![(Pass::Forward, answers.eval_row(prompt))];
    if pass == Pass::Gradient {
        rows.push((Pass::Gradient, answers.gradient_row(prompt)));
    }
    // A default target (not a limit the user set) lets a long row run alone.
    rows.into_iter()
        .filter(|_| model.activation_budget_is_hard())
        .find(|&(p, shape)| !model.fits_budget(p, 1, shape))
        .map(|(pass, shape)| Misfit::Memory { pass, shape })
}

fn misfit_message(model: &Model, i: usize, prompt: usize, answers: &Answers, m: Misfit) -> String {
    match m {
        Misfit::Context { need } => {
            let (context, what) = model.context_length();
            format!(
                "item {i}: {need} tokens (prompt {prompt}, longest answer {}) exceed the model's \
                 {context}-token limit ({what}); shorten the item, drop it or truncate it",
                answers.longest
            )
        }
        Misfit::Memory { pass, shape } => format!(
            "item {i}: its {} of {} tokens needs about {} of activations, over the {} memory \
             budget; shorten the item, truncate it or raise the budget",
            match pass {
                Pass::Forward => "evaluation row",
                Pass::Gradient => "gradient-pass sequence",
            },
            shape.tokens,
            mib(model.activation_bytes(pass, 1, shape)),
            mib(model.activation_budget().unwrap_or(u64::MAX)),
        ),
    }
}

/// Checks every item of `task` against the model's context and, as one batch row of `pass`
/// (a gradient pass also evaluates), against the activation budget, before anything is
/// allocated for it: an item that does not fit is an error naming the task file, the item
/// (0-based, in file order) and the sizes.
pub fn check_context(model: &Model, task: &Task, pass: Pass) -> Result<()> {
    let Some(tok) = model.tokenizer() else { return Ok(()) };
    let masked = MaskedLayout::of(model, tok)?.is_some();
    for (i, item) in task.items.iter().enumerate() {
        let prompt = tok.encode_prompt(&item.prompt)?.len();
        let answers = Answers::of(tok, item, masked)?;
        if let Some(m) = misfit(model, &answers, prompt, pass) {
            return Err(SearchError::task(
                &task.path,
                None,
                misfit_message(model, i, prompt, &answers, m),
            ));
        }
    }
    Ok(())
}

/// Cuts the prompt of every item that does not fit (as [`check_context`] judges) at `side`, to
/// the longest prompt that fits; returns how many were cut and adds them to `task.truncated`.
/// An item that would not fit even with a one-token prompt is an error naming it.
pub fn truncate_to_fit(
    model: &Model,
    task: &mut Task,
    side: Truncate,
    pass: Pass,
) -> Result<usize> {
    let Some(tok) = model.tokenizer() else { return Ok(0) };
    let masked = MaskedLayout::of(model, tok)?.is_some();
    let mut cut = 0;
    for (i, item) in task.items.iter_mut().enumerate() {
        let prompt = tok.encode_prompt(&item.prompt)?.len();
        let answers = Answers::of(tok, item, masked)?;
        let Some(m) = misfit(model, &answers, prompt, pass) else { continue };
        let body = tok.encode(&item.prompt)?;
        let special = prompt.saturating_sub(body.len());
        // The longest prompt that fits: fitting is monotone in the prompt's length.
        let (mut lo, mut hi) = (special, prompt);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if misfit(model, &answers, mid, pass).is_none() { lo = mid } else { hi = mid }
        }
        // Decoded text re-tokenizes to at most a few tokens more or fewer: shrink until it fits.
        let mut keep = lo.saturating_sub(special).min(body.len());
        let text = loop {
            if keep == 0 {
                let message = misfit_message(model, i, prompt, &answers, m);
                return Err(SearchError::task(
                    &task.path,
                    None,
                    format!(
                        "{message} (even its answers alone do not fit, so it cannot be truncated)"
                    ),
                ));
            }
            let kept = match side {
                Truncate::Left => &body[body.len() - keep..],
                Truncate::Right => &body[..keep],
            };
            let text = tok.decode(kept)?;
            let len = tok.encode_prompt(&text)?.len();
            if len > 0 && misfit(model, &answers, len, pass).is_none() {
                break text;
            }
            keep -= 1;
        };
        tracing::debug!(item = i, from = prompt, kept = keep, side = side.name(), "truncated");
        item.prompt = text;
        cut += 1;
    }
    task.truncated += cut;
    Ok(cut)
}

/// `task` as a pass over `model` runs it: cut to fit from `truncate`'s side when given (a copy),
/// then every item checked against the context and memory budget.
pub(crate) fn fitted<'a>(
    model: &Model,
    task: &'a Task,
    truncate: Option<Truncate>,
    pass: Pass,
) -> Result<std::borrow::Cow<'a, Task>> {
    let task = match truncate {
        Some(side) => {
            let mut copy = task.clone();
            truncate_to_fit(model, &mut copy, side, pass)?;
            std::borrow::Cow::Owned(copy)
        }
        None => std::borrow::Cow::Borrowed(task),
    };
    check_context(model, &task, pass)?;
    Ok(task)
}
