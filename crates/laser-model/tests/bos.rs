//! BOS conventions: a `tokenizer.json` whose post-processor puts a token before every sequence
//! (Llama 3's `<|begin_of_text|>`, Gemma's `<bos>`) makes prompts start with it; one that adds
//! nothing (Qwen, SmolLM2) or only a trailing EOS does not. Hand-written tokenizer files.

use laser_model::Tokenizer;

/// The byte tokenizer plus `<bos>` (id 256) and `<eos>` (257), with `template` as its
/// single-sequence post-processor template.
fn with_template(tag: &str, single: serde_json::Value) -> Tokenizer {
    let base = Tokenizer::bytes_only().unwrap().with_special_tokens(&["<bos>", "<eos>"]).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&base.to_json().unwrap()).unwrap();
    json["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": single,
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {
            "<bos>": {"id": "<bos>", "ids": [256], "tokens": ["<bos>"]},
            "<eos>": {"id": "<eos>", "ids": [257], "tokens": ["<eos>"]}
        }
    });
    let path = std::env::temp_dir().join(format!("laser-bos-{tag}-{}.json", std::process::id()));
    std::fs::write(&path, json.to_string()).unwrap();
    Tokenizer::from_file(&path).unwrap()
}

#[test]
fn a_leading_template_token_becomes_the_prompt_bos() {
    let seq = serde_json::json!({"Sequence": {"id": "A", "type_id": 0}});
    let bos = serde_json::json!({"SpecialToken": {"id": "<bos>", "type_id": 0}});
    let eos = serde_json::json!({"SpecialToken": {"id": "<eos>", "type_id": 0}});
    let tok = with_template("bos", serde_json::json!([bos, seq]));
    assert_eq!(tok.bos(), Some(256));
    let raw = tok.encode("ab").unwrap();
    assert_eq!(raw.len(), 2, "raw text never gets a BOS");
    assert_eq!(tok.encode_prompt("ab").unwrap(), [vec![256], raw.clone()].concat());
    // BOS and EOS around the sequence: BOS only, for prompts.
    let both = with_template("both", serde_json::json!([bos, seq, eos]));
    assert_eq!(both.bos(), Some(256));
    // A trailing EOS alone, or no post-processor, adds nothing before a prompt.
    assert_eq!(with_template("eos", serde_json::json!([seq, eos])).bos(), None);
    let plain = Tokenizer::bytes_only().unwrap();
    assert_eq!(plain.bos(), None);
    assert_eq!(plain.encode_prompt("ab").unwrap(), plain.encode("ab").unwrap());
    // A GGUF's add_bos_token sets it explicitly.
    assert_eq!(plain.with_bos(Some(7)).encode_prompt("a").unwrap()[0], 7);
}
