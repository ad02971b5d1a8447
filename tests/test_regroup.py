# amaranth: UnusedElaboratable=no
"""hw/regroup.py in the Amaranth simulator against a plain-Python regrouping: element order kept for
gather, scatter and pass-through, several element shapes, random idle cycles on `i` and back-pressure on
`o` (the stream rule checked on `o`); the no-bubble throughput of its docstring; bad parameters."""

import random

import pytest
from amaranth.hdl import ClockDomain, Module, Shape, signed, unsigned

from ternkws.hw.regroup import Regroup
from ternkws.sim.pysim_streams import PysimTB


def reference(beats, n_out):
    """The same elements, `n_out` per beat, in order."""
    flat = [v for beat in beats for v in beat]
    return [flat[k:k + n_out] for k in range(0, len(flat), n_out)]


def random_beats(rng, shape, n_in, count):
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - shape.signed)) - 1
    beats = [[rng.randint(lo, hi) for _ in range(n_in)] for _ in range(count)]
    return beats + [[lo] * n_in, [hi] * n_in]        # the extremes of the shape as well


def simulate(dut, beats, *, rng, in_stall=0.0, out_stall=0.0):
    """(output beats, cycles of the input transfers, cycles of the output transfers)."""
    n_out_beats = len(beats) * dut.n_in // dut.n_out
    got, in_cycles, out_cycles = [], [], []
    top = Module()                   # n_in == n_out is pure wiring: the bench brings the clock domain
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    tb = PysimTB(top, rng=rng, in_stall=in_stall, out_stall=out_stall)

    async def producer(ctx):
        cycle = 0
        for beat in beats:
            while in_stall and rng.random() < in_stall:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.payload, beat)
            ctx.set(dut.i.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    in_cycles.append(cycle)
                cycle += 1
                if ready:
                    break
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        got.extend(await tb.get(ctx, dut.o, n_out_beats, cycles=out_cycles))
        for _ in range(8):           # nothing more may come out
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "o offered a beat beyond the input's elements"

    tb.run(producer, consumer)
    return got, in_cycles, out_cycles


GROUPINGS = [(1, 1), (4, 4), (1, 4), (2, 8), (3, 6), (4, 1), (8, 2), (6, 3), (1, 16), (16, 1)]
SHAPES = [signed(8), unsigned(1), unsigned(5), signed(13)]


@pytest.mark.parametrize("n_in, n_out", GROUPINGS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference_under_stalls(shape, n_in, n_out):
    rng = random.Random(n_in * 100 + n_out * 7 + Shape.cast(shape).width)
    k = max(n_in, n_out) // n_in                        # whole output beats
    beats = random_beats(rng, shape, n_in, k * rng.randint(3, 8) - 2)
    for in_stall, out_stall in [(0.0, 0.0), (0.4, 0.0), (0.0, 0.6), (0.5, 0.5)]:
        dut = Regroup(shape, n_in, n_out)
        assert (dut.shape, dut.n_in, dut.n_out) == (Shape.cast(shape), n_in, n_out)
        got, _, _ = simulate(dut, beats, rng=rng, in_stall=in_stall, out_stall=out_stall)
        assert got == reference(beats, n_out), f"stalls in {in_stall}, out {out_stall}"


def test_equal_widths_are_wiring():
    """n_in == n_out: each beat passes in the cycle it is offered, under any stalls."""
    rng = random.Random(3)
    beats = random_beats(rng, signed(8), 4, 20)
    got, in_cycles, out_cycles = simulate(Regroup(signed(8), 4, 4), beats, rng=rng, in_stall=0.5, out_stall=0.5)
    assert got == beats and in_cycles == out_cycles


@pytest.mark.parametrize("n_in, n_out", [(1, 4), (2, 8), (3, 6)])
def test_gather_takes_a_beat_every_cycle(n_in, n_out):
    """Gathering costs no bubble: with `o` always ready, `i` is taken in every cycle."""
    beats = random_beats(random.Random(1), signed(8), n_in, 6 * n_out // n_in - 2)
    got, in_cycles, out_cycles = simulate(Regroup(signed(8), n_in, n_out), beats, rng=random.Random(0))
    assert got == reference(beats, n_out)
    assert in_cycles == list(range(len(beats)))
    k = n_out // n_in
    assert out_cycles == [c + 1 for c in in_cycles[k - 1::k]]     # a full beat leaves the next cycle


@pytest.mark.parametrize("n_in, n_out", [(4, 1), (8, 2), (6, 3)])
def test_scatter_sends_a_beat_every_cycle(n_in, n_out):
    """Scattering emits k = n_in / n_out beats per input beat and takes the next input beat in the cycle
    the last piece leaves: with `i` always valid and `o` always ready, `o` moves in every cycle."""
    beats = random_beats(random.Random(2), signed(8), n_in, 5)
    got, in_cycles, out_cycles = simulate(Regroup(signed(8), n_in, n_out), beats, rng=random.Random(0))
    assert got == reference(beats, n_out)
    k = n_in // n_out
    assert out_cycles == list(range(1, 1 + len(beats) * k))
    assert in_cycles == [0] + [k * j for j in range(1, len(beats))]


@pytest.mark.parametrize("n_in, n_out, error, match", [
    (0, 4, ValueError, r"n_in must be a positive integer, not 0"),
    (4, -2, ValueError, r"n_out must be a positive integer, not -2"),
    (2.0, 4, TypeError, r"n_in must be a positive integer, not 2\.0"),
    (4, True, TypeError, r"n_out must be a positive integer, not True"),
    (4, 6, ValueError, r"one of n_in=4 and n_out=6 must divide the other"),
    (3, 2, ValueError, r"one of n_in=3 and n_out=2 must divide the other"),
])
def test_bad_parameters(n_in, n_out, error, match):
    with pytest.raises(error, match=match):
        Regroup(signed(8), n_in, n_out)
