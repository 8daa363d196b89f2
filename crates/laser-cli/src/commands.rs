//! One function per subcommand: load, call the libraries, print. No algorithms here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use laser_model::{Backend, HfParts, Model, check_gguf_export, export_gguf, export_hf_parts};
use laser_search::{
    AdaptConfig, BaseModel, ByteSize, EditEngine, EditList, EvalRequest, ExportFormat,
    RANKING_FILE, SUITE_SPEC_FILE, SearchConfig, SearchReport, ShardSpec, Strategy, SuiteConfig,
    SuitePart, SuiteShardSpec, adapt_files, apply_memory_budget, bundled_task, load_task_with,
    merge_search, render, resolve_model, run_search_shard, run_search_with_progress, run_suite,
    search_accumulators, suite_tasks,
};
use serde_json::json;

use crate::args::{
    AdaptArgs, ApplyArgs, EvalArgs, GradArgs, InspectArgs, MergeArgs, ModelArg, PredictArgs,
    SearchArgs, SuiteArgs, TaskArgs,
};
use crate::config;
use crate::exit::usage;
use crate::output::{errln, out, outln};
use crate::progress::Bars;

/// Shared by every command: which backend, and whether to narrate on stderr.
pub struct Env {
    pub backend: Backend,
    pub verbose: bool,
    pub max_memory: Option<ByteSize>,
}

/// This process's command line, shell-quoted where needed (for the model card).
fn command_line() -> String {
    let quote = |a: String| {
        let plain = "-_./=:,+@%";
        if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || plain.contains(c)) {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    let args = std::env::args().skip(1).map(quote);
    std::iter::once("laser".to_owned()).chain(args).collect::<Vec<_>>().join(" ")
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v).expect("JSON values serialise"))
}

fn load_model(env: &Env, arg: &ModelArg, bars: &Bars) -> anyhow::Result<Model> {
    let path = resolve_model(arg.model.as_deref(), !bars.enabled())?;
    bars.note(&format!("loading {}", path.display()));
    let device = env.backend.device()?;
    let t = std::time::Instant::now();
    let mut model = Model::load(&path, device)?;
    // Said whatever the progress setting: they tell how the model was read.
    for note in model.load_notes() {
        errln!("{note}");
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
        None if bundled_default => Ok(bundled_task()?),
        None => Err(usage("--task is required")),
    }
}

pub fn inspect(env: &Env, a: &InspectArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let model = load_model(env, &a.model, &bars)?;
    let summary = laser_search::inspect(&model);
    if a.json {
        print_json(&serde_json::to_value(&summary)?)?;
    } else {
        outln!(
            "{} family, {} layers, hidden {}, vocabulary {}, {} editable matrices",
            summary.family,
            summary.layers,
            summary.hidden_size,
            summary.vocab_size,
            summary.matrices.len()
        )?;
        for m in &summary.matrices {
            outln!(
                "  {:>3} {:<7} {:>5}×{:<5} {}",
                m.layer,
                m.kind,
                m.shape[0],
                m.shape[1],
                m.name
            )?;
        }
    }
    Ok(())
}

pub fn predict(env: &Env, a: &PredictArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let model = load_model(env, &a.model, &bars)?;
    let p = laser_search::predict(&model, &a.text, a.top)?;
    if a.json {
        print_json(&serde_json::to_value(&p)?)?;
    } else {
        outln!(
            "{} tokens; mean next-token NLL {}",
            p.ids.len(),
            p.mean_nll.map_or("—".into(), |v| format!("{v:.4}"))
        )?;
        for t in &p.top {
            outln!("  {:>8.4}  {:>6}  {:?}", t.logprob, t.id, t.token)?;
        }
    }
    Ok(())
}

pub fn eval(env: &Env, a: &EvalArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let mut model = load_model(env, &a.model, &bars)?;
    let task = load_task_with(task_path(&a.task, false)?, a.task.load())?;
    let req = EvalRequest {
        n: a.task.n,
        seed: a.task.seed,
        split: a.split,
        truncate: a.task.truncate,
        ..EvalRequest::default()
    };
    if let Some(path) = &a.edits {
        let list = EditList::load(path)?;
        EditEngine::new(a.task.seed)
            .apply(&mut model, &list.edits)
            .with_context(|| format!("applying {}", path.display()))?;
    }
    apply_memory_budget(&mut model, env.max_memory, None)?;
    bars.note(&format!("evaluating the {} split", a.split));
    let e = laser_search::evaluate(&model, &task, &req)?;
    if a.json {
        print_json(&serde_json::to_value(&e)?)?;
    } else {
        let m = e.metrics();
        outln!(
            "{} items: accuracy {:.2}%, log-loss {:.4} ({:.1}s){}",
            m.n,
            m.accuracy,
            m.logloss,
            e.seconds(),
            truncated_note(e.truncated()) + &ill_posed_note(e.ill_posed())
        )?;
        if let Some(text) = render::per_class_text(m) {
            outln!("{text}")?;
        }
    }
    Ok(())
}

pub fn grad(env: &Env, a: &GradArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let cfg = SearchConfig {
        n: a.task.n,
        seed: a.task.seed,
        score: a.score,
        rhos: config::rhos(a.rho.as_ref())?,
        truncate: a.task.truncate,
        grad_groups: a.grad_groups,
        load: a.task.load(),
        ..SearchConfig::default()
    };
    let mut model = load_model(env, &a.model, &bars)?;
    apply_memory_budget(&mut model, env.max_memory, Some(a.grad_groups))?;
    let task = load_task_with(task_path(&a.task, false)?, cfg.load)?;
    bars.note(&format!("gradient pass on {} items", a.task.n.min(task.items.len())));
    let ranked = laser_search::rank_task(&model, &task, &cfg)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        ranked.to_file(&model, &task, &cfg).write(&dir.join(RANKING_FILE))?;
    }
    if a.json {
        print_json(&serde_json::to_value(&ranked)?)?;
    } else {
        let r = ranked.ranking();
        outln!(
            "{} items, loss {:.4}; gradient pass {:.1}s, SVDs {:.1}s{}",
            ranked.n(),
            r.loss,
            r.grad_seconds,
            r.svd_seconds,
            truncated_note(ranked.truncated())
        )?;
        for m in r.ranking.iter().take(15) {
            outln!("  {:>11.3e}  ρ={:<6} {}", m.score, m.best_rho, m.name)?;
        }
    }
    Ok(())
}

/// ", 3 prompts truncated" when any were.
fn truncated_note(truncated: usize) -> String {
    match truncated {
        0 => String::new(),
        1 => ", 1 prompt truncated".into(),
        n => format!(", {n} prompts truncated"),
    }
}

/// ", 2 ill-posed items dropped" when any were.
fn ill_posed_note(dropped: usize) -> String {
    match dropped {
        0 => String::new(),
        1 => ", 1 ill-posed item dropped".into(),
        n => format!(", {n} ill-posed items dropped"),
    }
}

fn write_report(dir: &Path, report: &SearchReport) -> anyhow::Result<()> {
    Ok(report.write(dir)?)
}

fn run(
    model: &mut Model,
    task: &Path,
    cfg: &laser_search::SearchConfig,
    bars: &Bars,
) -> anyhow::Result<SearchReport> {
    let task = load_task_with(task, cfg.load)?;
    let report = run_search_with_progress(model, &task, cfg, bars);
    bars.finish();
    Ok(report?)
}

pub fn search(env: &Env, a: &SearchArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let mut cfg = config::search(
        &a.options,
        a.task.n,
        a.task.seed,
        a.task.truncate,
        a.out.clone(),
        Strategy::Gradient,
    )?;
    cfg.load = a.task.load();
    if a.options.strategy.is_none() {
        return Err(usage("--strategy is required (gradient, exhaustive, compose or mp)"));
    }
    let shard = crate::shards::shard_from(a.shard, a.num_shards, &|v| std::env::var(v).ok())?;
    if shard.is_some() && a.out.is_none() {
        return Err(usage("--shard needs --out DIR, the folder every shard writes into"));
    }
    let mut model = load_model(env, &a.model, &bars)?;
    apply_memory_budget(&mut model, env.max_memory, search_accumulators(&cfg))?;
    if let Some(shard) = shard {
        let task = load_task_with(task_path(&a.task, false)?, cfg.load)?;
        let summary = run_search_shard(&mut model, &task, &cfg, shard, &bars);
        bars.finish();
        let summary = summary?;
        if a.json {
            print_json(&serde_json::to_value(&summary)?)?;
        } else {
            outln!(
                "shard {}: {} candidates ({} evaluated now) in {}; when every shard is done: laser merge {}",
                summary.shard,
                summary.candidates,
                summary.evaluated,
                summary.log.display(),
                a.out.as_ref().map(|d| d.display().to_string()).unwrap_or_default()
            )?;
        }
        return Ok(());
    }
    let report = run(&mut model, &task_path(&a.task, false)?, &cfg, &bars)?;
    if let Some(dir) = &a.out {
        write_report(dir, &report)?;
    }
    if a.json {
        print_json(&serde_json::to_value(&report)?)?;
    } else {
        out!("{}", render::summary(&report, None))?;
    }
    Ok(())
}

pub fn adapt(env: &Env, a: &AdaptArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let task = task_path(&a.task, true)?;
    let out = a.out.clone().unwrap_or_else(|| config::default_adapt_out(&task));
    let mut search = config::search(
        &a.options,
        a.task.n,
        a.task.seed,
        a.task.truncate,
        Some(out.clone()),
        Strategy::Gradient,
    )?;
    search.load = a.task.load();
    let (gguf_type, hf_dtype) = a.export.types().map_err(usage)?;
    let cfg = AdaptConfig {
        search,
        out: out.clone(),
        export_base: a.export_base,
        max_memory: env.max_memory,
        export: a.export.export,
        gguf_type,
        hf_dtype,
        command: Some(command_line()),
    };
    let mut model = load_model(env, &a.model, &bars)?;
    let task = load_task_with(&task, cfg.search.load)?;
    let adapted = laser_search::adapt(&mut model, &task, &cfg, &bars);
    bars.finish();
    let adapted = adapted?;
    if a.json {
        print_json(&adapted.to_json())?;
    } else {
        out!("{}", render::summary(adapted.search(), Some(adapted.model_output())))?;
        if let Some(g) = adapted.gguf() {
            outln!("{}", render::gguf_text(g))?;
        }
        outln!("report: {}", out.join(adapt_files::REPORT_MD).display())?;
    }
    Ok(())
}

pub fn suite(env: &Env, a: &SuiteArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let mut search = config::search(&a.options, a.n, a.seed, a.truncate, None, Strategy::Gradient)?;
    search.load = laser_search::LoadOptions { drop_ill_posed: a.drop_ill_posed };
    search.test_max = Some(a.options.test_max.unwrap_or(300));
    let tasks = suite_tasks(&a.tasks)?;
    let shard = crate::shards::shard_from(a.shard, a.num_shards, &|v| std::env::var(v).ok())?;
    let part = shard.map_or(SuitePart::Whole, SuitePart::Shard);
    let cfg = SuiteConfig {
        search,
        out: a.out.clone(),
        keep_going: a.keep_going,
        collateral: a.collateral,
        part,
    };
    let mut model = load_model(env, &a.model, &bars)?;
    apply_memory_budget(&mut model, env.max_memory, search_accumulators(&cfg.search))?;
    let report = run_suite(&mut model, &tasks, &cfg, &bars);
    bars.finish();
    let report = report?;
    if let Some(shard) = shard {
        // A shard's report covers its own tasks; the merge writes the suite's.
        if a.json {
            print_json(&serde_json::to_value(&report)?)?;
        } else {
            out!("{}", render::suite_summary(&report))?;
            outln!(
                "shard {shard}: {} tasks done; when every shard is: laser merge {}",
                report.tasks.len(),
                a.out.display()
            )?;
        }
        return Ok(());
    }
    write_suite(&a.out, &report, a.json)
}

fn write_suite(out: &Path, report: &laser_search::SuiteReport, json: bool) -> anyhow::Result<()> {
    report.write(out)?;
    if json {
        print_json(&serde_json::to_value(report)?)?;
    } else {
        out!("{}", render::suite_summary(report))?;
        outln!("report: {}", out.join("suite.md").display())?;
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
        collateral: a.collateral,
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
    if a.collateral {
        return Err(usage(format!(
            "--collateral applies to a suite's merge; {} holds no sharded suite",
            a.dir.display()
        )));
    }
    let bars = Bars::new(a.json || env.verbose);
    let spec = ShardSpec::read(&a.dir)?;
    let cfg = SearchConfig { out: Some(a.dir.clone()), ..spec.config };
    let arg = ModelArg { model: Some(spec.model), dtype: spec.dtype };
    let mut model = load_model(env, &arg, &bars)?;
    apply_memory_budget(&mut model, env.max_memory, search_accumulators(&cfg))?;
    let task = load_task_with(&spec.task, cfg.load)?;
    let report = merge_search(&mut model, &task, &cfg, spec.shards, a.partial, &bars);
    bars.finish();
    let report = report?;
    write_report(&a.dir, &report)?;
    if a.json {
        print_json(&serde_json::to_value(&report)?)?;
    } else {
        out!("{}", render::summary(&report, None))?;
        if !report.incomplete.is_empty() {
            outln!(
                "partial merge: {} candidates no shard logged were left out",
                report.incomplete.len()
            )?;
        }
    }
    Ok(())
}

pub fn apply(env: &Env, a: &ApplyArgs) -> anyhow::Result<()> {
    let bars = Bars::new(a.json || env.verbose);
    let export = a.export.export;
    let (gguf_type, hf_dtype) = a.export.types().map_err(usage)?;
    let list = EditList::load(&a.edits)?;
    let gguf_path = match export {
        ExportFormat::Hf | ExportFormat::Factorized => None,
        ExportFormat::Gguf => Some(a.out.clone()),
        ExportFormat::Both => Some(a.out.join(adapt_files::MODEL_GGUF)),
    };
    if export == ExportFormat::Gguf && a.out.exists() {
        return Err(usage(format!(
            "--out {} exists; a GGUF export writes a new file",
            a.out.display()
        )));
    }
    let mut model = load_model(env, &a.model, &bars)?;
    if export.gguf() {
        check_gguf_export(&model, gguf_type)?;
    }
    let mut engine = EditEngine::new(0);
    engine
        .apply(&mut model, &list.edits)
        .with_context(|| format!("applying {}", a.edits.display()))?;
    // The HF and factorized folders carry a model card (the GGUF alone is one file, its name the
    // user's: nothing is written beside it).
    let edits_file = a.edits.file_name().map(|n| n.to_string_lossy().into_owned());
    let card = laser_search::applied_card(
        &list.edits,
        edits_file.as_deref().unwrap_or_default(),
        &BaseModel::of(&model),
        Some(&command_line()),
        None,
    );
    if export.hf() {
        let parts = HfParts {
            files: vec![("README.md".into(), card.clone().into_bytes())],
            ..HfParts::default()
        };
        export_hf_parts(&model, &a.out, hf_dtype, &parts)?;
    }
    let factorized = if export.factorized() {
        let f =
            laser_search::export_factorized(&model, &mut engine, &list.edits, &a.out, hf_dtype)?;
        laser_search::write_atomic(&a.out.join("README.md"), card.as_bytes())?;
        Some(f)
    } else {
        None
    };
    let gguf = match &gguf_path {
        Some(p) => Some(export_gguf(&model, p, gguf_type)?),
        None => None,
    };
    if a.json {
        let mut v = json!({"output": a.out.display().to_string(), "edits": list.edits});
        if let Some(g) = &gguf {
            v["gguf"] = serde_json::to_value(g)?;
        }
        if let Some(f) = &factorized {
            v["factorized"] = serde_json::to_value(f)?;
        }
        print_json(&v)?;
    } else {
        outln!("wrote {} ({} edits)", a.out.display(), list.edits.len())?;
        if let Some(g) = &gguf {
            outln!("{}", render::gguf_text(g))?;
        }
        if let Some(f) = &factorized {
            outln!(
                "factorized: {} parameters of the edited matrices stored as {} ({} bytes of weights)",
                f.dense_params,
                f.factorized_params,
                f.bytes
            )?;
        }
    }
    Ok(())
}
