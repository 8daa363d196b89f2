//! The three SVG plots of `laser adapt`, written by hand (no plotting dependency to build): a
//! layer × kind heatmap of σ-gradient scores, selection accuracy against ρ for the scanned
//! matrices, and the singular-value spectrum of the chosen matrix before and after the edit.

use std::fmt::Write;

use laser_search::{CandidateResult, MatrixScore};

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        escape(title)
    )
}

/// Layer × kind heatmap of the gradient strategy's matrix scores (red: truncation predicted to
/// lower the loss; blue: to raise it).
pub fn heatmap(ranking: &[MatrixScore]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for k in ["q", "k", "v", "qkv", "o", "fc_in", "fc_up", "fc_out"] {
        if ranking.iter().any(|m| m.kind == k) {
            kinds.push(k);
        }
    }
    let layers = ranking.iter().map(|m| m.layer).max().map_or(0, |l| l + 1);
    let (cw, ch, left, top) = (56.0, 14.0, 60.0, 50.0);
    let w = left + cw * kinds.len() as f64 + 120.0;
    let h = top + ch * layers as f64 + 30.0;
    let mut s = header(w, h, "σ-gradient truncation score by layer and kind");
    let max = ranking.iter().map(|m| m.score.abs()).fold(0.0f64, f64::max).max(1e-30);
    for (c, k) in kinds.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{k}</text>",
            left + cw * (c as f64 + 0.5),
            top - 6.0
        );
    }
    for l in 0..layers {
        let y = top + ch * l as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{l}</text>",
            left - 6.0,
            y + ch - 3.0
        );
        for (c, k) in kinds.iter().enumerate() {
            let Some(m) = ranking.iter().find(|m| m.layer == l && m.kind == *k) else { continue };
            let t = (m.score / max).clamp(-1.0, 1.0);
            let fade = (255.0 * (1.0 - t.abs())) as u8;
            let colour = if t >= 0.0 {
                format!("rgb(255,{fade},{fade})")
            } else {
                format!("rgb({fade},{fade},255)")
            };
            let _ = writeln!(
                s,
                "<rect x=\"{}\" y=\"{y}\" width=\"{cw}\" height=\"{ch}\" fill=\"{colour}\" stroke=\"#ddd\"><title>{} score {:.3e} best ρ {}</title></rect>",
                left + cw * c as f64,
                escape(&m.name),
                m.score,
                m.best_rho
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\">red: predicted loss decrease</text>",
        left + cw * kinds.len() as f64 + 8.0,
        top + 10.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\">blue: increase</text>",
        left + cw * kinds.len() as f64 + 8.0,
        top + 26.0
    );
    s.push_str("</svg>\n");
    s
}

/// Selection accuracy against ρ (log scale), one line per (matrix, factorization).
pub fn accuracy_vs_rho(candidates: &[CandidateResult], base_accuracy: f64) -> String {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in candidates.iter().filter(|c| c.edits.len() == 1) {
        let e = &c.edits[0];
        let label = format!("{} {}", e.name, e.factor);
        let point = (f64::from(e.rho).log10(), c.select.accuracy);
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push(point),
            None => series.push((label, vec![point])),
        }
    }
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 60.0, 300.0, 40.0, 50.0);
    let mut s = header(w, h, "selection accuracy vs kept-rank fraction ρ");
    let xs: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).collect();
    let (xmin, xmax) = (xs.iter().copied().fold(0.0f64, f64::min).min(-2.5), 0.0);
    let ys: Vec<f64> =
        series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain([base_accuracy]).collect();
    let ymin = (ys.iter().copied().fold(100.0f64, f64::min) - 5.0).max(0.0).floor();
    let ymax = (ys.iter().copied().fold(0.0f64, f64::max) + 5.0).min(100.0).ceil();
    let px = |x: f64| left + (x - xmin) / (xmax - xmin).max(1e-9) * (w - left - right);
    let py = |y: f64| top + (ymax - y) / (ymax - ymin).max(1e-9) * (h - top - bottom);
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom
    );
    for rho in [0.001f64, 0.01, 0.1, 1.0] {
        let x = rho.log10();
        if x >= xmin {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{rho}</text>",
                px(x),
                h - bottom + 16.0
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ρ (log scale)</text>",
        (left + w - right) / 2.0,
        h - 10.0
    );
    for i in 0..=4 {
        let y = ymin + (ymax - ymin) * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.0}%</text>",
            left - 6.0,
            py(y) + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"black\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\">base {base_accuracy:.1}%</text>",
        w - right,
        w - right + 6.0,
        py(base_accuracy) + 4.0,
        y = py(base_accuracy)
    );
    for (i, (label, pts)) in series.iter_mut().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let colour = PALETTE[i % PALETTE.len()];
        let path: Vec<String> =
            pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            path.join(" ")
        );
        if i < 16 {
            let ly = top + 14.0 * (i as f64 + 1.0);
            let short = label.replace(".weight", "");
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{ly}\" fill=\"{colour}\" font-size=\"9\">{}</text>",
                w - right + 6.0,
                escape(&short)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Singular values (log scale) of a matrix before and after its edit.
pub fn spectrum(name: &str, before: &[f32], after: &[f32]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 380.0, 60.0, 20.0, 40.0, 50.0);
    let mut s = header(w, h, &format!("singular values of {name}"));
    let floor =
        before.iter().copied().filter(|&x| x > 0.0).fold(f32::INFINITY, f32::min).max(1e-12) * 0.1;
    let lg = |x: f32| f64::from(x.max(floor)).log10();
    let ymax = before.iter().chain(after).map(|&x| lg(x)).fold(f64::NEG_INFINITY, f64::max);
    let ymin = lg(floor);
    let n = before.len().max(after.len()).max(2);
    let px = |i: usize| left + i as f64 / (n - 1) as f64 * (w - left - right);
    let py = |y: f64| top + (ymax - y) / (ymax - ymin).max(1e-9) * (h - top - bottom);
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">index i</text>",
        (left + w - right) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">1e{:.0}</text>",
        left - 4.0,
        py(ymax) + 4.0,
        ymax
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">1e{:.0}</text>",
        left - 4.0,
        py(ymin) + 4.0,
        ymin
    );
    for (vals, colour, label, dy) in
        [(before, "#1f77b4", "before", 0.0), (after, "#d62728", "after", 16.0)]
    {
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, &x)| format!("{:.1},{:.1}", px(i), py(lg(x))))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
            w - right - 60.0,
            top + 14.0 + dy
        );
    }
    s.push_str("</svg>\n");
    s
}
