# amaranth: UnusedElaboratable=no
"""hw/ternary_mixer.py against its golden twin golden/ternary_mixer.py.

Amaranth-simulator tests: random multi-layer units for every lane count, layer switches between frames,
random and extreme (all -128 / all 127 / all 0) frames, random stalls on input valid and output ready;
exact cycles per frame in steady state; no multiplier in the netlist; parameter errors. cocotb tests
(marker `cocotb`) repeat the bit-exact comparison on Verilator and Icarus.
"""

import random
import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.sim import Simulator

from ternkws.golden.ternary_generator import ternary_matrix
from ternkws.golden.ternary_mixer import acc_bits, ternary_mixer
from ternkws.hw.ternary_mixer import TernaryMixer, cycles_per_frame
from ternkws.sim.cocotb_runner import run_cocotb, simulators_available
from ternkws.sim.pysim_streams import stream_get, stream_put

LANES = (1, 2, 4, 8, 16)


def make_frames(rng, c_in, count, extremes=True):
    frames = [[rng.randrange(-128, 128) for _ in range(c_in)] for _ in range(count)]
    if extremes:
        frames += [[-128] * c_in, [127] * c_in, [0] * c_in]
    return np.array(frames, dtype=np.int64)


def beats_of(frames, lanes):
    return [list(frame[j:j + lanes]) for frame in frames for j in range(0, len(frame), lanes)]


def simulate(dut, groups, *, rng, in_stall=0.0, out_stall=0.0):
    """Stream each (layer, frames) group through `dut`, selecting the layer while `idle` is high.

    Returns (outputs, output cycles): every accepted output value and the cycle it was accepted in."""
    total = sum(len(frames) * dut.layers[layer][1] for layer, frames in groups)
    outputs, cycles = [], []

    async def producer(ctx):
        for layer, frames in groups:
            while not ctx.get(dut.idle):
                await ctx.tick()
            ctx.set(dut.layer, layer)
            await stream_put(ctx, dut.i, beats_of(frames, dut.lanes), rng=rng, stall=in_stall)

    async def consumer(ctx):
        outputs.extend(await stream_get(ctx, dut.o, total, rng=rng, stall=out_stall, cycles=cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return outputs, cycles


def golden_outputs(dut, groups):
    c = [ternary_mixer(frames, dut.layers[layer][2], dut.layers[layer][1], dut.density).ravel()
         for layer, frames in groups]
    return np.concatenate(c)


def random_unit(rng, lanes, max_layers=3):
    layers = [(lanes * rng.randint(1, 4), rng.randint(1, 6), rng.randrange(2 ** 64))
              for _ in range(rng.randint(1, max_layers))]
    density = rng.choice([1 / 3, 1.0, 0.05, rng.uniform(0.01, 1.0)])
    return TernaryMixer(layers, density, lanes)


@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("case", range(3))
def test_matches_golden_under_stalls(lanes, case):
    rng = random.Random(100 * lanes + case)
    dut = random_unit(rng, lanes)
    # Layer switches between groups; each group holds random frames plus the three extreme frames.
    groups = []
    for _ in range(4):
        layer = rng.randrange(len(dut.layers))
        groups.append((layer, make_frames(rng, dut.layers[layer][0], rng.randint(0, 2))))
    in_stall, out_stall = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.4), (0.5, 0.6)][(case + lanes) % 4]
    outputs, _ = simulate(dut, groups, rng=rng, in_stall=in_stall, out_stall=out_stall)
    np.testing.assert_array_equal(np.array(outputs), golden_outputs(dut, groups))


def test_accumulator_reaches_its_bound():
    # A seed whose matrix has a row of all +1 or all -1 (density 1): an all -128 frame drives that
    # output to exactly +-c_in * 128, the acc_bits bound, and the sum of a full-scale frame's rows
    # covers the rest of the range.
    c_in, c_out = 8, 64
    seed = next(s for s in range(1000)
                if (np.abs(ternary_matrix(s, c_out, c_in, 1.0).sum(axis=1)) == c_in).any())
    dut = TernaryMixer([(c_in, c_out, seed), (16, 3, seed + 1)], 1.0, 4)
    assert dut.acc_width == acc_bits(16) == 13
    rng = random.Random(1)
    groups = [(0, make_frames(rng, c_in, 1)), (1, make_frames(rng, 16, 1)), (0, make_frames(rng, c_in, 0))]
    outputs, _ = simulate(dut, groups, rng=rng, in_stall=0.2, out_stall=0.3)
    want = golden_outputs(dut, groups)
    np.testing.assert_array_equal(np.array(outputs), want)
    assert np.abs(want[:4 * c_out]).max() == c_in * 128      # group 0: 1 random + 3 extreme frames


@pytest.mark.parametrize("c_in, c_out, lanes", [
    (16, 5, 1), (16, 3, 2), (16, 4, 4), (8, 6, 8), (16, 1, 16), (32, 2, 16), (64, 64, 16),
])
def test_steady_state_cycles_per_frame(c_in, c_out, lanes):
    # Input always valid, output always ready: frame k+1's first output comes exactly
    # c_out * c_in / lanes + 1 cycles after frame k's.
    dut = TernaryMixer([(c_in, c_out, 5)], 1 / 3, lanes)
    frames = make_frames(random.Random(c_in + lanes), c_in, 5, extremes=False)
    outputs, cycles = simulate(dut, [(0, frames)], rng=random.Random(0))
    np.testing.assert_array_equal(np.array(outputs), golden_outputs(dut, [(0, frames)]))
    firsts = cycles[::c_out]
    periods = [b - a for a, b in zip(firsts, firsts[1:])]
    assert periods == [cycles_per_frame(c_in, c_out, lanes)] * 4 == [dut.cycles_per_frame()] * 4
    assert cycles_per_frame(c_in, c_out, lanes) == c_out * c_in // lanes + 1
    # Within a frame, one output every c_in / lanes cycles.
    assert all(b - a == c_in // lanes for a, b in zip(cycles[:c_out], cycles[1:c_out]))


def test_no_multiplier_in_netlist():
    layers = [(64, 128, 1), (128, 64, 2), (64, 64, 3)]
    text = rtlil.convert(TernaryMixer(layers, 1 / 3, 16), name="ternary_mixer")
    cells = set(re.findall(r"cell \$(\w+)", text))
    assert "add" in cells, "no $add cell found: did the RTLIL format change?"
    assert not cells & {"mul", "macc", "div", "mod", "divfloor", "modfloor", "pow"}, cells
    # The only memory is the frame buffer (2 halves x 8 words of 16 lanes x int8): no weight memory.
    assert re.findall(r"memory width (\d+) size (\d+)", text) == [("128", "16")]
    source = verilog.convert(TernaryMixer(layers, 1 / 3, 16), name="ternary_mixer")
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)     # comments
    source = re.sub(r"\(\*.*?\*\)", "", source, flags=re.S)   # attributes
    source = source.replace("@*", "")                           # always @* sensitivity lists
    assert "*" not in source


def test_idle_and_properties():
    dut = TernaryMixer([(8, 2, 1), (16, 3, 2)], 0.5, 4)
    assert dut.layers == ((8, 2, 1), (16, 3, 2))
    assert dut.density == 0.5 and dut.lanes == 4 and dut.words == (2, 4)
    assert dut.acc_width == acc_bits(16)
    for name in ("layers", "density", "lanes", "acc_width"):
        with pytest.raises(AttributeError):
            setattr(dut, name, 1)
    trace = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        trace.append(ctx.get(dut.idle))
        await stream_put(ctx, dut.i, [[1, 2, 3, 4]])           # half a frame: no longer idle
        trace.append(ctx.get(dut.idle))
        await stream_put(ctx, dut.i, [[5, 6, 7, 8]])
        for _ in range(12):
            trace.append(ctx.get(dut.idle))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert trace[0] == 1 and trace[1] == 0
    # Busy until the 2 outputs (5 cycles of compute + pipeline) are out, then idle for good.
    assert 0 in trace[2:] and trace[-1] == 1
    first_idle = trace.index(1, 2)
    assert all(trace[first_idle:])


@pytest.mark.parametrize("layers, density, lanes, error, match", [
    ([(16, 4, 1), (12, 4, 2)], 1 / 3, 8, ValueError, r"layer 1: lanes=8 does not divide c_in=12"),
    ([(6, 4, 1)], 1 / 3, 4, ValueError, r"layer 0: lanes=4 does not divide c_in=6"),
    ([], 1 / 3, 1, ValueError, "at least one"),
    ([(0, 4, 1)], 1 / 3, 1, ValueError, r"layer 0: c_in must be a positive integer"),
    ([(4, 0, 1)], 1 / 3, 1, ValueError, r"layer 0: c_out must be a positive integer"),
    ([(4, 4)], 1 / 3, 1, TypeError, r"layer 0 must be a \(c_in, c_out, seed\) tuple"),
    ([(4, 4, -1)], 1 / 3, 1, ValueError, r"layer 0: seed must be in \[0, 2\^64\)"),
    ([(4, 4, 1)], 0, 1, ValueError, r"density must be in \(0, 1\]"),
    ([(4, 4, 1)], 1 / 3, 0, ValueError, "lanes must be at least 1"),
    ((4, 4, 1), 1 / 3, 1, TypeError, r"layer 0 must be a \(c_in, c_out, seed\) tuple"),
])
def test_bad_parameters(layers, density, lanes, error, match):
    with pytest.raises(error, match=match):
        TernaryMixer(layers, density, lanes)


# --- cocotb --------------------------------------------------------------------------------------

def cocotb_params(dut, n_cases, seed, steady_state=None):
    rng = random.Random(seed)
    stalls = [(0.0, 0.0), (0.3, 0.3), (0.0, 0.6), (0.6, 0.0)]
    cases = [{"rng_seed": rng.randrange(2 ** 32), "in_stall": stalls[k % 4][0],
              "out_stall": stalls[k % 4][1],
              "groups": [[rng.randrange(len(dut.layers)), rng.randint(0, 3)] for _ in range(4)]}
             for k in range(n_cases)]
    p = {"layers": [list(layer) for layer in dut.layers], "density": dut.density, "lanes": dut.lanes,
         "acc_width": dut.acc_width, "cases": cases}
    if steady_state is not None:
        p["steady_state"] = {"layer": steady_state, "frames": 4}
    return p


COCOTB_CONFIGS = [
    # (simulator, layers, density, lanes): words per frame 1, 4 and 2 in one unit; a one-layer 1-lane
    # unit (zero-width `layer` port); Icarus with 2 lanes.
    ("verilator", [(8, 5, 1), (32, 3, 2 ** 64 - 1), (16, 7, 65536)], 1 / 3, 8),
    ("verilator", [(12, 6, 424242)], 0.6, 1),
    ("icarus", [(8, 4, 3), (4, 9, 4)], 1 / 3, 2),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator, layers, density, lanes", COCOTB_CONFIGS)
def test_cocotb(simulator, layers, density, lanes):
    if simulator not in simulators_available():
        pytest.skip(f"{simulator} is not installed")
    dut = TernaryMixer(layers, density, lanes)
    run_cocotb(dut, "ternkws.sim.tb_ternary_mixer", name="ternary_mixer", simulator=simulator,
               params=cocotb_params(dut, n_cases=4, seed=lanes, steady_state=len(layers) - 1))
