"""Checkpoint save/load round trip and the errors for files that do not fit."""

import json
import zipfile

import numpy as np
import pytest

from ternkws.golden import checkpoint
from ternkws.golden.network import forward_int
from ternkws.golden.placeholder import placeholder_model
from ternkws.golden.topology import Block, Topology
from ternkws.golden.errors import UserError

SMALL = Topology(n_mfcc=64, prologue_channels=16, prologue_kernel=3, blocks=(Block(8, 5),),
                 epilogue_channels=16, epilogue_kernel=3, final_channels=16)


@pytest.fixture(scope="module")
def small_model():
    return placeholder_model(SMALL, n_calib=4)


def test_round_trip(tmp_path, small_model):
    path = checkpoint.save(small_model, tmp_path / "m.npz")
    m = checkpoint.load(path)
    assert m.topology == SMALL and m.labels == small_model.labels and not m.trained
    assert m.model_id == small_model.model_id
    for k, v in small_model.int_arrays.items():
        assert np.array_equal(m.int_arrays[k], v), k
    xq = np.random.default_rng(0).integers(-128, 128, (128, 64)).astype(np.int8)
    assert np.array_equal(forward_int(m.topology, m.int_arrays, xq),
                          forward_int(small_model.topology, small_model.int_arrays, xq))


def test_bundled_default_loads():
    m = checkpoint.load()
    assert m.topology.name == "3x1x64" and m.topology.mixer == "ternary"
    assert len(m.labels) == 12
    assert "description" in m.meta


def _rewrite(src, dst, edit):
    with np.load(src, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    edit(data)
    np.savez(dst, **data)
    return dst


def _config_edit(fn):
    def edit(data):
        cfg = json.loads(str(data["__config__"]))
        fn(cfg)
        data["__config__"] = np.array(json.dumps(cfg))
    return edit


@pytest.mark.parametrize("edit,message", [
    (_config_edit(lambda c: c.update(version=2)), "version 2"),
    (_config_edit(lambda c: c.update(format="other")), "format"),
    (_config_edit(lambda c: c["topology"].update(prologue_kernel=5)), "prologue.dw has shape"),
    (_config_edit(lambda c: c["topology"].update(prologue_kernel=4)), "odd"),
    (_config_edit(lambda c: c.update(labels=["a", "b"])), "2 labels"),
    (lambda d: d.pop("block1.0.q.mult"), "'block1.0.q.mult' is missing"),
    (lambda d: d.update({"extra": np.zeros(3)}), "does not use"),
    (lambda d: d.update({"prologue.q.dw": d["prologue.q.dw"].astype(np.int32) * 1000}), "int8"),
    (lambda d: d.pop("__config__"), "no __config__"),
])
def test_mismatched_checkpoints_are_refused(tmp_path, small_model, edit, message):
    good = checkpoint.save(small_model, tmp_path / "good.npz")
    bad = _rewrite(good, tmp_path / "bad.npz", edit)
    with pytest.raises(UserError, match=message):
        checkpoint.load(bad)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("hello")
    with pytest.raises(UserError, match="not a ternkws checkpoint"):
        checkpoint.load(p)
    with pytest.raises(UserError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.npz")
    z = tmp_path / "z.npz"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("a.txt", "x")
    with pytest.raises(UserError):
        checkpoint.load(z)
