"""The density sweep report (sim/density.py): rows evaluated from checkpoints, rows recorded earlier, the
table's mean and spread per density, the cycles per density, and its refusals."""

import json

import pytest

from ternkws.golden.errors import UserError
from ternkws.sim import density


def _row(file, d, seed, acc, **kw):
    return {"file": file, "model_id": "abcd1234", "topology": "3x1x64", "pattern": "grouped", "density": d,
            "seed": seed, "dataset": "data/synth2", "epochs": 30, "teacher": "baseline.npz", "augment": "full",
            "ema": 0.998, "lr": 0.01, "trained_parameters": 9356, "train_minutes": 30.0, "int8_test": acc,
            "float_test": acc, "float_val": acc, "unknown_int8": 0.5, "keywords_int8": 0.85,
            "window_up5k": round(617504 * d * 3), "window_ecp5": 149373, "stream_frame_up5k": 4128,
            "source": "evaluated", **kw}


def test_table_means_each_density_and_compares_with_one_third():
    rows = [_row("a", 1 / 3, 0, 0.80), _row("b", 1 / 3, 1, 0.82), _row("c", 1 / 2, 0, 0.83),
            _row("d", 1 / 3, 2, 0.81, source="recorded", unknown_int8=None)]
    t = density.table(rows)
    assert [p["density"] for p in t] == [1 / 3, 1 / 2] and [p["n"] for p in t] == [3, 1]
    assert t[0]["mean"] == pytest.approx(0.81) and t[0]["max"] - t[0]["min"] == pytest.approx(0.02)
    assert [r["seed"] for r in t[0]["rows"]] == [0, 1, 2] and t[0]["unknown_mean"] == 0.5
    md = density.markdown(rows)
    assert "| 1/3 | 3 | 80.00, 82.00, 81.00* | **81.00** | 2.00 | 81.00 | 50.0 | 617,504 |" in md
    assert "- 1/2: +2.00 points over 1 seed(s), UP5K window cycles x1.50" in md


def test_a_point_of_another_recipe_is_refused():
    rows = [_row("a", 1 / 3, 0, 0.80)]
    density.check_comparable(rows, _row("b", 1 / 2, 0, 0.8))
    for change in ({"epochs": 20}, {"ema": None}, {"augment": "light"}, {"topology": "3x2x64"}):
        with pytest.raises(UserError, match="is not comparable with a .*a sweep varies the density only"):
            density.check_comparable(rows, _row("b", 1 / 2, 0, 0.8, **change))


def test_recorded_rows_come_from_the_rtl_report(tmp_path):
    rtl = tmp_path / "rtl.json"
    rtl.write_text(json.dumps({"checkpoints": [
        {"file": "gone.npz", "model_id": "c98379a0", "topology": "3x1x64", "mixer": "ternary", "pattern": "grouped",
         "density": 1 / 3, "seed": 0, "dataset": "data/synth2", "epochs": 30, "teacher": "baseline.npz",
         "augment": "full", "ema": 0.998, "int8_test_accuracy": 0.8199}]}))
    r = density.recorded_row("gone.npz", rtl)
    assert (r["source"], r["int8_test"], r["seed"], r["unknown_int8"]) == ("recorded", 0.8199, 0, None)
    assert (r["window_up5k"], r["stream_frame_up5k"]) == (617504, 4128)     # the default's counts
    with pytest.raises(UserError, match="no row of that file"):
        density.recorded_row("other.npz", rtl)


def test_cycles_grow_with_the_density():
    import dataclasses

    from ternkws.golden.checkpoint import load
    base = load("default")
    c = [density._cycles(dataclasses.replace(base, topology=dataclasses.replace(base.topology, density=1 / m)))
         for m in (6, 3, 2, 1)]
    assert c[1]["window_up5k"] == 617504 and c[1]["stream_frame_up5k"] == 4128
    for key in ("window_up5k", "stream_frame_up5k", "window_ecp5"):
        assert all(a[key] < b[key] for a, b in zip(c, c[1:])), key


def test_evaluated_points_and_the_reports(tmp_path):
    pytest.importorskip("torch", reason="PyTorch (the optional 'train' extra) is not installed")
    from ternkws.cli import main
    from ternkws.golden.train.tinydata import make_tiny_dataset
    data = make_tiny_dataset(tmp_path / "data", per_class=(6, 2, 2), seed=1)
    files = []
    for m in (1, 2):
        out = tmp_path / f"d{m}.npz"
        assert main(["train", "--data", str(data), "--out", str(out), "--topology", "2x1x8", "--density", f"1/{m}",
                     "--epochs", "1", "--batch", "36", "--threads", "1", "--quiet"]) == 0
        files.append(str(out))
    reports = tmp_path / "reports"
    assert density.main([*files, "--reports", str(reports), "--jobs", "1"]) == 0
    rows = json.loads((reports / "density.json").read_text())["points"]
    assert sorted(r["density"] for r in rows) == [0.5, 1.0] and {r["source"] for r in rows} == {"evaluated"}
    for r in rows:
        assert 0 <= r["int8_test"] <= 1 and r["topology"] == "2x1x8" and r["train_minutes"] is not None
    assert (reports / "density.png").stat().st_size > 0 and "| 1/2 | 1 |" in (reports / "density.md").read_text()
    assert density.main(["--report", "--reports", str(reports)]) == 0          # rewrite from the JSON alone
    learned = tmp_path / "l.npz"
    assert main(["train", "--data", str(data), "--out", str(learned), "--arch", "learned", "--topology", "2x1x8",
                 "--epochs", "1", "--batch", "36", "--threads", "1", "--quiet"]) == 0
    assert density.main([str(learned), "--reports", str(reports)]) == 2        # no ternary 1x1s: refused
    assert len(json.loads((reports / "density.json").read_text())["points"]) == 2   # and nothing lost


def test_density_names():
    from ternkws.golden.topology import density_name
    assert [density_name(d) for d in (1, 0.5, 1 / 3, 1 / 6, 0.4)] == ["1", "1/2", "1/3", "1/6", "0.4"]
