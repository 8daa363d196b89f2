#!/usr/bin/env python3
"""Writes crates/laser-model/tests/fixtures/ggml_blocks.json: random GGML blocks of the Q5_0, Q5_1
and k-quant types with their dequantized values from gguf-py (llama.cpp's own Python package, an
implementation independent of ours). Dev-only; run with the bench venv:

    .cache/bench-venv/bin/python scripts/gen-kquant-fixtures.py
"""
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of each block's f16 scale fields (random bytes there could be NaN or huge).
HALVES = {
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}

rng = np.random.default_rng(20261129)
out = {"generator": "gguf.quants.dequantize (gguf-py 0.19)", "blocks": {}}
for qtype, halves in HALVES.items():
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = 3
    raw = rng.integers(0, 256, size=n_blocks * type_size, dtype=np.uint8)
    for b in range(n_blocks):
        for at in halves:
            scale = np.float16(rng.uniform(0.001, 0.05) * rng.choice([-1.0, 1.0]))
            raw[b * type_size + at : b * type_size + at + 2] = np.frombuffer(scale.tobytes(), np.uint8)
    values = dequantize(raw.reshape(1, -1), qtype).reshape(-1).astype(np.float32)
    assert values.size == n_blocks * block_size and np.all(np.isfinite(values))
    out["blocks"][qtype.name] = {"bytes": raw.tobytes().hex(), "values": [float(v) for v in values]}

path = os.path.join(os.path.dirname(__file__), "..", "crates", "laser-model", "tests", "fixtures", "ggml_blocks.json")
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f)
os.replace(tmp, path)
print(path, {k: len(v["values"]) for k, v in out["blocks"].items()})
