//! One function per subcommand: load, call the libraries, print. No algorithms here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use laser_model::{Backend, Model, Pass, TokenTarget, export_hf};
use laser_search::{
    EditEngine, EditList, Evaluator, RANKING_FILE, RankingFile, SUITE_SPEC_FILE, SearchConfig,
    SearchReport, ShardSpec, Split, Strategy, SuiteConfig, SuitePart, SuiteShardSpec, Task,
    Truncate, check_context, load_task, merge_search, rank_matrices, ranking_identity,
    run_search_shard, run_search_with_progress, run_suite, suite_tasks, truncate_to_fit,
};
use serde_json::json;

use crate::args::{
    AdaptArgs, ApplyArgs, EvalArgs, GradArgs, InspectArgs, MergeArgs, ModelArg, PredictArgs,
    SearchArgs, SuiteArgs, TaskArgs,
};
use crate::config::{self, SplitChoice};
use crate::exit::usage;
use crate::memory::{ByteSize, apply_budget};
use crate::progress::Bars;
use crate::report::ModelOutput;
use crate::resources::{bundled_task, resolve_model, write_atomic};

/// Shared by every command: which backend, and whether to narrate on stderr.
pub struct Env {
    pub backend: Backend,
    pub verbose: bool,
    pub max_memory: Option<ByteSize>,
}

/// Cuts what does not fit when asked to, then checks every item (`laser_search::fit`).
fn fit_task(
    model: &Model,
    task: &mut Task,
    truncate: Option<Truncate>,
    pass: Pass,
) -> anyhow::Result<()> {
    if let Some(side) = truncate {
        truncate_to_fit(model, task, side, pass)?;
    }
    check_context(model, task, pass)?;
    Ok(())
}

/// The gradient accumulators a search holds at once, for its memory budget.
fn search_accumulators(cfg: &SearchConfig) -> Option<usize> {
    matches!(cfg.strategy, Strategy::Gradient | Strategy::Compose).then_some(cfg.grad_groups)
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON values serialise"));
}

fn load_model(env: &Env, arg: &ModelArg, bars: &Bars) -> anyhow::Result<Model> {
    let path = resolve_model(arg.model.as_deref(), !bars.enabled())?;
    bars.note(&format!("loading {}", path.display()));
    let device = env.backend.device()?;
    let t = std::time::Instant::now();
    let mut model = Model::load(&path, device)?;
    // Said whatever the progress setting: they tell how the model was read.
    for note in model.load_notes() {
        eprintln!("{note}");
    }
    model.set_matrix_dtype(arg.dtype)?;
    tracing::info!(
        model = %path.display(),
        family = model.family().name(),
        seconds = t.elapsed().as_secs_f64(),
        "loaded"
    );
    Ok(model)
}

fn task_path(args: &TaskArgs, bundled_default: bool) -> anyhow::Result<PathBuf> {
    match &args.task {
        Some(p) => Ok(p.clone()),
        None if bundled_default => bundled_task(),
        None => Err(usage("--task is required")),
    }
}

pub fn inspect(env: &Env, a: &InspectArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let model = load_model(env, &a.model, &bars)?;
    let c = model.config();
    let matrices: Vec<_> = model
        .matrices()
        .iter()
        .map(|m| json!({"name": m.name, "layer": m.layer, "kind": m.kind.name(), "shape": m.shape}))
        .collect();
    if a.json {
        print_json(
            &json!({"family": c.family.name(), "layers": c.num_layers, "hidden_size": c.hidden_size, "vocab_size": c.vocab_size, "matrices": matrices}),
        );
    } else {
        println!(
            "{} family, {} layers, hidden {}, vocabulary {}, {} editable matrices",
            c.family.name(),
            c.num_layers,
            c.hidden_size,
            c.vocab_size,
            matrices.len()
        );
        for m in model.matrices() {
            println!(
                "  {:>3} {:<7} {:>5}×{:<5} {}",
                m.layer,
                m.kind.name(),
                m.shape[0],
                m.shape[1],
                m.name
            );
        }
    }
    Ok(())
}

pub fn predict(env: &Env, a: &PredictArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let model = load_model(env, &a.model, &bars)?;
    let tok =
        model.tokenizer().ok_or_else(|| usage("this model has no tokenizer; predict needs one"))?;
    // As the model sees a prompt: BOS first where its tokenizer adds one (Gemma, Phi-3; SmolLM2
    // adds none, so its ids are the contract's plain encoding). Without it Gemma 3's next-token
    // NLL of "The capital of France is" is 9.7 instead of 4.0.
    let ids = tok.encode_prompt(&a.text)?;
    if ids.is_empty() {
        return Err(usage("--text tokenizes to nothing"));
    }
    if a.top == 0 {
        return Err(usage("--top must be at least 1"));
    }
    let prep = model.prepare(std::slice::from_ref(&ids))?;
    let lp = model.log_probs_at(&prep, None, &[(0, ids.len() - 1)])?.remove(0);
    let mut order: Vec<usize> = (0..lp.len()).collect();
    order.sort_by(|&x, &y| lp[y].total_cmp(&lp[x]));
    let top: Vec<_> = order
        .iter()
        .take(a.top)
        .map(|&i| Ok(json!({"id": i, "token": tok.token_text(i as u32)?, "logprob": lp[i]})))
        .collect::<anyhow::Result<_>>()?;
    let targets: Vec<TokenTarget> =
        (1..ids.len()).map(|p| TokenTarget { seq: 0, position: p - 1, token: ids[p] }).collect();
    let mean_nll = if targets.is_empty() {
        None
    } else {
        let l = model.target_log_probs(&prep, None, &targets)?;
        Some(-l.iter().map(|&x| f64::from(x)).sum::<f64>() / l.len() as f64)
    };
    if a.json {
        print_json(&json!({"ids": ids, "top": top, "mean_nll": mean_nll}));
    } else {
        println!(
            "{} tokens; mean next-token NLL {}",
            ids.len(),
            mean_nll.map_or("—".into(), |v| format!("{v:.4}"))
        );
        for t in &top {
            println!(
                "  {:>8.4}  {:>6}  {:?}",
                t["logprob"].as_f64().unwrap_or(0.0),
                t["id"].as_u64().unwrap_or(0),
                t["token"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

pub fn eval(env: &Env, a: &EvalArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let choice = a.split;
    let mut model = load_model(env, &a.model, &bars)?;
    let mut task = load_task(&task_path(&a.task, false)?)?;
    let indices: Vec<usize> = match choice {
        SplitChoice::All => (0..task.items.len()).collect(),
        SplitChoice::Select | SplitChoice::Test => {
            let split = Split::new(task.items.len(), a.task.n, a.task.seed)?;
            if choice == SplitChoice::Select { split.select } else { split.test }
        }
    };
    if indices.is_empty() {
        return Err(usage(format!(
            "the {} split is empty (the task has {} items, --n {})",
            a.split,
            task.items.len(),
            a.task.n
        )));
    }
    if let Some(path) = &a.edits {
        let list = EditList::load(path)?;
        EditEngine::new(a.task.seed)
            .apply(&mut model, &list.edits)
            .with_context(|| format!("applying {}", path.display()))?;
    }
    apply_budget(&mut model, env.max_memory, None)?;
    fit_task(&model, &mut task, a.task.truncate, Pass::Forward)?;
    let items = Split::items(&task, &indices);
    bars.note(&format!("evaluating {} items", items.len()));
    let t = std::time::Instant::now();
    let m = Evaluator::new(&model, &items, 4096)?.evaluate(&model)?;
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        v["seconds"] = json!(t.elapsed().as_secs_f64());
        if task.truncated > 0 {
            v["truncated"] = json!(task.truncated);
        }
        print_json(&v);
    } else {
        println!(
            "{} items: accuracy {:.2}%, log-loss {:.4} ({:.1}s){}",
            m.n,
            m.accuracy,
            m.logloss,
            t.elapsed().as_secs_f64(),
            truncated_note(&task)
        );
        if let Some(text) = crate::report::per_class_text(&m) {
            println!("{text}");
        }
    }
    Ok(())
}

pub fn grad(env: &Env, a: &GradArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let score = a.score;
    let rhos = config::rhos(a.rho.as_ref())?;
    let mut model = load_model(env, &a.model, &bars)?;
    apply_budget(&mut model, env.max_memory, Some(a.grad_groups))?;
    let mut task = load_task(&task_path(&a.task, false)?)?;
    fit_task(&model, &mut task, a.task.truncate, Pass::Gradient)?;
    let split = Split::new(task.items.len(), a.task.n, a.task.seed)?;
    let items = Split::items(&task, &split.select);
    bars.note(&format!("gradient pass on {} items", items.len()));
    let t = std::time::Instant::now();
    let cfg = SearchConfig {
        n: a.task.n,
        seed: a.task.seed,
        score,
        rhos: rhos.clone(),
        truncate: a.task.truncate,
        ..SearchConfig::default()
    };
    let r = rank_matrices(
        &model,
        &items,
        model.matrices(),
        &rhos,
        score,
        cfg.micro_batch,
        a.grad_groups,
    )?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = RankingFile {
            identity: ranking_identity(&model, &task, &cfg),
            loss: r.loss,
            ranking: r.ranking.clone(),
        };
        file.write(&dir.join(RANKING_FILE))?;
    }
    let matrices: Vec<_> = r
        .ranking
        .iter()
        .map(|m| json!({"name": m.name, "layer": m.layer, "kind": m.kind, "shape": m.shape, "grad_norm": m.grad_norm, "score": m.score, "best_rho": m.best_rho, "predicted_delta_loss": m.predicted_delta_loss}))
        .collect();
    if a.json {
        print_json(
            &json!({"n": items.len(), "loss": r.loss, "matrices": matrices, "seconds": t.elapsed().as_secs_f64(), "truncated": task.truncated}),
        );
    } else {
        println!(
            "{} items, loss {:.4}; gradient pass {:.1}s, SVDs {:.1}s{}",
            items.len(),
            r.loss,
            r.grad_seconds,
            r.svd_seconds,
            truncated_note(&task)
        );
        for m in r.ranking.iter().take(15) {
            println!("  {:>11.3e}  ρ={:<6} {}", m.score, m.best_rho, m.name);
        }
    }
    Ok(())
}

/// ", 3 prompts truncated" when any were.
fn truncated_note(task: &Task) -> String {
    match task.truncated {
        0 => String::new(),
        1 => ", 1 prompt truncated".into(),
        n => format!(", {n} prompts truncated"),
    }
}

fn write_report(dir: &Path, report: &SearchReport) -> anyhow::Result<()> {
    let v = serde_json::to_value(report)?;
    write_atomic(&dir.join("report.json"), serde_json::to_string_pretty(&v)?.as_bytes())
}

fn run(
    model: &mut Model,
    task: &Path,
    cfg: &laser_search::SearchConfig,
    bars: &Bars,
) -> anyhow::Result<SearchReport> {
    let task = load_task(task)?;
    let report = run_search_with_progress(model, &task, cfg, bars);
    bars.finish();
    Ok(report?)
}

pub fn search(env: &Env, a: &SearchArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let cfg = config::search(
        &a.options,
        a.task.n,
        a.task.seed,
        a.task.truncate,
        a.out.clone(),
        Strategy::Gradient,
    )?;
    if a.options.strategy.is_none() {
        return Err(usage("--strategy is required (gradient, exhaustive, compose or mp)"));
    }
    let shard = crate::shards::shard_from(a.shard, a.num_shards, &|v| std::env::var(v).ok())?;
    if shard.is_some() && a.out.is_none() {
        return Err(usage("--shard needs --out DIR, the folder every shard writes into"));
    }
    let mut model = load_model(env, &a.model, &bars)?;
    apply_budget(&mut model, env.max_memory, search_accumulators(&cfg))?;
    if let Some(shard) = shard {
        let task = load_task(&task_path(&a.task, false)?)?;
        let summary = run_search_shard(&mut model, &task, &cfg, shard, &bars);
        bars.finish();
        let summary = summary?;
        if a.json {
            print_json(&serde_json::to_value(&summary)?);
        } else {
            println!(
                "shard {}: {} candidates ({} evaluated now) in {}; when every shard is done: laser merge {}",
                summary.shard,
                summary.candidates,
                summary.evaluated,
                summary.log.display(),
                a.out.as_ref().map(|d| d.display().to_string()).unwrap_or_default()
            );
        }
        return Ok(());
    }
    let report = run(&mut model, &task_path(&a.task, false)?, &cfg, &bars)?;
    if let Some(dir) = &a.out {
        write_report(dir, &report)?;
    }
    if a.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        print!("{}", crate::report::summary(&report, None));
    }
    Ok(())
}

pub fn adapt(env: &Env, a: &AdaptArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let task = task_path(&a.task, true)?;
    let out = a.out.clone().unwrap_or_else(|| config::default_adapt_out(&task));
    let cfg = config::search(
        &a.options,
        a.task.n,
        a.task.seed,
        a.task.truncate,
        Some(out.clone()),
        Strategy::Gradient,
    )?;
    let mut model = load_model(env, &a.model, &bars)?;
    apply_budget(&mut model, env.max_memory, search_accumulators(&cfg))?;
    let report = run(&mut model, &task, &cfg, &bars)?;
    EditEngine::new(cfg.seed).apply(&mut model, &report.best.edits)?;
    let model_dir = out.join("model");
    let edits_json = serde_json::to_string_pretty(&EditList { edits: report.best.edits.clone() })?;
    // "No edit" (the usual answer of the guarded rule) writes no copy of the unchanged model: the
    // report names the base model's own path.
    let base = model.source().to_owned();
    let output = if report.best.edits.is_empty() && !a.export_base {
        write_atomic(&out.join("edits.json"), edits_json.as_bytes())?;
        // A copy an older run wrote into this folder for the same search would contradict it.
        if model_dir.is_dir() {
            std::fs::remove_dir_all(&model_dir)
                .with_context(|| format!("removing the stale copy {}", model_dir.display()))?;
        }
        ModelOutput::Unchanged(&base)
    } else {
        // Export into a temporary sibling and swap it in only once it is whole: a failed write
        // (full disk, file-size limit) leaves the previous model and reports untouched.
        let fresh = out.join(".model.new");
        let _ = std::fs::remove_dir_all(&fresh);
        export_hf(&model, &fresh)?;
        write_atomic(&out.join("edits.json"), edits_json.as_bytes())?;
        replace_dir(&fresh, &model_dir)?;
        ModelOutput::Exported(&model_dir)
    };
    write_plots(&out, &report, &mut model)?;
    write_atomic(
        &out.join("report.md"),
        crate::report::markdown(&report, Some(output)).as_bytes(),
    )?;
    let (path, unchanged) = match output {
        ModelOutput::Exported(p) => (p, false),
        ModelOutput::Unchanged(p) => (p, true),
    };
    let mut v = serde_json::to_value(&report)?;
    v["output"] = json!(path.display().to_string());
    if unchanged {
        v["unchanged"] = json!(true);
    }
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&v)?.as_bytes())?;
    if a.json {
        print_json(&v);
    } else {
        print!("{}", crate::report::summary(&report, Some(output)));
        println!("report: {}", out.join("report.md").display());
    }
    Ok(())
}

pub fn suite(env: &Env, a: &SuiteArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let mut search = config::search(&a.options, a.n, a.seed, a.truncate, None, Strategy::Gradient)?;
    search.test_max = Some(a.options.test_max.unwrap_or(300));
    let tasks = suite_tasks(&a.tasks)?;
    let shard = crate::shards::shard_from(a.shard, a.num_shards, &|v| std::env::var(v).ok())?;
    let part = shard.map_or(SuitePart::Whole, SuitePart::Shard);
    let cfg = SuiteConfig { search, out: a.out.clone(), keep_going: a.keep_going, part };
    let mut model = load_model(env, &a.model, &bars)?;
    apply_budget(&mut model, env.max_memory, search_accumulators(&cfg.search))?;
    let report = run_suite(&mut model, &tasks, &cfg, &bars);
    bars.finish();
    let report = report?;
    if let Some(shard) = shard {
        // A shard's report covers its own tasks; the merge writes the suite's.
        if a.json {
            print_json(&serde_json::to_value(&report)?);
        } else {
            print!("{}", crate::report::suite_summary(&report));
            println!(
                "shard {shard}: {} tasks done; when every shard is: laser merge {}",
                report.tasks.len(),
                a.out.display()
            );
        }
        return Ok(());
    }
    write_suite(&a.out, &report, a.json)
}

fn write_suite(out: &Path, report: &laser_search::SuiteReport, json: bool) -> anyhow::Result<()> {
    write_atomic(&out.join("suite.json"), serde_json::to_string_pretty(report)?.as_bytes())?;
    write_atomic(&out.join("suite.md"), crate::report::suite_markdown(report).as_bytes())?;
    if json {
        print_json(&serde_json::to_value(report)?);
    } else {
        print!("{}", crate::report::suite_summary(report));
        println!("report: {}", out.join("suite.md").display());
    }
    Ok(())
}

/// `laser merge` of a sharded suite's folder.
fn merge_suite(env: &Env, a: &MergeArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let spec = SuiteShardSpec::read(&a.dir)?;
    let tasks = suite_tasks(&spec.tasks)?;
    let cfg = SuiteConfig {
        search: spec.search,
        out: a.dir.clone(),
        keep_going: spec.keep_going,
        part: SuitePart::Merge { shards: spec.shards, partial: a.partial },
    };
    let arg = ModelArg { model: Some(spec.model), dtype: spec.dtype };
    let mut model = load_model(env, &arg, &bars)?;
    let report = run_suite(&mut model, &tasks, &cfg, &bars);
    bars.finish();
    write_suite(&a.dir, &report?, a.json)
}

pub fn merge(env: &Env, a: &MergeArgs) -> anyhow::Result<()> {
    if a.dir.join(SUITE_SPEC_FILE).is_file() {
        return merge_suite(env, a);
    }
    let bars = Bars::new(a.json || env.verbose);
    let spec = ShardSpec::read(&a.dir)?;
    let cfg = SearchConfig { out: Some(a.dir.clone()), ..spec.config };
    let arg = ModelArg { model: Some(spec.model), dtype: spec.dtype };
    let mut model = load_model(env, &arg, &bars)?;
    apply_budget(&mut model, env.max_memory, search_accumulators(&cfg))?;
    let task = load_task(&spec.task)?;
    let report = merge_search(&mut model, &task, &cfg, spec.shards, a.partial, &bars);
    bars.finish();
    let report = report?;
    write_report(&a.dir, &report)?;
    if a.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        print!("{}", crate::report::summary(&report, None));
        if !report.incomplete.is_empty() {
            println!(
                "partial merge: {} candidates no shard logged were left out",
                report.incomplete.len()
            );
        }
    }
    Ok(())
}

/// Moves the complete folder `fresh` to `dest`, replacing what was there. Renames write no data,
/// so once `fresh` is whole this cannot fail for lack of space; the old folder is removed last.
fn replace_dir(fresh: &Path, dest: &Path) -> anyhow::Result<()> {
    let old = dest.with_file_name(format!(
        ".{}.old",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(dest, &old).with_context(|| format!("replacing {}", dest.display()))?;
    }
    std::fs::rename(fresh, dest)
        .with_context(|| format!("moving the model into {}", dest.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write_plots(out: &Path, report: &SearchReport, model: &mut Model) -> anyhow::Result<()> {
    if !report.ranking.is_empty() {
        write_atomic(
            &out.join("scores_heatmap.svg"),
            crate::plots::heatmap(&report.ranking).as_bytes(),
        )?;
    }
    write_atomic(
        &out.join("accuracy_vs_rho.svg"),
        crate::plots::accuracy_vs_rho(&report.candidates, report.base.select.accuracy).as_bytes(),
    )?;
    if let Some(e) = report.best.edits.first() {
        let [m, n] = model.matrix_info(&e.name)?.shape;
        let after = model.matrix(&e.name)?;
        model.restore_matrix(&e.name)?;
        let before = model.matrix(&e.name)?;
        let sv = |w: &[f32]| {
            laser_linalg::singular_values(laser_linalg::faer::MatRef::from_row_major_slice(w, m, n))
        };
        let (sb, sa) = (sv(&before)?, sv(&after)?);
        write_atomic(
            &out.join("spectrum.svg"),
            crate::plots::spectrum(&e.name, &sb, &sa).as_bytes(),
        )?;
    }
    Ok(())
}

pub fn apply(env: &Env, a: &ApplyArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let list = EditList::load(&a.edits)?;
    let mut model = load_model(env, &a.model, &bars)?;
    EditEngine::new(0)
        .apply(&mut model, &list.edits)
        .with_context(|| format!("applying {}", a.edits.display()))?;
    export_hf(&model, &a.out)?;
    if a.json {
        print_json(&json!({"output": a.out.display().to_string(), "edits": list.edits}));
    } else {
        println!("wrote {} ({} edits)", a.out.display(), list.edits.len());
    }
    Ok(())
}
