"""The every-checkpoint-on-the-RTL report (sim/checkpoints.py): its table and its refusals. The
simulation itself is the one `ternkws sim` runs (tests/test_cli_sim*, the Verilator tests)."""

import pytest

from ternkws.sim import checkpoints


def _row(file, exact, clips=3):
    return {"file": file, "model_id": "abcd1234", "topology": "3x1x64", "mixer": "ternary", "pattern": "grouped",
            "dataset": "data/synth2", "epochs": 30, "teacher": "baseline.npz", "int8_test_accuracy": 0.8123,
            "config": "up5k", "clips": clips, "bit_exact": exact, "right": 2, "cycles_per_window": [617504],
            "sim_seconds": 12.3, "wall_seconds": 99.0}


def test_table_counts_every_window():
    md = checkpoints.markdown([_row("golden/models/default.npz", 3), _row("build/x.npz", 2)])
    assert "| `golden/models/default.npz` | abcd1234 | 3x1x64 | ternary grouped | data/synth2, 30 (teacher " \
           "baseline.npz) | 81.23 | 3/3 | 2/3 | 617,504 | 12 s |" in md
    assert "**2 checkpoints, 5/6 windows bit-exact.**" in md


def test_no_clips_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        checkpoints.main(["--samples", str(tmp_path), "--reports", str(tmp_path)])
    assert not (tmp_path / "rtl_checkpoints.json").exists()
