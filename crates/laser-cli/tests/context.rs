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
