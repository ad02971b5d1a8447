"""cocotb testbench: hw/post_op.py against golden.post_op.post_op.

Parameters (sim.cocotb_runner.params()):
  layers: [[c_out, mult, bias, shift, mult_res or null], ...], acc_width, relu,
  cases: [{"rng_seed", "in_stall", "out_stall", "frames"}, ...] — `frames` frames, each of a random
      layer with random acc / acc_res (a quarter of them at -2^(w-1), 2^(w-1)-1 or 0); the frame's layer
      is on `layer` with its channel-0 beat, a random layer index with the other beats (the unit samples
      `layer` with channel 0 only). Every output is compared with the golden twin.
  throughput (optional): frames for a no-stall run that must take one beat per cycle on `i` and `o`.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from ternkws.golden.post_op import post_op
from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import as_signed, pack_lanes
from ternkws.sim.testbench import TB

LATENCY = 4


def _golden(layer, acc, acc_res, relu):
    c_out, mult, bias, shift, mult_res = layer
    res = np.array([acc_res]) if mult_res is not None else None
    return [int(v) for v in post_op(np.array([acc]), np.array(mult), np.array(bias), shift, res,
                                    None if mult_res is None else np.array(mult_res), relu=relu)[0]]


def _frames(rng, p, count):
    """[(layer, acc list, acc_res list)]"""
    w = p["acc_width"]
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    out = []
    for _ in range(count):
        layer = rng.randrange(len(p["layers"]))
        c_out = p["layers"][layer][0]

        def values():
            kind = rng.random()
            if kind < 0.75:
                return [rng.randint(lo, hi) for _ in range(c_out)]
            return [rng.choice([lo, hi, 0])] * c_out
        out.append((layer, values(), values()))
    return out


def _beats(frames):
    """[(layer on the bus, acc, acc_res)] per beat; layer is meaningful with channel 0 only."""
    return [(layer, acc[c], acc_res[c]) for layer, acc, acc_res in frames for c in range(len(acc))]


@cocotb.test()
async def post_op_matches_golden(dut):
    p = params()
    layers, w, relu = p["layers"], p["acc_width"], p["relu"]

    def encode(beat):
        # called when the source puts the beat on the bus: `layer` changes together with it
        dut.layer.value = beat[0]
        return pack_lanes(beat[1:], w)

    tb = TB(dut, encode=encode, decode=lambda raw: as_signed(raw.to_unsigned(), 8))
    for number, case in enumerate(p["cases"]):
        dut.layer.value = 0
        rng = random.Random(case["rng_seed"])
        tb.set_stalls(rng, case["in_stall"], case["out_stall"])
        await tb.reset()
        frames = _frames(rng, p, case["frames"])
        expected = [v for layer, acc, acc_res in frames for v in _golden(layers[layer], acc, acc_res, relu)]
        beats = []
        for layer, acc, acc_res in frames:
            for c in range(len(acc)):
                bus_layer = layer if c == 0 else rng.randrange(len(layers))
                beats.append((bus_layer, acc[c], acc_res[c]))
        tb.source.send(beats)
        await tb.sink.wait_for(len(expected))
        await tb.cycles(10)          # nothing more may come out
        got = list(tb.sink.received)
        assert len(got) == len(expected), f"case {number}: {len(got)} outputs, expected {len(expected)}"
        bad = [n for n, (g, e) in enumerate(zip(got, expected)) if g != e]
        assert not bad, (f"case {number}: {len(bad)} of {len(got)} outputs differ, first #{bad[0]}: "
                         f"{got[bad[0]]} != golden {expected[bad[0]]}")
        dut._log.info("case %d: %d outputs match", number, len(got))
    await tb.stop()


@cocotb.test()
async def post_op_one_beat_per_cycle(dut):
    p = params()
    if not p.get("throughput"):
        return
    layers, w, relu = p["layers"], p["acc_width"], p["relu"]
    tb = TB(dut, source=None, sink=None)          # driven by hand, edge by edge
    dut.i__valid.value = 0
    dut.o__ready.value = 1
    await tb.reset()
    frames = _frames(random.Random(7), p, p["throughput"])
    expected = [v for layer, acc, acc_res in frames for v in _golden(layers[layer], acc, acc_res, relu)]
    beats = _beats(frames)
    in_edges, out_edges, got, edge, sent = [], [], [], 0, 0
    while len(got) < len(expected):
        await FallingEdge(dut.clk)
        edge += 1
        if sent < len(beats):
            dut.layer.value = beats[sent][0]
            dut.i__valid.value = 1
            dut.i__payload.value = pack_lanes(beats[sent][1:], w)
        else:
            dut.i__valid.value = 0
        await ReadOnly()
        if sent < len(beats) and dut.i__ready.value == 1:
            sent += 1
            in_edges.append(edge)
        if dut.o__valid.value == 1:
            got.append(as_signed(dut.o__payload.value.to_unsigned(), 8))
            out_edges.append(edge)
    assert got == expected
    assert in_edges == list(range(1, len(beats) + 1)), "i not taken every cycle"
    assert out_edges == [e + LATENCY for e in in_edges], "o not one beat per cycle after the latency"
