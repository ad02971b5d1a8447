"""Run the accelerator in the Amaranth simulator (small networks; full models go through Verilator)."""

import numpy as np
from amaranth.sim import Simulator

from ternkws.hw.accelerator import Accelerator

from .pysim_streams import stream_put


def run_pysim(model, config, windows, *, seed=0, stall=0.0, vcd=None):
    """Classify each int8 window (T, n_mfcc) on the RTL; returns [(logits, class, cycles), ...].

    `stall`: probability of an idle input cycle and of a not-ready output cycle (random back-pressure).
    `cycles`: from the cycle `busy` rises (first input value) to the cycle the class beat is taken.
    """
    dut = Accelerator(model, config)
    rng = np.random.default_rng(seed)
    n_classes = model.topology.n_classes
    results = []

    async def producer(ctx):
        for w in windows:
            await stream_put(ctx, dut.i, [int(v) for v in np.asarray(w, np.int64).reshape(-1)], rng=rng, stall=stall)

    async def consumer(ctx):
        cycle, start, values = 0, None, []
        while len(results) < len(windows):
            ready = not (stall and rng.random() < stall)
            ctx.set(dut.o.ready, ready)
            _, _, busy, valid, payload = await ctx.tick().sample(dut.busy, dut.o.valid, dut.o.payload)
            if busy and start is None:
                start = cycle
            if ready and valid:
                values.append(payload.value)
                if payload.last:
                    if len(values) != n_classes + 1:
                        raise AssertionError(f"expected {n_classes} logits then the class, got {len(values)} beats")
                    results.append((np.array(values[:n_classes], np.int64), int(values[-1]), cycle - start))
                    values, start = [], None
            cycle += 1
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return results
