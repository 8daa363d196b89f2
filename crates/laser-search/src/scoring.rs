//! One-shot scoring as the front-ends offer it (`laser predict` / `eval` / `grad`, Python's
//! `model.predict` / `model.eval` / `laser_rs.grad`): the next tokens after a text, a task
//! split's metrics, and the gradient ranking of every matrix.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use laser_model::{Model, ModelError, Pass, TokenTarget};
use serde::Serialize;

use crate::error::{Result, SearchError};
use crate::eval::Evaluator;
use crate::fit::Truncate;
use crate::metrics::Metrics;
use crate::ranking::{GradientRanking, rank_matrices};
use crate::search::{SearchConfig, ranking_identity};
use crate::shard::RankingFile;
use crate::split::Split;
use crate::task::Task;

/// One editable matrix as `laser inspect --json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixEntry {
    /// HF tensor name.
    pub name: String,
    /// Layer.
    pub layer: usize,
    /// Kind (`q`, `fc_out`, …).
    pub kind: &'static str,
    /// HF shape.
    pub shape: [usize; 2],
}

/// What [`inspect`] returns (the keys of `laser inspect --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Family name.
    pub family: &'static str,
    /// Transformer layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Every editable matrix.
    pub matrices: Vec<MatrixEntry>,
}

/// The model's family, sizes and editable matrices.
pub fn inspect(model: &Model) -> ModelSummary {
    let c = model.config();
    ModelSummary {
        family: c.family.name(),
        layers: c.num_layers,
        hidden_size: c.hidden_size,
        vocab_size: c.vocab_size,
        matrices: model
            .matrices()
            .iter()
            .map(|m| MatrixEntry {
                name: m.name.clone(),
                layer: m.layer,
                kind: m.kind.name(),
                shape: m.shape,
            })
            .collect(),
    }
}

/// One of the most likely next tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextToken {
    /// Token id.
    pub id: usize,
    /// Its text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
}

/// What [`predict`] returns (the keys of `laser predict --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The prompt's token ids.
    pub ids: Vec<u32>,
    /// The most likely next tokens, best first.
    pub top: Vec<NextToken>,
    /// Mean next-token NLL over the prompt (`None` for a one-token prompt).
    pub mean_nll: Option<f64>,
}

/// The `top` most likely tokens after `text` (encoded as the model sees a prompt: BOS first where
/// its tokenizer adds one), and the prompt's mean next-token NLL.
pub fn predict(model: &Model, text: &str, top: usize) -> Result<Prediction> {
    let tok = model.tokenizer().ok_or_else(|| {
        ModelError::Tokenizer("this model has no tokenizer; predict needs one".into())
    })?;
    // Without BOS Gemma 3's next-token NLL of "The capital of France is" is 9.7 instead of 4.0.
    let ids = tok.encode_prompt(text)?;
    if ids.is_empty() {
        return Err(SearchError::option("text", "tokenizes to nothing"));
    }
    if top == 0 {
        return Err(SearchError::option("top", "must be at least 1"));
    }
    let prep = model.prepare(std::slice::from_ref(&ids))?;
    let lp = model.log_probs_at(&prep, None, &[(0, ids.len() - 1)])?.remove(0);
    let mut order: Vec<usize> = (0..lp.len()).collect();
    order.sort_by(|&x, &y| lp[y].total_cmp(&lp[x]));
    let top = order
        .iter()
        .take(top)
        .map(|&i| Ok(NextToken { id: i, token: tok.token_text(i as u32)?, logprob: lp[i] }))
        .collect::<Result<_>>()?;
    let targets: Vec<TokenTarget> =
        (1..ids.len()).map(|p| TokenTarget { seq: 0, position: p - 1, token: ids[p] }).collect();
    let mean_nll = if targets.is_empty() {
        None
    } else {
        let l = model.target_log_probs(&prep, None, &targets)?;
        Some(-l.iter().map(|&x| f64::from(x)).sum::<f64>() / l.len() as f64)
    };
    Ok(Prediction { ids, top, mean_nll })
}

/// Which items of a task [`evaluate`] scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitChoice {
    /// The `n` selection items of the seeded split.
    Select,
    /// The rest (what search reports as test).
    #[default]
    Test,
    /// Every item.
    All,
}

impl FromStr for SplitChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "select" => Ok(Self::Select),
            "test" => Ok(Self::Test),
            "all" => Ok(Self::All),
            other => Err(format!("unknown split `{other}` (expected select, test or all)")),
        }
    }
}

impl fmt::Display for SplitChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Select => "select",
            Self::Test => "test",
            Self::All => "all",
        })
    }
}

/// What [`evaluate`] scores, and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalRequest {
    /// Selection items of the seeded split.
    pub n: usize,
    /// The split's seed.
    pub seed: u64,
    /// Which items.
    pub split: SplitChoice,
    /// Cut prompts that do not fit the context, from this side.
    pub truncate: Option<Truncate>,
    /// Tokens per batch.
    pub batch_tokens: usize,
}

impl Default for EvalRequest {
    fn default() -> Self {
        Self { n: 100, seed: 0, split: SplitChoice::Test, truncate: None, batch_tokens: 4096 }
    }
}

/// What [`evaluate`] returns: serialised, the keys of `laser eval --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    #[serde(flatten)]
    metrics: Metrics,
    seconds: f64,
    #[serde(skip_serializing_if = "is_zero")]
    truncated: usize,
    #[serde(skip_serializing_if = "is_zero")]
    ill_posed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Evaluation {
    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Wall seconds of the scoring.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// Prompts cut to fit the context.
    pub fn truncated(&self) -> usize {
        self.truncated
    }

    /// Ill-posed items dropped from the task on request.
    pub fn ill_posed(&self) -> usize {
        self.ill_posed
    }
}

/// Scores `model` as it is (applied edits included) on a split of `task`.
pub fn evaluate(model: &Model, task: &Task, req: &EvalRequest) -> Result<Evaluation> {
    let indices: Vec<usize> = match req.split {
        SplitChoice::All => (0..task.items.len()).collect(),
        SplitChoice::Select | SplitChoice::Test => {
            let split = Split::new(task.items.len(), req.n, req.seed)?;
            if req.split == SplitChoice::Select { split.select } else { split.test }
        }
    };
    if indices.is_empty() {
        return Err(SearchError::option(
            "split",
            format!(
                "`{}` is empty: the task has {} items and n is {}",
                req.split,
                task.items.len(),
                req.n
            ),
        ));
    }
    let fitted = crate::fit::fitted(model, task, req.truncate, Pass::Forward)?;
    let task = &*fitted;
    let items = Split::items(task, &indices);
    let t = Instant::now();
    let metrics = Evaluator::new(model, &items, req.batch_tokens)?.evaluate(model)?;
    Ok(Evaluation {
        metrics,
        seconds: t.elapsed().as_secs_f64(),
        truncated: task.truncated,
        ill_posed: task.ill_posed,
    })
}

/// One matrix of [`TaskRanking`] as `laser grad --json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct RankedMatrix {
    name: String,
    layer: usize,
    kind: String,
    shape: [usize; 2],
    grad_norm: f64,
    score: f64,
    best_rho: f32,
    predicted_delta_loss: f64,
}

/// What [`rank_task`] returns; serialised, the keys of `laser grad --json` (`n`, `loss`,
/// `matrices`, `seconds`, `truncated`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskRanking {
    n: usize,
    loss: f64,
    matrices: Vec<RankedMatrix>,
    seconds: f64,
    truncated: usize,
    #[serde(skip)]
    ranking: GradientRanking,
}

impl TaskRanking {
    /// The full ranking: scores, timings, and each matrix's σ, σ-gradients and score curve.
    pub fn ranking(&self) -> &GradientRanking {
        &self.ranking
    }

    /// Consumes it into the full ranking.
    pub fn into_ranking(self) -> GradientRanking {
        self.ranking
    }

    /// Selection items of the gradient pass.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Prompts cut to fit the context.
    pub fn truncated(&self) -> usize {
        self.truncated
    }

    /// The ranking as a file a search (`cfg.ranking_file`) reads back for the same inputs.
    pub fn to_file(&self, model: &Model, task: &Task, cfg: &SearchConfig) -> RankingFile {
        RankingFile {
            identity: ranking_identity(model, task, cfg),
            loss: self.ranking.loss,
            ranking: self.ranking.ranking.clone(),
        }
    }
}

/// The gradient strategy's ranking of every editable matrix on `cfg.n` selection items of
/// `task` (`laser grad`): one gradient pass (in `cfg.grad_groups` runs of layers), then each
/// matrix's σ-gradients and truncation scores over `cfg.rhos`.
pub fn rank_task(model: &Model, task: &Task, cfg: &SearchConfig) -> Result<TaskRanking> {
    let fitted = crate::fit::fitted(model, task, cfg.truncate, Pass::Gradient)?;
    let task = &*fitted;
    let split = Split::new(task.items.len(), cfg.n, cfg.seed)?;
    let items = Split::items(task, &split.select);
    let t = Instant::now();
    let ranking = rank_matrices(
        model,
        &items,
        model.matrices(),
        &cfg.rhos,
        cfg.score,
        cfg.micro_batch,
        cfg.grad_groups,
    )?;
    let matrices = ranking
        .ranking
        .iter()
        .map(|m| RankedMatrix {
            name: m.name.clone(),
            layer: m.layer,
            kind: m.kind.clone(),
            shape: m.shape,
            grad_norm: m.grad_norm,
            score: m.score,
            best_rho: m.best_rho,
            predicted_delta_loss: m.predicted_delta_loss,
        })
        .collect();
    Ok(TaskRanking {
        n: items.len(),
        loss: ranking.loss,
        matrices,
        seconds: t.elapsed().as_secs_f64(),
        truncated: task.truncated,
        ranking,
    })
}
