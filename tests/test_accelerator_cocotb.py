"""The accelerator through cocotb + Verilator (and Icarus when installed): the bundled model on the
bundled clips, a few random networks under back-pressure, and the `sim` / `verilog` commands."""

import json
from pathlib import Path

import numpy as np
import pytest

from ternkws.golden.checkpoint import load
from ternkws.golden.network import forward_int
from ternkws.sim.accelerator_verilator import run_rtl
from ternkws.sim.cocotb_runner import simulators_available
from ternkws.sim.random_networks import random_case
from ternkws.cli import main

SAMPLES = sorted(str(p) for p in (Path(__file__).parent.parent / "golden" / "samples").glob("*.wav"))
pytestmark = pytest.mark.cocotb


@pytest.mark.parametrize("clips", [pytest.param(SAMPLES[:3], id="3-clips"),
                                   pytest.param(SAMPLES, id="every-clip", marks=pytest.mark.slow)])
def test_default_model_on_every_sample_clip(capsys, clips):
    """`ternkws sim --json` on bundled clips (3 in make test, all 12 in make verify-full and make demo):
    every logit equal to the golden int8 model."""
    assert len(SAMPLES) == 12
    assert main(["sim", "--json", *clips]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["all_bit_exact"] is True
    assert len(d["clips"]) == len(clips)
    from ternkws.golden.checkpoint import load
    from ternkws.hw.cycles import cycles_per_window
    from ternkws.hw.layers import CONFIGS
    model_cycles = cycles_per_window(load(), CONFIGS["up5k"])
    for clip in d["clips"]:
        assert clip["bit_exact"] and clip["logits"] == clip["golden_logits"]
        assert clip["class"] == clip["golden_class"]
        assert clip["expected"] == Path(clip["file"]).stem     # the demo shows which samples are right
        assert 0 < clip["cycles"] <= 1_500_000  # the UP5K configuration's target
        # The build reports quote the cycle model's figure: it must be what the RTL does.
        assert clip["cycles"] == model_cycles


@pytest.mark.parametrize("case", [7, 8, pytest.param(9, marks=pytest.mark.slow)])
def test_random_networks_through_verilator(case):
    model, config, windows = random_case(5000 + case)
    results, _ = run_rtl(model, config, windows, stall=0.4, seed=case)
    for (logits, cls, _), w in zip(results, windows):
        ref = forward_int(model.topology, model.int_arrays, w)
        np.testing.assert_array_equal(logits, ref)
        assert cls == int(np.argmax(ref))


@pytest.mark.skipif("icarus" not in simulators_available(), reason="Icarus (iverilog) is not installed")
def test_random_network_through_icarus():
    model, config, windows = random_case(5100)
    results, _ = run_rtl(model, config, windows, simulator="icarus", stall=0.3)
    for (logits, _, _), w in zip(results, windows):
        np.testing.assert_array_equal(logits, forward_int(model.topology, model.int_arrays, w))


def test_verilog_command(tmp_path, capsys):
    out = tmp_path / "acc.v"
    assert main(["verilog", "-o", str(out), "--config", "up5k"]) == 0
    text = out.read_text()
    assert text.startswith("// ternkws_accelerator: ternkws")
    assert f"model id {load().model_id}" in text.splitlines()[1]
    assert "module ternkws_accelerator" in text and "i__payload" in text and "o__payload" in text


@pytest.mark.parametrize("args,message", [
    (["verilog", "-o", "x.v", "--config", "virtex"], "--config must be one of up5k, ecp5"),
    (["sim", "--config", "nope", "x.wav"], "--config must be one of"),
    (["sim", "--stall", "1.5", "x.wav"], "--stall"),
])
def test_bad_arguments(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err
