//! `laser_rs._native`: the Rust half of the Python package. The Python half
//! (`python/laser_rs/__init__.py`) wraps it into the documented API (`docs/PYTHON.md`): it turns
//! task lists into task text, keyword options into JSON, JSON reports into dicts, and draws the
//! progress bar.
//!
//! Every long call releases the GIL; reports cross the boundary as the CLI's JSON (the same
//! `Serialize` structs), spectra as numpy arrays.

mod errors;
mod model;
mod options;
mod progress;

use std::path::PathBuf;

use laser_search::{
    AdaptConfig, ByteSize, LoadOptions, SearchConfig, SuiteConfig, SuitePart, Task,
    apply_memory_budget, load_task_with, parse_task_with, render, run_search_with_progress,
    run_suite, search_accumulators, suite_tasks,
};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use errors::{search_error, value_error};
use model::PyModel;
use progress::PyProgress;

/// A task: its items, the format it was read from, and the path (or name) it came from.
#[pyclass(name = "Task", module = "laser_rs._native", frozen)]
#[derive(Debug)]
pub struct PyTask {
    task: Task,
}

#[pymethods]
impl PyTask {
    /// Reads a task file in any supported format; `drop_ill_posed` drops multiple-choice items
    /// with no answer or an ambiguous one instead of refusing the file.
    #[staticmethod]
    #[pyo3(signature = (path, drop_ill_posed=false))]
    fn load(py: Python<'_>, path: PathBuf, drop_ill_posed: bool) -> PyResult<Self> {
        let opts = LoadOptions { drop_ill_posed };
        let task = py.detach(|| load_task_with(&path, opts)).map_err(search_error)?;
        Ok(Self { task })
    }

    /// Parses task text (`name` stands for its path in errors and logs).
    #[staticmethod]
    #[pyo3(signature = (text, name, drop_ill_posed=false))]
    fn parse(text: &str, name: PathBuf, drop_ill_posed: bool) -> PyResult<Self> {
        let opts = LoadOptions { drop_ill_posed };
        Ok(Self { task: parse_task_with(&name, text, opts).map_err(search_error)? })
    }

    /// Ill-posed items dropped on request.
    #[getter]
    fn ill_posed(&self) -> usize {
        self.task.ill_posed
    }

    fn __len__(&self) -> usize {
        self.task.items.len()
    }

    /// Where the task came from.
    #[getter]
    fn path(&self) -> String {
        self.task.path.display().to_string()
    }

    /// The format it was read as.
    #[getter]
    fn format(&self) -> &'static str {
        self.task.format.name()
    }
}

/// `None`, an int of bytes, or a size like `"8G"`.
fn byte_size(text: Option<&str>) -> PyResult<Option<ByteSize>> {
    text.map(|t| t.parse::<ByteSize>().map_err(|e| value_error(format!("max_memory: {e}"))))
        .transpose()
}

fn search_config(options: &str) -> PyResult<SearchConfig> {
    let value: serde_json::Value =
        serde_json::from_str(options).map_err(|e| value_error(format!("options: {e}")))?;
    options::search_config(&value).map_err(value_error)
}

/// Runs `work` without the GIL, then raises what stopped it: the exception Ctrl-C (or the
/// progress callback) raised, else the library's error.
fn run_detached<T: Send>(
    py: Python<'_>,
    progress: &PyProgress,
    work: impl FnOnce() -> laser_search::Result<T> + Send,
) -> PyResult<T> {
    let result = py.detach(work);
    if let Some(raised) = progress.take_raised() {
        return Err(raised);
    }
    result.map_err(search_error)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("reports serialise")
}

/// The gradient ranking: `(json, [(name, sigma, grad, scores), ...])`, the JSON with the CLI's
/// `grad --json` keys, the arrays numpy, best matrix first.
#[pyfunction]
#[pyo3(signature = (model, task, options, max_memory=None))]
fn grad<'py>(
    py: Python<'py>,
    mut model: PyRefMut<'_, PyModel>,
    task: &PyTask,
    options: &str,
    max_memory: Option<&str>,
) -> PyResult<(String, Vec<Bound<'py, PyTuple>>)> {
    let cfg = search_config(options)?;
    let max_memory = byte_size(max_memory)?;
    let model = &mut model.model;
    apply_memory_budget(model, max_memory, Some(cfg.grad_groups)).map_err(search_error)?;
    let model = &*model;
    let task = &task.task;
    let ranked = py.detach(|| laser_search::rank_task(model, task, &cfg)).map_err(search_error)?;
    let json = to_json(&ranked);
    let arrays = ranked
        .into_ranking()
        .spectra
        .into_iter()
        .map(|s| {
            PyTuple::new(
                py,
                [
                    s.name.into_pyobject(py)?.into_any(),
                    s.sigma.into_pyarray(py).into_any(),
                    s.grad.into_pyarray(py).into_any(),
                    s.scores.into_pyarray(py).into_any(),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((json, arrays))
}

/// A search: `(report json, summary text)`. The model is left unedited.
#[pyfunction]
#[pyo3(signature = (model, task, options, out=None, max_memory=None, progress=None))]
fn search(
    py: Python<'_>,
    mut model: PyRefMut<'_, PyModel>,
    task: &PyTask,
    options: &str,
    out: Option<PathBuf>,
    max_memory: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, String)> {
    let cfg = SearchConfig { out: out.clone(), ..search_config(options)? };
    let max_memory = byte_size(max_memory)?;
    let model = &mut model.model;
    apply_memory_budget(model, max_memory, search_accumulators(&cfg)).map_err(search_error)?;
    let progress = PyProgress::new(progress);
    let task = &task.task;
    let report =
        run_detached(py, &progress, || run_search_with_progress(model, task, &cfg, &progress))?;
    if let Some(dir) = &out {
        let json =
            serde_json::to_string_pretty(&serde_json::to_value(&report).expect("serialises"))
                .expect("serialises");
        laser_search::write_atomic(&dir.join("report.json"), json.as_bytes())
            .map_err(search_error)?;
    }
    Ok((to_json(&report), render::summary(&report, None)))
}

/// [`laser_search::adapt`]: `(report.json's json, summary text)`. The model is left edited.
#[pyfunction]
#[pyo3(signature = (model, task, options, out, export_base=false, max_memory=None, progress=None, export="hf", gguf_type="f16", export_dtype="source", command=None))]
#[allow(clippy::too_many_arguments)]
fn adapt(
    py: Python<'_>,
    mut model: PyRefMut<'_, PyModel>,
    task: &PyTask,
    options: &str,
    out: PathBuf,
    export_base: bool,
    max_memory: Option<&str>,
    progress: Option<Py<PyAny>>,
    export: &str,
    gguf_type: &str,
    export_dtype: &str,
    command: Option<String>,
) -> PyResult<(String, String)> {
    let cfg = AdaptConfig {
        search: search_config(options)?,
        out,
        export_base,
        max_memory: byte_size(max_memory)?,
        export: export.parse().map_err(|e| value_error(format!("export: {e}")))?,
        gguf_type: gguf_type.parse().map_err(|e| value_error(format!("gguf_type: {e}")))?,
        hf_dtype: export_dtype.parse().map_err(|e| value_error(format!("export_dtype: {e}")))?,
        command,
    };
    let model = &mut model.model;
    let progress = PyProgress::new(progress);
    let task = &task.task;
    let adapted =
        run_detached(py, &progress, || laser_search::adapt(model, task, &cfg, &progress))?;
    let summary = render::summary(adapted.search(), Some(adapted.model_output()));
    Ok((adapted.to_json().to_string(), summary))
}

/// A suite over task files or folders: `(suite.json's json, summary text)`; writes `suite.json`
/// and `suite.md` into `out`.
#[pyfunction]
#[pyo3(signature = (model, tasks, options, out, keep_going=false, max_memory=None, progress=None, collateral=false))]
#[allow(clippy::too_many_arguments)]
fn suite(
    py: Python<'_>,
    mut model: PyRefMut<'_, PyModel>,
    tasks: Vec<PathBuf>,
    options: &str,
    out: PathBuf,
    keep_going: bool,
    max_memory: Option<&str>,
    progress: Option<Py<PyAny>>,
    collateral: bool,
) -> PyResult<(String, String)> {
    let mut search = search_config(options)?;
    search.test_max = search.test_max.or(Some(300));
    let cfg =
        SuiteConfig { search, out: out.clone(), keep_going, collateral, part: SuitePart::Whole };
    let max_memory = byte_size(max_memory)?;
    let tasks = suite_tasks(&tasks).map_err(search_error)?;
    let model = &mut model.model;
    apply_memory_budget(model, max_memory, search_accumulators(&cfg.search))
        .map_err(search_error)?;
    let progress = PyProgress::new(progress);
    let report = run_detached(py, &progress, || {
        let report = run_suite(model, &tasks, &cfg, &progress)?;
        report.write(&out)?;
        Ok(report)
    })?;
    Ok((to_json(&report), render::suite_summary(&report)))
}

/// The options `search`, `adapt` and `suite` take.
#[pyfunction]
fn option_names() -> Vec<&'static str> {
    options::names()
}

/// Fetches (if absent) the default model and returns its path.
#[pyfunction]
#[pyo3(signature = (name=None, quiet=false))]
fn builtin_model(py: Python<'_>, name: Option<PathBuf>, quiet: bool) -> PyResult<String> {
    let path =
        py.detach(|| laser_search::resolve_model(name.as_deref(), quiet)).map_err(search_error)?;
    Ok(path.display().to_string())
}

/// The bundled task's path (300 BIG-bench epistemic-reasoning examples).
#[pyfunction]
fn bundled_task() -> PyResult<String> {
    Ok(laser_search::bundled_task().map_err(search_error)?.display().to_string())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PyTask>()?;
    m.add_function(wrap_pyfunction!(grad, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(adapt, m)?)?;
    m.add_function(wrap_pyfunction!(suite, m)?)?;
    m.add_function(wrap_pyfunction!(option_names, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_model, m)?)?;
    m.add_function(wrap_pyfunction!(bundled_task, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
