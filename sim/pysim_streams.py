"""Stream drivers for the Amaranth simulator (`amaranth.sim`): a source and a sink for
`amaranth.lib.stream` ports with random stalls. (The cocotb twins are in sim/streams.py.)

Use them as testbench coroutines: ::

    async def producer(ctx):
        await stream_put(ctx, dut.i, beats, rng=rng, stall=0.3)
    async def consumer(ctx):
        results.extend(await stream_get(ctx, dut.o, count, rng=rng, stall=0.3))

or through `PysimTB`, which holds the random generator, the stall chances and the clock of a test: ::

    tb = PysimTB(dut, rng=random.Random(0), in_stall=0.3, out_stall=0.5)
    async def producer(ctx):
        await tb.put(ctx, dut.i, beats)
    async def consumer(ctx):
        results.extend(await tb.get(ctx, dut.o, count))
    tb.run(producer, consumer)
"""

import random

from amaranth.sim import Simulator

__all__ = ["stream_put", "stream_get", "to_python", "PysimTB"]


def to_python(value):
    """A sampled payload as plain Python: int for a plain shape, list for an ArrayLayout, else as is."""
    if isinstance(value, int):
        return value
    try:
        return [to_python(v) for v in value]
    except TypeError:
        return value


async def stream_put(ctx, port, payloads, *, rng=None, stall=0.0, wait_ready=True):
    """Send each payload on `port` (valid/ready/payload); before each beat, idle for a cycle with
    probability `stall` (repeatedly) when `rng` (a numpy Generator or random.Random) is given.
    `wait_ready=False` offers each beat for one cycle whatever `ready` says (a UART receiver's output:
    a byte not taken is lost)."""
    for payload in payloads:
        while rng is not None and stall and rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
        if not isinstance(payload, int):
            payload = [int(v) for v in payload]
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        if wait_ready:
            await ctx.tick().until(port.ready)
        else:
            await ctx.tick()
    ctx.set(port.valid, 0)


async def stream_get(ctx, port, count, *, rng=None, stall=0.0, cycles=None, start_cycle=0):
    """Receive `count` beats from `port`; in each cycle `ready` is low with probability `stall`.

    Checks the stream rule on the way: a beat offered (valid) and not taken is offered again, unchanged,
    in the next cycle. If `cycles` is a list, the cycle index (counted from the call, plus `start_cycle`)
    of each accepted beat is appended to it."""
    received = []
    cycle = start_cycle
    pending = None                 # a beat offered but not taken in the previous cycle
    while len(received) < count:
        ready = not (rng is not None and stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        beat = to_python(payload) if valid else None
        if pending is not None and beat != pending:
            name = getattr(port.valid, "name", "stream")
            raise AssertionError(f"{name}: the beat {pending} offered in cycle {cycle - 1} was withdrawn or "
                                 f"changed ({beat}) before it was taken")
        pending = None
        if ready and valid:
            received.append(beat)
            if cycles is not None:
                cycles.append(cycle)
        elif valid:
            pending = beat
        cycle += 1
    ctx.set(port.ready, 0)
    return received


class PysimTB:
    """The Amaranth-simulator twin of sim/testbench.py's TB: one random generator `rng` for a producer
    with random idle cycles (`put`, chance `in_stall` before each beat) and a consumer with random
    back-pressure (`get`, or `consume` in the background; chance `out_stall` of ready low per cycle), a
    clock of `period` seconds and `run`. `cycle` counts the cycles `consume` has seen."""

    def __init__(self, dut, *, rng=None, in_stall=0.0, out_stall=0.0, period=1e-6):
        self.dut = dut
        self.rng = rng if rng is not None else random.Random(0)
        self.in_stall, self.out_stall, self.period = in_stall, out_stall, period
        self.cycle = 0

    async def put(self, ctx, port, payloads, *, wait_ready=True):
        """stream_put with this bench's generator and `in_stall`."""
        await stream_put(ctx, port, payloads, rng=self.rng, stall=self.in_stall, wait_ready=wait_ready)

    async def get(self, ctx, port, count, *, cycles=None, start_cycle=0):
        """stream_get with this bench's generator and `out_stall` (the stream rule checked)."""
        return await stream_get(ctx, port, count, rng=self.rng, stall=self.out_stall, cycles=cycles,
                                start_cycle=start_cycle)

    async def consume(self, ctx, port, on_beat):
        """Take beats from `port` forever (a background testbench): ready low with chance `out_stall`
        each cycle, `on_beat(payload)` for every beat taken, after `cycle` has counted its cycle."""
        while True:
            ready = not (self.out_stall and self.rng.random() < self.out_stall)
            ctx.set(port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
            self.cycle += 1
            if ready and valid:
                on_beat(to_python(payload))

    def run(self, *testbenches, background=()):
        """Simulate `dut` with a clock until every testbench in `testbenches` has returned; those in
        `background` run alongside and are dropped then."""
        sim = Simulator(self.dut)
        sim.add_clock(self.period)
        for testbench in background:
            sim.add_testbench(testbench, background=True)
        for testbench in testbenches:
            sim.add_testbench(testbench)
        sim.run()
