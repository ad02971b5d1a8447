# amaranth: UnusedElaboratable=no
"""hw/grouped_mixer.py against its golden twin (golden/ternary_mixer.py, pattern "grouped").

Amaranth simulator: random multi-layer units for every adds count (1, 2, 4, 8), partial groups and
partial row blocks, layer switches between frames, random and extreme frames, random stalls on input
valid and output ready; exact steady-state cycles per frame (slots / adds + 1); no multiplier and no
weight memory in the netlist; parameter errors.
"""

import random
import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.sim import Simulator

from ternkws.golden.ternary_generator import grouped_matrix, groups_per_row, row_blocks
from ternkws.golden.ternary_mixer import ternary_mixer
from ternkws.hw.grouped_mixer import ADDS as ALL_ADDS, GroupedMixer, cycles_per_frame

ADDS = (1, 2, 4, 8, 16, 32)       # 16 and 32: two and four 8-row blocks at once (a generator each)
from ternkws.sim.pysim_streams import stream_get, stream_put


def make_frames(rng, c_in, count, extremes=True):
    frames = [[rng.randrange(-128, 128) for _ in range(c_in)] for _ in range(count)]
    if extremes:
        frames += [[-128] * c_in, [127] * c_in, [0] * c_in]
    return np.array(frames, dtype=np.int64)


def simulate(dut, groups, *, rng, in_stall=0.0, out_stall=0.0):
    total = sum(len(frames) * dut.layers[layer][1] for layer, frames in groups)
    outputs, cycles = [], []

    async def producer(ctx):
        for layer, frames in groups:
            while not ctx.get(dut.idle):
                await ctx.tick()
            ctx.set(dut.layer, layer)
            await stream_put(ctx, dut.i, [[int(v)] for frame in frames for v in frame], rng=rng, stall=in_stall)

    async def consumer(ctx):
        outputs.extend(await stream_get(ctx, dut.o, total, rng=rng, stall=out_stall, cycles=cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return outputs, cycles


def golden_outputs(dut, groups):
    return np.concatenate([ternary_mixer(frames, dut.layers[layer][2], dut.layers[layer][1], dut.density,
                                         "grouped").ravel() for layer, frames in groups])


def random_unit(rng, adds, max_layers=3):
    layers = [(rng.randint(1, 40), rng.randint(1, 20 * max(1, adds // 8)), rng.randrange(2 ** 64))
              for _ in range(rng.randint(1, max_layers))]
    density = rng.choice([1 / 3, 1.0, 0.25, 1 / 5, rng.uniform(0.05, 1.0)])
    return GroupedMixer(layers, density, adds)


@pytest.mark.parametrize("adds", ADDS)
@pytest.mark.parametrize("case", range(3))
def test_matches_golden_under_stalls(adds, case):
    rng = random.Random(1000 * adds + case)
    dut = random_unit(rng, adds)
    groups = [(rng.randrange(len(dut.layers)), make_frames(rng, 0, 0, extremes=False)) for _ in range(3)]
    groups = [(layer, make_frames(rng, dut.layers[layer][0], rng.randint(1, 3))) for layer, _ in groups]
    out, _ = simulate(dut, groups, rng=rng, in_stall=0.3, out_stall=0.4)
    assert np.array_equal(np.array(out), golden_outputs(dut, groups)), (dut.layers, dut.density)


@pytest.mark.parametrize("adds", ADDS)
def test_default_shapes_bit_exact(adds):
    """The default network's shapes (64/128 channels: partial last groups of 1 and 2 inputs)."""
    rng = random.Random(adds)
    dut = GroupedMixer([(64, 128, 11), (128, 64, 12), (128, 128, 13)], 1 / 3, adds)
    groups = [(n, make_frames(rng, dut.layers[n][0], 1)) for n in (0, 1, 2)]
    out, _ = simulate(dut, groups, rng=rng, in_stall=0.2, out_stall=0.2)
    assert np.array_equal(np.array(out), golden_outputs(dut, groups))


@pytest.mark.parametrize("adds", ADDS)
@pytest.mark.parametrize("shape", [(64, 64), (128, 64), (64, 24)])
def test_cycles_per_frame(adds, shape):
    """Steady state, input always valid and output always ready: slots / adds + 1 cycles per frame, where
    the frame is compute-bound (not by its c_in input beats, nor by draining 8k rows of a step)."""
    c_in, c_out = shape
    k = max(1, adds // 8)
    per_step = groups_per_row(c_in, 1 / 3) * max(1, 8 // adds)
    steps = -(-row_blocks(c_out) // k)
    if per_step < min(8 * k, c_out) + 3 or steps * per_step + 1 < c_in:
        pytest.skip("not compute-bound: the cycle model (tests/test_cycles.py) covers this timing")
    dut = GroupedMixer([(c_in, c_out, 5)], 1 / 3, adds)
    rng = random.Random(0)
    frames = make_frames(rng, c_in, 4, extremes=False)
    out, cycles = simulate(dut, [(0, frames)], rng=rng)
    assert np.array_equal(np.array(out), golden_outputs(dut, [(0, frames)]))
    firsts = cycles[::c_out]
    expect = -(-row_blocks(c_out) // k) * groups_per_row(c_in, 1 / 3) * max(1, 8 // adds) + 1
    assert expect == cycles_per_frame(c_in, c_out, adds, 1 / 3) == dut.cycles_per_frame()
    assert [b - a for a, b in zip(firsts[1:], firsts[2:])] == [expect] * (len(firsts) - 2)


def test_no_multiplier_no_weight_memory():
    layers = [(64, 128, 1), (128, 64, 2)]
    text = rtlil.convert(GroupedMixer(layers, 1 / 3, 8), name="grouped_mixer")
    cells = set(re.findall(r"cell \$(\w+)", text))
    assert "add" in cells, "no $add cell found: did the RTLIL format change?"
    assert not cells & {"mul", "macc", "div", "mod", "divfloor", "modfloor", "pow"}, cells
    # The only memory is the frame buffer: 2 halves x 64 words (G = 43 groups of 3 int8), no weights.
    assert re.findall(r"memory width (\d+) size (\d+)", text) == [("24", "128")]
    source = verilog.convert(GroupedMixer(layers, 1 / 3, 8), name="grouped_mixer")
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"\(\*.*?\*\)", "", source, flags=re.S)
    source = source.replace("@*", "")
    assert "*" not in source


def test_nonzero_slots_only():
    """The matrix the unit computes has one nonzero per full group: its cost is the slot count."""
    w = grouped_matrix(7, 64, 64, 1 / 3)
    assert ((w != 0).sum(axis=1) >= 21).all() and ((w != 0).sum(axis=1) <= 22).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(layers=[(8, 8, 1)], density=1 / 3, adds=3), "1, 2, 4, 8, 16"),
    (dict(layers=[(8, 8, 1)], density=1 / 3, adds=12), "1, 2, 4, 8, 16"),
    (dict(layers=[(8, 8, 1)], density=1 / 3, adds=256), "1, 2, 4, 8, 16"),
    (dict(layers=[(8, 8, 1)], density=1 / 300, adds=8), "density >= 1/128"),
    (dict(layers=[(0, 8, 1)], density=1 / 3, adds=8), "c_in"),
    (dict(layers=[(8, 8, -1)], density=1 / 3, adds=8), "seed"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GroupedMixer(**kwargs)
