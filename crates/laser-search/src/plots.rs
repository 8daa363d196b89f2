//! The three SVG plots of `laser adapt`, written by hand (no plotting dependency to build): a
//! layer × kind heatmap of σ-gradient scores with its colour scale, selection accuracy against ρ
//! for the scanned matrices, and the singular-value spectrum of the chosen matrix before and
//! after the edit. `scripts/render-plots.py DIR` turns them into PNGs for a look.

use std::fmt::Write;

use crate::candidate::CandidateResult;
use crate::report::MatrixScore;

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Font size of ordinary labels, and a generous width per character for layout (sans-serif
/// digits and lower case are narrower), so that text placed by it is never cut off.
const FONT: f64 = 11.0;
const CHAR_WIDTH: f64 = 0.62 * FONT;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * CHAR_WIDTH * size / FONT
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"{FONT}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        escape(title)
    )
}

/// The plot frame: left and bottom axes of the area `[left, right] × [top, bottom]`.
fn axes(s: &mut String, left: f64, right: f64, top: f64, bottom: f64) {
    let _ = writeln!(
        s,
        "<polyline points=\"{left},{top} {left},{bottom} {right},{bottom}\" fill=\"none\" stroke=\"black\"/>"
    );
}

/// An x tick with a faint vertical grid line and its label below the axis.
fn x_tick(s: &mut String, x: f64, top: f64, bottom: f64, label: &str) {
    let _ = writeln!(
        s,
        "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/><line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"black\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        bottom + 4.0,
        bottom + 16.0,
        escape(label)
    );
}

/// A y tick with a faint horizontal grid line and its label left of the axis.
fn y_tick(s: &mut String, y: f64, left: f64, right: f64, label: &str) {
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#eee\"/><line x1=\"{}\" y1=\"{y:.1}\" x2=\"{left}\" y2=\"{y:.1}\" stroke=\"black\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        left - 4.0,
        left - 6.0,
        y + 4.0,
        escape(label)
    );
}

/// Three significant digits, plainly when readable that way (0.025, 2.14, 153), else in
/// scientific notation (3.10e-5).
fn compact(x: f64) -> String {
    if (0.01..1000.0).contains(&x.abs()) {
        let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.2e}")
    }
}

/// The heatmap colour of `t` in [−1, 1]: white at 0, red towards +1, blue towards −1.
fn diverging(t: f64) -> String {
    let fade = (255.0 * (1.0 - t.clamp(-1.0, 1.0).abs())).round() as u8;
    if t >= 0.0 { format!("rgb(255,{fade},{fade})") } else { format!("rgb({fade},{fade},255)") }
}

/// Layer × kind heatmap of the gradient strategy's matrix scores, with a colour bar: red, a
/// truncation predicted to lower the loss; blue, to raise it.
pub fn heatmap(ranking: &[MatrixScore]) -> String {
    let kinds: Vec<&str> = ["q", "k", "v", "qkv", "o", "fc_in", "fc_up", "fc_gate_up", "fc_out"]
        .into_iter()
        .filter(|k| ranking.iter().any(|m| m.kind == *k))
        .collect();
    let layers = ranking.iter().map(|m| m.layer).max().map_or(0, |l| l + 1);
    let max = ranking.iter().map(|m| m.score.abs()).fold(0.0f64, f64::max).max(1e-30);
    let bar_labels = [format!("+{}", compact(max)), "0".to_owned(), format!("−{}", compact(max))];
    let caption = ["predicted", "loss change", "red: lower", "blue: higher"];
    let legend_width = 16.0
        + 8.0
        + bar_labels
            .iter()
            .chain(&caption.map(String::from))
            .map(|l| text_width(l, FONT))
            .fold(0.0, f64::max);
    let (cw, ch, left, top) = (64.0, 14.0, 40.0, 50.0);
    let grid_right = left + cw * kinds.len() as f64;
    let grid_height = (ch * layers as f64).max(120.0);
    let title = "σ-gradient truncation score by layer and kind";
    let w = (grid_right + 24.0 + legend_width + 10.0).max(text_width(title, 14.0) + 20.0);
    let h = top + grid_height + 40.0;
    let mut s = header(w, h, title);
    for (c, k) in kinds.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{k}</text>",
            left + cw * (c as f64 + 0.5),
            top - 6.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"12\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">layer</text>",
        top + grid_height / 2.0,
        top + grid_height / 2.0
    );
    for l in 0..layers {
        let y = top + ch * l as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"9\">{l}</text>",
            left - 4.0,
            y + ch - 3.0
        );
        for (c, k) in kinds.iter().enumerate() {
            let Some(m) = ranking.iter().find(|m| m.layer == l && m.kind == *k) else { continue };
            let _ = writeln!(
                s,
                "<rect x=\"{}\" y=\"{y}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\" stroke=\"#ddd\"><title>{} score {:.3e} best ρ {}</title></rect>",
                left + cw * c as f64,
                diverging(m.score / max),
                escape(&m.name),
                m.score,
                m.best_rho
            );
        }
    }
    // The colour bar: 40 steps from +max (top) to −max (bottom), labelled at both ends and 0.
    let (bx, bh) = (grid_right + 24.0, 120.0);
    for i in 0..40 {
        let t = 1.0 - 2.0 * (f64::from(i) + 0.5) / 40.0;
        let _ = writeln!(
            s,
            "<rect x=\"{bx}\" y=\"{:.1}\" width=\"16\" height=\"{:.2}\" fill=\"{}\"/>",
            top + bh * f64::from(i) / 40.0,
            bh / 40.0 + 0.3,
            diverging(t)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{bx}\" y=\"{top}\" width=\"16\" height=\"{bh}\" fill=\"none\" stroke=\"#888\"/>"
    );
    for (label, y) in bar_labels.iter().zip([top, top + bh / 2.0, top + bh]) {
        let _ = writeln!(s, "<text x=\"{}\" y=\"{:.1}\">{label}</text>", bx + 24.0, y + 4.0);
    }
    for (i, line) in caption.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{bx}\" y=\"{:.1}\">{line}</text>",
            top + bh + 18.0 + 13.0 * i as f64
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Selection accuracy against ρ (log scale), one line with point markers per (matrix,
/// factorization), and the base model's accuracy as a dashed line.
pub fn accuracy_vs_rho(candidates: &[CandidateResult], base_accuracy: f64) -> String {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    // A candidate racing stopped has metrics of a few items only: not a point on the curve.
    for c in candidates.iter().filter(|c| c.edits.len() == 1 && c.stopped_after.is_none()) {
        let e = &c.edits[0];
        let label = format!("{} {}", e.name.replace(".weight", ""), e.factor);
        let point = (f64::from(e.rho).log10(), c.select.accuracy);
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push(point),
            None => series.push((label, vec![point])),
        }
    }
    const LEGEND_ROWS: usize = 16;
    let legend_width = series
        .iter()
        .take(LEGEND_ROWS)
        .map(|(l, _)| text_width(l, 9.0) + 16.0)
        .chain([text_width(&format!("base {base_accuracy:.1}%"), FONT)])
        .fold(60.0, f64::max);
    let (plot_w, h, left, top, bottom) = (460.0, 420.0, 60.0, 40.0, 50.0);
    let (x0, x1, y1) = (left, left + plot_w, h - bottom);
    let w = x1 + 12.0 + legend_width + 10.0;
    let mut s = header(w, h, "selection accuracy vs kept-rank fraction ρ");
    let xs: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).collect();
    let (xmin, xmax) = ((xs.iter().copied().fold(0.0f64, f64::min) - 0.1).min(-2.5), 0.1);
    let ys: Vec<f64> =
        series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain([base_accuracy]).collect();
    let ymin = (ys.iter().copied().fold(100.0f64, f64::min) - 5.0).max(0.0).floor();
    let ymax = (ys.iter().copied().fold(0.0f64, f64::max) + 5.0).min(100.0).ceil();
    let px = |x: f64| x0 + (x - xmin) / (xmax - xmin) * plot_w;
    let py = |y: f64| top + (ymax - y) / (ymax - ymin).max(1e-9) * (y1 - top);
    for rho in [0.001f64, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0] {
        if rho.log10() >= xmin {
            x_tick(&mut s, px(rho.log10()), top, y1, &rho.to_string());
        }
    }
    for i in 0..=4 {
        let y = ymin + (ymax - ymin) * f64::from(i) / 4.0;
        y_tick(&mut s, py(y), x0, x1, &format!("{y:.0}%"));
    }
    axes(&mut s, x0, x1, top, y1);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ρ, kept-rank fraction (log scale)</text>",
        (x0 + x1) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"black\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1}\">base {base_accuracy:.1}%</text>",
        x1 + 12.0,
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
        for &(x, y) in pts.iter() {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} ρ={:.3} {y:.1}%</title></circle>",
                px(x),
                py(y),
                escape(label),
                10f64.powf(x)
            );
        }
        if i < LEGEND_ROWS {
            let ly = top + 14.0 * (i as f64 + 2.0);
            let _ = writeln!(
                s,
                "<circle cx=\"{}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/><text x=\"{}\" y=\"{ly:.1}\" fill=\"{colour}\" font-size=\"9\">{}</text>",
                x1 + 16.0,
                ly - 3.0,
                x1 + 24.0,
                escape(label)
            );
        }
    }
    if series.len() > LEGEND_ROWS {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"9\">… {} more</text>",
            x1 + 12.0,
            top + 14.0 * (LEGEND_ROWS as f64 + 2.0),
            series.len() - LEGEND_ROWS
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Singular values (log scale) of a matrix before and after its edit. Values an edit sets to
/// zero (below 1e-6 of the largest) are not drawn — the kept rank is marked instead, so the
/// after-curve does not fall off the plot in a vertical line.
pub fn spectrum(name: &str, before: &[f32], after: &[f32]) -> String {
    let (w, h, left, right, top, bottom) = (680.0, 380.0, 70.0, 20.0, 40.0, 50.0);
    let (x1, y1) = (w - right, h - bottom);
    let mut s = header(w, h, &format!("singular values of {name}"));
    let largest = before.iter().chain(after).copied().fold(0.0f32, f32::max).max(f32::MIN_POSITIVE);
    let zero = largest * 1e-6;
    let smallest =
        before.iter().chain(after).copied().filter(|&x| x > zero).fold(largest, f32::min);
    let (dmin, dmax) = (
        f64::from(smallest).log10().floor(),
        f64::from(largest).log10().ceil().max(f64::from(smallest).log10().floor() + 1.0),
    );
    let n = before.len().max(after.len()).max(2);
    let px = |i: usize| left + i as f64 / (n - 1) as f64 * (x1 - left);
    let py = |v: f32| top + (dmax - f64::from(v).log10()) / (dmax - dmin) * (y1 - top);
    for d in dmin as i32..=dmax as i32 {
        let y = top + (dmax - f64::from(d)) / (dmax - dmin) * (y1 - top);
        y_tick(&mut s, y, left, x1, &format!("1e{d}"));
    }
    for q in 0..=4 {
        let i = (n - 1) * q / 4;
        x_tick(&mut s, px(i), top, y1, &i.to_string());
    }
    axes(&mut s, left, x1, top, y1);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">index i (largest first)</text>",
        (left + x1) / 2.0,
        h - 12.0
    );
    let kept = after.iter().filter(|&&x| x > zero).count();
    if kept < after.len() {
        let x = px(kept.saturating_sub(1));
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{y1}\" stroke=\"#d62728\" stroke-dasharray=\"3 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#d62728\">kept rank {kept}</text>",
            x + 4.0,
            y1 - 8.0
        );
    }
    for (vals, colour, label, dy) in
        [(before, "#1f77b4", "before", 0.0), (after, "#d62728", "after", 16.0)]
    {
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x > zero)
            .map(|(i, &x)| format!("{:.1},{:.1}", px(i), py(x)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
            x1 - 60.0,
            top + 14.0 + dy
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edits::Edit;
    use crate::metrics::Metrics;

    /// The SVG's width and every `<text>` with its x, anchor and content.
    fn texts(svg: &str) -> (f64, Vec<(f64, String, String)>) {
        let attr = |tag: &str, name: &str| {
            tag.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(String::from)
        };
        let width: f64 = attr(svg, "width").unwrap().parse().unwrap();
        let mut out = Vec::new();
        for part in svg.split("<text").skip(1) {
            let (tag, rest) = part.split_once('>').unwrap();
            if tag.contains("rotate") {
                continue;
            }
            let content = rest.split("</text>").next().unwrap().to_owned();
            let x: f64 = attr(tag, "x").unwrap().parse().unwrap();
            let size = attr(tag, "font-size").map_or(FONT, |f| f.parse().unwrap());
            let anchor = attr(tag, "text-anchor").unwrap_or_else(|| "start".into());
            let wide = text_width(&content, size);
            let (lo, hi) = match anchor.as_str() {
                "end" => (x - wide, x),
                "middle" => (x - wide / 2.0, x + wide / 2.0),
                _ => (x, x + wide),
            };
            assert!(lo >= 0.0 && hi <= width, "`{content}` spans {lo:.0}..{hi:.0} of {width}");
            out.push((x, anchor, content));
        }
        (width, out)
    }

    fn score(layer: usize, kind: &str, score: f64) -> MatrixScore {
        MatrixScore {
            name: format!("model.layers.{layer}.mlp.{kind}.weight"),
            layer,
            kind: kind.into(),
            shape: [64, 32],
            grad_norm: 1.0,
            score,
            best_rho: 0.1,
            predicted_delta_loss: -score,
            rhos_by_score: Vec::new(),
        }
    }

    #[test]
    fn the_heatmap_legend_fits_and_has_a_colour_scale() {
        let ranking: Vec<MatrixScore> = (0..30)
            .flat_map(|l| [score(l, "fc_gate_up", 5e-4 * l as f64), score(l, "o", -2.5e-2)])
            .collect();
        let svg = heatmap(&ranking);
        let (_, texts) = texts(&svg);
        let labels: Vec<&str> = texts.iter().map(|t| t.2.as_str()).collect();
        assert!(
            labels.contains(&"+0.0250") && labels.contains(&"−0.0250") && labels.contains(&"0")
        );
        assert_eq!([compact(2.1449), compact(153.2), compact(3.1e-5)], ["2.14", "153", "3.10e-5"]);
        assert!(labels.contains(&"fc_gate_up"), "every kind present is a column");
        // 30 layers × 2 kinds of cells plus the 40 steps of the bar and its frame.
        assert_eq!(svg.matches("<rect x=").count(), 60 + 40 + 1);
        assert!(svg.contains("rgb(255,255,255)") || svg.contains("rgb(249,249,255)"));
    }

    #[test]
    fn accuracy_points_have_markers_and_the_axes_have_ticks() {
        let cand = |name: &str, rho: f32, acc: f64| CandidateResult {
            edits: vec![Edit::svd(name, rho)],
            select: Metrics {
                n: 10,
                accuracy: acc,
                logloss: 1.0,
                majority: None,
                per_class: None,
                items: None,
            },
            stopped_after: None,
        };
        let long = "model.layers.29.self_attn.o_proj.weight";
        let cs = vec![
            cand(long, 0.9, 40.0),
            cand(long, 0.01, 55.0),
            cand("model.layers.1.mlp.up_proj.weight", 0.1, 35.0),
        ];
        let svg = accuracy_vs_rho(&cs, 45.0);
        let (_, texts) = texts(&svg);
        assert_eq!(svg.matches("<circle").count(), 3 + 2, "a marker per point and per legend row");
        let ticks: Vec<&str> =
            texts.iter().filter(|t| t.1 == "middle").map(|t| t.2.as_str()).collect();
        for rho in ["0.01", "0.1", "1"] {
            assert!(ticks.contains(&rho), "{ticks:?}");
        }
        assert!(texts.iter().any(|t| t.2 == "model.layers.29.self_attn.o_proj svd"));
    }

    #[test]
    fn the_spectrum_has_a_tick_per_decade_and_no_drop_to_zero() {
        let before: Vec<f32> = (0..64).map(|i| 10f32.powf(1.0 - i as f32 / 16.0)).collect();
        let mut after = before.clone();
        after[8..].iter_mut().for_each(|x| *x = 0.0);
        let svg = spectrum("m", &before, &after);
        let (_, texts) = texts(&svg);
        let decades: Vec<&str> =
            texts.iter().filter(|t| t.2.starts_with("1e")).map(|t| t.2.as_str()).collect();
        assert_eq!(decades, ["1e-3", "1e-2", "1e-1", "1e0", "1e1"]);
        assert!(texts.iter().any(|t| t.2 == "kept rank 8"));
        let after_line =
            svg.lines().find(|l| l.contains("<polyline") && l.contains("#d62728")).unwrap();
        assert_eq!(
            after_line.matches(',').count(),
            8,
            "only the kept values are drawn: {after_line}"
        );
    }
}
