//! σ and σ-gradients of every matrix of every tiny model against the HF/PyTorch float64 oracle
//! (`tests/fixtures/tiny/<family>/reference.safetensors`, copied from `../shared/reference`).

use std::path::PathBuf;

use laser::linalg::faer::MatRef;
use laser::linalg::{sigma_gradient, thin_svd};
use safetensors::{Dtype, SafeTensors};

/// Every tiny fixture, by folder name.
fn fixtures() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("reference.safetensors").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 12, "only {} fixtures under {}", names.len(), root.display());
    names
}

fn fixture(family: &str, file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(family)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f32_tensor(st: &SafeTensors<'_>, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    let data =
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (data, t.shape().to_vec())
}

#[test]
fn sigma_and_sigma_gradients_match_the_oracle_for_every_matrix_of_every_family() {
    let mut checked = 0;
    let families = fixtures();
    for family in families.iter().map(String::as_str) {
        let model_bytes = fixture(family, "model.safetensors");
        let reference_bytes = fixture(family, "reference.safetensors");
        let model = SafeTensors::deserialize(&model_bytes).unwrap();
        let reference = SafeTensors::deserialize(&reference_bytes).unwrap();
        let names: Vec<String> = reference
            .names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("grad_sigma.").map(str::to_owned))
            .collect();
        assert!(names.len() >= 8, "{family}: only {} matrices in the oracle", names.len());
        for name in names {
            // transformers 5 names GPT-NeoX's head `lm_head` in memory but saves it as `embed_out`.
            let stored = match (family, name.as_str()) {
                ("gpt_neox", "lm_head.weight") => "embed_out.weight",
                _ => name.as_str(),
            };
            let (w, shape) = f32_tensor(&model, stored);
            let (g, gshape) = f32_tensor(&reference, &format!("grad.{name}"));
            assert_eq!(shape, gshape, "{family} {name}");
            let (sigma_ref, _) = f32_tensor(&reference, &format!("sigma.{name}"));
            let (gs_ref, _) = f32_tensor(&reference, &format!("grad_sigma.{name}"));
            let w = MatRef::from_row_major_slice(&w, shape[0], shape[1]);
            let g = MatRef::from_row_major_slice(&g, shape[0], shape[1]);
            let svd = thin_svd(w).unwrap();
            let gs = sigma_gradient(&svd, g).unwrap();
            assert_eq!(svd.s().len(), sigma_ref.len(), "{family} {name}");
            // An f32 SVD is backward stable: |σ̃ᵢ − σᵢ| ≤ p(m, n)·ε·σ₁. For the 512-row heads that
            // reaches ~1e-5·σ₁ (phi3's head: 1.03e-5); 2e-5 still catches any real error.
            let smax = sigma_ref[0];
            for (i, (a, b)) in svd.s().iter().zip(&sigma_ref).enumerate() {
                assert!((a - b).abs() <= 2e-5 * smax, "{family} {name} σ_{i}: {a} vs {b}");
            }
            // f32 singular vectors carry ~eps·σ₁/gap error; relative to the largest |g_i| that is
            // well under 1e-3 for these random (well-separated) spectra.
            let gmax = gs_ref.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            for (i, (a, b)) in gs.iter().zip(&gs_ref).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-3 * gmax,
                    "{family} {name} g_{i}: {a} vs {b} (max {gmax})"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= families.len() * 8, "checked {checked} matrices");
}
