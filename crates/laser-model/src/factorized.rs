//! The factorized form of an adapted model (`--export factorized`): an HF folder whose edited
//! matrices are stored as their low-rank factors instead of dense, with the layout in
//! `laser_factorized.json`:
//!
//! ```json
//! {"format": "laser-factorized-1",
//!  "matrices": {"model.layers.2.mlp.down_proj.weight":
//!     {"shape": [576, 1536], "clusters": [{"rows": null, "rank": 115}]}}}
//! ```
//!
//! Cluster `c` of matrix `N` is the tensors `N.laser_factor.{c}.left` (`U_k diag(σ_k)`,
//! `[m_c, k]`) and `N.laser_factor.{c}.right` (`V_kᵀ`, `[k, n]`) in `model.safetensors`; its
//! `rows` are the matrix rows it approximates, increasing (`null`: all rows, a plain SVD). The
//! rows of all clusters partition `0..m`. The dense matrix is `W[rows_c] = left_c · right_c`.
//! Loading such a folder rebuilds the dense matrices ([`densify`]), so every command treats it as
//! the dense edited model; `docs/FACTORIZED.md` has the same rebuild in Python for transformers.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::weights::{HostTensor, WeightMap};

/// The layout file of a factorized folder.
pub const FACTORIZED_FILE: &str = "laser_factorized.json";

const FORMAT: &str = "laser-factorized-1";

/// One cluster of a factorized matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorCluster {
    /// Its rows of the matrix (`None`: all of them).
    pub rows: Option<Vec<usize>>,
    /// Its kept rank.
    pub rank: usize,
}

/// One factorized matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorizedMatrix {
    /// The dense shape `[m, n]`.
    pub shape: [usize; 2],
    /// Its clusters, in tensor order.
    pub clusters: Vec<FactorCluster>,
}

/// `laser_factorized.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorizedLayout {
    format: String,
    /// The factorized matrices by HF name.
    pub matrices: BTreeMap<String, FactorizedMatrix>,
}

impl Default for FactorizedLayout {
    fn default() -> Self {
        Self { format: FORMAT.to_owned(), matrices: BTreeMap::new() }
    }
}

impl FactorizedLayout {
    /// The tensor names of cluster `c` of matrix `name`: (left, right).
    pub fn tensor_names(name: &str, c: usize) -> (String, String) {
        (format!("{name}.laser_factor.{c}.left"), format!("{name}.laser_factor.{c}.right"))
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("layouts serialise")
    }
}

/// A cluster's rows: its list, or all `m` rows.
fn rows_of(cluster: &FactorCluster, m: usize) -> std::borrow::Cow<'_, [usize]> {
    match &cluster.rows {
        Some(rows) => std::borrow::Cow::Borrowed(rows),
        None => std::borrow::Cow::Owned((0..m).collect()),
    }
}

/// Replaces the factor tensors that `dir`'s layout file lists by the dense matrices they make
/// (nothing when the folder has no layout file).
pub(crate) fn densify(dir: &Path, weights: &mut WeightMap) -> Result<()> {
    let path = dir.join(FACTORIZED_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    densify_factors(&text, &path, weights)
}

/// [`densify`] with the layout given as `text` (`path` names it in errors). Every shape, rank and
/// row list is checked against the factor tensors before a dense matrix is allocated, so its
/// size is bounded by theirs.
pub fn densify_factors(text: &str, path: &Path, weights: &mut WeightMap) -> Result<()> {
    let layout: FactorizedLayout = serde_json::from_str(text)
        .map_err(|e| ModelError::format(path, format!("not a factorized layout: {e}")))?;
    if layout.format != FORMAT {
        return Err(ModelError::format(
            path,
            format!("format `{}` (this build reads {FORMAT})", layout.format),
        ));
    }
    for (name, matrix) in &layout.matrices {
        let bad = |m: String| ModelError::format(path, format!("`{name}`: {m}"));
        let [m, n] = matrix.shape;
        if m == 0 || n == 0 || m.checked_mul(n).is_none_or(|x| x > 1 << 32) {
            return Err(bad(format!("implausible shape {:?}", matrix.shape)));
        }
        if weights.contains_key(name) {
            return Err(bad("is stored both dense and factorized".into()));
        }
        // Check everything first: the rows partition 0..m, every factor has its shape.
        let mut covered = vec![false; m];
        for (c, cluster) in matrix.clusters.iter().enumerate() {
            let rows = cluster.rows.as_ref().map_or(m, Vec::len);
            if cluster.rank == 0 {
                return Err(bad(format!("cluster {c} has rank 0")));
            }
            let (left, right) = FactorizedLayout::tensor_names(name, c);
            for (t, shape) in [(left, [rows, cluster.rank]), (right, [cluster.rank, n])] {
                let tensor =
                    weights.get(&t).ok_or_else(|| bad(format!("tensor `{t}` is missing")))?;
                if tensor.shape != shape {
                    return Err(bad(format!(
                        "tensor `{t}` is {:?}, expected {shape:?}",
                        tensor.shape
                    )));
                }
            }
            for &row in rows_of(cluster, m).iter() {
                if row >= m || std::mem::replace(&mut covered[row], true) {
                    return Err(bad(format!("cluster {c}: row {row} is out of range or repeated")));
                }
            }
        }
        if let Some(row) = covered.iter().position(|&c| !c) {
            return Err(bad(format!("row {row} is in no cluster")));
        }
        let mut dense = vec![0.0f32; m * n];
        for (c, cluster) in matrix.clusters.iter().enumerate() {
            let (left, right) = FactorizedLayout::tensor_names(name, c);
            let (left, right) =
                (weights.remove(&left).expect("checked"), weights.remove(&right).expect("checked"));
            let k = cluster.rank;
            for (i, &row) in rows_of(cluster, m).iter().enumerate() {
                let out = &mut dense[row * n..(row + 1) * n];
                for j in 0..k {
                    let a = left.data[i * k + j];
                    if a != 0.0 {
                        let r = &right.data[j * n..(j + 1) * n];
                        out.iter_mut().zip(r).for_each(|(o, &b)| *o += a * b);
                    }
                }
            }
        }
        weights.insert(name.clone(), HostTensor { shape: vec![m, n], data: dense });
    }
    Ok(())
}
