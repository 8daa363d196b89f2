//! No input makes the process abort: an item longer than the model's context is refused before
//! anything is allocated for it, naming the task file, the item and both lengths (exit 2), for
//! every command that reads a task.

mod common;

use common::*;

/// Regression: one 200,000-word prompt made `laser eval` try to allocate terabytes for its
/// attention mask and abort (exit 134).
#[test]
fn an_item_longer_than_the_context_exits_2_naming_it() {
    let m = tiny_model("context");
    let task = std::env::temp_dir().join(format!("laser-cli-huge-{}.jsonl", std::process::id()));
    let huge = "word ".repeat(200_000);
    let mut text = String::new();
    for i in 0..12 {
        let prompt = if i == 7 { huge.as_str() } else { "short" };
        text.push_str(&format!(
            "{{\"prompt\": \"{prompt}\", \"choices\": [\"a\", \"b\"], \"answer\": {}}}\n",
            i % 2
        ));
    }
    std::fs::write(&task, text).unwrap();
    let out = tmp("context-out");
    for args in [
        vec!["eval", "--model", s(&m), "--task", s(&task), "--split", "all"],
        vec!["grad", "--model", s(&m), "--task", s(&task), "--n", "6"],
        vec![
            "search",
            "--model",
            s(&m),
            "--task",
            s(&task),
            "--n",
            "6",
            "--strategy",
            "gradient",
            "--out",
            s(&out),
        ],
    ] {
        let o = laser(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for needle in [s(&task), "item 7", "128-token limit", "max_position_embeddings"] {
            assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        }
    }
    let _ = std::fs::remove_file(&task);
    let _ = std::fs::remove_dir_all(&out);
}

/// A task of twelve short items and, at index 7, one of `long` prompt bytes.
fn task_with_long_item(tag: &str, long: usize) -> std::path::PathBuf {
    let task = std::env::temp_dir().join(format!("laser-cli-{tag}-{}.jsonl", std::process::id()));
    let long = "word ".repeat(long / 5);
    let mut text = String::new();
    for i in 0..12 {
        let prompt = if i == 7 { long.as_str() } else { "short" };
        text.push_str(&format!(
            "{{\"prompt\": \"{prompt}\", \"choices\": [\"a\", \"b\"], \"answer\": {}}}\n",
            i % 2
        ));
    }
    std::fs::write(&task, text).unwrap();
    task
}

#[test]
fn truncate_cuts_an_over_long_prompt_and_counts_it() {
    let m = tiny_model("truncate");
    let task = task_with_long_item("truncate", 1_000_000);
    let out = tmp("truncate-out");
    for side in ["left", "right"] {
        let eval = json_of(&laser(&[
            "eval",
            "--model",
            s(&m),
            "--task",
            s(&task),
            "--split",
            "all",
            "--json",
            "--truncate",
            side,
        ]));
        assert_eq!((eval["n"].as_u64(), eval["truncated"].as_u64()), (Some(12), Some(1)));
        let grad = json_of(&laser(&[
            "grad",
            "--model",
            s(&m),
            "--task",
            s(&task),
            "--n",
            "12",
            "--json",
            "--truncate",
            side,
        ]));
        assert_eq!(grad["truncated"].as_u64(), Some(1));
    }
    let search = [
        "search",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--n",
        "6",
        "--strategy",
        "gradient",
        "--top-k",
        "1",
        "--out",
        s(&out),
    ];
    let o = laser(&[&search[..], &["--truncate", "left"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(report_json(&out)["truncated"].as_u64(), Some(1));
    // A log written with truncation is another search: without it the item is refused again,
    // not resumed from that log.
    let o = laser(&search);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_file(&task);
    let _ = std::fs::remove_dir_all(&out);
}

/// The model's weights plus `rows` evaluation rows of `tokens` tokens, all scored, as
/// `--max-memory` bytes.
fn budget_for(m: &std::path::Path, rows: usize, tokens: usize) -> String {
    let model = laser_model::Model::load(m, laser_model::Backend::Flex.device().unwrap()).unwrap();
    let shape = laser_model::RowShape { tokens, prefix: 0, scored: tokens };
    let reserve = 256 << 20; // the CLI's runtime reserve
    (model.resident_bytes()
        + reserve
        + model.activation_bytes(laser_model::Pass::Forward, rows, shape))
    .to_string()
}

#[test]
fn an_item_over_the_memory_budget_exits_2_naming_it_unless_truncated() {
    let m = tiny_model("budget");
    let task = task_with_long_item("budget", 100);
    // Room for four short rows at once, not for the long one.
    let budget = budget_for(&m, 4, 8);
    let args = ["eval", "--model", s(&m), "--task", s(&task), "--split", "all", "--json"];
    let o = laser(&[&args[..], &["--max-memory", &budget]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for needle in [s(&task), "item 7", "memory budget"] {
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    }
    let cut =
        json_of(&laser(&[&args[..], &["--max-memory", &budget, "--truncate", "left"]].concat()));
    assert_eq!(cut["truncated"].as_u64(), Some(1));
    let _ = std::fs::remove_file(&task);
}

#[test]
fn evaluation_split_by_a_memory_budget_scores_the_same() {
    let m = tiny_model("budget-split");
    let task = tiny_task("budget-split");
    let args = ["eval", "--model", s(&m), "--task", s(&task), "--split", "all", "--json"];
    let whole = json_of(&laser(&args));
    // One row at a time.
    let split = json_of(&laser(&[&args[..], &["--max-memory", &budget_for(&m, 1, 20)]].concat()));
    assert_eq!(whole["accuracy"], split["accuracy"]);
    let (a, b) = (whole["logloss"].as_f64().unwrap(), split["logloss"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    assert_eq!(whole["items"]["correct"], split["items"]["correct"]);
}

#[test]
fn a_memory_budget_below_the_weights_exits_2() {
    let m = tiny_model("budget-small");
    let task = tiny_task("budget-small");
    let args = ["eval", "--model", s(&m), "--task", s(&task), "--split", "all"];
    let o = laser(&[&args[..], &["--max-memory", "1K"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--max-memory 1024 bytes"), "{err}");
    assert!(err.contains("leaves nothing for activations"), "{err}");
    for bad in ["0", "12Q", "G"] {
        let o = laser(&[&args[..], &["--max-memory", bad]].concat());
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--max-memory"), "{bad}");
    }
}
