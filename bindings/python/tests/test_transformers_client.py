"""GGUF out, loaded by HF transformers' own GGUF loader (``from_pretrained(..., gguf_file=...)``)
as an outside client: the adapted model a llama.cpp user gets from ``--export gguf`` is also what
a transformers user gets, with the edit in place. Needs torch and transformers (several GB with
PyPI's CUDA wheels), so it is not part of the default environment: ``scripts/transformers-client.sh``
installs them into a separate virtual environment and runs this file; elsewhere it skips, saying
why. The real models are skipped where they are not cached and cannot be fetched."""

import numpy as np
import pytest

import laser_rs

torch = pytest.importorskip(
    "torch", reason="torch is not installed (scripts/transformers-client.sh installs it)"
)
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (scripts/transformers-client.sh installs it)"
)

PROMPT = "The capital of France is Paris, and the capital of Italy is"


def load_or_skip(name):
    try:
        return laser_rs.Model.load(name, quiet=True)
    except (OSError, ValueError) as e:
        pytest.skip(f"{name} is not cached and could not be fetched: {e}")


def transformers_logits(path, ids):
    """Logits at every position of ``ids`` from transformers loading the GGUF file ``path``
    (dequantized to float32 by its loader)."""
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    )
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    return out.logits[0].double().numpy()


def relative_gap(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# (model, edits, gguf_type, separation): SmolLM2 is a llama GGUF whose Q and K rows llama.cpp
# permutes, so a q_proj edit checks that the rows go back in llama.cpp's order; Gemma 3 is a
# k-quant file written in its own types. `separation`: how much closer transformers' logits must
# be to the edited model's than to the base model's. F16 adds almost nothing to the edit; `same`
# re-quantizes to 4–5 bits, which moves this Gemma's logits by a third of what the edit moves
# them (the error each written tensor adds is in the export's report).
CASES = [
    (
        "smollm2-135m",
        [
            {"name": "model.layers.2.self_attn.q_proj.weight", "rho": 0.05},
            {"name": "model.layers.20.mlp.down_proj.weight", "rho": 0.1},
        ],
        "f16",
        5.0,
    ),
    (
        "gemma-3-270m",
        [
            {"name": "model.layers.3.mlp.down_proj.weight", "rho": 0.5},
            {"name": "model.layers.1.self_attn.k_proj.weight", "rho": 0.1},
        ],
        "same",
        1.5,
    ),
]


@pytest.mark.parametrize("name,edits,gguf_type,separation", CASES, ids=[c[0] for c in CASES])
def test_transformers_loads_the_exported_gguf_with_the_edit_in_place(
    name, edits, gguf_type, separation, tmp_path
):
    model = load_or_skip(name)
    ids = model.encode(PROMPT)
    model.apply(edits)
    out = tmp_path / "adapted.gguf"
    model.export(out, format="gguf", gguf_type=gguf_type)
    edited_logits = np.asarray(model.logits(ids), dtype=np.float64)
    model.restore()
    base_logits = np.asarray(model.logits(ids), dtype=np.float64)

    theirs = transformers_logits(out, ids)
    ours = np.asarray(laser_rs.Model.load(out, quiet=True).logits(ids), dtype=np.float64)
    # Both read the same file: what is left is float32 arithmetic in two engines.
    assert relative_gap(theirs, ours) < 1e-3, relative_gap(theirs, ours)
    # The edit is in place: transformers' logits are the edited model's (within the written
    # type's rounding), away from the base model's.
    to_edited, to_base = relative_gap(theirs, edited_logits), relative_gap(theirs, base_logits)
    assert to_edited * separation < to_base, (to_edited, to_base)
    # Its tokenizer, rebuilt from the GGUF's metadata, reads the prompt as laser does.
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    assert tokenizer(PROMPT)["input_ids"] == ids


HF_SOURCES = [
    # llama: llama.cpp's Q/K permutation is written here, not copied.
    ("smollm2-135m", "model.layers.2.self_attn.q_proj.weight"),
    # gemma3: norms stored as 1 + w, a SentencePiece vocabulary as scores, the layer pattern.
    ("gemma-3-270m", "model.layers.2.self_attn.q_proj.weight"),
]


@pytest.mark.parametrize("name,edited", HF_SOURCES, ids=[c[0] for c in HF_SOURCES])
def test_transformers_loads_a_gguf_written_from_an_hf_folder(name, edited, tmp_path):
    """An HF source: the model exported to a bf16 HF folder, loaded from there, one matrix
    edited, written as GGUF anew (metadata, names, tokenizer) and read by transformers."""
    base = load_or_skip(name)
    hf_dir = tmp_path / "hf"
    base.export(hf_dir, format="hf", dtype="bf16")
    model = laser_rs.Model.load(hf_dir, quiet=True)
    ids = model.encode(PROMPT)
    base_logits = np.asarray(model.logits(ids), dtype=np.float64)
    model.apply([{"name": edited, "rho": 0.05}])
    edited_logits = np.asarray(model.logits(ids), dtype=np.float64)
    out = tmp_path / "from-hf.gguf"
    model.export(out, format="gguf")
    theirs = transformers_logits(out, ids)
    ours = np.asarray(laser_rs.Model.load(out, quiet=True).logits(ids), dtype=np.float64)
    assert relative_gap(theirs, ours) < 1e-3, relative_gap(theirs, ours)
    to_edited, to_base = relative_gap(theirs, edited_logits), relative_gap(theirs, base_logits)
    assert to_edited * 5.0 < to_base, (to_edited, to_base)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    assert tokenizer(PROMPT)["input_ids"] == ids
