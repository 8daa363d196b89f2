"""The gradient ranking, search, adapt, Ctrl-C and resume, on the tiny Llama and a planted task
whose helpful edit is known."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import laser_rs
from conftest import PLANTED, PLANTED_RHO

# A small exhaustive grid over layer 1 that holds the planted edit (plain SVD: 7 matrices × 2 ρ).
GRID = dict(
    strategy="exhaustive", layers="1", rho=[PLANTED_RHO, 0.5], n=40, race="off", factor=["svd"]
)


def test_grad_sigma_is_the_oracles_and_g_is_the_derivative_of_the_loss(
    model, planted_items, reference
):
    ranking = laser_rs.grad(model, planted_items, n=40)
    assert ranking.n == 40
    assert len(ranking.matrices) == len(model.inspect()["matrices"])
    scores = [m["score"] for m in ranking.matrices]
    assert scores == sorted(scores, reverse=True), "best first"
    for name, sigma in ranking.sigma.items():
        np.testing.assert_allclose(sigma, reference["sigma." + name], rtol=1e-4, atol=1e-5)
        assert ranking.grad[name].shape == sigma.shape
        assert ranking.scores[name].shape == (len(sigma) + 1,)
    # The ranking's loss is the selection split's log-loss, and g_i = ∂loss/∂σ_i: a central
    # difference along u_i v_iᵀ for the matrix's largest σ-gradient agrees.
    loss = model.eval(planted_items, n=40, split="select")["logloss"]
    assert ranking.loss == pytest.approx(loss, rel=1e-4)
    name = ranking.matrices[0]["name"]
    g = ranking.grad[name]
    i = int(np.argmax(np.abs(g)))
    w = model.matrix(name).astype(np.float64)
    u, _, vt = np.linalg.svd(w, full_matrices=False)
    eps = 1e-2
    losses = []
    for sign in (1, -1):
        model.set_matrix(name, (w + sign * eps * np.outer(u[:, i], vt[i])).astype(np.float32))
        losses.append(model.eval(planted_items, n=40, split="select")["logloss"])
        model.restore()
    numeric = (losses[0] - losses[1]) / (2 * eps)
    assert numeric == pytest.approx(float(g[i]), rel=0.05, abs=1e-4)


def test_search_finds_the_planted_edit_and_leaves_the_model_unedited(model, planted_items):
    report = laser_rs.search(model, planted_items, progress=False, select="laser", **GRID)
    assert model.edited() == []
    d = report.to_dict()
    assert d["strategy"] == "exhaustive" and report.strategy == "exhaustive"
    assert d["base"]["select"]["accuracy"] < 100.0
    assert d["best"]["select"]["accuracy"] == 100.0
    planted = [c for c in d["candidates"] if c["edits"][0]["name"] == PLANTED and c["edits"][0]["rho"] == PLANTED_RHO]
    assert planted and planted[0]["select"]["accuracy"] == 100.0
    assert d["candidates_evaluated"] == 7 * 2
    assert "strategy exhaustive" in str(report)


def test_adapt_writes_the_adapted_model_and_its_reports(model, planted_items, tmp_path):
    out = tmp_path / "adapt"
    report = laser_rs.adapt(model, planted_items, out=out, progress=False, select="laser", **GRID)
    d = report.to_dict()
    assert d["best"]["select"]["accuracy"] == 100.0
    assert d["output"] == str(out / "model") and "unchanged" not in d
    for name in ("report.json", "report.md", "edits.json", "candidates.jsonl", "spectrum.svg"):
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text()) == d
    card = (out / "model" / "README.md").read_text()
    assert card.startswith("---\ntags:\n- laser-rs\n")
    assert f"| `{d['best']['edits'][0]['name']}` |" in card
    assert "laser_rs.adapt(model, items, out=" in card and "select='laser'" in card
    edits = json.loads((out / "edits.json").read_text())["edits"]
    assert edits == d["best"]["edits"]
    # The model is left edited with the recommendation, and the exported folder is that model.
    assert model.edited() == sorted(e["name"] for e in edits)
    exported = laser_rs.Model.load(d["output"], quiet=True)
    test = exported.eval(planted_items, n=40)
    assert test["accuracy"] == d["best"]["test"]["accuracy"]
    assert test["logloss"] == pytest.approx(d["best"]["test"]["logloss"], rel=1e-5)
    model.restore()
    base = model.eval(planted_items, n=40)
    assert base["accuracy"] == d["base"]["test"]["accuracy"]


def test_no_edit_writes_no_copy(model, planted_items, tmp_path):
    # Only ρ = 1 (the matrix itself) is on offer: nothing can beat the base model.
    d = laser_rs.adapt(
        model, planted_items, out=tmp_path, progress=False, strategy="exhaustive", layers="0",
        kinds="q", rho=[1.0], n=40,
    ).to_dict()
    assert d["best"]["edits"] == []
    assert d["unchanged"] is True and d["output"] == model.path
    assert not (tmp_path / "model").exists()
    assert model.edited() == []


def test_ctrl_c_stops_at_a_candidate_boundary_and_the_same_call_resumes(
    model, planted_items, tmp_path
):
    events = []

    def interrupt_on_third_candidate(event, name, total):
        events.append((event, name))
        scanned = sum(1 for e, _ in events if e == "advance")
        if event == "advance" and scanned == 3:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        laser_rs.search(model, planted_items, out=out, progress=interrupt_on_third_candidate, **GRID)
    assert model.edited() == [], "a stopped search leaves the model unedited"
    logged = (out / "candidates.jsonl").read_text().splitlines()
    # The identity line, the base model, and the candidates finished before the stop.
    assert 2 <= len(logged) < 2 + 14
    resumed = laser_rs.search(model, planted_items, out=out, progress=False, **GRID).to_dict()
    assert resumed["candidates_resumed"] >= 1
    fresh = laser_rs.search(model, planted_items, out=tmp_path / "fresh", progress=False, **GRID).to_dict()
    assert resumed["best"] == fresh["best"]
    assert resumed["candidates_evaluated"] == fresh["candidates_evaluated"] == 14
    assert any(e == "phase" for e, _ in events)


def test_suite_runs_every_task_and_writes_its_reports(model, planted_items, tmp_path):
    paths = []
    for i, part in enumerate((planted_items[:40], planted_items[40:])):
        p = tmp_path / f"task{i}.jsonl"
        p.write_text("".join(json.dumps(item) + "\n" for item in part))
        paths.append(p)
    report = laser_rs.suite(model, paths, out=tmp_path / "suite", progress=False, select="laser", **dict(GRID, n=20))
    d = report.to_dict()
    assert [t["task"] for t in d["tasks"]] == ["task0", "task1"]
    assert json.loads((tmp_path / "suite" / "suite.json").read_text()) == d
    assert (tmp_path / "suite" / "suite.md").is_file()
    assert report.tasks == d["tasks"]
    assert model.edited() == []
    # Collateral: every edited task's recommendation scored on the other task's selection items.
    report = laser_rs.suite(
        model, paths, out=tmp_path / "suite-collateral", progress=False, select="laser",
        collateral=True, **dict(GRID, n=20),
    )
    d = report.to_dict()
    edited = [t for t in d["tasks"] if t["edits"]]
    assert edited, d
    for t in edited:
        (other,) = t["collateral"]["tasks"]
        assert other["task"] != t["task"] and other["n"] == 20
        assert t["collateral"]["mean_delta"] == pytest.approx(other["adapted"] - other["base"])
    assert d["mean_collateral"] == pytest.approx(
        sum(t["collateral"]["mean_delta"] for t in edited) / len(edited)
    )
    assert model.edited() == []


def test_grad_json_has_the_clis_keys(model, planted_items):
    d = laser_rs.grad(model, planted_items, n=40).to_dict()
    assert set(d) == {"n", "loss", "matrices", "seconds", "truncated"}
    assert set(d["matrices"][0]) == {
        "name", "layer", "kind", "shape", "grad_norm", "score", "best_rho", "predicted_delta_loss",
    }


def test_factorized_export_loads_as_the_dense_model_and_the_docs_rebuild_it(
    model, planted_items, tmp_path
):
    safetensors = pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    del safetensors
    out = tmp_path / "factorized"
    d = laser_rs.adapt(
        model, planted_items, out=out, export="factorized", progress=False, select="laser",
        **dict(GRID, factor=["svd", "kmeans:2"]),
    ).to_dict()
    folder = out / "model-factorized"
    assert d["output"] == str(folder)
    f = d["factorized"]
    assert f["factorized_params"] == sum(z["factorized"] for z in d["best"]["sizes"])
    assert f["dense_params"] == sum(z["dense"] for z in d["best"]["sizes"])
    assert (folder / "laser_factorized.json").is_file() and (folder / "README.md").is_file()
    ids = model.encode("a b c d")
    back = laser_rs.Model.load(folder, quiet=True)
    np.testing.assert_allclose(back.logits(ids), model.logits(ids), atol=1e-4)
    # docs/FACTORIZED.md's numpy rebuild, run as written, gives the edited matrices.
    docs = (Path(__file__).resolve().parents[3] / "docs" / "FACTORIZED.md").read_text()
    code = [b.split("```")[0] for b in docs.split("```python\n")[1:]]
    namespace = {}
    exec(code[1], namespace)
    dense = namespace["densify_numpy"](str(folder))
    for e in d["best"]["edits"]:
        np.testing.assert_allclose(dense[e["name"]], model.matrix(e["name"]), atol=1e-5)
    model.restore()
