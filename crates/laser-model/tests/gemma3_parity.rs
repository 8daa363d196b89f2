//! Parity with HF transformers on the second real model, Gemma 3 270M (the Q4_K_M GGUF of
//! `scripts/fetch-gemma3-270m.sh`; the oracle `tests/fixtures/gemma3_270m.json`, made by
//! `scripts/gemma3_reference.py` from transformers loading the same GGUF in float64): token ids
//! (BOS first) and top-5 ids exact, log-probs and mean NLL within 2e-3 — on a text longer than the
//! 512-token sliding window too — and the gradient norms of all 126 matrices ranked as torch
//! ranks them (Spearman ≥ 0.99), the loss within 2e-3.

use std::path::PathBuf;
use std::process::Command;

use laser_model::{Backend, Model, TokenTarget};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model's path, fetched on first use; `None` (the test is skipped, saying why) when it is
/// not cached and cannot be fetched (no network).
fn gemma3_270m() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/fetch-gemma3-270m.sh"))
        .output()
        .expect("bash runs");
    if !out.status.success() {
        skip_note(format!(
            "skipped: Gemma 3 270M is not cached and could not be fetched: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

fn oracle() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/gemma3_270m.json")).unwrap(),
    )
    .unwrap()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Every next token of `seqs` as a target.
fn all_next_tokens(seqs: &[Vec<u32>]) -> Vec<TokenTarget> {
    seqs.iter()
        .enumerate()
        .flat_map(|(i, s)| {
            (1..s.len()).map(move |p| TokenTarget { seq: i, position: p - 1, token: s[p] })
        })
        .collect()
}

#[test]
fn gemma3_270m_matches_the_oracle_on_ids_top5_logprobs_and_nll() {
    let Some(path) = gemma3_270m() else { return };
    let model = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
    let c = model.config();
    assert_eq!((c.num_layers, c.hidden_size, c.vocab_size), (18, 640, 262_144));
    assert_eq!(model.matrices().len(), 126);
    let local = c.local_attention.as_ref().expect("sliding layers");
    assert_eq!(local.window, 512);
    let full: Vec<usize> = (0..18).filter(|&l| !local.sliding[l]).collect();
    assert_eq!(full, [5, 11, 17], "llama.cpp's rule: every 6th layer attends fully");
    assert!(!model.load_notes().is_empty(), "the filled-in pattern is said");
    let tok = model.tokenizer().unwrap();
    let oracle = oracle();
    let rows = oracle["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let mut seqs = Vec::new();
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let ids = tok.encode_prompt(text).unwrap();
        assert_eq!(ids, ids_of(&row["ids"]), "token ids of {text:?}");
        seqs.push(ids);
    }
    assert!(seqs.iter().any(|s| s.len() > 2 * local.window), "a text past the window");
    // One padded batch: padding must not change any real position, and the long row's sliding
    // layers must see only their window.
    let prep = model.prepare(&seqs).unwrap();
    let last: Vec<(usize, usize)> =
        seqs.iter().enumerate().map(|(i, s)| (i, s.len() - 1)).collect();
    let lps = model.log_probs_at(&prep, None, &last).unwrap();
    let targets = all_next_tokens(&seqs);
    let nll = model.target_log_probs(&prep, None, &targets).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let lp = &lps[i];
        let mut order: Vec<usize> = (0..lp.len()).collect();
        order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]));
        let top5: Vec<u32> = order[..5].iter().map(|&t| t as u32).collect();
        assert_eq!(top5, ids_of(&row["top5_ids"]), "top-5 of row {i}");
        for (k, want) in row["top5_logprobs"].as_array().unwrap().iter().enumerate() {
            let got = f64::from(lp[order[k]]);
            let want = want.as_f64().unwrap();
            assert!((got - want).abs() < 2e-3, "row {i} top {k}: {got} vs {want}");
        }
        let mine: Vec<f64> = targets
            .iter()
            .zip(&nll)
            .filter(|(t, _)| t.seq == i)
            .map(|(_, &l)| -f64::from(l))
            .collect();
        let mean = mine.iter().sum::<f64>() / mine.len() as f64;
        let want = row["mean_nll"].as_f64().unwrap();
        assert!((mean - want).abs() < 2e-3, "row {i} mean NLL {mean} vs {want}");
    }
}

/// Ranks with ties averaged, for Spearman's coefficient.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn gemma3_270m_gradient_norms_rank_like_torch() {
    let Some(path) = gemma3_270m() else { return };
    let model = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
    let oracle = oracle();
    let g = &oracle["gradient"];
    let rows = oracle["rows"].as_array().unwrap();
    let seqs: Vec<Vec<u32>> = g["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| ids_of(&rows[i.as_u64().unwrap() as usize]["ids"]))
        .collect();
    let targets = all_next_tokens(&seqs);
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    let pass = model.loss_and_gradients(&seqs, &targets, &names, 1).unwrap();
    let want_loss = g["loss"].as_f64().unwrap();
    assert!((pass.loss - want_loss).abs() < 2e-3 * want_loss, "loss {} vs {want_loss}", pass.loss);
    let norms = g["frobenius_norms"].as_object().unwrap();
    assert_eq!(norms.len(), names.len());
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for name in &names {
        let grad = &pass.grads[name];
        mine.push(grad.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt());
        theirs.push(norms[name].as_f64().unwrap_or_else(|| panic!("{name} in the oracle")));
    }
    let rho = pearson(&ranks(&mine), &ranks(&theirs));
    let worst = mine.iter().zip(&theirs).map(|(a, b)| ((a - b) / b).abs()).fold(0.0f64, f64::max);
    eprintln!("gemma3 270m: Spearman {rho:.5}, worst relative norm error {worst:.2e}");
    assert!(rho >= 0.99, "Spearman {rho}");
}

/// Tells why a test is skipped, on the real stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
fn skip_note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
