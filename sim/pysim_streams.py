"""Stream drivers for the Amaranth simulator (`amaranth.sim`): a source and a sink for
`amaranth.lib.stream` ports with random stalls. (The cocotb twins are in sim/streams.py.)

Use them as testbench coroutines: ::

    async def producer(ctx):
        await stream_put(ctx, dut.i, beats, rng=rng, stall=0.3)
    async def consumer(ctx):
        results.extend(await stream_get(ctx, dut.o, count, rng=rng, stall=0.3))
"""

__all__ = ["stream_put", "stream_get", "to_python"]


def to_python(value):
    """A sampled payload as plain Python: int for a plain shape, list for an ArrayLayout, else as is."""
    if isinstance(value, int):
        return value
    try:
        return [to_python(v) for v in value]
    except TypeError:
        return value


async def stream_put(ctx, port, payloads, *, rng=None, stall=0.0):
    """Send each payload on `port` (valid/ready/payload); before each beat, idle for a cycle with
    probability `stall` (repeatedly) when `rng` (a numpy Generator or random.Random) is given."""
    for payload in payloads:
        while rng is not None and stall and rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
        if not isinstance(payload, int):
            payload = [int(v) for v in payload]
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def stream_get(ctx, port, count, *, rng=None, stall=0.0, cycles=None, start_cycle=0):
    """Receive `count` beats from `port`; in each cycle `ready` is low with probability `stall`.

    If `cycles` is a list, the cycle index (counted from the call, plus `start_cycle`) of each accepted
    beat is appended to it."""
    received = []
    cycle = start_cycle
    while len(received) < count:
        ready = not (rng is not None and stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if ready and valid:
            received.append(to_python(payload))
            if cycles is not None:
                cycles.append(cycle)
        cycle += 1
    ctx.set(port.ready, 0)
    return received
