//! Human-readable outputs: the terminal summary and `report.md` of a search or adaptation.

use std::fmt::Write;

use crate::interval::AccuracyDelta;
use crate::metrics::Metrics;
use crate::report::SearchReport;
use crate::suite::report::SuiteReport;

fn pct(m: Option<&Metrics>) -> String {
    m.map_or("—".into(), |m| format!("{:.1}%", m.accuracy))
}

fn loss(m: Option<&Metrics>) -> String {
    m.map_or("—".into(), |m| format!("{:.4}", m.logloss))
}

/// `+5.5 points (95% CI +1.0 to +10.0)`.
pub fn delta_text(d: &AccuracyDelta) -> String {
    format!("{:+.1} points (95% CI {:+.1} to {:+.1})", d.accuracy, d.ci_low, d.ci_high)
}

/// The majority-class rate and per-class accuracy, as `majority-class rate 50.0%; per class:
/// name 42.0% (n=50), …` (None for tasks without classes).
pub fn per_class_text(m: &Metrics) -> Option<String> {
    let classes = m.per_class.as_ref()?;
    let per: Vec<String> =
        classes.iter().map(|c| format!("{} {:.1}% (n={})", c.class, c.accuracy, c.n)).collect();
    Some(format!(
        "majority-class rate {:.1}%; per class: {}",
        m.majority.unwrap_or(0.0),
        per.join(", ")
    ))
}

/// `, 12,345 of 589,824 parameters (2.1%) factorized` for an edited matrix, when known.
fn size_text(r: &SearchReport, name: &str) -> String {
    r.best.sizes.iter().find(|z| z.name == name).map_or_else(String::new, |z| {
        format!(
            ", {} of {} parameters ({:.1}%) factorized",
            z.factorized,
            z.dense,
            100.0 * z.factorized as f64 / z.dense.max(1) as f64
        )
    })
}

/// Where an adaptation's model is.
#[derive(Debug, Clone, Copy)]
pub enum ModelOutput<'a> {
    /// Exported to this HF folder.
    Exported(&'a std::path::Path),
    /// No edit was recommended and no copy written: the base model, at its own path.
    Unchanged(&'a std::path::Path),
}

impl ModelOutput<'_> {
    fn line(self) -> String {
        match self {
            Self::Exported(o) => format!("adapted model: {}", o.display()),
            Self::Unchanged(o) => format!(
                "no edit: the base model is unchanged, at {} (--export-base writes a copy)",
                o.display()
            ),
        }
    }
}

/// `GGUF: out/model.gguf, 99.1 MB (source 98.0 MB); blk.20.ffn_down.weight Q4_1 → F16
/// (relative error 2.1e-4)`.
pub fn gguf_text(g: &laser_model::GgufExport) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let tensors: Vec<String> = g
        .edited
        .iter()
        .map(|t| {
            format!(
                "{} {} → {} (relative error {:.1e})",
                t.gguf_name, t.source_type, t.written_type, t.relative_error
            )
        })
        .collect();
    format!(
        "GGUF: {}, {:.1} MB (source {:.1} MB){}{}",
        g.path.display(),
        mb(g.bytes),
        mb(g.source_bytes),
        if tensors.is_empty() { "" } else { "; " },
        tensors.join(", ")
    )
}

/// The best test accuracy among the scanned candidates, and which edit reached it.
fn ceiling_text(c: &crate::report::Ceiling) -> String {
    let edits: Vec<String> =
        c.edits.iter().map(|e| format!("{} ρ={} {}", e.name, e.rho, e.factor)).collect();
    format!(
        "best test accuracy of the {} scanned candidates {:.1}%{} ({})",
        c.candidates,
        c.test.accuracy,
        c.delta.as_ref().map(|d| format!(", {}", delta_text(d))).unwrap_or_default(),
        if edits.is_empty() { "no edit".into() } else { edits.join(", ") }
    )
}

/// The sound ceiling: the ceiling among candidates within the log-loss bound, or why there is
/// none.
fn sound_ceiling_text(r: &SearchReport) -> String {
    let bound = format!("test log-loss within {}× the base model's", crate::SOUND_LOGLOSS_RATIO);
    match (&r.sound_ceiling, &r.ceiling) {
        (Some(s), Some(c)) if s.edits == c.edits => format!("the ceiling ({bound})"),
        (Some(s), _) => format!("{bound}: {}", ceiling_text(s)),
        (None, _) => format!("none — no scanned candidate has its {bound}"),
    }
}

/// A few lines for the terminal.
pub fn summary(r: &SearchReport, output: Option<ModelOutput<'_>>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "strategy {} on {} ({})", r.strategy.name(), r.task, r.task_format);
    if r.truncated > 0 {
        let _ = writeln!(s, "{} item prompts truncated to fit the model", r.truncated);
    }
    if r.ill_posed > 0 {
        let _ = writeln!(s, "{} ill-posed items dropped from the task", r.ill_posed);
    }
    let _ = writeln!(
        s,
        "selection ({} items): {} → {}   log-loss {} → {}",
        r.base.select.n,
        pct(Some(&r.base.select)),
        pct(Some(&r.best.select)),
        loss(Some(&r.base.select)),
        loss(Some(&r.best.select))
    );
    if let Some(t) = &r.base.test {
        let _ = writeln!(
            s,
            "test      ({} items): {} → {}   log-loss {} → {}",
            t.n,
            pct(r.base.test.as_ref()),
            pct(r.best.test.as_ref()),
            loss(r.base.test.as_ref()),
            loss(r.best.test.as_ref())
        );
    }
    if let Some(d) = &r.delta {
        let _ = writeln!(s, "test change: {}", delta_text(d));
    }
    if let Some(d) = &r.balanced_delta {
        let _ = writeln!(s, "balanced-accuracy change: {}", delta_text(d));
    }
    if let Some(m) = r.base.select.majority {
        let _ = writeln!(s, "majority-class rate on selection: {m:.1}%");
    }
    let _ = writeln!(s, "rule {}: {}", r.selection.rule, r.selection.reason);
    if let Some(c) = &r.ceiling {
        let _ = writeln!(s, "ceiling (diagnostic): {}", ceiling_text(c));
        let _ = writeln!(s, "sound ceiling (diagnostic): {}", sound_ceiling_text(r));
    }
    for e in &r.best.edits {
        let _ = writeln!(s, "edit: {} ρ={} {}{}", e.name, e.rho, e.factor, size_text(r, &e.name));
    }
    let t = &r.seconds;
    let _ = writeln!(
        s,
        "{} candidates ({} resumed{}{}); time: grad {:.1}s, svd {:.1}s, scan {:.1}s, test {:.1}s, total {:.1}s",
        r.candidates_evaluated,
        r.candidates_resumed,
        same_matrices_text(r),
        stopped_text(r),
        t.grad,
        t.svd,
        t.scan,
        t.test,
        t.total
    );
    if let Some(o) = output {
        let _ = writeln!(s, "{}", o.line());
    }
    s
}

fn metrics_row(s: &mut String, label: &str, m: Option<&Metrics>) {
    let _ = writeln!(
        s,
        "| {label} | {} | {} | {} |",
        m.map_or("—".into(), |m| m.n.to_string()),
        pct(m),
        loss(m)
    );
}

/// `report.md`.
pub fn markdown(r: &SearchReport, output: Option<ModelOutput<'_>>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# laser report\n");
    let _ = writeln!(
        s,
        "- model: `{}`\n- task: `{}` ({})\n- strategy: {}\n",
        r.model,
        r.task,
        r.task_format,
        r.strategy.name()
    );
    if r.truncated > 0 {
        let _ = writeln!(
            s,
            "{} items had their prompts truncated to fit the model's context or memory budget.\n",
            r.truncated
        );
    }
    if r.ill_posed > 0 {
        let _ = writeln!(
            s,
            "{} ill-posed items (no answer, or an ambiguous one) were dropped from the task.\n",
            r.ill_posed
        );
    }
    let _ = writeln!(s, "| model state | items | accuracy | log-loss |\n|---|---|---|---|");
    metrics_row(&mut s, "base, selection", Some(&r.base.select));
    metrics_row(&mut s, "adapted, selection", Some(&r.best.select));
    metrics_row(&mut s, "base, test", r.base.test.as_ref());
    metrics_row(&mut s, "adapted, test", r.best.test.as_ref());
    if let Some(d) = &r.delta {
        let _ = writeln!(
            s,
            "\nTest accuracy change: {} (paired bootstrap over test items).",
            delta_text(d)
        );
    }
    for (label, m) in
        [("base, test", r.base.test.as_ref()), ("adapted, test", r.best.test.as_ref())]
    {
        if let Some(text) = m.and_then(per_class_text) {
            let _ = writeln!(s, "\n{label}: {text}");
        }
    }
    let _ = writeln!(s, "\n## Chosen edits\n");
    let _ = writeln!(s, "Selection rule `{}`: {}.\n", r.selection.rule, r.selection.reason);
    if let Some(c) = &r.ceiling {
        let _ = writeln!(s, "Ceiling (diagnostic, never used to choose): {}.\n", ceiling_text(c));
        let _ = writeln!(s, "Sound ceiling (diagnostic): {}.\n", sound_ceiling_text(r));
    }
    if r.best.edits.is_empty() {
        let _ = writeln!(s, "None: the base model is returned.");
    }
    for e in &r.best.edits {
        let _ = writeln!(s, "- `{}` ρ = {} ({}){}", e.name, e.rho, e.factor, size_text(r, &e.name));
    }
    match output {
        Some(ModelOutput::Exported(o)) => {
            let _ = writeln!(s, "\nAdapted model: `{}`", o.display());
        }
        Some(ModelOutput::Unchanged(o)) => {
            let _ = writeln!(
                s,
                "\nNo edit: the base model is unchanged, at `{}`; no copy was written (`--export-base` writes one).",
                o.display()
            );
        }
        None => {}
    }
    let t = &r.seconds;
    let _ = writeln!(
        s,
        "\n## Time\n\n| gradient pass | SVDs | scan | test | total |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        s,
        "| {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s |",
        t.grad, t.svd, t.scan, t.test, t.total
    );
    let _ = writeln!(
        s,
        "\n{} candidates evaluated ({} from a resumed log{}{}).",
        r.candidates_evaluated,
        r.candidates_resumed,
        same_matrices_text(r),
        stopped_text(r)
    );
    if !r.ranking.is_empty() {
        let _ = writeln!(
            s,
            "\n## Matrix ranking (top 10)\n\n| rank | matrix | score | best ρ | predicted ΔL | ‖G‖_F |\n|---|---|---|---|---|---|"
        );
        for (i, m) in r.ranking.iter().take(10).enumerate() {
            let _ = writeln!(
                s,
                "| {} | `{}` | {:.3e} | {} | {:.3e} | {:.3e} |",
                i + 1,
                m.name,
                m.score,
                m.best_rho,
                m.predicted_delta_loss,
                m.grad_norm
            );
        }
    }
    let _ = writeln!(
        s,
        "\n## Candidates (best 15 by selection accuracy)\n\n| edits | accuracy | log-loss |\n|---|---|---|"
    );
    // Those evaluated on every item first; racing's stopped ones after them, marked.
    let mut cands = r.candidates.clone();
    cands.sort_by(|a, b| {
        a.stopped_after
            .is_some()
            .cmp(&b.stopped_after.is_some())
            .then(b.select.accuracy.total_cmp(&a.select.accuracy))
            .then(a.select.logloss.total_cmp(&b.select.logloss))
    });
    let half = r.base.select.n.div_ceil(2);
    for c in cands.iter().take(15) {
        let e: Vec<String> =
            c.edits.iter().map(|e| format!("`{}` ρ={} {}", e.name, e.rho, e.factor)).collect();
        let stopped = c.stopped_after.map_or(String::new(), |k| match r.selection.rule.halves() {
            // Scored on the whole choosing half: only the rule's pick there is scored further.
            true if k == half => format!(" (scored on the {k} choosing items: not the pick there)"),
            _ => format!(" (stopped after {k} items: {})", r.race.stopped_because()),
        });
        let _ = writeln!(
            s,
            "| {}{stopped} | {:.1}% | {:.4} |",
            e.join(" + "),
            c.select.accuracy,
            c.select.logloss
        );
    }
    let _ = writeln!(s, "\nPlots: `scores_heatmap.svg`, `accuracy_vs_rho.svg`, `spectrum.svg`.");
    s
}

/// A few lines for the terminal after a suite.
pub fn suite_summary(r: &SuiteReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "suite of {} tasks, rule {}", r.tasks.len(), r.select_rule);
    for t in &r.tasks {
        match (&t.error, &t.delta) {
            (Some(e), _) => {
                let _ = writeln!(s, "  {:<36} error: {e}", t.task);
            }
            (None, Some(d)) => {
                let edit = t.edits.first().map_or("no edit".to_owned(), |e| {
                    format!("{} ρ={} {}", e.name, e.rho, e.factor)
                });
                let _ = writeln!(s, "  {:<36} {}  {edit}", t.task, delta_text(d));
            }
            (None, None) => {
                let _ = writeln!(s, "  {:<36} no test split", t.task);
            }
        }
    }
    let _ = writeln!(
        s,
        "mean test change {:+.2} points; significantly helped {} ({} with balanced accuracy up too), harmed {}{}; {:.0}s ({} resumed)",
        r.mean_delta,
        r.helped,
        r.helped_balanced,
        r.harmed,
        if r.failed > 0 { format!(", failed {}", r.failed) } else { String::new() },
        r.seconds,
        r.resumed
    );
    if let Some(c) = r.mean_collateral {
        let _ = writeln!(
            s,
            "collateral: the recommended edits change the other tasks' selection accuracy by {c:+.2} points on average"
        );
    }
    if let Some(h) = r.ceiling_helped {
        let _ = writeln!(
            s,
            "ceiling (diagnostic): the best scanned candidate on each test split significantly helps {h} of {} tasks; within the log-loss bound, {}",
            r.tasks.iter().filter(|t| t.ceiling.is_some()).count(),
            r.sound_ceiling_helped.unwrap_or(0)
        );
    }
    s
}

/// `suite.md`.
pub fn suite_markdown(r: &SuiteReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# laser suite\n");
    let _ = writeln!(s, "- model: `{}`\n- selection rule: `{}`\n", r.model, r.select_rule);
    let _ = writeln!(
        s,
        "| task | select / test items | base test acc · log-loss | adapted test acc · log-loss | Δ accuracy (95% CI) | Δ balanced accuracy (95% CI) | majority (test) | edit | time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for t in &r.tasks {
        if let Some(e) = &t.error {
            let _ = writeln!(
                s,
                "| {} | — | — | — | error: {} | — | — | — | — |",
                t.task,
                e.replace('|', "/")
            );
            continue;
        }
        let test = |m: &Option<crate::suite::report::StateMetrics>| {
            m.as_ref()
                .and_then(|m| m.test.as_ref())
                .map_or("—".into(), |t| format!("{:.1}% · {:.3}", t.accuracy, t.logloss))
        };
        let majority = t
            .base
            .as_ref()
            .and_then(|m| m.test.as_ref())
            .and_then(|m| m.majority)
            .map_or("—".into(), |m| format!("{m:.1}%"));
        let edit = first_edit_cell(&t.edits);
        let _ = writeln!(
            s,
            "| {} | {} / {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            t.task,
            t.n_select,
            t.n_test,
            test(&t.base),
            test(&t.adapted),
            t.delta.as_ref().map_or("—".into(), delta_text),
            t.balanced_delta.as_ref().map_or("—".into(), delta_text),
            majority,
            edit,
            t.seconds
        );
    }
    let _ = writeln!(
        s,
        "\nMean test change **{:+.2} points**; significantly helped **{}** (of them **{}** with balanced accuracy significantly up too, or without one set of choices shared by every item, shown as — : not a move onto the majority class), significantly harmed **{}** (interval entirely above / below zero){}.",
        r.mean_delta,
        r.helped,
        r.helped_balanced,
        r.harmed,
        if r.failed > 0 { format!("; {} failed", r.failed) } else { String::new() }
    );
    for t in &r.tasks {
        let adapted = t.adapted.as_ref().and_then(|m| m.test.as_ref());
        let base = t.base.as_ref().and_then(|m| m.test.as_ref());
        if let (Some(b), Some(a)) =
            (base.and_then(per_class_text), adapted.and_then(per_class_text))
        {
            let _ =
                writeln!(s, "\n`{}` per class (test): base {b}; adapted {a}. {}", t.task, t.reason);
        }
    }
    if let Some(mean) = r.mean_collateral {
        let _ = writeln!(
            s,
            "\n## Collateral: each recommended edit on the other tasks' selection items\n\n\
             Mean change **{mean:+.2} points** (over the tasks whose recommendation edits the \
             model).\n\n| edited for | mean Δ on the others | others harmed | per task (base → edited) |\n|---|---|---|---|"
        );
        for t in &r.tasks {
            let Some(c) = &t.collateral else { continue };
            let per: Vec<String> = c
                .tasks
                .iter()
                .map(|o| format!("{} {:.1}→{:.1}", o.task, o.base, o.adapted))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {:+.2} | {} | {} |",
                t.task,
                c.mean_delta,
                c.harmed,
                per.join("; ")
            );
        }
    }
    suite_ceiling(&mut s, r);
    if !r.rules.is_empty() {
        let _ = writeln!(
            s,
            "\n## Selection rules compared (diagnostic)\n\n| rule | factorizations | mean Δ test | harmed | helped | helped, balanced too | tasks edited |\n|---|---|---|---|---|---|---|"
        );
        for x in &r.rules {
            let _ = writeln!(
                s,
                "| {} | {} | {:+.2} | {} | {} | {} | {} |",
                x.rule, x.factors, x.mean_delta, x.harmed, x.helped, x.helped_balanced, x.edited
            );
        }
    }
    s
}

/// With a rule comparison: each task's ceiling beside the rule's change, and how many tasks the
/// best scanned candidate would significantly help — whether the space or the rule limits the
/// suite's gains.
fn suite_ceiling(s: &mut String, r: &SuiteReport) {
    let with: Vec<_> = r.tasks.iter().filter_map(|t| t.ceiling.as_ref().map(|c| (t, c))).collect();
    if with.is_empty() {
        return;
    }
    let helped = r.ceiling_helped.unwrap_or(0);
    let _ = writeln!(
        s,
        "\n## Ceiling (diagnostic, never used to choose)\n\nThe best test accuracy among every \
         scanned candidate: it significantly beats the base model on **{helped}** of {} tasks, \
         where the rule's recommendations significantly help **{}**. The sound ceiling is the \
         same among the candidates whose test log-loss is within {}× the base model's (a \
         candidate that wins answers by wrecking the language model left out): it significantly \
         beats the base model on **{}**.\n\n| task | rule's Δ test | ceiling Δ test (95% CI) \
         | ceiling's edit | its selection accuracy | its test log-loss (base) \
         | sound ceiling Δ test | sound ceiling's edit |\n|---|---|---|---|---|---|---|---|",
        with.len(),
        r.helped,
        crate::SOUND_LOGLOSS_RATIO,
        r.sound_ceiling_helped.unwrap_or(0)
    );
    for (t, c) in with {
        let edit = first_edit_cell(&c.edits);
        let base_logloss = t
            .base
            .as_ref()
            .and_then(|b| b.test.as_ref())
            .map_or("—".into(), |m| format!("{:.3}", m.logloss));
        let (sound_delta, sound_edit) = match &t.sound_ceiling {
            Some(sc) if sc.edits == c.edits => {
                ("the ceiling".to_owned(), "the ceiling's".to_owned())
            }
            Some(sc) => {
                (sc.delta.as_ref().map_or("—".into(), delta_text), first_edit_cell(&sc.edits))
            }
            None => ("none within the bound".to_owned(), "—".to_owned()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {edit} | {:.1}% | {:.3} ({base_logloss}) | {sound_delta} | {sound_edit} |",
            t.task,
            t.delta.as_ref().map_or("—".into(), delta_text),
            c.delta.as_ref().map_or("—".into(), delta_text),
            c.select.accuracy,
            c.test.logloss,
        );
    }
}

/// A suite table's edit cell: the first edit (a suite's searches recommend single edits), or
/// "no edit".
fn first_edit_cell(edits: &[crate::edits::Edit]) -> String {
    edits.first().map_or("no edit".to_owned(), |e| format!("`{}` ρ={} {}", e.name, e.rho, e.factor))
}

/// ", N stopped early by racing" when racing stopped candidates.
fn stopped_text(r: &SearchReport) -> String {
    match r.candidates_stopped {
        0 => String::new(),
        n => format!(", {n} stopped early by racing: the rule could not choose them"),
    }
}

/// ", N with the same matrices as an earlier candidate" when a scan reused metrics.
fn same_matrices_text(r: &SearchReport) -> String {
    match r.candidates_same_matrices {
        0 => String::new(),
        n => format!(", {n} with the same matrices as an earlier candidate"),
    }
}
