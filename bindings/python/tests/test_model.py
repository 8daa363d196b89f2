"""Loading, scoring and editing against the HF oracle and against numpy."""

import json

import numpy as np
import pytest

import laser_rs
from conftest import PLANTED, TINY, log_softmax


def test_inspect_lists_the_oracles_matrices(model):
    info = model.inspect()
    oracle = json.loads((TINY / "reference.json").read_text())
    assert info["family"] == "llama"
    shapes = {m["name"]: m["shape"] for m in info["matrices"]}
    expected = {k: v for k, v in oracle["matrices"].items() if k != "lm_head.weight"}
    assert shapes == expected


def test_logits_match_hf_transformers(model, reference):
    for ids, expected in zip(reference["input_ids"], reference["logits"]):
        got = model.logits([int(i) for i in ids])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_singular_values_match_the_oracle(model, reference):
    for name in (PLANTED, "model.layers.0.self_attn.k_proj.weight"):
        np.testing.assert_allclose(
            model.singular_values(name), reference["sigma." + name], rtol=1e-4, atol=1e-5
        )


def test_predict_is_the_log_softmax_of_the_last_logits(model):
    text = "the cat sat on"
    out = model.predict(text, top=3)
    ids = model.encode(text)
    assert out["ids"] == ids
    logp = log_softmax(model.logits(ids))
    best = np.argsort(-logp[-1])[:3]
    assert [t["id"] for t in out["top"]] == list(best)
    np.testing.assert_allclose([t["logprob"] for t in out["top"]], logp[-1][best], atol=1e-4)
    nll = -np.mean([logp[p - 1, ids[p]] for p in range(1, len(ids))])
    assert out["mean_nll"] == pytest.approx(nll, abs=1e-4)


def test_apply_export_and_restore(model, tmp_path):
    ids = model.encode("a b c d")
    base = model.logits(ids)
    model.apply([{"name": PLANTED, "rho": 0.1}])
    assert model.edited() == [PLANTED]
    # LASER keeps the leading 10% of the spectrum: the edited matrix's singular values are the
    # original's first k and zeros.
    s0 = laser_rs.Model.load(model.path, quiet=True).singular_values(PLANTED)
    s1 = model.singular_values(PLANTED)
    k = int(np.count_nonzero(s1 > 1e-4 * s0[0]))
    assert 1 <= k < len(s0)
    np.testing.assert_allclose(s1[:k], s0[:k], rtol=1e-4)
    edited = model.logits(ids)
    assert not np.allclose(edited, base)
    model.export(tmp_path / "out")
    reloaded = laser_rs.Model.load(tmp_path / "out", quiet=True)
    np.testing.assert_allclose(reloaded.logits(ids), edited, atol=1e-5)
    model.restore()
    assert model.edited() == []
    np.testing.assert_array_equal(model.logits(ids), base)


def test_set_matrix_round_trips(model):
    w = model.matrix(PLANTED)
    assert w.shape == (64, 176) and w.dtype == np.float32
    model.set_matrix(PLANTED, 2 * w)
    np.testing.assert_array_equal(model.matrix(PLANTED), 2 * w)
    model.restore()
    np.testing.assert_array_equal(model.matrix(PLANTED), w)


def test_eval_of_a_list_equals_eval_of_its_file(model, planted_items, tmp_path):
    path = tmp_path / "task.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in planted_items))
    from_list = model.eval(planted_items, n=40)
    from_file = model.eval(path, n=40)
    for key in ("n", "accuracy", "logloss"):
        assert from_list[key] == from_file[key]
    assert from_list["n"] == 40
    everything = model.eval(planted_items, split="all")
    assert everything["n"] == 80
    assert 0.0 <= everything["accuracy"] <= 100.0
