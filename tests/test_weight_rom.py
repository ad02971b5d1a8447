# amaranth: UnusedElaboratable=no
"""hw/weight_rom.py in the Amaranth simulator against its plain reference (each layer's int8 matrix,
row-major, `lanes` entries per beat): the reset state (layer 0 without a restart), restarts to every
layer in the middle of a stream, random back-pressure (the stream rule checked), several lane counts
and matrix shapes with the int8 extremes; the ROM size; bad parameters. The restart contract it shares
with hw/ternary_generator.py (`o.valid` low in a restart cycle) is tested too."""

import numpy as np
import pytest

from ternkws.hw.weight_rom import WeightRom
from ternkws.sim.pysim_streams import PysimTB

LANES = (1, 2, 4, 8)


def reference(weights, layer, lanes):
    """The beats of `layer` after a restart: its matrix row-major, `lanes` entries per beat."""
    return np.asarray(weights[layer]).reshape(-1, lanes).tolist()


def random_weights(rng, lanes, layers):
    out = []
    for _ in range(layers):
        w = rng.integers(-128, 128, (int(rng.integers(1, 6)), lanes * int(rng.integers(1, 4))))
        w.flat[0], w.flat[-1] = -128, 127
        out.append(w.astype(np.int8))
    return out


def simulate(weights, lanes, first_beats, segments, *, rng, stall):
    """`first_beats` beats from reset (no restart), then per (layer, beats) segment one restart cycle
    (ready low in it, as the mixer does) and `beats` beats; returns the beats of each segment."""
    dut = WeightRom(weights, lanes)
    tb = PysimTB(dut, rng=rng, out_stall=stall)
    received = []

    async def bench(ctx):
        received.append(await tb.get(ctx, dut.o, first_beats))
        for layer, beats in segments:
            ctx.set(dut.layer, layer)
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)
            ctx.set(dut.layer, int(rng.integers(len(weights))))     # only sampled with restart
            received.append(await tb.get(ctx, dut.o, beats))

    tb.run(bench)
    return received


@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("case", range(3))
def test_matches_reference_with_restarts_and_stalls(lanes, case):
    rng = np.random.default_rng(100 * lanes + case)
    weights = random_weights(rng, lanes, int(rng.integers(1, 4)))
    words = [w.size // lanes for w in weights]
    first = int(rng.integers(1, words[0] + 1))
    # every layer at least once, some restarts before the layer's last word, a whole layer each time
    order = list(range(len(weights))) + [int(rng.integers(len(weights))) for _ in range(4)]
    segments = [(n, words[n] if k % 2 else int(rng.integers(1, words[n] + 1))) for k, n in enumerate(order)]
    received = simulate(weights, lanes, first, segments, rng=rng, stall=[0.0, 0.4, 0.8][case])
    assert received[0] == reference(weights, 0, lanes)[:first], "from reset: layer 0"
    for (layer, beats), got in zip(segments, received[1:]):
        assert got == reference(weights, layer, lanes)[:beats], f"layer {layer}, {beats} beats"


def test_bits_counts_every_weight():
    weights = [np.ones((8, 16), np.int8), np.ones((4, 8), np.int8), np.ones((1, 4), np.int8)]
    assert WeightRom(weights, 4).bits == (128 + 32 + 4) * 8
    assert WeightRom(weights, 1).bits == (128 + 32 + 4) * 8


def test_valid_low_in_a_restart_cycle_like_the_generator():
    dut = WeightRom([np.arange(8).reshape(2, 4), np.arange(8).reshape(2, 4)], 2)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(3)
        ctx.set(dut.layer, 1)
        ctx.set(dut.restart, 1)
        _, _, valid = await ctx.tick().sample(dut.o.valid)
        seen.append(valid)

    PysimTB(dut).run(bench)
    assert seen == [0]


@pytest.mark.parametrize("weights, lanes, error, match", [
    ([], 1, ValueError, r"weights must hold at least one \(c_out, c_in\) int8 matrix"),
    (5, 1, TypeError, r"weights must be a sequence of \(c_out, c_in\) int8 matrices"),
    ([np.zeros(8, np.int8)], 1, ValueError,
     r"weights\[0\] must be a non-empty \(c_out, c_in\) matrix, not shape \(8,\)"),
    ([np.zeros((2, 4)), np.zeros((0, 4))], 1, ValueError, r"weights\[1\] must be a non-empty"),
    ([np.full((2, 4), 128)], 1, ValueError, r"weights\[0\] must be int8, in \[-128, 127\], not \[128, 128\]"),
    ([np.full((2, 4), 0.5)], 1, ValueError, r"weights\[0\] must hold integers"),
    ([np.zeros((2, 8), np.int8)], 3, ValueError, r"layer 0: lanes=3 does not divide c_in=8"),
    ([np.zeros((2, 8), np.int8)], 0, ValueError, r"lanes must be at least 1, not 0"),
    ([np.zeros((2, 8), np.int8)], 2.0, TypeError, r"lanes must be a positive integer, not 2\.0"),
])
def test_bad_parameters(weights, lanes, error, match):
    with pytest.raises(error, match=match):
        WeightRom(weights, lanes)
