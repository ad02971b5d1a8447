"""cocotb testbench: hw/depthwise_conv.py against golden.depthwise_conv.depthwise_conv.

Parameters (sim.cocotb_runner.params()):
  layers: [[channels, kernel, dilation, weight (C x K nested list), shift], ...], lanes, frames,
  cases: [{"rng_seed", "in_stall", "out_stall", "runs": [[layer, kind], ...]}, ...] — kind is "random",
      "min" (all -128), "max" (all 127) or "zero"; each run waits for `idle`, selects its layer and streams
      `frames` frames; every output value is compared with the golden twin.
  cycle_runs (optional): [layer, ...] — with `i` always valid and `o` always ready, each run must take
      exactly hw.depthwise_conv.cycles_per_run() edges and its output frames must leave C * K / lanes
      cycles apart; the measured counts are logged ("cycles: ...") and written to cycles.json in the
      test folder.
"""

import json
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from ternkws.golden.depthwise_conv import depthwise_conv
from ternkws.hw.depthwise_conv import cycles_per_frame, cycles_per_run
from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import pack_lanes, unpack_lanes
from ternkws.sim.testbench import TB


def _input(rng, frames, channels, kind):
    if kind == "random":
        return [[rng.randrange(-128, 128) for _ in range(channels)] for _ in range(frames)]
    value = {"min": -128, "max": 127, "zero": 0}[kind]
    return [[value] * channels for _ in range(frames)]


def _beats(x, lanes):
    return [frame[j:j + lanes] for frame in x for j in range(0, len(frame), lanes)]


def _golden(layer, x):
    channels, kernel, dilation, weight, shift = layer
    return depthwise_conv(np.array(x), np.array(weight), dilation, shift).astype(int).tolist()


@cocotb.test()
async def depthwise_conv_matches_golden(dut):
    p = params()
    layers, lanes, frames = p["layers"], p["lanes"], p["frames"]
    tb = TB(dut, encode=lambda beat: pack_lanes(beat, 8),
            decode=lambda raw: unpack_lanes(raw.to_unsigned(), 8, lanes))
    dut.layer.value = 0
    for number, case in enumerate(p["cases"]):
        rng = random.Random(case["rng_seed"])
        tb.set_stalls(rng, case["in_stall"], case["out_stall"])
        await tb.reset()
        expected = []
        for layer, kind in case["runs"]:
            x = _input(rng, frames, layers[layer][0], kind)
            # `layer` may change only while the unit is idle (and nothing of ours is in flight)
            await tb.wait_idle()
            dut.layer.value = layer
            tb.source.send(_beats(x, lanes))
            expected += _beats(_golden(layers[layer], x), lanes)
            await tb.sink.wait_for(len(expected))
        # nothing more may come out, and the unit must be idle again
        await tb.cycles(20)
        await ReadOnly()
        assert dut.idle.value == 1, f"case {number}: not idle after its last run"
        got = list(tb.sink.received)
        assert len(got) == len(expected), f"case {number}: {len(got)} output beats, expected {len(expected)}"
        bad = [n for n, (g, e) in enumerate(zip(got, expected)) if g != e]
        assert not bad, (f"case {number}: {len(bad)} of {len(got)} beats differ, first #{bad[0]}: "
                         f"{got[bad[0]]} != golden {expected[bad[0]]}")
        dut._log.info("case %d: %d beats match", number, len(got))
    await tb.stop()


@cocotb.test()
async def depthwise_conv_cycles(dut):
    """Always-valid input, always-ready output: exact run length and frame period."""
    p = params()
    if not p.get("cycle_runs"):
        return
    layers, lanes, frames = p["layers"], p["lanes"], p["frames"]
    tb = TB(dut, source=None, sink=None)          # driven by hand, edge by edge
    dut.i__valid.value = 0
    dut.o__ready.value = 1
    await tb.reset()
    measured = []
    rng = random.Random(1)
    for layer in p["cycle_runs"]:
        channels, kernel, dilation, _, _ = layers[layer]
        dut.layer.value = layer
        x = _input(rng, frames, channels, "random")
        beats = _beats(x, lanes)
        want = _beats(_golden(layers[layer], x), lanes)
        sent, got, out_edges, edge = 0, [], [], 0
        # edge e is the rising edge after the e-th falling edge of this run; the first sees i.valid
        while len(got) < len(want):
            await FallingEdge(dut.clk)
            edge += 1
            if sent < len(beats):
                dut.i__valid.value = 1
                dut.i__payload.value = pack_lanes(beats[sent], 8)
            else:
                dut.i__valid.value = 0
            await ReadOnly()
            if sent < len(beats) and dut.i__ready.value == 1:
                sent += 1
            if dut.o__valid.value == 1:
                got.append(unpack_lanes(dut.o__payload.value.to_unsigned(), 8, lanes))
                out_edges.append(edge)
        assert got == want, f"layer {layer}: values differ from ternkws.golden in the cycle run"
        groups = channels // lanes
        frame_ends = out_edges[groups - 1::groups]
        periods = sorted({b - a for a, b in zip(frame_ends, frame_ends[1:])})
        run = out_edges[-1]
        measured.append({"layer": layer, "channels": channels, "kernel": kernel, "dilation": dilation,
                         "lanes": lanes, "frames": frames, "cycles_per_run": run,
                         "frame_periods": periods})
        dut._log.info("cycles: %s", json.dumps(measured[-1]))
        assert run == cycles_per_run(channels, kernel, dilation, lanes, frames), f"layer {layer}: {run} cycles"
        assert periods in ([], [cycles_per_frame(channels, kernel, lanes)]), f"layer {layer}: periods {periods}"
        await FallingEdge(dut.clk)
        await ReadOnly()
        assert dut.idle.value == 1
        await FallingEdge(dut.clk)
    with open("cycles.json", "w") as f:
        json.dump(measured, f, indent=1)
