//! GGUF: dequantization of every block type against hand-computed blocks (and, for Q5 and the
//! k-quants, against llama.cpp's Python dequantizer); GGUFs of the tiny fixtures written as
//! llama.cpp's converter writes them (permuted Q/K, fused Phi-3 projections, Gemma's 1 + w norms,
//! Llama 3's `rope_freqs.weight`) load to the oracle's logits and export to HF folders that load
//! back the same; hostile files are errors naming the problem, never panics.

mod common;

use common::gguf_writer::{
    Writer, micro_llama_gguf, put_str, tiny_gguf, tiny_llama_gguf, write_tmp,
};
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

/// Random blocks of Q5_0, Q5_1 and the k-quants (Q2_K–Q6_K) against llama.cpp's own Python
/// dequantizer (`scripts/gen-kquant-fixtures.py` wrote the fixture with gguf-py).
#[test]
fn q5_and_k_quant_blocks_match_gguf_py() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ggml_blocks.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let types = [
        ("Q5_0", GgmlType::Q5_0),
        ("Q5_1", GgmlType::Q5_1),
        ("Q2_K", GgmlType::Q2K),
        ("Q3_K", GgmlType::Q3K),
        ("Q4_K", GgmlType::Q4K),
        ("Q5_K", GgmlType::Q5K),
        ("Q6_K", GgmlType::Q6K),
    ];
    for (name, ty) in types {
        let case = &fixture["blocks"][name];
        let hex = case["bytes"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let expect: Vec<f32> =
            case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = dequantize(ty, &bytes, expect.len());
        assert_eq!(got.len(), expect.len(), "{name}");
        let scale = expect.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        for (i, (a, b)) in got.iter().zip(&expect).enumerate() {
            assert!((a - b).abs() <= 1e-6 * scale, "{name} weight {i}: {a} vs gguf-py {b}");
        }
    }
}

#[test]
fn q8_k_blocks_are_an_f32_scale_times_int8() {
    let mut block = 0.125f32.to_le_bytes().to_vec();
    let qs: Vec<i8> = (0..256).map(|i| (i - 128) as i8).collect();
    block.extend(qs.iter().map(|&q| q as u8));
    block.extend([0u8; 32]); // block sums, unused when dequantizing
    let w = dequantize(GgmlType::Q8K, &block, 256);
    assert_eq!(w, qs.iter().map(|&q| 0.125 * f32::from(q)).collect::<Vec<_>>());
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

/// GGUFs of the six current families and the llama as llama.cpp's converter writes them load to
/// the oracle's logits, loss and gradients and to the safetensors model's matrices: `llama` with permuted Q/K for
/// llama, llama3 (its RoPE scaling as `rope_freqs.weight`) and mistral (its window as
/// metadata); `qwen2` with q/k/v biases, `qwen3` with q/k norms, `phi3` with fused `attn_qkv`
/// and `ffn_up`, `gemma2` with norms stored as 1 + w — unpermuted.
#[test]
fn ggufs_of_every_llama_like_family_match_the_oracle() {
    let fixtures = ["llama", "llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"];
    // Every GGUF architecture a registered family reads has its fixture here.
    for arch in laser_model::gguf_architectures() {
        assert!(fixtures.contains(&arch), "GGUF architecture {arch} is not tested");
    }
    for family in fixtures {
        let path = write_tmp(&format!("family-{family}"), &tiny_gguf(family));
        let gguf = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
        let original = load_tiny(family);
        assert_eq!(gguf.family(), original.family(), "{family}");
        assert_eq!(gguf.config().rope_scaling, original.config().rope_scaling, "{family}");
        assert_eq!(gguf.config().sliding_window, original.config().sliding_window, "{family}");
        assert_eq!(gguf.config().local_attention, original.config().local_attention, "{family}");
        assert_eq!(gguf.config().rope_linear_factor, original.config().rope_linear_factor);
        assert_eq!(gguf.score_scales(), original.score_scales(), "{family}");
        let r = reference(family);
        let logits = gguf.all_logits(&r.ids).unwrap();
        let oracle = r.tensors["logits"].data();
        let scale = oracle.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let worst = logits.iter().zip(oracle).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{family}: max |Δlogit| {worst} (scale {scale})");
        assert_loss_and_gradients_match_the_oracle(&gguf, family);
        for m in original.matrices() {
            assert_eq!(
                gguf.matrix(&m.name).unwrap(),
                original.matrix(&m.name).unwrap(),
                "{family} {}",
                m.name
            );
        }
        std::fs::remove_file(path).unwrap();
    }
}

/// What a GGUF becomes exports to an HF folder that loads back to the same model: the Llama 3
/// RoPE scaling recovered from `rope_freqs.weight` and Gemma 2's soft-caps and window survive.
#[test]
fn a_gguf_exports_to_an_hf_folder_with_the_same_logits() {
    for family in ["llama3", "gemma2", "gemma3", "phi3"] {
        let path = write_tmp(&format!("export-{family}"), &tiny_gguf(family));
        let gguf = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
        let dir =
            std::env::temp_dir().join(format!("laser-gguf-export-{family}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        laser_model::export_hf(&gguf, &dir).unwrap();
        if family == "gemma3" {
            // transformers' strict Gemma3TextConfig refuses a float here.
            let cfg: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                    .unwrap();
            assert!(cfg["query_pre_attn_scalar"].is_u64(), "{}", cfg["query_pre_attn_scalar"]);
        }
        let back = Model::load(&dir, Backend::Flex.device().unwrap()).unwrap();
        // The BOS convention travels in the exported tokenizer.json (Phi-3 and Gemma add one).
        let (a, b) = (gguf.tokenizer().unwrap(), back.tokenizer().unwrap());
        assert_eq!(b.bos(), a.bos(), "{family}");
        assert_eq!(
            b.encode_prompt("ab ab").unwrap(),
            a.encode_prompt("ab ab").unwrap(),
            "{family}"
        );
        let r = reference(family);
        let a = gguf.all_logits(&r.ids).unwrap();
        let b = back.all_logits(&r.ids).unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{family}: max |Δlogit| {worst} after export");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_file(path).unwrap();
    }
}

/// A GGUF's `rope_freqs.weight` that no llama3 scaling produces is refused, naming the tensor.
#[test]
fn rope_factors_that_no_llama3_scaling_produces_are_refused() {
    let mut w = Writer::new();
    w.string("general.architecture", "llama");
    for (k, v) in [
        ("llama.block_count", 1),
        ("llama.embedding_length", 32),
        ("llama.feed_forward_length", 32),
        ("llama.attention.head_count", 2),
        ("llama.rope.dimension_count", 16),
    ] {
        w.u32(k, v);
    }
    w.string("tokenizer.ggml.model", "gpt2");
    w.strings("tokenizer.ggml.tokens", &["a".to_string(), "b".to_string()]);
    w.strings("tokenizer.ggml.merges", &[]);
    w.tensor_f32("rope_freqs.weight", &[8], &[3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0]);
    let err = load_err("ropefreqs", &w.finish());
    assert!(err.contains("rope_freqs.weight") && err.contains("llama3"), "{err}");
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
    let err = load_err("arch", &w.finish());
    assert!(err.contains("falcon") && err.contains("gemma2"), "{err}");
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

/// The GGUF fuzz seed is this writer's micro llama, byte for byte (`LASER_WRITE_FUZZ_SEEDS=1`
/// rewrites it), and it is a working model: every block type dequantizes and a forward runs.
#[test]
fn the_micro_llama_fuzz_seed_loads_and_runs() {
    let bytes = micro_llama_gguf();
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz/gguf/micro_llama.gguf");
    if std::env::var_os("LASER_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(seed.parent().unwrap()).unwrap();
        std::fs::write(&seed, &bytes).unwrap();
    }
    assert!(std::fs::read(&seed).unwrap() == bytes, "{} is stale", seed.display());
    let model = Model::load(&seed, Backend::Flex.device().unwrap()).unwrap();
    assert_eq!(model.matrices().len(), 7);
    let tok = model.tokenizer().unwrap();
    assert_eq!(tok.encode("ab a").unwrap(), vec![7, 3]);
    let logits = model.all_logits(&[vec![0, 1, 7]]).unwrap();
    assert_eq!(logits.len(), 3 * 8);
    assert!(logits.iter().all(|x| x.is_finite()));
    // Two rows of different block types differ: dequantization used each tensor's own type.
    assert_ne!(
        model.matrix("model.layers.0.self_attn.k_proj.weight").unwrap(),
        model.matrix("model.layers.0.self_attn.v_proj.weight").unwrap()
    );
}
