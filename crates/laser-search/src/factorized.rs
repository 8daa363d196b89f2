//! The factorized export (`--export factorized`): the adapted model as an HF folder whose edited
//! matrices are stored as their factors — per row cluster `U_k diag(σ_k)` and `V_kᵀ`, with the
//! row assignment of a multi-subspace edit — beside the untouched weights (the layout:
//! `laser_model::FactorizedLayout`). `laser` loads it as the dense edited model.

use std::path::{Path, PathBuf};

use laser_model::{
    FACTORIZED_FILE, FactorCluster, FactorizedLayout, FactorizedMatrix, HfDtype, HfParts,
    HostTensor, Model, export_hf_parts,
};
use serde::Serialize;

use crate::edits::{Edit, EditEngine, to_row_major};
use crate::error::Result;

/// What [`export_factorized`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorizedExport {
    /// The folder.
    pub path: PathBuf,
    /// The weights' dtype.
    pub dtype: String,
    /// `model.safetensors`'s size.
    pub bytes: u64,
    /// Parameters of the edited matrices, dense.
    pub dense_params: usize,
    /// Parameters of their factors.
    pub factorized_params: usize,
}

/// Writes `model` (carrying `edits`, built by `engine`) to the new or empty folder `dir` with
/// each edited matrix as its factors.
pub fn export_factorized(
    model: &Model,
    engine: &mut EditEngine,
    edits: &[Edit],
    dir: &Path,
    dtype: HfDtype,
) -> Result<FactorizedExport> {
    let mut parts = HfParts::default();
    let mut layout = FactorizedLayout::default();
    let (mut dense_params, mut factorized_params) = (0, 0);
    for e in edits {
        let [m, n] = model.matrix_info(&e.name)?.shape;
        dense_params += m * n;
        let factors = engine.factors(model, e)?;
        let mut clusters = Vec::with_capacity(factors.len());
        for (c, f) in factors.iter().enumerate() {
            let k = f.rank();
            factorized_params += k * (f.rows.len() + n);
            let (left, right) = FactorizedLayout::tensor_names(&e.name, c);
            let tensor = |mat, shape: Vec<usize>| HostTensor::new(shape, to_row_major(mat));
            parts.add.insert(left, tensor(&f.left, vec![f.rows.len(), k])?);
            parts.add.insert(right, tensor(&f.right, vec![k, n])?);
            let all_rows = factors.len() == 1 && f.rows.len() == m;
            clusters.push(FactorCluster { rows: (!all_rows).then(|| f.rows.clone()), rank: k });
        }
        layout.matrices.insert(e.name.clone(), FactorizedMatrix { shape: [m, n], clusters });
        parts.drop.push(e.name.clone());
    }
    parts.files.push((FACTORIZED_FILE.to_owned(), layout.to_json().into_bytes()));
    let written = export_hf_parts(model, dir, dtype, &parts)?;
    let file = dir.join("model.safetensors");
    let bytes =
        std::fs::metadata(&file).map_err(|e| crate::error::SearchError::io(&file, e))?.len();
    Ok(FactorizedExport {
        path: dir.to_owned(),
        dtype: written.to_string(),
        bytes,
        dense_params,
        factorized_params,
    })
}
