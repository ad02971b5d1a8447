# amaranth: UnusedElaboratable=no
"""The streaming mode's cycle model (hw/streaming_cycles.py) against the RTL's own count: every frame's
cycles (first value to the next frame's first value, input always valid, outputs always ready), exactly,
on random streaming networks (Amaranth simulator) and on the default model (Verilator, slow)."""

from dataclasses import replace

import numpy as np
import pytest

from ternkws.golden.checkpoint import load
from ternkws.hw.layers import CONFIGS
from ternkws.hw.streaming_cycles import frame_cycles, stream_cycles
from ternkws.sim.random_streams import random_stream_case
from ternkws.sim.streaming_pysim import golden_stream, run_stream_pysim

# (seed, mixer, pattern): dense with 1..8 lanes, gathers and scatters, single- and dual-port rings, the
# pool blocked by a decision's classifier (seed 20019: hop 5), grouped 1..8 adds, stored weights
CASES = [(20_000 + s, "ternary", "iid") for s in (0, 2, 4, 19, 23, 31)] + \
        [(24_000 + s, "ternary", "grouped") for s in (0, 1, 5, 9)] + [(22_000 + s, "learned", "iid") for s in (1, 3)]


@pytest.mark.parametrize("seed, mixer, pattern", CASES)
def test_model_equals_rtl_on_random_streams(seed, mixer, pattern):
    model, config, frames, det, hop = random_stream_case(seed, mixer=mixer, pattern=pattern)
    fires = [e[0] for e in golden_stream(model, frames, det, hop).events]
    rtl = run_stream_pysim(model, config, frames, detector=det, hop=hop)
    want = frame_cycles(model, config, len(frames), hop=hop, smooth=det.smooth, fires=fires)
    assert list(rtl.cycles_per_frame) == want


def test_default_model_figures():
    """The figures of the module docstring (equal to the Verilator measurement, test below)."""
    dense, grouped = load("iid"), load()      # the iid twin (dense mixer) and the grouped default
    up5k = CONFIGS["up5k"]
    r = stream_cycles(dense, up5k)
    assert r["frame"] == 9004 and r["frames"][-2:] == [9004] * 2
    assert [r["warmup"].count(v) for v in (67, 1428, 3618, 4720, 5822, 7325)] == [5, 6, 7, 8, 28, 1]
    assert stream_cycles(grouped, up5k)["frame"] == 4128
    assert stream_cycles(dense, replace(up5k, dw_lanes=4))["frame"] == 8638
    assert stream_cycles(grouped, replace(up5k, dw_lanes=4))["frame"] == 3833
    assert stream_cycles(dense, "ecp5")["frame"] == 1218


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["iid", "grouped"])
def test_model_equals_verilator_on_the_default_shape(pattern):
    """The default model (and its grouped twin) on D + T + 25 frames through Verilator (a few minutes)."""
    from ternkws.sim.streaming_verilator import run_stream_rtl
    model = load("iid") if pattern == "iid" else load()
    n = 54 + 128 + 25
    frames = np.clip(np.round(np.random.default_rng(0).normal(0, 40, (n, 64))), -128, 127).astype(np.int8)
    fires = [e[0] for e in golden_stream(model, frames).events]
    rtl, _ = run_stream_rtl(model, CONFIGS["up5k"], frames)
    assert list(rtl.cycles_per_frame) == frame_cycles(model, "up5k", n, fires=fires)
