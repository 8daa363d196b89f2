//! Edit lists (`{"edits": [{"name", "rho", "factor", "seed"?, "max_iter"?}]}`) and the engine that
//! turns an edit into a replacement matrix: one SVD per matrix serves every ρ; one clustering per
//! (matrix, factor, seed) serves every ρ too (k-subspaces excepted: its subspace dimension follows
//! ρ).
//!
//! A k-means or k-subspaces edit records the seed and iteration cap of its clustering, so every
//! command that rebuilds it (`adapt`'s export, `apply`, `eval --edits`) builds the same matrix.
//! Lists written before these fields existed keep loading; the engine's own seed fills the gap.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use laser_linalg::faer::{Mat, MatRef};
use laser_linalg::{
    ClusterFactor, Clustering, RowClustering, ThinSvd, check_rho, cluster_rows, factorize_clusters,
    kept_rank, ksubspace_dim, thin_svd,
};
use laser_model::Model;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, SearchError};

/// How a matrix is approximated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    /// One truncated SVD of the whole matrix (LASER).
    Svd,
    /// C contiguous row blocks, each truncated.
    Blocks(usize),
    /// C k-means row clusters, each truncated.
    KMeans(usize),
    /// C k-subspace row clusters, each truncated.
    KSubspaces(usize),
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Svd => f.write_str("svd"),
            Self::Blocks(c) => write!(f, "blocks:{c}"),
            Self::KMeans(c) => write!(f, "kmeans:{c}"),
            Self::KSubspaces(c) => write!(f, "ksub:{c}"),
        }
    }
}

impl FromStr for Factor {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "svd" {
            return Ok(Self::Svd);
        }
        let (kind, count) = s
            .split_once(':')
            .ok_or_else(|| format!("factor {s:?} should be svd, blocks:C, kmeans:C or ksub:C"))?;
        let c: usize = count
            .parse()
            .map_err(|_| format!("cluster count {count:?} in {s:?} is not a positive integer"))?;
        if c == 0 {
            return Err(format!("cluster count in {s:?} must be at least 1"));
        }
        match kind {
            "blocks" => Ok(Self::Blocks(c)),
            "kmeans" => Ok(Self::KMeans(c)),
            "ksub" => Ok(Self::KSubspaces(c)),
            other => {
                Err(format!("unknown factorization {other:?} (svd, blocks:C, kmeans:C, ksub:C)"))
            }
        }
    }
}

impl Serialize for Factor {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Iteration cap of k-means row clustering.
pub const KMEANS_MAX_ITER: usize = 100;
/// Iteration cap of k-subspaces row clustering.
pub const KSUBSPACES_MAX_ITER: usize = 30;

/// One edit: replace matrix `name` by its approximation at kept-rank fraction `rho`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// HF tensor name.
    pub name: String,
    /// Kept-rank fraction in (0, 1].
    #[serde(serialize_with = "shortest_decimal")]
    pub rho: f32,
    /// Factorization (default `svd`).
    #[serde(default = "default_factor")]
    pub factor: Factor,
    /// Seed of the k-means / k-subspaces clustering (absent for svd and blocks, and in lists
    /// written before it was recorded: then the engine's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Iteration cap of that clustering (absent: [`KMEANS_MAX_ITER`] / [`KSUBSPACES_MAX_ITER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iter: Option<usize>,
}

/// Writes an f32 as its shortest decimal (0.9, not 0.8999999761581421) in JSON.
fn shortest_decimal<S: Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(laser_linalg::shortest_decimal(*x))
}

fn default_factor() -> Factor {
    Factor::Svd
}

impl Edit {
    /// A truncated-SVD edit (LASER's).
    pub fn svd(name: impl Into<String>, rho: f32) -> Self {
        Self::new(name, rho, Factor::Svd, 0)
    }

    /// An edit whose clustering, if `factor` has a random one, uses `seed` and the default
    /// iteration cap — both recorded in the edit.
    pub fn new(name: impl Into<String>, rho: f32, factor: Factor, seed: u64) -> Self {
        let max_iter = match factor {
            Factor::KMeans(_) => Some(KMEANS_MAX_ITER),
            Factor::KSubspaces(_) => Some(KSUBSPACES_MAX_ITER),
            Factor::Svd | Factor::Blocks(_) => None,
        };
        Self { name: name.into(), rho, factor, seed: max_iter.map(|_| seed), max_iter }
    }

    /// A stable key for logs: `name|rho|factor`.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.name, self.rho, self.factor)
    }
}

/// An edit list as read and written by the CLI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EditList {
    /// The edits, applied in order.
    pub edits: Vec<Edit>,
}

impl EditList {
    /// Reads an edit list file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse(&crate::error::read_text(path)?, path)
    }

    /// Parses the text of an edit list read from `path` (named in errors), checking each edit's
    /// ρ and iteration cap and that no matrix is edited twice.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let error =
            |message: String| SearchError::EditList { path: Some(path.to_owned()), message };
        let list: Self =
            serde_json::from_str(text).map_err(|e| error(format!("line {}: {e}", e.line())))?;
        let mut seen = std::collections::HashSet::new();
        for (i, e) in list.edits.iter().enumerate() {
            if !(e.rho > 0.0 && e.rho <= 1.0) {
                return Err(error(format!(
                    "edit {i} (`{}`): rho {} is not in (0, 1]",
                    e.name, e.rho
                )));
            }
            if e.max_iter == Some(0) {
                return Err(error(format!("edit {i} (`{}`): max_iter must be at least 1", e.name)));
            }
            if !seen.insert(e.name.as_str()) {
                return Err(error(format!("matrix `{}` is edited twice", e.name)));
            }
        }
        Ok(list)
    }

    /// A key for a set of edits (`+`-joined edit keys).
    pub fn key(edits: &[Edit]) -> String {
        edits.iter().map(Edit::key).collect::<Vec<_>>().join("+")
    }
}

/// How many parameters an edited matrix has, dense and factorized: the storage an exported
/// factorized form would need (the exported model itself stays dense).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditSize {
    /// HF tensor name.
    pub name: String,
    /// `m · n`.
    pub dense: usize,
    /// The factors' parameter count.
    pub factorized: usize,
}

/// Computes edited matrices, caching the expensive parts per matrix.
#[derive(Debug, Default)]
pub struct EditEngine {
    svds: HashMap<String, ThinSvd>,
    clusterings: HashMap<(String, RowClustering), Clustering>,
    originals: HashMap<String, Vec<f32>>,
    seed: u64,
}

fn linalg(name: &str) -> impl FnOnce(laser_linalg::LinalgError) -> SearchError + '_ {
    move |source| SearchError::Linalg { name: name.to_owned(), source }
}

/// Row-major copy of a faer matrix.
pub fn to_row_major(m: &Mat<f32>) -> Vec<f32> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        out.extend((0..m.ncols()).map(|j| m[(i, j)]));
    }
    out
}

impl EditEngine {
    /// An engine whose k-means / k-subspaces use `seed` for edits that record none.
    pub fn new(seed: u64) -> Self {
        Self { seed, ..Self::default() }
    }

    /// The original value of a matrix (captured on first use, before any edit).
    fn original(&mut self, model: &Model, name: &str) -> Result<&Vec<f32>> {
        if !self.originals.contains_key(name) {
            if model.edited().iter().any(|e| e == name) {
                return Err(SearchError::Config(format!(
                    "matrix `{name}` is already edited; restore it first"
                )));
            }
            self.originals.insert(name.to_owned(), model.matrix(name)?);
        }
        Ok(&self.originals[name])
    }

    /// The cached thin SVD of a matrix.
    pub fn svd(&mut self, model: &Model, name: &str) -> Result<&ThinSvd> {
        if !self.svds.contains_key(name) {
            let [m, n] = model.matrix_info(name)?.shape;
            let w = self.original(model, name)?.clone();
            let svd = thin_svd(MatRef::from_row_major_slice(&w, m, n)).map_err(linalg(name))?;
            self.svds.insert(name.to_owned(), svd);
        }
        Ok(&self.svds[name])
    }

    /// Seeds the SVD cache (e.g. from a batched SVD of many matrices).
    pub fn insert_svd(&mut self, name: &str, svd: ThinSvd) {
        self.svds.insert(name.to_owned(), svd);
    }

    /// The row clustering `edit` asks for (None for a plain SVD).
    fn row_clustering(&self, edit: &Edit, m: usize, n: usize) -> Result<Option<RowClustering>> {
        Ok(Some(match edit.factor {
            Factor::Svd => return Ok(None),
            Factor::Blocks(c) => RowClustering::Blocks { clusters: c },
            Factor::KMeans(c) => RowClustering::KMeans {
                clusters: c,
                seed: edit.seed.unwrap_or(self.seed),
                max_iter: edit.max_iter.unwrap_or(KMEANS_MAX_ITER),
            },
            Factor::KSubspaces(c) => RowClustering::KSubspaces {
                clusters: c,
                dim: ksubspace_dim(edit.rho, m, n, c).map_err(linalg(&edit.name))?,
                seed: edit.seed.unwrap_or(self.seed),
                max_iter: edit.max_iter.unwrap_or(KSUBSPACES_MAX_ITER),
            },
        }))
    }

    /// The cached clustering of the rows of `name`'s original matrix by `method`.
    fn clustering(
        &mut self,
        model: &Model,
        name: &str,
        method: RowClustering,
    ) -> Result<&Clustering> {
        let key = (name.to_owned(), method);
        if !self.clusterings.contains_key(&key) {
            let [m, n] = model.matrix_info(name)?.shape;
            let w = self.original(model, name)?;
            let cl = cluster_rows(MatRef::from_row_major_slice(w, m, n), &method)
                .map_err(linalg(name))?;
            self.clusterings.insert(key.clone(), cl);
        }
        Ok(&self.clusterings[&key])
    }

    /// The replacement matrix for `edit`, row-major in HF orientation.
    pub fn reconstruct(&mut self, model: &Model, edit: &Edit) -> Result<Vec<f32>> {
        let [m, n] = model.matrix_info(&edit.name)?.shape;
        check_rho(edit.rho).map_err(linalg(&edit.name))?;
        let Some(method) = self.row_clustering(edit, m, n)? else {
            let k = kept_rank(edit.rho, m, n).map_err(linalg(&edit.name))?;
            let svd = self.svd(model, &edit.name)?;
            return Ok(to_row_major(&svd.truncated(k).map_err(linalg(&edit.name))?));
        };
        let clustering = self.clustering(model, &edit.name, method)?.clone();
        let w = self.original(model, &edit.name)?;
        let f = factorize_clusters(MatRef::from_row_major_slice(w, m, n), clustering, edit.rho)
            .map_err(linalg(&edit.name))?;
        Ok(to_row_major(f.reconstruction()))
    }

    /// The factors of `edit`'s replacement, one per row cluster (a plain SVD: one cluster of all
    /// rows, `U_k diag(σ_k)` and `V_kᵀ` from the cached SVD).
    pub fn factors(&mut self, model: &Model, edit: &Edit) -> Result<Vec<ClusterFactor>> {
        let [m, n] = model.matrix_info(&edit.name)?.shape;
        check_rho(edit.rho).map_err(linalg(&edit.name))?;
        let Some(method) = self.row_clustering(edit, m, n)? else {
            let k = kept_rank(edit.rho, m, n).map_err(linalg(&edit.name))?;
            let svd = self.svd(model, &edit.name)?;
            let (u, s, v) = (svd.u(), svd.s(), svd.v());
            let left = Mat::from_fn(m, k, |i, j| u[(i, j)] * s[j]);
            let right = Mat::from_fn(k, n, |j, c| v[(c, j)]);
            return Ok(vec![ClusterFactor { rows: (0..m).collect(), left, right }]);
        };
        let clustering = self.clustering(model, &edit.name, method)?.clone();
        let w = self.original(model, &edit.name)?;
        let f = factorize_clusters(MatRef::from_row_major_slice(w, m, n), clustering, edit.rho)
            .map_err(linalg(&edit.name))?;
        Ok(f.factors().to_vec())
    }

    /// The parameter counts of `edit`'s matrix, dense and in its factorized form
    /// (`k (m + n)` for an SVD, `Σ_c k_c (m_c + n)` over row clusters).
    pub fn size(&mut self, model: &Model, edit: &Edit) -> Result<EditSize> {
        let [m, n] = model.matrix_info(&edit.name)?.shape;
        check_rho(edit.rho).map_err(linalg(&edit.name))?;
        let cluster_rows: Vec<usize> = match self.row_clustering(edit, m, n)? {
            None => vec![m],
            Some(method) => {
                self.clustering(model, &edit.name, method)?.members().iter().map(Vec::len).collect()
            }
        };
        let factorized = cluster_rows
            .into_iter()
            .map(|rows| Ok(kept_rank(edit.rho, rows, n).map_err(linalg(&edit.name))? * (rows + n)))
            .sum::<Result<usize>>()?;
        Ok(EditSize { name: edit.name.clone(), dense: m * n, factorized })
    }

    /// The replacement matrices of `edits` (each built from the original matrix), sorted by
    /// matrix name: two edit lists that give equal replacements give the same model. Fails if a
    /// matrix is edited twice or an edit is invalid.
    pub fn replacements(
        &mut self,
        model: &Model,
        edits: &[Edit],
    ) -> Result<Vec<(String, Vec<f32>)>> {
        let mut seen = std::collections::HashSet::new();
        for e in edits {
            if !seen.insert(e.name.as_str()) {
                return Err(SearchError::EditList {
                    path: None,
                    message: format!("matrix `{}` is edited twice", e.name),
                });
            }
        }
        let mut replacements = edits
            .iter()
            .map(|e| Ok((e.name.clone(), self.reconstruct(model, e)?)))
            .collect::<Result<Vec<_>>>()?;
        replacements.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(replacements)
    }

    /// Applies edits to the model (each on the original matrix). Fails without changing the model
    /// if any edit is invalid.
    pub fn apply(&mut self, model: &mut Model, edits: &[Edit]) -> Result<()> {
        let replacements = self.replacements(model, edits)?;
        put_replacements(model, replacements)
    }
}

/// Puts replacement matrices (from [`EditEngine::replacements`]) into the model.
pub(crate) fn put_replacements(
    model: &mut Model,
    replacements: Vec<(String, Vec<f32>)>,
) -> Result<()> {
    for (name, data) in replacements {
        model.replace_matrix(&name, data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_parse_and_print_round_trip() {
        for s in ["svd", "blocks:4", "kmeans:2", "ksub:8"] {
            assert_eq!(s.parse::<Factor>().unwrap().to_string(), s);
        }
        for bad in ["", "svd:2", "blocks", "blocks:0", "kmeans:-1", "pca:2", "ksub:x"] {
            assert!(bad.parse::<Factor>().is_err(), "{bad}");
        }
        let list: EditList = serde_json::from_str(r#"{"edits": [{"name": "a", "rho": 0.1}, {"name": "b", "rho": 0.5, "factor": "kmeans:3"}]}"#).unwrap();
        assert_eq!(list.edits[0].factor, Factor::Svd);
        assert_eq!(list.edits[1].factor, Factor::KMeans(3));
        assert!(
            serde_json::from_str::<EditList>(
                r#"{"edits": [{"name": "a", "rho": 0.1, "factor": "x:1"}]}"#
            )
            .is_err()
        );
    }
}
