//! Writes a synthetic llama model folder (random weights from a config, never a download) for
//! measuring memory and time at a scale no fixture has: the default is ~0.95 B parameters
//! (16 layers, d = 2048, FFN 5632, 16 heads, vocab 32,000, untied head), 3.8 GB of f32.
//!
//! ```sh
//! cargo run --release --example synthetic_llama -- /tmp/llama-1b            # the default size
//! cargo run --release --example synthetic_llama -- /tmp/llama-s 4 512 1376  # layers, d, FFN
//! /usr/bin/time -v laser grad --model /tmp/llama-1b --task /tmp/llama-1b/task.jsonl --n 10 \
//!     --grad-groups 4 --json
//! ```
//!
//! Weights are N(0, 0.02²) from a seeded SplitMix64 (norm weights 1), so the same arguments give
//! the same file; the tokenizer maps each byte to one token. Beside the model it writes
//! `task.jsonl`, 20 short two-choice items (~45 byte tokens each), the task the figures in
//! `docs/SCALING.md` were measured on.

use std::path::PathBuf;

use laser::linalg::rng::SplitMix64;
use laser::model::{HostTensor, Tokenizer, WeightMap, save_safetensors};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // An option is never an output folder: `synthetic_llama --help` once wrote 3.8 GB into
    // a folder named `--help` inside the repository.
    let Some(out) = args.first().filter(|a| !a.starts_with('-')).map(PathBuf::from) else {
        eprintln!("usage: synthetic_llama OUT_DIR [LAYERS D FFN]");
        std::process::exit(2);
    };
    let num = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |v| v.parse().map_err(|_| format!("`{v}` is not a count")))
    };
    let (layers, d, ffn) = (num(1, 16)?, num(2, 2048)?, num(3, 5632)?);
    let (heads, vocab) = ((d / 128).max(1), 32_000);
    std::fs::create_dir_all(&out)?;
    let config = serde_json::json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "vocab_size": vocab, "hidden_size": d, "intermediate_size": ffn,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048,
        "hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "float32",
    });
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    std::fs::write(out.join("tokenizer.json"), Tokenizer::bytes_only()?.to_json()?)?;
    let words =
        ["river", "stone", "cloud", "paper", "light", "green", "storm", "quiet", "north", "glass"];
    let task: String = (0..20)
        .map(|i| {
            let prompt = format!("The {} and the {} are", words[i % 10], words[(3 * i + 1) % 10]);
            let item = serde_json::json!({"prompt": prompt, "choices": [" near", " far"], "answer": i % 2});
            format!("{item}\n")
        })
        .collect();
    std::fs::write(out.join("task.jsonl"), task)?;

    let mut rng = SplitMix64::new(0x5eed);
    let mut weights = WeightMap::new();
    let mut put =
        |name: String, shape: Vec<usize>, random: bool| -> Result<(), Box<dyn std::error::Error>> {
            let n = shape.iter().product();
            let data = if random {
                (0..n).map(|_| (0.02 * rng.normal()) as f32).collect()
            } else {
                vec![1.0; n]
            };
            weights.insert(name, HostTensor::new(shape, data)?);
            Ok(())
        };
    put("model.embed_tokens.weight".into(), vec![vocab, d], true)?;
    put("model.norm.weight".into(), vec![d], false)?;
    put("lm_head.weight".into(), vec![vocab, d], true)?;
    for l in 0..layers {
        let name = |rest: &str| format!("model.layers.{l}.{rest}");
        put(name("input_layernorm.weight"), vec![d], false)?;
        put(name("post_attention_layernorm.weight"), vec![d], false)?;
        for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            put(name(&format!("self_attn.{p}.weight")), vec![d, d], true)?;
        }
        put(name("mlp.gate_proj.weight"), vec![ffn, d], true)?;
        put(name("mlp.up_proj.weight"), vec![ffn, d], true)?;
        put(name("mlp.down_proj.weight"), vec![d, ffn], true)?;
    }
    let params: usize = weights.values().map(|t| t.data().len()).sum();
    save_safetensors(&out.join("model.safetensors"), &weights, None)?;
    println!("{}: {params} parameters, {:.2} GB of f32", out.display(), params as f64 * 4e-9);
    Ok(())
}
