"""GGUF out, read by an outside client: llama.cpp's own Python reader (the `gguf` package) sees
the source's metadata and untouched tensors byte for byte, and the edited matrix in F16. Runs on
the default model (SmolLM2-135M-Instruct, a Q4_1 GGUF), skipped where it is not cached and
cannot be fetched."""

import numpy as np
import pytest

import laser_rs

gguf = pytest.importorskip("gguf", reason="the gguf package (llama.cpp's reader) is not installed")

EDITED = "model.layers.20.mlp.down_proj.weight"
EDITED_GGUF = "blk.20.ffn_down.weight"


@pytest.fixture(scope="module")
def smollm2():
    try:
        return laser_rs.Model.load(quiet=True)
    except (OSError, ValueError) as e:
        pytest.skip(f"the default model is not cached and could not be fetched: {e}")


def test_gguf_export_is_the_source_plus_one_f16_matrix(smollm2, tmp_path):
    model = smollm2
    model.apply([{"name": EDITED, "rho": 0.1}])
    try:
        out = tmp_path / "adapted.gguf"
        written = model.export(out, format="gguf")
        [t] = written["edited"]
        assert (t["gguf_name"], t["source_type"], t["written_type"]) == (EDITED_GGUF, "Q4_1", "F16")
        rows, cols = model.matrix(EDITED).shape
        assert written["bytes"] <= written["source_bytes"] + 2 * rows * cols + (1 << 20)

        source, result = gguf.GGUFReader(model.path), gguf.GGUFReader(out)
        assert list(source.fields) == list(result.fields)
        for name, field in source.fields.items():
            if name.startswith("GGUF."):
                continue  # the reader's own view of the header counts and version
            theirs = result.fields[name]
            assert field.types == theirs.types, name
            assert [bytes(p) for p in field.parts] == [bytes(p) for p in theirs.parts], name
        assert [t.name for t in source.tensors] == [t.name for t in result.tensors]
        for a, b in zip(source.tensors, result.tensors):
            if a.name == EDITED_GGUF:
                assert b.tensor_type == gguf.GGMLQuantizationType.F16
                got = np.asarray(b.data, dtype=np.float32).reshape(rows, cols)
                want = model.matrix(EDITED)
                np.testing.assert_allclose(got, want, atol=np.abs(want).max() / 1024)
            else:
                assert a.tensor_type == b.tensor_type, a.name
                assert bytes(a.data) == bytes(b.data), a.name

        # laser reads it back as the edited model, within F16 rounding.
        back = laser_rs.Model.load(out, quiet=True)
        ids = model.encode("The capital of France is")
        np.testing.assert_allclose(back.logits(ids), model.logits(ids), atol=2e-2)
    finally:
        model.restore()


GEMMA_EDITS = [
    ("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight", "Q4_K"),
    ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", "Q6_K"),
    ("model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight", "Q5_0"),
]


def test_k_quant_tensors_written_in_their_own_type_decode_in_gguf_py(tmp_path):
    """Gemma 3 270M's Q4_K_M GGUF with a Q4_K, a Q6_K and a Q5_0 matrix edited, written
    `gguf_type="same"`: gguf-py's own dequantizer reads each edited tensor as laser's loader does
    (the block layouts agree), the Q5_0 bytes are what gguf-py's own Q5_0 quantizer writes for
    the edited matrix, and the untouched tensors keep their bytes."""
    try:
        model = laser_rs.Model.load("gemma-3-270m", quiet=True)
    except (OSError, ValueError) as e:
        pytest.skip(f"Gemma 3 270M is not cached and could not be fetched: {e}")
    model.apply([{"name": name, "rho": 0.05} for name, _, _ in GEMMA_EDITS])
    out = tmp_path / "gemma-same.gguf"
    written = model.export(out, format="gguf", gguf_type="same")
    assert written["bytes"] == written["source_bytes"]
    by_gguf = {t["gguf_name"]: t for t in written["edited"]}
    back = laser_rs.Model.load(out, quiet=True)
    source, result = gguf.GGUFReader(model.path), gguf.GGUFReader(out)
    types = {name: ty for _, name, ty in GEMMA_EDITS}
    hf = {g: h for h, g, _ in GEMMA_EDITS}
    for a, b in zip(source.tensors, result.tensors):
        assert a.tensor_type == b.tensor_type, a.name
        if a.name in types:
            assert b.tensor_type.name == types[a.name] == by_gguf[a.name]["written_type"]
            theirs = gguf.dequantize(b.data, b.tensor_type).astype(np.float32)
            ours = back.matrix(hf[a.name])
            np.testing.assert_allclose(theirs.reshape(ours.shape), ours, rtol=0, atol=1e-6)
            assert bytes(a.data) != bytes(b.data), a.name
            if b.tensor_type == gguf.GGMLQuantizationType.Q5_0:
                edited = model.matrix(hf[a.name]).astype(np.float32)
                reference = gguf.quantize(edited, gguf.GGMLQuantizationType.Q5_0)
                assert np.asarray(reference).tobytes() == bytes(b.data)
        else:
            assert bytes(a.data) == bytes(b.data), a.name


def test_an_hf_source_is_written_as_a_gguf_gguf_py_reads(smollm2, tmp_path):
    """SmolLM2 exported to a bf16 HF folder, loaded from there, one matrix edited and written as
    GGUF: gguf-py reads llama.cpp's metadata and the source GGUF's vocabulary; untouched matrices
    stay bf16 (BF16), norms F32, the edited matrix F16; laser loads it back as the edited model."""
    hf_dir = tmp_path / "hf"
    smollm2.export(hf_dir, format="hf", dtype="bf16")
    model = laser_rs.Model.load(hf_dir, quiet=True)
    model.apply([{"name": EDITED, "rho": 0.1}])
    out = tmp_path / "from-hf.gguf"
    written = model.export(out, format="gguf")
    [t] = written["edited"]
    assert (t["gguf_name"], t["source_type"], t["written_type"]) == (EDITED_GGUF, "BF16", "F16")
    source, result = gguf.GGUFReader(smollm2.path), gguf.GGUFReader(out)
    field = lambda r, k: r.fields[k].contents()
    assert field(result, "general.architecture") == "llama"
    for key in ["llama.block_count", "llama.embedding_length", "llama.attention.head_count_kv",
                "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id"]:
        assert field(result, key) == field(source, key), key
    assert sorted(t.name for t in result.tensors) == sorted(t.name for t in source.tensors)
    Q = gguf.GGMLQuantizationType
    for tensor in result.tensors:
        want = Q.F16 if tensor.name == EDITED_GGUF else Q.F32 if len(tensor.shape) == 1 else Q.BF16
        assert tensor.tensor_type == want, tensor.name
    back = laser_rs.Model.load(out, quiet=True)
    ids = model.encode("The capital of France is")
    assert back.encode("The capital of France is") == ids
    np.testing.assert_allclose(back.logits(ids), model.logits(ids), atol=2e-2)
