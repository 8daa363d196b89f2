//! Human-readable outputs: the terminal summary and `report.md` of a search or adaptation.

use std::fmt::Write;

use laser_search::{Metrics, SearchReport};

fn pct(m: Option<&Metrics>) -> String {
    m.map_or("—".into(), |m| format!("{:.1}%", m.accuracy))
}

fn loss(m: Option<&Metrics>) -> String {
    m.map_or("—".into(), |m| format!("{:.4}", m.logloss))
}

/// A few lines for the terminal.
pub fn summary(r: &SearchReport, output: Option<&std::path::Path>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "strategy {} on {} ({})", r.strategy.name(), r.task, r.task_format);
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
    if let Some(m) = r.base.select.majority {
        let _ = writeln!(s, "majority-class rate on selection: {m:.1}%");
    }
    if r.best.edits.is_empty() {
        let _ = writeln!(s, "no edit beat the base model on the selection split");
    }
    for e in &r.best.edits {
        let _ = writeln!(s, "edit: {} ρ={} {}", e.name, e.rho, e.factor);
    }
    let t = &r.seconds;
    let _ = writeln!(
        s,
        "{} candidates ({} resumed); time: grad {:.1}s, svd {:.1}s, scan {:.1}s, test {:.1}s, total {:.1}s",
        r.candidates_evaluated, r.candidates_resumed, t.grad, t.svd, t.scan, t.test, t.total
    );
    if let Some(o) = output {
        let _ = writeln!(s, "adapted model: {}", o.display());
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
pub fn markdown(r: &SearchReport, output: Option<&std::path::Path>) -> String {
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
    let _ = writeln!(s, "| model state | items | accuracy | log-loss |\n|---|---|---|---|");
    metrics_row(&mut s, "base, selection", Some(&r.base.select));
    metrics_row(&mut s, "adapted, selection", Some(&r.best.select));
    metrics_row(&mut s, "base, test", r.base.test.as_ref());
    metrics_row(&mut s, "adapted, test", r.best.test.as_ref());
    for (label, m) in
        [("base, test", r.base.test.as_ref()), ("adapted, test", r.best.test.as_ref())]
    {
        if let Some(m) = m
            && let Some(classes) = &m.per_class
        {
            let per: Vec<String> = classes
                .iter()
                .map(|c| format!("{} {:.1}% (n={})", c.class, c.accuracy, c.n))
                .collect();
            let _ = writeln!(
                s,
                "\n{label}: majority-class rate {:.1}%; per class: {}",
                m.majority.unwrap_or(0.0),
                per.join(", ")
            );
        }
    }
    let _ = writeln!(s, "\n## Chosen edits\n");
    if r.best.edits.is_empty() {
        let _ = writeln!(s, "None: no candidate beat the base model on the selection split.");
    }
    for e in &r.best.edits {
        let _ = writeln!(s, "- `{}` ρ = {} ({})", e.name, e.rho, e.factor);
    }
    if let Some(o) = output {
        let _ = writeln!(s, "\nAdapted model (HF folder): `{}`", o.display());
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
        "\n{} candidates evaluated ({} from a resumed log).",
        r.candidates_evaluated, r.candidates_resumed
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
    let mut cands = r.candidates.clone();
    cands.sort_by(|a, b| {
        b.select
            .accuracy
            .total_cmp(&a.select.accuracy)
            .then(a.select.logloss.total_cmp(&b.select.logloss))
    });
    for c in cands.iter().take(15) {
        let e: Vec<String> =
            c.edits.iter().map(|e| format!("`{}` ρ={} {}", e.name, e.rho, e.factor)).collect();
        let _ = writeln!(
            s,
            "| {} | {:.1}% | {:.4} |",
            e.join(" + "),
            c.select.accuracy,
            c.select.logloss
        );
    }
    let _ = writeln!(s, "\nPlots: `scores_heatmap.svg`, `accuracy_vs_rho.svg`, `spectrum.svg`.");
    s
}
