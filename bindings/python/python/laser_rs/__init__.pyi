"""Type stubs of laser_rs (docs/PYTHON.md is the reference)."""

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, os.PathLike[str]]
ProgressArg = Union[bool, Callable[[str, str, int], Any]]
SizeArg = Union[None, int, str]

class Task:
    @staticmethod
    def load(path: PathLike, drop_ill_posed: bool = False) -> Task: ...
    @staticmethod
    def parse(text: str, name: PathLike, drop_ill_posed: bool = False) -> Task: ...
    def __len__(self) -> int: ...
    @property
    def ill_posed(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str: ...

TaskLike = Union[PathLike, Task, Sequence[Dict[str, Any]]]

class Report:
    def to_dict(self) -> Dict[str, Any]: ...
    def __getattr__(self, name: str) -> Any: ...

class Ranking:
    n: int
    loss: float
    matrices: List[Dict[str, Any]]
    sigma: Dict[str, npt.NDArray[np.float32]]
    grad: Dict[str, npt.NDArray[np.float32]]
    scores: Dict[str, npt.NDArray[np.float64]]
    def to_dict(self) -> Dict[str, Any]: ...

class Model:
    @classmethod
    def load(
        cls,
        path: Optional[PathLike] = None,
        dtype: str = "f32",
        backend: str = "flex",
        quiet: bool = False,
    ) -> Model: ...
    @property
    def path(self) -> str: ...
    def inspect(self) -> Dict[str, Any]: ...
    def encode(self, text: str) -> List[int]: ...
    def logits(self, ids: Sequence[int]) -> npt.NDArray[np.float32]: ...
    def predict(self, text: str, top: int = 5) -> Dict[str, Any]: ...
    def eval(
        self,
        task: TaskLike,
        n: int = 100,
        split: str = "test",
        seed: int = 0,
        truncate: Optional[str] = None,
    ) -> Dict[str, Any]: ...
    def apply(self, edits: Union[PathLike, Sequence[Dict[str, Any]], Dict[str, Any]]) -> None: ...
    def restore(self) -> None: ...
    def edited(self) -> List[str]: ...
    def export(
        self, path: PathLike, format: str = "hf", gguf_type: str = "f16", dtype: str = "source"
    ) -> Optional[Dict[str, Any]]: ...
    def matrix(self, name: str) -> npt.NDArray[np.float32]: ...
    def set_matrix(self, name: str, weights: npt.ArrayLike) -> None: ...
    def singular_values(self, name: str) -> npt.NDArray[np.float32]: ...

def bundled_task() -> str: ...
def option_names() -> List[str]: ...
def load_task(task: TaskLike, drop_ill_posed: bool = False) -> Task: ...
def grad(
    model: Model,
    task: TaskLike,
    n: int = 100,
    seed: int = 0,
    rho: Optional[Sequence[float]] = None,
    score: Optional[str] = None,
    grad_groups: int = 1,
    truncate: Optional[str] = None,
    max_memory: SizeArg = None,
) -> Ranking: ...
def search(
    model: Model,
    task: TaskLike,
    out: Optional[PathLike] = None,
    progress: ProgressArg = True,
    max_memory: SizeArg = None,
    **options: Any,
) -> Report: ...
def adapt(
    model: Model,
    task: Optional[TaskLike] = None,
    out: Optional[PathLike] = None,
    export_base: bool = False,
    export: str = "hf",
    gguf_type: str = "f16",
    export_dtype: str = "source",
    progress: ProgressArg = True,
    max_memory: SizeArg = None,
    **options: Any,
) -> Report: ...
def suite(
    model: Model,
    tasks: Union[PathLike, Sequence[PathLike]],
    out: PathLike,
    keep_going: bool = False,
    progress: ProgressArg = True,
    max_memory: SizeArg = None,
    collateral: bool = False,
    **options: Any,
) -> Report: ...
