# amaranth: UnusedElaboratable=no
"""hw/memory_reader.py in the Amaranth simulator, wired to a real synchronous read port: every run
(`start` with `count`) streams exactly memory[0:count], in order, under random back-pressure on `o`
(the stream rule checked); `busy` is high from the cycle after `start` until the last word has been
taken; several widths and depths, count 0 and the whole memory; no word lost however long `o` stalls;
bad parameters."""

import random

import pytest
from amaranth.hdl import Module, Shape, signed, unsigned
from amaranth.lib.memory import Memory

from ternkws.hw.memory_reader import FIFO_DEPTH, MemoryReader
from ternkws.sim.pysim_streams import PysimTB


def random_words(rng, shape, depth):
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - shape.signed)) - 1
    return [rng.choice([lo, hi, rng.randint(lo, hi)]) for _ in range(depth)]


def simulate(shape, depth, words, counts, *, rng, stall):
    """Run the reader once per count in `counts` over a memory holding `words`; returns, per run, the
    words received and `busy` in every cycle from the one of `start` to three after the last word."""
    m = Module()
    m.submodules.memory = memory = Memory(shape=shape, depth=depth, init=words)
    port = memory.read_port(transparent_for=())
    m.submodules.reader = reader = MemoryReader(shape, depth)
    m.d.comb += [port.addr.eq(reader.addr), port.en.eq(reader.en), reader.data.eq(port.data)]
    tb = PysimTB(m, rng=rng, out_stall=stall)
    runs = []

    async def bench(ctx):
        for count in counts:
            ctx.set(reader.count, count)
            ctx.set(reader.start, 1)
            _, _, busy_at_start = await ctx.tick().sample(reader.busy)
            ctx.set(reader.start, 0)
            busy = [busy_at_start]
            got, pending = [], None
            while len(got) < count:
                assert len(busy) < 100 * (depth + 10) / (1 - stall), \
                    f"run of {count}: words lost ({len(got)} came)"
                ready = not (stall and rng.random() < stall)
                ctx.set(reader.o.ready, ready)
                _, _, valid, payload, b = await ctx.tick().sample(reader.o.valid, reader.o.payload, reader.busy)
                busy.append(b)
                if pending is not None:     # the stream rule: an offered word stays until taken
                    assert valid and payload == pending, "o withdrew or changed a word before it was taken"
                pending = None
                if valid and ready:
                    got.append(payload)
                elif valid:
                    pending = payload
            ctx.set(reader.o.ready, 1)
            for _ in range(3):       # nothing more may come out, and the reader is done
                _, _, valid, b = await ctx.tick().sample(reader.o.valid, reader.busy)
                assert not valid, f"run of {count}: a word beyond count"
                busy.append(b)
            runs.append((got, busy))

    tb.run(bench)
    return runs


@pytest.mark.parametrize("shape", [signed(8), unsigned(1), signed(20)], ids=str)
@pytest.mark.parametrize("depth", [1, 5, 64])
@pytest.mark.parametrize("stall", [0.0, 0.5, 0.9])
def test_streams_the_first_count_words(shape, depth, stall):
    rng = random.Random(depth * 10 + Shape.cast(shape).width + int(10 * stall))
    words = random_words(rng, shape, depth)
    counts = [depth, 0, 1, rng.randint(0, depth), depth]
    for count, (got, busy) in zip(counts, simulate(shape, depth, words, counts, rng=rng, stall=stall)):
        assert got == words[:count], f"run of {count} words"
        # busy: low in the cycle of `start` (idle), high in every cycle after it up to the one whose edge
        # takes the last word, low from then on (count 0: never high)
        assert busy[0] == 0 and busy[-3:] == [0, 0, 0], f"run of {count} words: busy {busy}"
        assert busy[1:-3] == [1] * (len(busy) - 4), f"run of {count} words: busy {busy}"


def test_no_word_is_lost_while_o_stalls():
    """Ready low for many cycles at a time: the FIFO fills, reads stop, nothing is dropped or repeated."""
    rng = random.Random(7)
    depth = 4 * FIFO_DEPTH + 3
    words = random_words(rng, signed(8), depth)
    (got, busy), = simulate(signed(8), depth, words, [depth], rng=rng, stall=0.97)
    assert got == words
    assert len(busy) > 10 * depth                 # it really stalled


@pytest.mark.parametrize("depth, error, match", [
    (0, ValueError, r"depth must be >= 1, not 0"),
    (-3, ValueError, r"depth must be >= 1, not -3"),
    (4.0, TypeError, r"depth must be an integer, not 4\.0"),
    ("8", TypeError, r"depth must be an integer, not '8'"),
])
def test_bad_parameters(depth, error, match):
    with pytest.raises(error, match=match):
        MemoryReader(signed(8), depth)
