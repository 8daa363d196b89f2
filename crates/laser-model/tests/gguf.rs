//! GGUF: dequantization of every block type against hand-computed blocks; a synthetic GGUF of the
//! tiny llama (Q/K rows permuted as llama.cpp stores them) loads back to the same logits as the
//! safetensors original; hostile files are errors naming the problem, never panics.

mod common;

use common::*;
use half::f16;
use laser_model::gguf::{GgmlType, dequantize};
use laser_model::{Backend, Model};

#[test]
fn q8_0_blocks_dequantize_to_d_times_q() {
    let mut block = f16::from_f32(0.5).to_le_bytes().to_vec();
    let qs: Vec<i8> = (0..32).map(|i| (i * 8 - 128) as i8).collect();
    block.extend(qs.iter().map(|&q| q as u8));
    let w = dequantize(GgmlType::Q8_0, &block, 32);
    let expect: Vec<f32> = qs.iter().map(|&q| 0.5 * f32::from(q)).collect();
    assert_eq!(w, expect);
}

#[test]
fn q4_1_blocks_use_low_nibbles_first_and_add_the_minimum() {
    let mut block = f16::from_f32(0.25).to_le_bytes().to_vec();
    block.extend(f16::from_f32(-1.0).to_le_bytes());
    let nibbles: Vec<u8> = (0..16u8).map(|i| (15 - i) << 4 | i).collect(); // low i, high 15 − i
    block.extend(&nibbles);
    let w = dequantize(GgmlType::Q4_1, &block, 32);
    for i in 0..16 {
        assert_eq!(w[i], 0.25 * i as f32 - 1.0, "weight {i} (low nibble)");
        assert_eq!(w[16 + i], 0.25 * (15 - i) as f32 - 1.0, "weight {} (high nibble)", 16 + i);
    }
}

#[test]
fn q4_0_blocks_are_centred_at_eight() {
    let mut block = f16::from_f32(2.0).to_le_bytes().to_vec();
    block.extend([0x0Fu8; 16]);
    let w = dequantize(GgmlType::Q4_0, &block, 32);
    assert!(w[..16].iter().all(|&x| x == 14.0) && w[16..].iter().all(|&x| x == -16.0), "{w:?}");
}

#[test]
fn float_types_decode_exactly() {
    let xs = [1.5f32, -0.0, 65504.0, 3.0e-5];
    let f32_bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(dequantize(GgmlType::F32, &f32_bytes, 4), xs);
    let f16_bytes: Vec<u8> = xs.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect();
    let back = dequantize(GgmlType::F16, &f16_bytes, 4);
    assert_eq!(&back[..3], &xs[..3]);
    let bf16_bytes: Vec<u8> =
        xs.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    assert_eq!(dequantize(GgmlType::BF16, &bf16_bytes, 4)[0], 1.5);
}

/// A minimal GGUF v3 writer for tests.
struct Writer {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u64).to_le_bytes());
    buf.extend(s.as_bytes());
}

impl Writer {
    fn new() -> Self {
        Self { kv: Vec::new(), n_kv: 0, tensors: Vec::new() }
    }
    fn key(&mut self, k: &str, ty: u32) {
        put_str(&mut self.kv, k);
        self.kv.extend(ty.to_le_bytes());
        self.n_kv += 1;
    }
    fn u32(&mut self, k: &str, v: u32) {
        self.key(k, 4);
        self.kv.extend(v.to_le_bytes());
    }
    fn f32(&mut self, k: &str, v: f32) {
        self.key(k, 6);
        self.kv.extend(v.to_le_bytes());
    }
    fn string(&mut self, k: &str, v: &str) {
        self.key(k, 8);
        put_str(&mut self.kv, v);
    }
    fn strings(&mut self, k: &str, v: &[String]) {
        self.key(k, 9);
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            put_str(&mut self.kv, s);
        }
    }
    /// `shape` is HF order (outermost first); GGUF stores it innermost first.
    fn tensor_f32(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push((
            name.into(),
            dims,
            0,
            data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    }
    fn finish(self) -> Vec<u8> {
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
fn permute(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
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

fn tiny_llama_gguf() -> Vec<u8> {
    let model = load_tiny("llama");
    let c = model.config().clone();
    let mut w = Writer::new();
    w.string("general.architecture", "llama");
    w.u32("llama.block_count", c.num_layers as u32);
    w.u32("llama.embedding_length", c.hidden_size as u32);
    w.u32("llama.feed_forward_length", c.intermediate_size as u32);
    w.u32("llama.attention.head_count", c.num_heads as u32);
    w.u32("llama.attention.head_count_kv", c.num_kv_heads as u32);
    w.u32("llama.rope.dimension_count", c.head_dim as u32);
    w.f32("llama.rope.freq_base", c.rope_theta as f32);
    w.f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps as f32);
    w.string("tokenizer.ggml.model", "gpt2");
    w.string("tokenizer.ggml.pre", "smollm");
    let tokens: Vec<String> = (0..c.vocab_size).map(|i| format!("t{i}")).collect();
    w.strings("tokenizer.ggml.tokens", &tokens);
    w.strings("tokenizer.ggml.merges", &[]);
    let mut put = |gguf: &str, hf: &str, permute_heads: Option<usize>| {
        let t = model.parameter(hf).unwrap();
        let data = match permute_heads {
            Some(h) => permute(&t.data, t.shape[0], t.shape[1], h),
            None => t.data.clone(),
        };
        w.tensor_f32(gguf, &t.shape, &data);
    };
    put("token_embd.weight", "model.embed_tokens.weight", None);
    put("output_norm.weight", "model.norm.weight", None);
    put("output.weight", "lm_head.weight", None);
    for l in 0..c.num_layers {
        let hf = |s: &str| format!("model.layers.{l}.{s}");
        put(&format!("blk.{l}.attn_norm.weight"), &hf("input_layernorm.weight"), None);
        put(&format!("blk.{l}.ffn_norm.weight"), &hf("post_attention_layernorm.weight"), None);
        put(&format!("blk.{l}.attn_q.weight"), &hf("self_attn.q_proj.weight"), Some(c.num_heads));
        put(
            &format!("blk.{l}.attn_k.weight"),
            &hf("self_attn.k_proj.weight"),
            Some(c.num_kv_heads),
        );
        put(&format!("blk.{l}.attn_v.weight"), &hf("self_attn.v_proj.weight"), None);
        put(&format!("blk.{l}.attn_output.weight"), &hf("self_attn.o_proj.weight"), None);
        put(&format!("blk.{l}.ffn_gate.weight"), &hf("mlp.gate_proj.weight"), None);
        put(&format!("blk.{l}.ffn_up.weight"), &hf("mlp.up_proj.weight"), None);
        put(&format!("blk.{l}.ffn_down.weight"), &hf("mlp.down_proj.weight"), None);
    }
    w.finish()
}

fn write_tmp(tag: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("laser-gguf-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_gguf_of_the_tiny_llama_matches_its_safetensors_original() {
    let path = write_tmp("roundtrip", &tiny_llama_gguf());
    let gguf = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
    let original = load_tiny("llama");
    let r = reference("llama");
    let a = gguf.all_logits(&r.ids).unwrap();
    let b = original.all_logits(&r.ids).unwrap();
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "max |Δlogit| {worst}");
    for m in original.matrices() {
        assert_eq!(
            gguf.matrix(&m.name).unwrap(),
            original.matrix(&m.name).unwrap(),
            "{} after un-permuting",
            m.name
        );
    }
    std::fs::remove_file(path).unwrap();
}

fn load_err(tag: &str, bytes: &[u8]) -> String {
    let path = write_tmp(tag, bytes);
    let err = Model::load(&path, Backend::Flex.device().unwrap()).expect_err(tag).to_string();
    std::fs::remove_file(path).unwrap();
    err
}

#[test]
fn hostile_gguf_files_are_errors_naming_the_problem() {
    let good = tiny_llama_gguf();
    // Truncated anywhere: header, metadata, tensor table, data.
    for cut in [0, 3, 10, 30, 200, 5000, good.len() / 2, good.len() - 1] {
        let err = load_err(&format!("cut{cut}"), &good[..cut]);
        assert!(
            err.contains(&format!("cut{cut}"))
                && ["truncated", "outside", "magic", "exceeds"].iter().any(|w| err.contains(w)),
            "cut at {cut}: {err}"
        );
    }
    let mut bad = good.clone();
    bad[..4].copy_from_slice(b"GGUG");
    assert!(load_err("magic", &bad).contains("bad magic"));
    let mut bad = good.clone();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // tensor count
    assert!(load_err("count", &bad).contains("tensor count"));
    let mut bad = good.clone();
    bad[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes()); // metadata count
    assert!(load_err("kvcount", &bad).contains("metadata count"));
    // A 40-byte file that claims a huge array must not allocate it.
    let mut tiny = b"GGUF".to_vec();
    tiny.extend(3u32.to_le_bytes());
    tiny.extend(0u64.to_le_bytes());
    tiny.extend(1u64.to_le_bytes());
    put_str(&mut tiny, "k");
    tiny.extend(9u32.to_le_bytes());
    tiny.extend(4u32.to_le_bytes());
    tiny.extend(u64::MAX.to_le_bytes());
    assert!(load_err("array", &tiny).contains("array length"));
    let mut w = Writer::new();
    w.string("general.architecture", "falcon");
    assert!(load_err("arch", &w.finish()).contains("falcon"));
    let mut w = Writer::new();
    w.tensors.push(("x".into(), vec![32], 99, vec![0; 32]));
    assert!(load_err("type", &w.finish()).contains("GGML type 99"));
    let mut w = Writer::new();
    w.tensors.push(("x".into(), vec![1 << 20, 1 << 20, 1 << 20], 0, vec![0; 32]));
    let err = load_err("dims", &w.finish());
    assert!(err.contains("absurd dims") || err.contains("outside"), "{err}");
    let mut w = Writer::new();
    w.tensors.push(("x".into(), vec![64], 0, vec![0; 32])); // claims 256 bytes, has 32
    assert!(load_err("short", &w.finish()).contains("outside"));
}
