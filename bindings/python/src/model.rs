//! `laser_rs._native.Model`: a loaded model, its editable matrices, scoring, editing, export.

use std::path::{Path, PathBuf};

use laser_model::{
    Backend, GgufTensorType, HfDtype, Model, WeightDtype, export_gguf, export_hf_as,
};
use laser_search::{EditEngine, EditList, EvalRequest, Truncate};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyFileExistsError;
use pyo3::prelude::*;

use crate::PyTask;
use crate::errors::{model_error, search_error, value_error};

/// A model loaded for scoring, editing and search.
#[pyclass(name = "Model", module = "laser_rs._native")]
#[derive(Debug)]
pub struct PyModel {
    pub(crate) model: Model,
}

#[pymethods]
impl PyModel {
    /// Loads an HF folder or a GGUF file, its matrices kept in `dtype` (`f32` or `bf16`).
    #[staticmethod]
    #[pyo3(signature = (path, dtype="f32", backend="flex"))]
    fn load(py: Python<'_>, path: PathBuf, dtype: &str, backend: &str) -> PyResult<Self> {
        let dtype: WeightDtype = dtype.parse().map_err(|e| value_error(format!("dtype: {e}")))?;
        let backend: Backend = backend.parse().map_err(|e| value_error(format!("backend: {e}")))?;
        let model = py
            .detach(|| {
                let mut model = Model::load(&path, backend.device()?)?;
                model.set_matrix_dtype(dtype)?;
                Ok(model)
            })
            .map_err(model_error)?;
        Ok(Self { model })
    }

    /// What loading said (skipped parts, substitutions), one line each.
    fn load_notes(&self) -> Vec<String> {
        self.model.load_notes().to_vec()
    }

    /// Where it was loaded from.
    #[getter]
    fn path(&self) -> String {
        self.model.source().display().to_string()
    }

    /// The CLI's `inspect --json`: family, layers, sizes and editable matrices.
    fn inspect(&self) -> String {
        serde_json::to_string(&laser_search::inspect(&self.model)).expect("serialises")
    }

    /// Token ids of `text` as the model sees a prompt (BOS first where its tokenizer adds one).
    fn encode(&self, text: &str) -> PyResult<Vec<u32>> {
        let tok = self.tokenizer()?;
        tok.encode_prompt(text).map_err(model_error)
    }

    /// Logits of one token sequence at every position, `(len(ids), vocab)` float32.
    fn logits<'py>(&self, py: Python<'py>, ids: Vec<u32>) -> PyResult<Bound<'py, PyAny>> {
        if ids.is_empty() {
            return Err(value_error("ids is empty"));
        }
        let model = &self.model;
        let seqs = vec![ids];
        let flat = py.detach(|| model.all_logits(&seqs)).map_err(model_error)?;
        let vocab = flat.len() / seqs[0].len();
        Ok(flat.into_pyarray(py).reshape([seqs[0].len(), vocab])?.into_any())
    }

    /// The CLI's `predict --json`: the `top` next tokens after `text` and the mean next-token NLL.
    #[pyo3(signature = (text, top=5))]
    fn predict(&self, py: Python<'_>, text: &str, top: usize) -> PyResult<String> {
        let model = &self.model;
        let p = py.detach(|| laser_search::predict(model, text, top)).map_err(search_error)?;
        Ok(serde_json::to_string(&p).expect("serialises"))
    }

    /// The CLI's `eval --json` on the model as it is (edits applied included): `split` is
    /// `test`, `select` or `all` of a seeded split with `n` selection items.
    #[pyo3(signature = (task, n=100, seed=0, split="test", truncate=None, batch_tokens=4096))]
    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        py: Python<'_>,
        task: &PyTask,
        n: usize,
        seed: u64,
        split: &str,
        truncate: Option<&str>,
        batch_tokens: usize,
    ) -> PyResult<String> {
        let req = EvalRequest {
            n,
            seed,
            split: split.parse().map_err(|e| value_error(format!("split: {e}")))?,
            truncate: truncate
                .map(|t| t.parse::<Truncate>())
                .transpose()
                .map_err(|e| value_error(format!("truncate: {e}")))?,
            batch_tokens,
        };
        let model = &self.model;
        let task = &task.task;
        let e = py.detach(|| laser_search::evaluate(model, task, &req)).map_err(search_error)?;
        Ok(serde_json::to_string(&e).expect("serialises"))
    }

    /// Applies an edit list (`{"edits": [...]}` as JSON text) on top of the current weights.
    fn apply(&mut self, py: Python<'_>, edits: &str) -> PyResult<()> {
        let list = EditList::parse(edits, Path::new("<edits>")).map_err(search_error)?;
        let model = &mut self.model;
        py.detach(|| EditEngine::new(0).apply(model, &list.edits)).map_err(search_error)
    }

    /// Puts every edited matrix back to the loaded weights.
    fn restore(&mut self) {
        self.model.restore_all();
    }

    /// The names of the edited matrices.
    fn edited(&self) -> Vec<String> {
        self.model.edited()
    }

    /// Writes the model as it is (edits included): `format="hf"`, an HF folder `path` (f32
    /// safetensors, config, tokenizer; `path` new or empty); `"gguf"`, a GGUF file `path` from a
    /// GGUF source, edited tensors as `gguf_type` (returns the export's JSON). Both go through a
    /// temporary name renamed into place.
    #[pyo3(signature = (path, format="hf", gguf_type="f16", dtype="source"))]
    fn export(
        &self,
        py: Python<'_>,
        path: PathBuf,
        format: &str,
        gguf_type: &str,
        dtype: &str,
    ) -> PyResult<Option<String>> {
        let model = &self.model;
        match format {
            "hf" => {
                let dtype: HfDtype =
                    dtype.parse().map_err(|e| value_error(format!("dtype: {e}")))?;
                py.detach(|| export_hf_as(model, &path, dtype)).map(|_| None).map_err(model_error)
            }
            "gguf" => {
                let ty: GgufTensorType =
                    gguf_type.parse().map_err(|e| value_error(format!("gguf_type: {e}")))?;
                if path.exists() {
                    return Err(PyFileExistsError::new_err(format!(
                        "{}: exists; a GGUF export writes a new file",
                        path.display()
                    )));
                }
                let g = py.detach(|| export_gguf(model, &path, ty)).map_err(model_error)?;
                Ok(Some(serde_json::to_string(&g).expect("serialises")))
            }
            other => Err(value_error(format!("format `{other}` is not hf or gguf"))),
        }
    }

    /// One editable matrix as it is now, `(rows, cols)` float32 in HF orientation.
    fn matrix<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let [m, n] = self.model.matrix_info(name).map_err(model_error)?.shape;
        let w = self.model.matrix(name).map_err(model_error)?;
        Ok(w.into_pyarray(py).reshape([m, n])?.into_any())
    }

    /// Replaces one editable matrix by `weights` (its shape, float32); `restore` undoes it.
    fn set_matrix(&mut self, name: &str, weights: PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let [m, n] = self.model.matrix_info(name).map_err(model_error)?.shape;
        if weights.shape() != [m, n] {
            return Err(value_error(format!(
                "matrix `{name}` is {m}×{n}; the array is {:?}",
                weights.shape()
            )));
        }
        let data = weights.as_array().iter().copied().collect();
        self.model.replace_matrix(name, data).map_err(model_error)
    }

    /// The singular values of one matrix as it is now (float32, descending).
    fn singular_values<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let model = &self.model;
        let [m, n] = model.matrix_info(name).map_err(model_error)?.shape;
        let w = model.matrix(name).map_err(model_error)?;
        let s = py
            .detach(|| {
                laser_linalg::singular_values(laser_linalg::faer::MatRef::from_row_major_slice(
                    &w, m, n,
                ))
            })
            .map_err(|e| value_error(format!("matrix `{name}`: {e}")))?;
        Ok(s.into_pyarray(py))
    }
}

impl PyModel {
    fn tokenizer(&self) -> PyResult<&laser_model::Tokenizer> {
        self.model.tokenizer().ok_or_else(|| value_error("this model has no tokenizer"))
    }
}
