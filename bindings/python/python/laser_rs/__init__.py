"""laser-rs from Python: adapt a pretrained language model to a task without fine-tuning, by
replacing a few weight matrices with low-rank (or multi-subspace low-rank) approximations.

    import laser_rs
    model = laser_rs.Model.load()                      # the default model, fetched if absent
    report = laser_rs.adapt(model, items, out="out")   # items: [{"prompt", "choices", "answer"}]
    report.to_dict()["best"]["edits"]

The reference is docs/PYTHON.md. Every long call releases the GIL; Ctrl-C stops a search at the
next candidate boundary (KeyboardInterrupt), and the same call with the same ``out`` resumes.
Reports hold the CLI's JSON keys (DESIGN.md's contract).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _native

__version__ = _native.__version__

__all__ = [
    "Model",
    "Task",
    "Report",
    "Ranking",
    "load_task",
    "grad",
    "search",
    "adapt",
    "suite",
    "bundled_task",
    "option_names",
]

Task = _native.Task
PathLike = Union[str, "os.PathLike[str]"]
TaskLike = Union[PathLike, Task, Sequence[Dict[str, Any]]]


def bundled_task() -> str:
    """The path of the bundled task (300 BIG-bench epistemic-reasoning examples)."""
    return _native.bundled_task()


def option_names() -> List[str]:
    """The keyword options ``search``, ``adapt`` and ``suite`` take (the CLI's flags)."""
    return list(_native.option_names())


def load_task(task: TaskLike, drop_ill_posed: bool = False) -> Task:
    """A task from a file path (any supported format), or from a list of item dicts
    ``{"prompt", "choices", "answer"}`` (``answer``: an index or the choice text), or
    ``{"prompt", "answer"}`` for next-token items. A list's errors name its items as lines:
    ``<items sha256:…>:3`` is the third item. ``drop_ill_posed`` drops multiple-choice items
    with no answer or an ambiguous one (counted in ``Task.ill_posed``) instead of refusing."""
    if isinstance(task, Task):
        return task
    if isinstance(task, (str, os.PathLike)):
        return Task.load(os.fspath(task), drop_ill_posed)
    if isinstance(task, (list, tuple)):
        lines = []
        for i, item in enumerate(task):
            if not isinstance(item, dict):
                raise ValueError(f"task item {i + 1} is a {type(item).__name__}, not a dict")
            lines.append(json.dumps(item, ensure_ascii=False))
        if not lines:
            raise ValueError("the task list is empty")
        text = "\n".join(lines) + "\n"
        # The name stands for the task in logs: the same list resumes, another one does not.
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return Task.parse(text, f"<items sha256:{digest}>", drop_ill_posed)
    raise TypeError(f"a task is a path or a list of item dicts, not {type(task).__name__}")


def _size(max_memory: Union[None, int, str]) -> Optional[str]:
    if max_memory is None:
        return None
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, str)):
        raise TypeError("max_memory is a number of bytes or a size like '8G'")
    return str(max_memory)


def _options(options: Dict[str, Any]) -> str:
    known = set(_native.option_names())
    for name in options:
        if name not in known:
            raise TypeError(
                f"unknown option {name!r} (known: {', '.join(sorted(known))})"
            )
    values = {}
    for name, value in options.items():
        if isinstance(value, (tuple, range)):
            value = list(value)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        values[name] = value
    return json.dumps(values)


class _Bar:
    """The progress callback: a tqdm bar per phase when tqdm is installed, else one line per
    phase on stderr."""

    def __init__(self) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore

            self._tqdm = tqdm
        except ImportError:
            self._tqdm = None
        self._bar = None

    def __call__(self, event: str, name: str, total: int) -> None:
        if event == "phase":
            self.close()
            if self._tqdm is not None:
                self._bar = self._tqdm(total=total, desc=name, leave=False)
            else:
                print(f"laser: {name} ({total} steps)", file=sys.stderr, flush=True)
        elif event == "advance" and self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _progress(progress):
    """``True``: a bar; ``False``: none; a callable: called as ``progress(event, name, total)``
    with ``event`` ``"phase"`` (a phase of ``total`` steps starts) or ``"advance"`` (one step)."""
    if callable(progress):
        return progress
    return _Bar() if progress else None


def _finish(bar) -> None:
    if isinstance(bar, _Bar):
        bar.close()


class Report:
    """A search's (or adaptation's, or suite's) report: ``to_dict()`` holds the CLI's JSON
    keys; each top-level key is also an attribute (``report.best``, ``report.delta``);
    ``str(report)`` is the CLI's summary."""

    def __init__(self, data: Dict[str, Any], summary: str) -> None:
        self._data = data
        self._summary = summary

    def to_dict(self) -> Dict[str, Any]:
        """The report as plain Python values (a deep copy)."""
        return json.loads(json.dumps(self._data))

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data", {})
        if name in data:
            return data[name]
        raise AttributeError(name)

    def __dir__(self) -> Iterable[str]:
        return list(super().__dir__()) + list(self._data)

    def __str__(self) -> str:
        return self._summary

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self._data))
        return f"<laser_rs.Report {keys}>"


class Ranking:
    """The gradient ranking of every editable matrix, best first. ``matrices`` holds the CLI's
    ``grad --json`` entries; ``sigma[name]``, ``grad[name]`` and ``scores[name]`` are numpy
    arrays: singular values, their gradients ``u_iᵀ G v_i``, and the truncation score of keeping
    each rank k (``scores[name][k]``)."""

    def __init__(self, data: Dict[str, Any], arrays) -> None:
        self._data = data
        self.n: int = data["n"]
        self.loss: float = data["loss"]
        self.matrices: List[Dict[str, Any]] = data["matrices"]
        self.sigma: Dict[str, np.ndarray] = {}
        self.grad: Dict[str, np.ndarray] = {}
        self.scores: Dict[str, np.ndarray] = {}
        for name, sigma, grad_, scores in arrays:
            self.sigma[name] = sigma
            self.grad[name] = grad_
            self.scores[name] = scores

    def to_dict(self) -> Dict[str, Any]:
        """The CLI's ``grad --json`` keys (without the arrays)."""
        return json.loads(json.dumps(self._data))

    def __repr__(self) -> str:
        return f"<laser_rs.Ranking {len(self.matrices)} matrices, loss {self.loss:.4f}>"


class Model:
    """A language model loaded for scoring, editing and search (HF folder or GGUF file)."""

    def __init__(self, native: "_native.Model") -> None:
        self._native = native

    @classmethod
    def load(
        cls,
        path: Optional[PathLike] = None,
        dtype: str = "f32",
        backend: str = "flex",
        quiet: bool = False,
    ) -> "Model":
        """Loads ``path`` (an HF folder or a GGUF file), or a built-in model by name
        (``"smollm2-135m"``, ``"gemma-3-270m"``), or with ``None`` the default model — fetched
        into the cache on first use as the CLI does. ``dtype``: ``"f32"`` or ``"bf16"``
        matrices."""
        if path is None or not os.path.exists(os.fspath(path)):
            path = _native.builtin_model(None if path is None else os.fspath(path), quiet)
        native = _native.Model.load(os.fspath(path), dtype, backend)
        if not quiet:
            for note in native.load_notes():
                print(note, file=sys.stderr)
        return cls(native)

    @property
    def path(self) -> str:
        """Where the model was loaded from."""
        return self._native.path

    def inspect(self) -> Dict[str, Any]:
        """Family, layer count, sizes and editable matrices (the CLI's ``inspect --json``)."""
        return json.loads(self._native.inspect())

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` as the model sees a prompt."""
        return list(self._native.encode(text))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits at every position of one token sequence, shape ``(len(ids), vocab)``."""
        return self._native.logits(list(ids))

    def predict(self, text: str, top: int = 5) -> Dict[str, Any]:
        """The ``top`` next tokens after ``text`` and the mean next-token NLL (the CLI's
        ``predict --json``)."""
        return json.loads(self._native.predict(text, top))

    def eval(
        self,
        task: TaskLike,
        n: int = 100,
        split: str = "test",
        seed: int = 0,
        truncate: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Scores the model as it is now (applied edits included) on a split of ``task``
        (``"test"``, ``"select"`` or ``"all"``): the CLI's ``eval --json`` keys (``n``,
        ``accuracy``, ``logloss``, …)."""
        return json.loads(self._native.eval(load_task(task), n, seed, split, truncate))

    def apply(self, edits: Union[PathLike, Sequence[Dict[str, Any]], Dict[str, Any]]) -> None:
        """Applies edits on top of the current weights: an edit-list file (``edits.json``), a
        dict ``{"edits": [...]}``, or a list of ``{"name", "rho", "factor"?}`` dicts."""
        if isinstance(edits, (str, os.PathLike)):
            with open(os.fspath(edits), encoding="utf-8") as f:
                text = f.read()
        elif isinstance(edits, dict):
            text = json.dumps(edits)
        else:
            text = json.dumps({"edits": list(edits)})
        self._native.apply(text)

    def restore(self) -> None:
        """Puts every edited matrix back to the loaded weights."""
        self._native.restore()

    def edited(self) -> List[str]:
        """Names of the matrices edited now."""
        return list(self._native.edited())

    def export(
        self, path: PathLike, format: str = "hf", gguf_type: str = "f16", dtype: str = "source"
    ) -> Optional[Dict[str, Any]]:
        """Writes the model as it is (edits included). ``format="hf"``: an HF folder (f32
        safetensors, config, tokenizer) that transformers loads; ``path`` must be new or empty.
        ``format="gguf"`` (a model loaded from GGUF): a GGUF file whose metadata and untouched
        tensors are the source's bytes, the edited tensors written as ``gguf_type`` (``"f16"``,
        ``"f32"``, or ``"same"``: re-quantized to their source type); returns what was written
        (``bytes``, ``source_bytes``, ``edited`` with each tensor's ``relative_error``).
        ``dtype`` (HF): ``"source"`` (the source's; bf16 for a quantized GGUF), ``"f32"``,
        ``"bf16"`` or ``"f16"``."""
        written = self._native.export(os.fspath(path), format, gguf_type, dtype)
        return None if written is None else json.loads(written)

    def matrix(self, name: str) -> np.ndarray:
        """Editable matrix ``name`` as it is now: float32, ``(rows, cols)`` as in HF."""
        return self._native.matrix(name)

    def set_matrix(self, name: str, weights: np.ndarray) -> None:
        """Replaces editable matrix ``name`` by ``weights`` (same shape); ``restore()`` undoes
        it."""
        self._native.set_matrix(name, np.ascontiguousarray(weights, dtype=np.float32))

    def singular_values(self, name: str) -> np.ndarray:
        """Singular values of matrix ``name`` as it is now, descending."""
        return self._native.singular_values(name)

    def __repr__(self) -> str:
        return f"<laser_rs.Model {self.path}>"


def grad(
    model: Model,
    task: TaskLike,
    n: int = 100,
    seed: int = 0,
    rho: Optional[Sequence[float]] = None,
    score: Optional[str] = None,
    grad_groups: int = 1,
    truncate: Optional[str] = None,
    max_memory: Union[None, int, str] = None,
) -> Ranking:
    """One gradient pass on the ``n`` selection items, then every matrix's σ-gradients and
    truncation scores: a :class:`Ranking` (the CLI's ``laser grad``)."""
    options: Dict[str, Any] = {"n": n, "seed": seed, "grad_groups": grad_groups}
    if rho is not None:
        options["rho"] = rho
    if score is not None:
        options["score"] = score
    if truncate is not None:
        options["truncate"] = truncate
    data, arrays = _native.grad(model._native, load_task(task), _options(options), _size(max_memory))
    return Ranking(json.loads(data), arrays)


def search(
    model: Model,
    task: TaskLike,
    out: Optional[PathLike] = None,
    progress: Union[bool, Callable[[str, str, int], Any]] = True,
    max_memory: Union[None, int, str] = None,
    **options: Any,
) -> Report:
    """Searches for the best edit (the CLI's ``laser search``; ``strategy="gradient"`` unless
    given). ``options`` are the CLI's flags in snake case: ``n``, ``seed``, ``top_k``, ``rho``,
    ``factor``, ``layers``, ``kinds``, ``select``, ``race``, … (``option_names()``). With
    ``out`` the candidate log is kept there and a stopped search resumes. The model is left
    unedited."""
    bar = _progress(progress)
    try:
        data, summary = _native.search(
            model._native,
            load_task(task, bool(options.get("drop_ill_posed", False))),
            _options(options),
            None if out is None else os.fspath(out),
            _size(max_memory),
            bar,
        )
    finally:
        _finish(bar)
    return Report(json.loads(data), summary)


def _call_text(function: str, task: TaskLike, out: PathLike, options: Dict[str, Any]) -> str:
    """How a call is shown in a model card's "Reproduce" section."""
    shown = repr(os.fspath(task)) if isinstance(task, (str, os.PathLike)) else "items"
    args = [f"model, {shown}", f"out={os.fspath(out)!r}"]
    args += [f"{k}={v!r}" for k, v in options.items()]
    return f"laser_rs.{function}({', '.join(args)})"


def _default_out(task: TaskLike) -> str:
    if isinstance(task, (str, os.PathLike)):
        stem = os.path.splitext(os.path.basename(os.fspath(task)))[0] or "task"
        return os.path.join("laser-out", f"adapt-{stem}")
    raise ValueError("out= is required when the task is not a file")


def adapt(
    model: Model,
    task: Optional[TaskLike] = None,
    out: Optional[PathLike] = None,
    export_base: bool = False,
    export: str = "hf",
    gguf_type: str = "f16",
    export_dtype: str = "source",
    progress: Union[bool, Callable[[str, str, int], Any]] = True,
    max_memory: Union[None, int, str] = None,
    **options: Any,
) -> Report:
    """Adapts ``model`` to ``task`` (default: the bundled task) as ``laser adapt`` does: search,
    apply the recommended edits (``model`` is left edited; ``model.restore()`` undoes them),
    export ``out/model`` — or, for "no edit", no copy unless ``export_base`` — and write
    ``report.json``, ``report.md``, ``edits.json`` and the plots into ``out``. The report's
    ``output`` names the adapted model (or the base model's own path, with ``unchanged``).
    ``export``: ``"hf"`` (``out/model``, weights in ``export_dtype``, with a model card),
    ``"gguf"`` (``out/model.gguf``, from a GGUF source; edited tensors as ``gguf_type``) or
    ``"both"``."""
    if task is None:
        task = bundled_task()
    if out is None:
        out = _default_out(task)
    bar = _progress(progress)
    try:
        data, summary = _native.adapt(
            model._native,
            load_task(task, bool(options.get("drop_ill_posed", False))),
            _options(options),
            os.fspath(out),
            export_base,
            _size(max_memory),
            bar,
            export,
            gguf_type,
            export_dtype,
            _call_text("adapt", task, out, options),
        )
    finally:
        _finish(bar)
    return Report(json.loads(data), summary)


def suite(
    model: Model,
    tasks: Union[PathLike, Sequence[PathLike]],
    out: PathLike,
    keep_going: bool = False,
    progress: Union[bool, Callable[[str, str, int], Any]] = True,
    max_memory: Union[None, int, str] = None,
    collateral: bool = False,
    **options: Any,
) -> Report:
    """Runs the search on every task (files, or folders of them) and writes ``suite.json`` and
    ``suite.md`` into ``out`` (the CLI's ``laser suite``; ``test_max`` defaults to 300).
    ``collateral=True`` also scores each recommended edit on every other task's selection
    items (``suite.json``: ``collateral`` per task, ``mean_collateral``)."""
    if isinstance(tasks, (str, os.PathLike)):
        tasks = [tasks]
    bar = _progress(progress)
    try:
        data, summary = _native.suite(
            model._native,
            [os.fspath(t) for t in tasks],
            _options(options),
            os.fspath(out),
            keep_going,
            _size(max_memory),
            bar,
            collateral,
        )
    finally:
        _finish(bar)
    return Report(json.loads(data), summary)
