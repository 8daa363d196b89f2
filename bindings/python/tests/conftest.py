"""Shared fixtures: the tiny Llama of the repository's oracle fixtures (HF transformers outputs
in float64), given a one-token-per-byte tokenizer as the Rust tests give it, and planted tasks."""

from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import laser_rs

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "tests" / "fixtures" / "tiny" / "llama"
# The matrix whose edit the planted task rewards (as in crates/laser-search/tests).
PLANTED = "model.layers.1.mlp.down_proj.weight"
PLANTED_RHO = 0.02


def read_safetensors(path: Path) -> dict:
    """A safetensors file as numpy arrays (the format is a JSON header and raw little-endian
    data; read here without the safetensors package)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    data = raw[8 + size :]
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=kinds[meta["dtype"]]).reshape(meta["shape"])
    return out


def _byte_char(b: int) -> str:
    """GPT-2's byte-to-unicode alphabet (what Rust's `Tokenizer::bytes_only` uses)."""

    def printable(x: int) -> bool:
        return 33 <= x <= 126 or 0xA1 <= x <= 0xAC or 0xAE <= x <= 0xFF

    if printable(b):
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if not printable(x)))


def byte_tokenizer_json() -> str:
    """An HF tokenizer.json with one token per byte, ids 0..256 in byte order."""
    level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return json.dumps(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [],
            "normalizer": None,
            "pre_tokenizer": level,
            "post_processor": None,
            "decoder": level,
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "vocab": {_byte_char(b): b for b in range(256)},
                "merges": [],
            },
        }
    )


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A copy of the tiny Llama fixture with a byte tokenizer."""
    d = tmp_path_factory.mktemp("tiny") / "llama"
    shutil.copytree(TINY, d)
    (d / "tokenizer.json").write_text(byte_tokenizer_json())
    return d


@pytest.fixture(scope="session")
def reference() -> dict:
    return read_safetensors(TINY / "reference.safetensors")


@pytest.fixture
def model(tiny_dir) -> laser_rs.Model:
    return laser_rs.Model.load(tiny_dir, quiet=True)


def words(rng: random.Random, n: int) -> str:
    return " ".join(
        "".join(chr(ord("a") + rng.randrange(26)) for _ in range(3 + rng.randrange(4)))
        for _ in range(n)
    )


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def prefers_a(model: laser_rs.Model, prompt: str) -> bool:
    """Whether the model gives " a" a higher log-probability than " b" after `prompt`."""
    ids = model.encode(prompt)
    scores = []
    for choice in (" a", " b"):
        cont = model.encode(choice)
        logp = log_softmax(model.logits(ids + cont))
        scores.append(sum(logp[len(ids) - 1 + j, t] for j, t in enumerate(cont)))
    return scores[0] > scores[1]


@pytest.fixture(scope="session")
def planted_items(tiny_dir) -> list:
    """80 two-choice items whose gold answers are what the model answers after the planted edit
    (LASER at ρ = 0.02 on PLANTED); half of them disagree with the unedited model."""
    model = laser_rs.Model.load(tiny_dir, quiet=True)
    rng = random.Random(7)
    prompts = [words(rng, 3) for _ in range(300)]
    base = [prefers_a(model, p) for p in prompts]
    model.apply([{"name": PLANTED, "rho": PLANTED_RHO}])
    edited = [prefers_a(model, p) for p in prompts]
    differ = [i for i in range(len(prompts)) if base[i] != edited[i]][:40]
    same = [i for i in range(len(prompts)) if base[i] == edited[i]][: 80 - len(differ)]
    assert len(differ) >= 20, f"the planted edit changes only {len(differ)} answers"
    order = differ + same
    random.Random(3).shuffle(order)
    return [
        {"prompt": prompts[i], "choices": ["a", "b"], "answer": 0 if edited[i] else 1}
        for i in order
    ]
