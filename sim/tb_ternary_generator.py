"""cocotb testbench: hw/ternary_generator.py against golden.ternary_generator.ternary_entries.

Parameters (sim.cocotb_runner.params()): seeds, density, lanes, and cases: a list of
{"rng_seed", "stall", "first_beats", "segments": [[layer, beats], ...]}. Each case resets the unit,
reads `first_beats` beats of seeds[0] without a restart (the reset state), then for each segment
restarts with `layer` and reads at least `beats` beats (more may arrive before the next restart: all
are checked), with `ready` low in a random `stall` fraction of cycles.
"""

import random

import cocotb
from cocotb.triggers import FallingEdge

from ternkws.golden.ternary_generator import ternary_entries
from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import unpack_lanes
from ternkws.sim.testbench import TB


def _check(segment_beats, seed, density, lanes, what):
    got = [entry for beat in segment_beats for entry in beat]
    want = [int(v) for v in ternary_entries(seed, len(got), density)] if got else []
    if got != want:
        first = next(k for k, (g, w) in enumerate(zip(got, want)) if g != w)
        raise AssertionError(f"{what}: entry {first} (beat {first // lanes}, lane {first % lanes}) is "
                             f"{got[first]}, golden {want[first]}")


@cocotb.test()
async def generator_matches_golden(dut):
    p = params()
    seeds, density, lanes = p["seeds"], p["density"], p["lanes"]
    tb = TB(dut, source=None, decode=lambda raw: unpack_lanes(raw, 2, lanes))
    dut.restart.value = 0
    dut.layer.value = 0
    for number, case in enumerate(p["cases"]):
        rng = random.Random(case["rng_seed"])
        tb.set_stalls(rng, out_stall=case["stall"])
        await tb.reset()
        sink = tb.sink
        await sink.wait_for(case["first_beats"])
        boundaries, layers = [0], [0]
        for layer, beats in case["segments"]:
            await FallingEdge(dut.clk)
            dut.layer.value = layer
            dut.restart.value = 1
            boundaries.append(len(sink.received))
            layers.append(layer)
            await FallingEdge(dut.clk)
            dut.restart.value = 0
            dut.layer.value = rng.randrange(len(seeds))   # layer only matters in restart cycles
            await sink.wait_for(boundaries[-1] + beats)
        received = list(sink.received)                    # what came before the case ends
        boundaries.append(len(received))
        for k, layer in enumerate(layers):
            _check(received[boundaries[k]:boundaries[k + 1]], seeds[layer], density, lanes,
                   f"case {number}, segment {k} (layer {layer}, seed {seeds[layer]})")
        dut._log.info("case %d: %d beats in %d segments match", number, len(received), len(layers))
    await tb.stop()
