"""cocotb testbench: whole windows through the accelerator; logits, class and cycles to a JSON file.

Parameters (TERNKWS_TB_PARAMS): windows (path of an .npy (N, T, n_mfcc) int8), n_classes, out (JSON
path written), stall (probability of an idle input / not-ready output cycle), seed, lines (optional:
a file that gets one JSON line per window as soon as it is done: index, logits, class, cycles and
`seconds`, the wall-clock time it took; sim/accelerator_verilator.py tails it). Only the input and
output beats are driven per cycle; the long computation in between runs without Python in the loop.
"""

import json
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import CLOCK_PERIOD_NS, StreamSource, as_signed, start


@cocotb.test()
async def windows(dut):
    p = params()
    data = np.load(p["windows"])
    n_classes = int(p["n_classes"])
    stall = float(p.get("stall", 0.0))
    rng = random.Random(int(p.get("seed", 0)))
    await start(dut)
    dut.o__ready.value = 0
    starts = []

    async def watch_busy():
        while True:
            await RisingEdge(dut.busy)
            starts.append(get_sim_time("ns"))

    cocotb.start_soon(watch_busy())
    results = []
    lines = open(p["lines"], "a") if p.get("lines") else None
    t_window = time.monotonic()
    for n, window in enumerate(data):
        # A source per window, stopped once drained: no Python runs per cycle while the chip computes.
        source = StreamSource(dut, "i", encode=lambda v: int(v) & 0xFF, rng=rng, stall=stall)
        source.send([int(v) for v in window.reshape(-1)])
        await source.wait_idle()
        await source.stop()
        values = []
        while True:
            await FallingEdge(dut.clk)
            if not values and not dut.o__valid.value:
                dut.o__ready.value = 0
                await RisingEdge(dut.o__valid)
                await FallingEdge(dut.clk)
            ready = not (stall and rng.random() < stall)
            dut.o__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.o__valid.value:
                raw = int(dut.o__payload.value)
                values.append(as_signed(raw, 32))
                if (raw >> 32) & 1:
                    end = get_sim_time("ns")
                    break
        assert len(values) == n_classes + 1, f"window {n}: {len(values)} beats, expected {n_classes} logits + class"
        # busy rises just after a clock edge, `end` is read half a cycle after one: whole cycles between
        cycles = int((end - starts[n]) // CLOCK_PERIOD_NS)
        results.append({"logits": values[:n_classes], "class": values[-1], "cycles": cycles})
        if lines is not None:
            now = time.monotonic()
            lines.write(json.dumps({"index": n, **results[-1], "seconds": round(now - t_window, 3)}) + "\n")
            lines.flush()
            t_window = now
        await FallingEdge(dut.clk)
        dut.o__ready.value = 0
    if lines is not None:
        lines.close()
    with open(p["out"], "w") as f:
        json.dump(results, f)
