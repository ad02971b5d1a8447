"""cocotb testbench: hw/ternary_mixer.py against golden.ternary_mixer.ternary_mixer.

Parameters (sim.cocotb_runner.params()): layers [[c_in, c_out, seed], ...], density, lanes, acc_width,
and cases: a list of {"rng_seed", "in_stall", "out_stall", "groups": [[layer, frames], ...]}. Each group
waits for `idle`, selects its layer and streams `frames` random int8 frames followed by one all -128, one
all 127 and one all 0 frame; every output value is compared with the golden twin.
`steady_state` (optional): {"layer", "frames"}: with no stalls, the cycles between the first outputs of
consecutive frames must equal c_out * c_in / lanes + 1.
"""

import random

import cocotb
import numpy as np

from ternkws.golden.ternary_mixer import ternary_mixer
from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import as_signed, pack_lanes
from ternkws.sim.testbench import TB


def _frames(rng, c_in, count):
    frames = [[rng.randrange(-128, 128) for _ in range(c_in)] for _ in range(count)]
    return frames + [[-128] * c_in, [127] * c_in, [0] * c_in]


def _beats(frames, lanes):
    return [frame[j:j + lanes] for frame in frames for j in range(0, len(frame), lanes)]


def _tb(dut, p):
    return TB(dut, encode=lambda beat: pack_lanes(beat, 8),
              decode=lambda raw: as_signed(raw.to_unsigned(), p["acc_width"]))


@cocotb.test()
async def mixer_matches_golden(dut):
    p = params()
    layers, density, lanes = p["layers"], p["density"], p["lanes"]
    tb = _tb(dut, p)
    dut.layer.value = 0
    for number, case in enumerate(p["cases"]):
        rng = random.Random(case["rng_seed"])
        tb.set_stalls(rng, case["in_stall"], case["out_stall"])
        await tb.reset()
        expected = []
        for layer, count in case["groups"]:
            c_in, c_out, seed = layers[layer]
            await tb.wait_idle(100_000)       # `layer` may change only while the unit is idle
            dut.layer.value = layer
            frames = _frames(rng, c_in, count)
            tb.source.send(_beats(frames, lanes))
            expected.extend(int(v) for v in ternary_mixer(np.array(frames), seed, c_out, density).ravel())
            await tb.sink.wait_for(len(expected))
        got = list(tb.sink.received)
        assert len(got) == len(expected), f"case {number}: {len(got)} outputs, expected {len(expected)}"
        mismatches = [k for k, (g, e) in enumerate(zip(got, expected)) if g != e]
        assert not mismatches, (f"case {number}: {len(mismatches)} outputs differ, first #{mismatches[0]}: "
                                f"{got[mismatches[0]]} != golden {expected[mismatches[0]]}")
        dut._log.info("case %d: %d outputs match", number, len(got))
    await tb.stop()


@cocotb.test()
async def mixer_steady_state_cycles(dut):
    p = params()
    if "steady_state" not in p:
        return
    layer, count = p["steady_state"]["layer"], p["steady_state"]["frames"]
    c_in, c_out, seed = p["layers"][layer]
    tb = _tb(dut, p)                          # no stalls
    dut.layer.value = layer
    await tb.reset()
    frames = [[random.Random(k).randrange(-128, 128) for _ in range(c_in)] for k in range(count)]
    tb.source.send(_beats(frames, lanes=p["lanes"]))
    await tb.sink.wait_for(count * c_out)
    await tb.stop()
    firsts = tb.sink.cycles[::c_out]
    periods = [b - a for a, b in zip(firsts, firsts[1:])]
    want = c_out * (c_in // p["lanes"]) + 1
    assert periods and all(period == want for period in periods), f"frame periods {periods}, expected {want}"
    expected = [int(v) for v in ternary_mixer(np.array(frames), seed, c_out, p["density"]).ravel()]
    assert tb.sink.received == expected
