//! A minimal GGUF v3 writer; a GGUF of the tiny llama with Q/K rows permuted as llama.cpp stores
//! them (round-trip and hostile-input tests); a micro llama in every supported block type (the
//! committed fuzz seed, `tests/fixtures/fuzz/gguf/micro_llama.gguf`).

use laser_model::Llama3RopeScaling;

use super::load_tiny;

/// A minimal GGUF v3 writer for tests.
pub struct Writer {
    kv: Vec<u8>,
    n_kv: u64,
    pub tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u64).to_le_bytes());
    buf.extend(s.as_bytes());
}

impl Writer {
    pub fn new() -> Self {
        Self { kv: Vec::new(), n_kv: 0, tensors: Vec::new() }
    }
    pub fn key(&mut self, k: &str, ty: u32) {
        put_str(&mut self.kv, k);
        self.kv.extend(ty.to_le_bytes());
        self.n_kv += 1;
    }
    pub fn u32(&mut self, k: &str, v: u32) {
        self.key(k, 4);
        self.kv.extend(v.to_le_bytes());
    }
    pub fn f32(&mut self, k: &str, v: f32) {
        self.key(k, 6);
        self.kv.extend(v.to_le_bytes());
    }
    pub fn string(&mut self, k: &str, v: &str) {
        self.key(k, 8);
        put_str(&mut self.kv, v);
    }
    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k, 7);
        self.kv.push(u8::from(v));
    }
    pub fn f32s(&mut self, k: &str, v: &[f32]) {
        self.key(k, 9);
        self.kv.extend(6u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| self.kv.extend(x.to_le_bytes()));
    }
    pub fn u32s(&mut self, k: &str, v: &[u32]) {
        self.key(k, 9);
        self.kv.extend(4u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| self.kv.extend(x.to_le_bytes()));
    }
    pub fn strings(&mut self, k: &str, v: &[String]) {
        self.key(k, 9);
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            put_str(&mut self.kv, s);
        }
    }
    /// A tensor of GGML type `ty` whose block bytes are already encoded.
    pub fn tensor_raw(&mut self, name: &str, shape: &[usize], ty: u32, bytes: Vec<u8>) {
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push((name.into(), dims, ty, bytes));
    }
    /// `shape` is HF order (outermost first); GGUF stores it innermost first.
    pub fn tensor_f32(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push((
            name.into(),
            dims,
            0,
            data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    }
    pub fn finish(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0u64;
        let mut blobs = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            let mut blob = data.clone();
            blob.resize(data.len().div_ceil(32) * 32, 0);
            offset += blob.len() as u64;
            blobs.push(blob);
        }
        out.resize(out.len().div_ceil(32) * 32, 0);
        for b in blobs {
            out.extend(b);
        }
        out
    }
}

/// llama.cpp's permutation of Q/K rows (the inverse of the loader's un-permute).
pub fn permute(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let per = rows / heads;
    let half = per / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for s in 0..2 {
            for r in 0..half {
                let hf = h * per + s * half + r;
                let gg = h * per + 2 * r + s;
                out[gg * cols..(gg + 1) * cols].copy_from_slice(&data[hf * cols..(hf + 1) * cols]);
            }
        }
    }
    out
}

pub fn tiny_llama_gguf() -> Vec<u8> {
    tiny_gguf("llama")
}

/// llama.cpp's converter's `rope_freqs.weight` for `rope_type: llama3` (one divisor per rotary
/// frequency), from its formula.
pub fn llama3_rope_freqs(s: &Llama3RopeScaling, theta: f64, dim: usize) -> Vec<f32> {
    (0..dim / 2)
        .map(|i| {
            let wavelen = std::f64::consts::TAU * theta.powf((2 * i) as f64 / dim as f64);
            let (low, high) = (
                s.original_max_position_embeddings / s.low_freq_factor,
                s.original_max_position_embeddings / s.high_freq_factor,
            );
            let f = if wavelen < high {
                1.0
            } else if wavelen > low {
                s.factor
            } else {
                let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                1.0 / ((1.0 - smooth) / s.factor + smooth)
            };
            f as f32
        })
        .collect()
}

/// A SentencePiece vocabulary of `n` pieces as llama.cpp stores one: `<unk>`, `<s>`, `</s>`,
/// the 256 byte pieces, then text pieces (`▁`, letters, `▁a`, …) scored so that longer pieces
/// merge first.
pub fn sentencepiece_vocab(w: &mut Writer, n: usize, space_prefix: bool) {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].iter().map(|t| t.to_string()).collect();
    let mut types = vec![2u32, 3, 3];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    let letters = ["\u{2581}", "a", "b", "c", "\u{2581}a", "ab", "\u{2581}ab", "\u{2581}b"];
    tokens.extend(letters.iter().map(|t| t.to_string()));
    types.extend(vec![1; letters.len()]);
    let mut i = 0;
    while tokens.len() < n {
        tokens.push(format!("x{i}"));
        types.push(1);
        i += 1;
    }
    tokens.truncate(n);
    types.truncate(n);
    let scores: Vec<f32> = tokens.iter().map(|t| t.chars().count() as f32).collect();
    w.string("tokenizer.ggml.model", "llama");
    w.strings("tokenizer.ggml.tokens", &tokens);
    w.f32s("tokenizer.ggml.scores", &scores);
    w.u32s("tokenizer.ggml.token_type", &types);
    w.u32("tokenizer.ggml.bos_token_id", 1);
    w.bool("tokenizer.ggml.add_space_prefix", space_prefix);
}

/// A GGUF of the tiny `family` fixture as llama.cpp's converter writes it: architecture `llama`
/// for llama, llama3 and mistral (Q/K rows permuted; Llama 3's RoPE scaling as
/// `rope_freqs.weight`), its own name otherwise (rows as in HF; Qwen2's q/k/v biases and Qwen3's
/// q/k norms as their own tensors; Phi-3's fused `attn_qkv` and `ffn_up`; Gemma 2's four norms
/// stored as 1 + w, its soft-caps and window as metadata, a SentencePiece vocabulary).
pub fn tiny_gguf(family: &str) -> Vec<u8> {
    let model = load_tiny(family);
    let c = model.config().clone();
    let arch = match family {
        "qwen2" | "qwen3" | "phi3" | "gemma2" | "gemma3" => family,
        _ => "llama",
    };
    let key = |k: &str| format!("{arch}.{k}");
    let mut w = Writer::new();
    w.string("general.architecture", arch);
    w.u32(&key("block_count"), c.num_layers as u32);
    w.u32(&key("context_length"), c.max_positions as u32);
    w.u32(&key("embedding_length"), c.hidden_size as u32);
    w.u32(&key("feed_forward_length"), c.intermediate_size as u32);
    w.u32(&key("attention.head_count"), c.num_heads as u32);
    w.u32(&key("attention.head_count_kv"), c.num_kv_heads as u32);
    w.f32(&key("attention.layer_norm_rms_epsilon"), c.norm_eps as f32);
    match arch {
        "gemma2" => {
            w.u32(&key("attention.key_length"), c.head_dim as u32);
            w.u32(&key("attention.value_length"), c.head_dim as u32);
            w.f32(&key("attn_logit_softcapping"), c.attn_logit_softcap.unwrap() as f32);
            let cap = model.score_scales().final_logit_softcap.unwrap();
            w.f32(&key("final_logit_softcapping"), cap as f32);
            w.u32(&key("attention.sliding_window"), c.sliding_window.unwrap() as u32);
        }
        "gemma3" => {
            // What newer converters state and llama.cpp otherwise hard-codes (every 6th layer
            // full, local base 10,000): the tiny model's 2-layer pattern needs stating.
            let local = c.local_attention.as_ref().unwrap();
            w.u32(&key("attention.key_length"), c.head_dim as u32);
            w.u32(&key("attention.value_length"), c.head_dim as u32);
            w.u32(&key("attention.sliding_window"), local.window as u32);
            let period = local.sliding.iter().position(|s| !s).unwrap() + 1;
            w.u32(&key("attention.sliding_window_pattern"), period as u32);
            w.f32(&key("rope.freq_base"), c.rope_theta as f32);
            w.f32(&key("rope.freq_base_swa"), local.rope_theta as f32);
            if let Some(factor) = c.rope_linear_factor {
                w.string(&key("rope.scaling.type"), "linear");
                w.f32(&key("rope.scaling.factor"), factor as f32);
            }
            let scale = 1.0 / model.score_scales().query_scalar.unwrap().sqrt();
            w.f32(&key("attention.scale"), scale as f32);
        }
        "phi3" => {
            w.u32(&key("rope.dimension_count"), c.rotary_dim as u32);
            w.f32(&key("rope.freq_base"), c.rope_theta as f32);
            w.u32(&key("rope.scaling.original_context_length"), c.max_positions as u32);
            w.u32(&key("attention.sliding_window"), c.sliding_window.unwrap_or(0) as u32);
        }
        _ => {
            w.u32(&key("rope.dimension_count"), c.head_dim as u32);
            if arch == "qwen3" {
                w.u32(&key("attention.key_length"), c.head_dim as u32);
            }
            w.f32(&key("rope.freq_base"), c.rope_theta as f32);
            if let Some(window) = c.sliding_window {
                w.u32(&key("attention.sliding_window"), window as u32);
            }
        }
    }
    if let Some(s) = &c.rope_scaling {
        w.tensor_f32(
            "rope_freqs.weight",
            &[c.rotary_dim / 2],
            &llama3_rope_freqs(s, c.rope_theta, c.rotary_dim),
        );
    }
    if matches!(arch, "phi3" | "gemma2" | "gemma3") {
        sentencepiece_vocab(&mut w, c.vocab_size, arch == "phi3");
    } else {
        w.string("tokenizer.ggml.model", "gpt2");
        w.string("tokenizer.ggml.pre", "smollm");
        let tokens: Vec<String> = (0..c.vocab_size).map(|i| format!("t{i}")).collect();
        w.strings("tokenizer.ggml.tokens", &tokens);
        w.strings("tokenizer.ggml.merges", &[]);
    }
    let permuted = arch == "llama";
    let norm_shift = if matches!(arch, "gemma2" | "gemma3") { 1.0 } else { 0.0 };
    let mut put = |gguf: &str, hf: &str, permute_heads: Option<usize>| {
        let Some(t) = model.parameter(hf) else { return };
        let data = match permute_heads.filter(|_| permuted) {
            Some(h) => permute(t.data(), t.shape()[0], t.shape()[1], h),
            None if gguf.ends_with("norm.weight") => {
                t.data().iter().map(|x| x + norm_shift).collect()
            }
            None => t.data().to_vec(),
        };
        w.tensor_f32(gguf, t.shape(), &data);
    };
    put("token_embd.weight", "model.embed_tokens.weight", None);
    put("output_norm.weight", "model.norm.weight", None);
    if !c.tie_word_embeddings {
        put("output.weight", "lm_head.weight", None);
    }
    let norms: &[(&str, &str)] = if matches!(arch, "gemma2" | "gemma3") {
        &[
            ("attn_norm", "input_layernorm"),
            ("post_attention_norm", "post_attention_layernorm"),
            ("ffn_norm", "pre_feedforward_layernorm"),
            ("post_ffw_norm", "post_feedforward_layernorm"),
        ]
    } else {
        &[("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm")]
    };
    let up = if arch == "phi3" { "mlp.gate_up_proj" } else { "mlp.up_proj" };
    for l in 0..c.num_layers {
        let hf = |s: &str| format!("model.layers.{l}.{s}");
        for (gguf, hf_norm) in norms {
            put(&format!("blk.{l}.{gguf}.weight"), &hf(&format!("{hf_norm}.weight")), None);
        }
        put(&format!("blk.{l}.attn_qkv.weight"), &hf("self_attn.qkv_proj.weight"), None);
        put(&format!("blk.{l}.attn_q.weight"), &hf("self_attn.q_proj.weight"), Some(c.num_heads));
        put(
            &format!("blk.{l}.attn_k.weight"),
            &hf("self_attn.k_proj.weight"),
            Some(c.num_kv_heads),
        );
        put(&format!("blk.{l}.attn_v.weight"), &hf("self_attn.v_proj.weight"), None);
        for p in ["q", "k", "v"] {
            put(&format!("blk.{l}.attn_{p}.bias"), &hf(&format!("self_attn.{p}_proj.bias")), None);
        }
        put(&format!("blk.{l}.attn_q_norm.weight"), &hf("self_attn.q_norm.weight"), None);
        put(&format!("blk.{l}.attn_k_norm.weight"), &hf("self_attn.k_norm.weight"), None);
        put(&format!("blk.{l}.attn_output.weight"), &hf("self_attn.o_proj.weight"), None);
        put(&format!("blk.{l}.ffn_gate.weight"), &hf("mlp.gate_proj.weight"), None);
        put(&format!("blk.{l}.ffn_up.weight"), &hf(&format!("{up}.weight")), None);
        put(&format!("blk.{l}.ffn_down.weight"), &hf("mlp.down_proj.weight"), None);
    }
    w.finish()
}

pub fn write_tmp(tag: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("laser-gguf-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A one-layer llama (d = 32, 2 heads, 1 KV head, FFN 32, 8 tokens) whose tensors use F32, F16,
/// BF16, Q8_0, Q4_0 and Q4_1, with a byte-level BPE vocabulary and one merge: small enough for a
/// fuzzer to mutate, yet it loads and runs. Values come from a fixed formula (no RNG state).
pub fn micro_llama_gguf() -> Vec<u8> {
    let val = |i: usize, salt: usize| (((i * 37 + salt * 11) % 17) as f32 - 8.0) / 16.0;
    let q8_0 = |n: usize, salt: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for b in 0..n / 32 {
            out.extend(half::f16::from_f32(0.01).to_le_bytes());
            out.extend((0..32).map(|i| (((b * 32 + i + salt) % 15) as i8 - 7) as u8));
        }
        out
    };
    let q4 = |n: usize, salt: usize, with_min: bool| -> Vec<u8> {
        let mut out = Vec::new();
        for b in 0..n / 32 {
            out.extend(half::f16::from_f32(0.02).to_le_bytes());
            if with_min {
                out.extend(half::f16::from_f32(-0.1).to_le_bytes());
            }
            out.extend(
                (0..16).map(|i| (((b + i + salt) % 16) as u8) | ((((b + 3 * i) % 16) as u8) << 4)),
            );
        }
        out
    };
    let mut w = Writer::new();
    w.string("general.architecture", "llama");
    w.u32("llama.block_count", 1);
    w.u32("llama.embedding_length", 32);
    w.u32("llama.feed_forward_length", 32);
    w.u32("llama.attention.head_count", 2);
    w.u32("llama.attention.head_count_kv", 1);
    w.u32("llama.rope.dimension_count", 16);
    w.f32("llama.rope.freq_base", 10000.0);
    w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    w.string("tokenizer.ggml.model", "gpt2");
    w.string("tokenizer.ggml.pre", "smollm");
    let tokens: Vec<String> = ["a", "b", "Ġ", "Ġa", "1", "2", "<|endoftext|>", "ab"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    w.strings("tokenizer.ggml.tokens", &tokens);
    w.strings("tokenizer.ggml.merges", &["a b".to_string(), "Ġ a".to_string()]);
    w.u32("tokenizer.ggml.eos_token_id", 6);
    let f32s = |n: usize, salt: usize| (0..n).map(|i| val(i, salt)).collect::<Vec<f32>>();
    let f16 = |n: usize, salt: usize| -> Vec<u8> {
        (0..n).flat_map(|i| half::f16::from_f32(val(i, salt)).to_le_bytes()).collect()
    };
    let bf16 = |n: usize, salt: usize| -> Vec<u8> {
        (0..n).flat_map(|i| half::bf16::from_f32(val(i, salt)).to_le_bytes()).collect()
    };
    w.tensor_raw("token_embd.weight", &[8, 32], 1, f16(256, 1));
    w.tensor_f32("output_norm.weight", &[32], &[1.0; 32]);
    w.tensor_f32("blk.0.attn_norm.weight", &[32], &f32s(32, 2));
    w.tensor_raw("blk.0.ffn_norm.weight", &[32], 30, bf16(32, 3));
    w.tensor_raw("blk.0.attn_q.weight", &[32, 32], 8, q8_0(1024, 4));
    w.tensor_raw("blk.0.attn_k.weight", &[16, 32], 2, q4(512, 5, false));
    w.tensor_raw("blk.0.attn_v.weight", &[16, 32], 3, q4(512, 6, true));
    w.tensor_raw("blk.0.attn_output.weight", &[32, 32], 8, q8_0(1024, 7));
    w.tensor_raw("blk.0.ffn_gate.weight", &[32, 32], 3, q4(1024, 8, true));
    w.tensor_raw("blk.0.ffn_up.weight", &[32, 32], 2, q4(1024, 9, false));
    w.tensor_f32("blk.0.ffn_down.weight", &[32, 32], &f32s(1024, 10));
    w.finish()
}
