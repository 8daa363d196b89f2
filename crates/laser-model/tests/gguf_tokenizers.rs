//! Tokenizers rebuilt from GGUF vocabularies, against what the algorithms they stand for must
//! produce: llama.cpp's pre-tokenizer presets split digits as their regexes say, a SentencePiece
//! vocabulary merges the highest-scoring piece first and falls back to bytes, and each GGUF
//! family puts BOS before a prompt when llama.cpp would.

mod common;

use common::gguf_writer::{tiny_gguf, write_tmp};
use laser_model::{Backend, Model, PieceKind, Tokenizer};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Merges that would join "1234" whole: what survives shows where the preset split the digits.
#[test]
fn pre_tokenizer_presets_split_digits_as_their_regexes_do() {
    let tokens = strings(&["1", "2", "3", "4", "12", "123", "1234"]);
    let merges = strings(&["1 2", "12 3", "123 4"]);
    for (pre, expect) in [
        ("gpt-2", vec![6]),           // \p{N}+: one piece, merged whole
        ("llama-bpe", vec![5, 3]),    // \p{N}{1,3}: "123" "4"
        ("smollm", vec![0, 1, 2, 3]), // digits one by one
        ("qwen2", vec![0, 1, 2, 3]),  // \p{N}
    ] {
        let t = Tokenizer::byte_level_bpe(&tokens, &merges, pre, &[]).unwrap();
        assert_eq!(t.encode("1234").unwrap(), expect, "pre-tokenizer {pre}");
    }
    let err = Tokenizer::byte_level_bpe(&tokens, &merges, "deepseek-coder", &[]).unwrap_err();
    assert!(err.to_string().contains("deepseek-coder") && err.to_string().contains("llama-bpe"));
}

fn sentencepiece(extra: &[(&str, f64)], space_prefix: bool) -> (Tokenizer, Vec<String>) {
    let mut tokens = strings(&["<unk>", "<s>", "</s>"]);
    let mut kinds = vec![PieceKind::Unknown, PieceKind::Control, PieceKind::Control];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    kinds.extend([PieceKind::Byte; 256]);
    let mut scores = vec![0.0; tokens.len()];
    for (piece, score) in extra {
        tokens.push(piece.to_string());
        kinds.push(PieceKind::Normal);
        scores.push(*score);
    }
    (Tokenizer::sentencepiece(&tokens, &scores, &kinds, space_prefix).unwrap(), tokens)
}

fn pieces(t: &Tokenizer, tokens: &[String], text: &str) -> Vec<String> {
    t.encode(text).unwrap().iter().map(|&i| tokens[i as usize].clone()).collect()
}

#[test]
fn sentencepiece_merges_the_highest_scoring_piece_first() {
    // "▁ab": both "▁a" and "ab" can form first; the higher score wins, and "▁ab" does not exist.
    for (a_score, ab_score, expect) in [(2.0, 5.0, ["▁", "ab"]), (5.0, 2.0, ["▁a", "b"])] {
        let (t, tokens) = sentencepiece(
            &[("▁", 1.0), ("a", 1.0), ("b", 1.0), ("▁a", a_score), ("ab", ab_score)],
            true,
        );
        assert_eq!(pieces(&t, &tokens, "ab"), expect, "scores ▁a {a_score}, ab {ab_score}");
    }
}

#[test]
fn sentencepiece_marks_spaces_falls_back_to_bytes_and_decodes_back() {
    let vocab = [("▁", 1.0), ("a", 1.0), ("b", 1.0), ("▁a", 2.0), ("ab", 2.0), ("▁ab", 3.0)];
    let (t, tokens) = sentencepiece(&vocab, true);
    assert_eq!(pieces(&t, &tokens, "ab ab"), ["▁ab", "▁ab"]);
    // "é" has no piece: its UTF-8 bytes.
    assert_eq!(pieces(&t, &tokens, "ab é"), ["▁ab", "▁", "<0xC3>", "<0xA9>"]);
    for text in ["ab ab", "ab é", "b"] {
        assert_eq!(t.decode(&t.encode(text).unwrap()).unwrap(), text);
    }
    // Gemma's vocabulary puts no space before the text.
    let (gemma, tokens) = sentencepiece(&vocab, false);
    assert_eq!(pieces(&gemma, &tokens, "ab ab"), ["ab", "▁ab"]);
    assert_eq!(gemma.decode(&gemma.encode("ab ab").unwrap()).unwrap(), "ab ab");
}

#[test]
fn gguf_families_put_bos_before_prompts_as_llama_cpp_does() {
    // SentencePiece GGUFs (Phi-3, Gemma 2) without `add_bos_token`: BOS; the byte-level BPE test
    // GGUFs (pre `smollm`) without it: none.
    for (family, bos) in [("phi3", Some(1)), ("gemma2", Some(1)), ("qwen2", None)] {
        let path = write_tmp(&format!("bos-{family}"), &tiny_gguf(family));
        let model = Model::load(&path, Backend::Flex.device().unwrap()).unwrap();
        let tok = model.tokenizer().unwrap();
        assert_eq!(tok.bos(), bos, "{family}");
        let ids = tok.encode("ab").unwrap();
        assert_eq!(
            tok.encode_prompt("ab").unwrap(),
            bos.into_iter().chain(ids).collect::<Vec<_>>()
        );
        std::fs::remove_file(path).unwrap();
    }
}
