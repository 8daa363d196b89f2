//! Every file in `../shared/data` parses with the documented counts, and malformed task files fail
//! with the file and line.

mod common;

use common::*;
use laser_search::{Target, TaskFormat, load_bias_in_bios_profession, load_task};

fn count(rel: &str) -> (TaskFormat, usize, usize) {
    let t = load_task(shared_data().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (t.format, t.items.len(), t.dropped)
}

#[test]
fn shared_data_sets_load_with_the_documented_counts() {
    if shared_data_or_skip("shared_data_sets_load_with_the_documented_counts").is_none() {
        return;
    }
    // FEVER: 6,510 + 6,576 = 13,086 claims after LASER's filtering.
    assert_eq!(count("fever/paper_dev.jsonl").1, 6510);
    assert_eq!(count("fever/paper_test.jsonl").1, 6576);
    // CounterFact: 21,919 cases over three files.
    let cf: usize = ["edit", "train", "val"]
        .iter()
        .map(|s| count(&format!("counterfact/counterfact-{s}.json")).1)
        .sum();
    assert_eq!(cf, 21_919);
    assert_eq!(count("counterfact/counterfact-val.json").0, TaskFormat::CounterFact);
    // BIG-bench epistemic reasoning: 2,000 two-way choices.
    let (f, n, _) = count("bigbench/epistemic_reasoning_task.json");
    assert_eq!((f, n), (TaskFormat::BigBenchChoice, 2000));
    // WikidataQA: 18,933 string targets kept of 20,442.
    let (f, n, dropped) = count("bigbench/qa_wikidata_task.json");
    assert_eq!((f, n, n + dropped), (TaskFormat::BigBenchGenerative, 18_933, 20_442));
    // TruthfulQA: 817 questions → 5,882 (question, mc2 choice) statements.
    let (f, n, _) = count("truthfulqa/mc_task_v0_hf-013686a.json");
    assert_eq!((f, n), (TaskFormat::TruthfulQa, 5882));
    // HotpotQA dev: 7,405 questions.
    let (f, n, _) = count("hotpotqa/hotpot_dev_v1_simplified.json");
    assert_eq!((f, n), (TaskFormat::HotpotQa, 7405));
}

#[test]
fn prompts_follow_laser_templates() {
    if shared_data_or_skip("prompts_follow_laser_templates").is_none() {
        return;
    }
    let t = load_task(shared_data().join("bigbench/epistemic_reasoning_task.json")).unwrap();
    let first = &t.items[0];
    assert!(
        first
            .prompt
            .starts_with("Identify the relation between the following premises and hypotheses")
    );
    assert!(first.prompt.ends_with("\nRelation:"), "{:?}", first.prompt);
    assert_eq!(
        first.target,
        Target::Choice { choices: vec![" entailment".into(), " non-entailment".into()], answer: 1 }
    );
    assert_eq!(
        t.classes.as_deref(),
        Some(&["entailment".to_owned(), "non-entailment".to_owned()][..])
    );
    let f = load_task(shared_data().join("fever/paper_dev.jsonl")).unwrap();
    assert!(
        f.items[0].prompt.starts_with("Consider the following claim: ")
            && f.items[0].prompt.ends_with(". Is this claim true or false. The claim is")
    );
    assert!(
        !f.items.iter().any(|i| i.prompt.contains("..")),
        "claims' own periods are not doubled"
    );
    let h = load_task(shared_data().join("hotpotqa/hotpot_dev_v1_simplified.json")).unwrap();
    assert_eq!(
        h.items[0].prompt,
        "Were Scott Derrickson and Ed Wood of the same nationality? The answer is"
    );
    let c = load_task(shared_data().join("counterfact/counterfact-val.json")).unwrap();
    assert_eq!(c.items[0].prompt, "BBC One, by");
    assert_eq!(c.items[0].gold_continuation(), " BBC");
}

#[test]
fn malformed_task_files_name_the_file_and_line() {
    let cases: Vec<(&str, &str, &str)> = vec![
        ("empty", "", "empty"),
        ("blank", "\n\n  \n", "empty"),
        ("truncated-json", "[{\"prompt\": \"a\", \"ground_truth\": ", "line 1"),
        (
            "jsonl-bad-line",
            "{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": \"c\", \"answer\": \n",
            ":2",
        ),
        (
            "jsonl-wrong-type",
            "{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": 5, \"answer\": \"b\"}\n",
            ":2",
        ),
        ("jsonl-missing", "{\"prompt\": \"a\", \"answer\": \"b\"}\n\n{\"prompt\": \"c\"}\n", ":3"),
        (
            "choices-bad-answer",
            "{\"prompt\": \"a\", \"choices\": [\"x\", \"y\"], \"answer\": 2}\n",
            "out of range",
        ),
        (
            "choices-one",
            "{\"prompt\": \"a\", \"choices\": [\"x\"], \"answer\": 0}\n",
            "at least two",
        ),
        ("fever-label", "{\"claim\": \"c\", \"label\": \"MAYBE\"}\n", "MAYBE"),
        ("fever-all-nei", "{\"claim\": \"c\", \"label\": \"NOT ENOUGH INFO\"}\n", "no items"),
        ("unknown", "[{\"foo\": 1}]", "unrecognised"),
        ("bigbench-no-examples", "{\"examples\": 3}", "`examples`"),
        // Ill-posed items (issue 31): BIG-bench cannot grade them, so neither do we.
        (
            "bigbench-all-zero",
            "{\"examples\": [{\"input\": \"q\", \"target_scores\": {\"x\": 0, \"y\": 0}}]}",
            "example 0: no choice has a positive target score",
        ),
        (
            "bigbench-tied-top",
            "{\"examples\": [{\"input\": \"q\", \"target_scores\": {\"x\": 1, \"y\": 0, \"z\": 1}}]}",
            "choices \"x\", \"z\" share the top target score",
        ),
        (
            "bigbench-duplicate-choice",
            "{\"examples\": [{\"input\": \"q\", \"target_scores\": {\"x\": 1, \" y\": 0, \"y\": 0}}]}",
            "item 0: the choice \"y\" is listed twice",
        ),
        (
            "choices-duplicate",
            "{\"prompt\": \"a\", \"choices\": [\"x\", \"y\", \"x \"], \"answer\": 1}\n",
            "the choice \"x\" is listed twice",
        ),
        ("empty-array", "[]", "empty"),
        // Silent defaults found by the loader audit (docs/TASKS.md) are errors now.
        (
            "rome-paraphrase-not-a-string",
            "[{\"requested_rewrite\": {\"prompt\": \"{} is in\", \"subject\": \"Paris\", \
             \"target_true\": {\"str\": \"France\"}}, \"paraphrase_prompts\": [\"Paris lies in\", 7]}]",
            "paraphrase prompt 7",
        ),
        (
            "rome-paraphrases-not-a-list",
            "[{\"requested_rewrite\": {\"prompt\": \"{} is in\", \"subject\": \"Paris\", \
             \"target_true\": {\"str\": \"France\"}}, \"paraphrase_prompts\": \"Paris lies in\"}]",
            "`paraphrase_prompts` should be a list",
        ),
        (
            "choices-with-generate",
            "{\"prompt\": \"a\", \"choices\": [\"x\", \"y\"], \"answer\": 1, \"generate\": 5}\n",
            "`generate` applies to a free answer",
        ),
    ];
    for (tag, text, needle) in cases {
        let p = std::env::temp_dir().join(format!("laser-bad-{tag}-{}.json", std::process::id()));
        std::fs::write(&p, text).unwrap();
        let err = load_task(&p).expect_err(tag).to_string();
        assert!(err.contains(p.to_str().unwrap()) && err.contains(needle), "{tag}: {err}");
        std::fs::remove_file(p).unwrap();
    }
    let err = load_task(std::path::Path::new("/nonexistent/task.json")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/task.json"), "{err}");
}

#[test]
fn generic_jsonl_supports_next_token_choice_and_generation() {
    let p = write_jsonl(
        "generic",
        &[
            serde_json::json!({"prompt": "The sky is", "answer": "blue"}),
            serde_json::json!({"prompt": "2 + 2 =", "choices": ["4", "5"], "answer": "4"}),
            serde_json::json!({"prompt": "Name a colour:", "answer": "red", "generate": 5}),
        ],
    );
    let t = load_task(&p).unwrap();
    assert_eq!(t.format, TaskFormat::Jsonl);
    assert_eq!(t.items[0].target, Target::NextToken { answer: "blue".into() });
    assert_eq!(
        t.items[1].target,
        Target::Choice { choices: vec![" 4".into(), " 5".into()], answer: 0 }
    );
    assert_eq!(t.items[2].target, Target::Generate { answers: vec!["red".into()], max_tokens: 5 });
}

#[test]
fn bias_in_bios_jsonl_is_detected() {
    let p = write_jsonl(
        "bios",
        &[
            serde_json::json!({"hard_text": "She is a nurse in Ohio.", "gender": 1, "profession": 13}),
            serde_json::json!({"hard_text": "He writes code.", "gender": 0, "profession": 24}),
        ],
    );
    let t = load_task(&p).unwrap();
    assert_eq!(t.format, TaskFormat::BiasInBiosGender);
    assert_eq!(t.items[0].gold_continuation(), " female");
    let prof = load_bias_in_bios_profession(&p).unwrap();
    assert_eq!(prof.format, TaskFormat::BiasInBiosProfession);
    assert_eq!(prof.items[0].gold_continuation(), " nurse");
    assert_eq!(prof.items[1].gold_continuation(), " software engineer");
    let p = write_jsonl(
        "bios-bad",
        &[serde_json::json!({"hard_text": "x", "gender": 3, "profession": 1})],
    );
    assert!(load_task(&p).unwrap_err().to_string().contains(":1"));
}

fn bigbench(tag: &str, task: serde_json::Value) -> laser_search::Task {
    let p = std::env::temp_dir().join(format!("laser-bb-{tag}-{}.json", std::process::id()));
    std::fs::write(&p, task.to_string()).unwrap();
    load_task(&p).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

/// BIG-bench's `default_format_fn`: defaults `"\nQ: "` / `"\nA: "`, choices appended by default
/// with `"\n  choice: "`, each task-level key honoured, and `append_choices_to_input: false`
/// leaving the input alone.
#[test]
fn bigbench_task_keys_format_prompts_like_the_reference_formatter() {
    let example = serde_json::json!({"input": "Is it?", "target_scores": {"yes": 1, "no": 0}});
    // Every default: choices appended in sorted order.
    let t = bigbench("defaults", serde_json::json!({"examples": [example]}));
    assert_eq!(t.items[0].prompt, "\nQ: Is it?\n  choice: no\n  choice: yes\nA:");
    assert_eq!(
        t.items[0].target,
        Target::Choice { choices: vec![" no".into(), " yes".into()], answer: 1 }
    );
    // Each key.
    let t = bigbench(
        "keys",
        serde_json::json!({"task_prefix": "Decide.\n", "example_input_prefix": "\nIn: ",
            "example_output_prefix": "\nOut: ", "choice_prefix": " | ", "examples": [example]}),
    );
    assert_eq!(t.items[0].prompt, "Decide.\n\nIn: Is it? | no | yes\nOut:");
    let t = bigbench(
        "no-append",
        serde_json::json!({"append_choices_to_input": false, "choice_prefix": " | ",
            "examples": [example]}),
    );
    assert_eq!(t.items[0].prompt, "\nQ: Is it?\nA:");
    let t = bigbench(
        "explicit-append",
        serde_json::json!({"append_choices_to_input": true,
        "examples": [example]}),
    );
    assert!(t.items[0].prompt.ends_with("\n  choice: yes\nA:"), "{:?}", t.items[0].prompt);
    // Generative tasks have no choices to append.
    let t = bigbench(
        "generative",
        serde_json::json!({"examples": [{"input": "Capital of France?", "target": "Paris"}]}),
    );
    assert_eq!(t.items[0].prompt, "\nQ: Capital of France?\nA:");
    // A key of the wrong type names itself.
    let p = std::env::temp_dir().join(format!("laser-bb-bad-{}.json", std::process::id()));
    std::fs::write(
        &p,
        serde_json::json!({"append_choices_to_input": "yes", "examples": [example]}).to_string(),
    )
    .unwrap();
    let err = load_task(&p).unwrap_err().to_string();
    assert!(err.contains("append_choices_to_input") && err.contains(p.to_str().unwrap()), "{err}");
}

/// The bundled epistemic-reasoning task sets `append_choices_to_input: false`: its prompts are
/// unchanged by the formatter's choice appending.
#[test]
fn the_bundled_task_keeps_its_prompts() {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/epistemic_reasoning_300.json");
    let t = load_task(&p).unwrap();
    assert!(t.items.iter().all(|i| i.prompt.ends_with("\nRelation:")));
    assert!(!t.items.iter().any(|i| i.prompt.contains("option:")));
}

/// The 15-task BIG-bench suite loads with the counts its README lists, every task multiple choice.
#[test]
fn the_bigbench_suite_loads_with_its_documented_counts() {
    let Some(data) = shared_data_or_skip("the_bigbench_suite_loads_with_its_documented_counts")
    else {
        return;
    };
    let expect = [
        ("analogical_similarity", 323),
        ("date_understanding", 369),
        ("disambiguation_qa", 258),
        ("formal_fallacies_syllogisms_negation", 600),
        ("hyperbaton", 600),
        ("implicatures", 492),
        ("intent_recognition", 600),
        ("metaphor_boolean", 600),
        ("moral_permissibility", 342),
        ("movie_recommendation", 500),
        ("parsinlu_qa", 600),
        ("physics", 229),
        ("ruin_names", 448),
        ("social_iqa", 600),
        ("vitaminc_fact_verification", 600),
    ];
    let tasks = laser_search::suite_tasks(&[data.join("bigbench-suite")]).unwrap();
    assert_eq!(tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), expect.map(|e| e.0));
    for (t, (_, n)) in tasks.iter().zip(expect) {
        let task = load_task(&t.path).unwrap();
        assert_eq!((task.format, task.items.len()), (TaskFormat::BigBenchChoice, n), "{}", t.name);
    }
    // A task that appends its choices: the prompt lists them before the output prefix.
    let ruin = load_task(data.join("bigbench-suite/ruin_names.json")).unwrap();
    let Target::Choice { choices, .. } = &ruin.items[0].target else { panic!("choice task") };
    let mut listed: Vec<&str> = choices.iter().map(|c| c.trim()).collect();
    listed.sort_unstable();
    let appended: String = listed.iter().map(|c| format!("\n  choice: {c}")).collect();
    assert!(
        ruin.items[0].prompt.ends_with(&format!("{appended}\nA:")),
        "{:?}",
        ruin.items[0].prompt
    );
}

/// A task's content digest is the items', not the file's: the same items in another layout (and
/// another file) digest alike; one edited prompt, answer or choice changes it.
#[test]
fn the_content_digest_follows_the_items_not_the_file() {
    let dir = std::env::temp_dir().join(format!("laser-digest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        load_task(&p).unwrap().content_digest().to_owned()
    };
    let item = |prompt: &str, answer: usize, c: &str| {
        format!(
            "{{\"prompt\": \"{prompt}\", \"choices\": [\"{c}\", \"no\"], \"answer\": {answer}}}\n"
        )
    };
    let base = write("a.jsonl", &(item("one", 0, "yes") + &item("two", 1, "yes")));
    let spaced = write(
        "b.jsonl",
        "{ \"answer\": 0, \"choices\": [\"yes\",\"no\"], \"prompt\": \"one\" }\n\n\
         {\"prompt\":\"two\",\"choices\":[\"yes\",\"no\"],\"answer\":1}\n",
    );
    assert_eq!(base, spaced);
    assert!(base.starts_with("fnv1a64:") && base.len() == 8 + 16, "{base}");
    for changed in [
        item("one!", 0, "yes") + &item("two", 1, "yes"),
        item("one", 1, "yes") + &item("two", 1, "yes"),
        item("one", 0, "yea") + &item("two", 1, "yes"),
        item("two", 1, "yes") + &item("one", 0, "yes"),
    ] {
        assert_ne!(write("c.jsonl", &changed), base, "{changed}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 31: with `drop_ill_posed`, the items BIG-bench cannot grade (no positive score, a tied
/// top score) and items listing a choice twice are dropped and counted, the rest kept in order;
/// without it the same file is refused. A file of nothing but ill-posed items is still an error.
#[test]
fn ill_posed_items_are_dropped_and_counted_on_request() {
    use laser_search::{LoadOptions, load_task_with};
    let dir = std::env::temp_dir().join(format!("laser-ill-posed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bb = dir.join("bb.json");
    let scores = |s: serde_json::Value| serde_json::json!({"input": "q", "target_scores": s});
    std::fs::write(
        &bb,
        serde_json::json!({"examples": [
            scores(serde_json::json!({"a": 1, "b": 0})),
            scores(serde_json::json!({"a": 0, "b": 0})),
            scores(serde_json::json!({"a": 1, "b": 1})),
            scores(serde_json::json!({"a": 0, "b": 1})),
            scores(serde_json::json!({"a": 1, " b": 0, "b": 0})),
        ]})
        .to_string(),
    )
    .unwrap();
    let drop = LoadOptions { drop_ill_posed: true };
    assert!(load_task(&bb).unwrap_err().to_string().contains("--drop-ill-posed"));
    let t = load_task_with(&bb, drop).unwrap();
    assert_eq!((t.items.len(), t.ill_posed), (2, 3));
    let answers: Vec<_> = t
        .items
        .iter()
        .map(|i| match &i.target {
            Target::Choice { answer, .. } => *answer,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(answers, [0, 1], "the well-posed items, in file order");
    let jsonl = dir.join("t.jsonl");
    std::fs::write(
        &jsonl,
        "{\"prompt\": \"p\", \"choices\": [\"x\", \"x\"], \"answer\": 0}\n\
         {\"prompt\": \"q\", \"choices\": [\"x\", \"y\"], \"answer\": 1}\n",
    )
    .unwrap();
    let t = load_task_with(&jsonl, drop).unwrap();
    assert_eq!((t.items.len(), t.ill_posed, t.items[0].prompt.as_str()), (1, 1, "q"));
    std::fs::write(&jsonl, "{\"prompt\": \"p\", \"choices\": [\"x\", \"x\"], \"answer\": 0}\n")
        .unwrap();
    let err = load_task_with(&jsonl, drop).unwrap_err().to_string();
    assert!(err.contains("after dropping 1 ill-posed"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
