"""cocotb testbench: an unbounded stream of int8 frames through the streaming accelerator (hw/streaming.py).

Parameters (TERNKWS_TB_PARAMS): frames_in (a file or a named pipe of chunks), results_out (a file or a
named pipe: one JSON line per chunk), n_mfcc, n_classes, hop, smooth,
refractory, threshold, keywords (the parameter ports), stall (chance of an idle input cycle and of a
not-ready output cycle), seed.

A chunk on frames_in is a 4-byte little-endian frame count n, then n * n_mfcc int8 values; n = 0 ends the
run, n = 0xFFFFFFFF pulses `clear` (the stream starts again from the reset state). Each chunk is answered by one JSON line: the decision beats ([value, last]), events ([index, class,
margin]) and `starts` (the cycle each frame's first value was taken) of its frames. Python runs per
cycle only while a frame's values go in and while an output offers beats; otherwise it waits on edges of
`i.ready`, `o.valid`, `e.valid` and `idle` (no Python per cycle while the accelerator computes).
"""

import json
import random
import struct

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import CLOCK_PERIOD_NS, as_signed, start

PARAM_PORTS = ("hop", "smooth", "refractory", "threshold", "keywords")
CLEAR = 0xFFFFFFFF          # a chunk header that pulses `clear` instead (answered by an empty line)


def _read_exact(f, n):
    data = b""
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            raise EOFError(f"frames_in ended after {len(data)} of {n} bytes")
        data += more
    return data


async def _monitor(dut, name, stall, rng, take):
    """Take the beats of stream `name`: Python per cycle only while its valid is high (ready low with
    chance `stall` each of those cycles); `take(raw payload)` for each beat taken."""
    clk = dut.clk
    valid, ready, payload = (getattr(dut, f"{name}__{x}") for x in ("valid", "ready", "payload"))
    while True:
        await ReadOnly()
        if not valid.value:
            await RisingEdge(valid)
        await FallingEdge(clk)
        while True:
            r = not (stall > 0 and rng.random() < stall)
            ready.value = int(r)
            await ReadOnly()
            if r and valid.value:
                take(int(payload.value))
            await FallingEdge(clk)
            if not valid.value:
                ready.value = 0
                break


@cocotb.test()
async def stream(dut):
    p = params()
    n_mfcc, n_classes = int(p["n_mfcc"]), int(p["n_classes"])
    stall = float(p.get("stall", 0.0))
    rng = random.Random(int(p.get("seed", 0)))
    cls_bits = max(1, (n_classes - 1).bit_length())
    for name in PARAM_PORTS:
        getattr(dut, name).value = int(p[name])
    dut.events_only.value = 0
    dut.clear.value = 0
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.e__ready.value = 0
    await start(dut)
    clk = dut.clk
    f_in = open(p["frames_in"], "rb")
    f_out = open(p["results_out"], "w")
    beats, events = [], []
    cocotb.start_soon(_monitor(dut, "o", stall, random.Random(rng.random()),
                               lambda raw: beats.append([as_signed(raw, 32), (raw >> 32) & 1])))
    cocotb.start_soon(_monitor(dut, "e", stall, random.Random(rng.random()),
                               lambda raw: events.append([raw & 0xFFFFFFFF, (raw >> 32) & ((1 << cls_bits) - 1),
                                                          as_signed(raw >> (32 + cls_bits), 37)])))

    def chance():
        return stall > 0 and rng.random() < stall

    while True:
        (count,) = struct.unpack("<I", _read_exact(f_in, 4))
        if count == 0:
            break
        if count == CLEAR:
            await FallingEdge(clk)
            dut.clear.value = 1
            await FallingEdge(clk)
            dut.clear.value = 0
            f_out.write(json.dumps({"beats": [], "events": [], "starts": []}) + "\n")
            f_out.flush()
            continue
        chunk = np.frombuffer(_read_exact(f_in, count * n_mfcc), np.int8).reshape(count, n_mfcc)
        starts = []
        for values in chunk:
            for c, v in enumerate(values):
                await FallingEdge(clk)
                while chance():
                    dut.i__valid.value = 0
                    await FallingEdge(clk)
                dut.i__payload.value = int(v) & 0xFF
                dut.i__valid.value = 1
                await ReadOnly()
                if not dut.i__ready.value:
                    await RisingEdge(dut.i__ready)      # just after a clock edge: taken at the next one
                if c == 0:
                    starts.append(int(get_sim_time("ns") // CLOCK_PERIOD_NS + 1))
                await RisingEdge(clk)
        await FallingEdge(clk)
        dut.i__valid.value = 0
        await ReadOnly()
        if not dut.idle.value:
            await RisingEdge(dut.idle)
        await FallingEdge(clk)
        f_out.write(json.dumps({"beats": beats, "events": events, "starts": starts}) + "\n")
        f_out.flush()
        beats.clear()
        events.clear()
    f_in.close()
    f_out.close()
