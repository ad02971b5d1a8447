"""The every-checkpoint-on-the-RTL report (sim/checkpoints.py): its table and its refusals. The
simulation itself is the one `ternkws sim` runs (tests/test_cli_sim*, the Verilator tests)."""

import pytest

from ternkws.sim import checkpoints


def _row(file, exact, clips=3):
    return {"file": file, "model_id": "abcd1234", "topology": "3x1x64", "mixer": "ternary", "pattern": "grouped",
            "dataset": "data/synth2", "epochs": 30, "teacher": "baseline.npz", "augment": "light", "seed": 2,
            "int8_test_accuracy": 0.8123,
            "config": "up5k", "clips": clips, "bit_exact": exact, "right": 2, "cycles_per_window": [617504],
            "sim_seconds": 12.3, "wall_seconds": 99.0}


def test_table_counts_every_window():
    md = checkpoints.markdown([_row("golden/models/default.npz", 3), _row("build/x.npz", 2)])
    assert "| `golden/models/default.npz` | abcd1234 | 3x1x64 | ternary grouped | data/synth2, 30 ep, light aug, " \
           "seed 2 (teacher baseline.npz) | 81.23 | 3/3 | 2/3 | 617,504 | 12 s |" in md
    assert "**2 checkpoints, 5/6 windows bit-exact.**" in md
    old = {k: v for k, v in _row("old.npz", 3).items() if k not in ("augment", "seed", "teacher")}
    assert "| data/synth2, 30 ep | 81.23 |" in checkpoints.markdown([old])      # a row from before the fields
    half = checkpoints.markdown([{**_row("h.npz", 3), "density": 0.5}, {**_row("l.npz", 3), "mixer": "learned"}])
    assert "| 3x1x64 | ternary grouped 1/2 | data/synth2" in half and "| 3x1x64 | learned | data/synth2" in half


def test_meta_facts_name_the_preset_and_the_seed():
    from dataclasses import asdict

    from ternkws.golden.train.augment_presets import AugmentConfig, preset_name
    facts = checkpoints._meta_facts({"augment": asdict(AugmentConfig.light()), "train_config": {"seed": 1}})
    assert (facts["augment"], facts["seed"], facts["ema"]) == ("light", 1, None)
    ema = checkpoints._meta_facts({"augment": asdict(AugmentConfig()), "train_config": {"seed": 0, "ema": 0.998}})
    assert "full aug, seed 0, EMA 0.998 |" in checkpoints.markdown([{**_row("e.npz", 2), **ema}])
    odd = asdict(AugmentConfig(noise=0.5))
    assert preset_name(odd) is None and checkpoints._meta_facts({"augment": odd})["augment"] == "custom"
    assert checkpoints._meta_facts({})["augment"] is None and preset_name(None) is None


def test_kept_rows_reread_their_checkpoint(tmp_path):
    from ternkws.golden.checkpoint import load
    model = load("default")
    row = {**_row("golden/models/default.npz", 3), "model_id": model.model_id, "augment": None, "seed": None}
    fresh = checkpoints.refresh(row)
    assert fresh["augment"] == "full" and fresh["seed"] == model.meta["train_config"]["seed"]
    assert fresh["density"] == model.topology.density == 1 / 3
    assert checkpoints.refresh({**row, "model_id": "00000000"}) == {**row, "model_id": "00000000"}   # another model now
    assert checkpoints.refresh({**row, "file": str(tmp_path / "gone.npz")})["augment"] is None


def test_no_clips_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        checkpoints.main(["--samples", str(tmp_path), "--reports", str(tmp_path)])
    assert not (tmp_path / "rtl_checkpoints.json").exists()


def _sim_json(tmp_path, model_id):
    import json
    clips = [{"file": f"golden/samples/{w}.wav", "class": c, "bit_exact": e, "cycles": 617504}
             for w, c, e in (("yes", "yes", True), ("no", "go", True), ("up", "up", False))]
    f = tmp_path / "sim.json"
    f.write_text(json.dumps({"model": "golden/models/default.npz", "model_id": model_id, "config": "up5k",
                             "clips": clips, "sim_seconds": 30.0, "wall_seconds": 40.0}))
    return f


def test_rows_from_a_sim_json(tmp_path):
    from ternkws.golden.checkpoint import load
    model = load("default")
    row = checkpoints.from_sim_json(_sim_json(tmp_path, model.model_id), log=lambda s: None)
    assert (row["file"], row["clips"], row["bit_exact"], row["right"]) == ("golden/models/default.npz", 3, 2, 2)
    assert row["model_id"] == model.model_id and row["cycles_per_window"] == [617504]
    assert checkpoints.main(["--from-sim-json", str(tmp_path / "sim.json"), "--reports", str(tmp_path)]) == 1
    assert "| 2/3 | 2/3 |" in (tmp_path / "rtl_checkpoints.md").read_text()


def test_a_sim_json_of_another_model_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="simulated model id 00000000, but golden/models/default.npz is now"):
        checkpoints.from_sim_json(_sim_json(tmp_path, "00000000"))
