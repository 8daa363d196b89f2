"""Bad input raises FileNotFoundError, OSError or ValueError with the CLI's message — never a
panic."""

import json

import pytest

import laser_rs
from conftest import PLANTED


def test_missing_files(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        laser_rs.Model.load(tmp_path / "nope.gguf")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        model.eval(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError):
        model.apply(tmp_path / "edits.json")


def test_malformed_inputs_name_the_file_and_line(model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "choices": ["a", "b"], "answer": 0}\n{"prompt": "y", "choices": ["a"], "answer": 0}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: needs at least two choices"):
        model.eval(bad)
    items = [{"prompt": "x", "choices": ["a", "b"], "answer": 0}, {"prompt": "y", "choices": ["a", "b"], "answer": "c"}]
    with pytest.raises(ValueError, match=r"<items sha256:[0-9a-f]+>:2: answer \"c\" is not one of the choices"):
        model.eval(items)
    with pytest.raises(ValueError, match="not a dict"):
        model.eval(["not a dict"])
    with pytest.raises(ValueError):
        laser_rs.Model.load(bad)
    with pytest.raises(ValueError, match="no_such"):
        model.apply([{"name": "model.layers.0.no_such.weight", "rho": 0.1}])
    with pytest.raises(ValueError):
        model.apply([{"name": PLANTED, "rho": 1.5}])


def test_bad_options(model, planted_items, tmp_path):
    with pytest.raises(TypeError, match="unknown option 'topk'"):
        laser_rs.search(model, planted_items, progress=False, topk=3)
    with pytest.raises(ValueError, match="option `rho`"):
        laser_rs.search(model, planted_items, progress=False, rho=[0.0])
    with pytest.raises(ValueError, match="strategy"):
        laser_rs.search(model, planted_items, progress=False, strategy="fastest")
    with pytest.raises(ValueError, match="layers"):
        laser_rs.search(model, planted_items, progress=False, layers="5-9")
    with pytest.raises(ValueError, match="split"):
        model.eval(planted_items, split="train")
    with pytest.raises(ValueError, match="max_memory"):
        laser_rs.search(model, planted_items, progress=False, max_memory="lots")
    with pytest.raises(ValueError, match="leaves nothing for activations"):
        laser_rs.search(model, planted_items, progress=False, max_memory="1K")
    with pytest.raises(ValueError, match="out= is required"):
        laser_rs.adapt(model, planted_items)


def test_refused_settings_write_nothing(model, planted_items, tmp_path):
    out = tmp_path / "adapt"
    with pytest.raises(ValueError):
        laser_rs.adapt(model, planted_items, out=out, progress=False, layers="40-41")
    assert not out.exists()


def test_export_refuses_a_non_empty_folder(model, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        model.export(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_the_options_are_the_clis_flags():
    names = laser_rs.option_names()
    for flag in ("strategy", "top_k", "rho", "factor", "layers", "kinds", "select", "race", "n", "seed"):
        assert flag in names
    assert json.loads(json.dumps(names)) == names


def test_ill_posed_items_are_refused_or_dropped(tmp_path):
    """A choice listed twice has no well-defined answer: refused naming the item, or dropped and
    counted with ``drop_ill_posed``."""
    items = [
        {"prompt": "a", "choices": ["x", "x"], "answer": 0},
        {"prompt": "b", "choices": ["x", "y"], "answer": 1},
    ]
    with pytest.raises(ValueError, match=r"listed twice.*drop-ill-posed"):
        laser_rs.load_task(items)
    task = laser_rs.load_task(items, drop_ill_posed=True)
    assert (len(task), task.ill_posed) == (1, 1)
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert laser_rs.load_task(path, drop_ill_posed=True).ill_posed == 1
    assert "drop_ill_posed" in laser_rs.option_names()
