"""cocotb testbench: an unbounded stream of int8 frames through the streaming accelerator (hw/streaming.py).

Parameters (TERNKWS_TB_PARAMS): frames_in (a file or a named pipe of chunks), results_out (a file or a
named pipe: one JSON line per chunk), n_mfcc, n_classes, delay (D), n_frames (T), hop, smooth,
refractory, threshold, keywords (the parameter ports), stall (chance of an idle input cycle and of a
not-ready output cycle), seed.

A chunk on frames_in is a 4-byte little-endian frame count n, then n * n_mfcc int8 values; n = 0 ends the
run. Each chunk is answered by one JSON line: the decision beats ([value, last]), events ([index, class,
margin]) and `starts` (the cycle each frame's first value was taken) of its frames. Python runs per
cycle only while a frame's values go in and, on the frames that complete a decision (known from D, T
and the hop), until the frame is done; otherwise the testbench waits for `idle` (no Python per cycle).
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


def _read_exact(f, n):
    data = b""
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            raise EOFError(f"frames_in ended after {len(data)} of {n} bytes")
        data += more
    return data


@cocotb.test()
async def stream(dut):
    p = params()
    n_mfcc, n_classes = int(p["n_mfcc"]), int(p["n_classes"])
    delay, n_frames, hop = int(p["delay"]), int(p["n_frames"]), int(p["hop"])
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
    frame = 0

    def chance():
        return stall > 0 and rng.random() < stall

    while True:
        (count,) = struct.unpack("<I", _read_exact(f_in, 4))
        if count == 0:
            break
        chunk = np.frombuffer(_read_exact(f_in, count * n_mfcc), np.int8).reshape(count, n_mfcc)
        beats, events, starts = [], [], []
        for values in chunk:
            for c, v in enumerate(values):
                await FallingEdge(clk)
                while chance():
                    dut.i__valid.value = 0
                    await FallingEdge(clk)
                dut.i__payload.value = int(v) & 0xFF
                dut.i__valid.value = 1
                await ReadOnly()
                while not dut.i__ready.value:
                    await FallingEdge(clk)
                    await ReadOnly()
                if c == 0:
                    starts.append(int(get_sim_time("ns") // CLOCK_PERIOD_NS))
            await FallingEdge(clk)
            dut.i__valid.value = 0
            u = frame - delay - (n_frames - 1)
            if u >= 0 and u % hop == 0:
                # a decision frame: take the logits, the class and the event as they come
                while True:
                    o_ready, e_ready = not chance(), not chance()
                    dut.o__ready.value = int(o_ready)
                    dut.e__ready.value = int(e_ready)
                    await ReadOnly()
                    if o_ready and dut.o__valid.value:
                        raw = int(dut.o__payload.value)
                        beats.append([as_signed(raw, 32), (raw >> 32) & 1])
                    if e_ready and dut.e__valid.value:
                        raw = int(dut.e__payload.value)
                        events.append([raw & 0xFFFFFFFF, (raw >> 32) & ((1 << cls_bits) - 1),
                                       as_signed(raw >> (32 + cls_bits), 37)])
                    if dut.idle.value:
                        break
                    await FallingEdge(clk)
            else:
                await ReadOnly()
                if not dut.idle.value:
                    await RisingEdge(dut.idle)
            frame += 1
        f_out.write(json.dumps({"beats": beats, "events": events, "starts": starts}) + "\n")
        f_out.flush()
    f_in.close()
    f_out.close()
