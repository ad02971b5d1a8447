# amaranth: UnusedElaboratable=no
"""hw/ternary_generator.py against its golden twin golden/ternary_generator.py.

Amaranth-simulator tests sweep lanes, seeds, densities, layer switches and restarts in the middle of a
stream under random back-pressure; cocotb tests (marker `cocotb`) run the same contract on Verilator
and, when installed, Icarus.
"""

import random
import re

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from ternkws.golden.ternary_generator import seed_state, ternary_entries, threshold
from ternkws.hw.ternary_generator import TernaryGenerator
from ternkws.sim.cocotb_runner import run_cocotb, simulators_available

LANES = (1, 2, 4, 8, 16)


def simulate(seeds, density, lanes, first_beats, segments, stall, rng):
    """Run the generator: `first_beats` beats from reset (no restart), then per (layer, beats) segment
    one restart cycle and `beats` accepted beats, `ready` low with probability `stall` each cycle.
    Returns the entries received in each segment (the reset segment first)."""
    dut = TernaryGenerator(seeds, density, lanes)
    received = []

    async def read_beats(ctx, count):
        entries = []
        while len(entries) < count * lanes:
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            ctx.set(dut.layer, rng.randrange(len(seeds)))   # ignored outside restart cycles
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            assert valid, "o.valid must be high outside restart cycles"
            if ready:
                entries.extend(int(v) for v in payload)
        return entries

    async def testbench(ctx):
        received.append(await read_beats(ctx, first_beats))
        for layer, beats in segments:
            ctx.set(dut.layer, layer)
            ctx.set(dut.restart, 1)
            ctx.set(dut.o.ready, rng.random() < 0.5)       # a restart cycle transfers nothing
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "o.valid must be low in a restart cycle"
            ctx.set(dut.restart, 0)
            received.append(await read_beats(ctx, beats))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return received


def random_density(rng):
    return rng.choice([1 / 3, 1.0, 1e-3, 0.5, rng.uniform(0.01, 1.0)])


@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("case", range(3))
def test_matches_golden_with_restarts_and_stalls(lanes, case):
    rng = random.Random(1000 * lanes + case)
    seeds = [rng.choice([0, 1, 2 ** 64 - 1, rng.randrange(2 ** 64)]) for _ in range(rng.randint(1, 4))]
    density = random_density(rng)
    first_beats = rng.randint(1, 24)
    # Segments of random length: each ends with a restart in the middle of the stream.
    segments = [(rng.randrange(len(seeds)), rng.randint(1, 24)) for _ in range(5)]
    received = simulate(seeds, density, lanes, first_beats, segments, stall=0.35, rng=rng)
    for (layer, beats), entries in zip([(0, first_beats), *segments], received):
        want = ternary_entries(seeds[layer], beats * lanes, density)
        np.testing.assert_array_equal(np.array(entries), want, err_msg=f"layer {layer}, {beats} beats")


def test_long_stream_crosses_many_leaps():
    # 400 beats of 16 lanes = 51,200 sequence bits: the leap-forward network far from its start state.
    rng = random.Random(7)
    (entries,) = simulate([12345], 1 / 3, 16, 400, [], stall=0.0, rng=rng)
    np.testing.assert_array_equal(np.array(entries), ternary_entries(12345, 400 * 16, 1 / 3))


def test_density_one_has_no_zeros_and_tiny_density_is_sparse():
    rng = random.Random(3)
    (dense,) = simulate([9], 1.0, 8, 64, [], stall=0.0, rng=rng)
    assert 0 not in dense
    (sparse,) = simulate([9], 1e-3, 8, 64, [], stall=0.0, rng=rng)
    assert np.count_nonzero(sparse) < len(sparse) // 20


def test_restart_to_same_layer_repeats_the_matrix():
    rng = random.Random(5)
    received = simulate([42, 43], 1 / 3, 4, 10, [(0, 10), (0, 10), (1, 3), (0, 10)], stall=0.5, rng=rng)
    assert received[0] == received[1] == received[2] == received[4]


def test_properties_and_constants():
    dut = TernaryGenerator([3, 5], 0.25, 4)
    assert dut.seeds == (3, 5)
    assert dut.density == 0.25
    assert dut.lanes == 4
    assert dut.threshold == threshold(0.25) == 32
    assert dut.start_states == (seed_state(3), seed_state(5))
    for name in ("seeds", "density", "lanes"):
        with pytest.raises(AttributeError):
            setattr(dut, name, 1)
    rtlil.convert(dut, name="ternary_generator")


def test_no_memory_in_netlist():
    text = rtlil.convert(TernaryGenerator([1, 2, 3], 1 / 3, 16), name="ternary_generator")
    cells = set(re.findall(r"cell \\?\$(\w+)", text))
    assert not {c for c in cells if c.startswith("mem")}, cells
    assert "mul" not in cells


@pytest.mark.parametrize("seeds, density, lanes, error, match", [
    ([], 1 / 3, 1, ValueError, "at least one seed"),
    (5, 1 / 3, 1, TypeError, "sequence"),
    ("12", 1 / 3, 1, TypeError, "sequence"),
    ([1], 1 / 3, 0, ValueError, "lanes must be at least 1"),
    ([1], 1 / 3, 2.0, TypeError, "lanes must be a positive integer"),
    ([1], 0.0, 1, ValueError, r"density must be in \(0, 1\]"),
    ([1], 1.5, 1, ValueError, r"density must be in \(0, 1\]"),
    ([1], "dense", 1, TypeError, "density must be a real number"),
    ([1, -1], 1 / 3, 1, ValueError, r"seeds\[1\] must be in \[0, 2\^64\)"),
    ([2 ** 64], 1 / 3, 1, ValueError, r"seeds\[0\] must be in \[0, 2\^64\)"),
    ([1.5], 1 / 3, 1, TypeError, r"seeds\[0\] must be an integer"),
])
def test_bad_parameters(seeds, density, lanes, error, match):
    with pytest.raises(error, match=match):
        TernaryGenerator(seeds, density, lanes)


# --- cocotb --------------------------------------------------------------------------------------

def cocotb_params(seeds, density, lanes, n_cases, seed):
    rng = random.Random(seed)
    cases = [{"rng_seed": rng.randrange(2 ** 32), "stall": rng.choice([0.0, 0.3, 0.6]),
              "first_beats": rng.randint(1, 30),
              "segments": [[rng.randrange(len(seeds)), rng.randint(1, 40)] for _ in range(6)]}
             for _ in range(n_cases)]
    return {"seeds": list(seeds), "density": density, "lanes": lanes, "cases": cases}


COCOTB_CONFIGS = [
    # (simulator, seeds, density, lanes): a multi-layer 16-lane unit (the widest leap-forward network)
    # on Verilator; on Icarus a one-layer 1-lane unit (its `layer` port has zero width in Amaranth) and
    # a 4-lane one (Icarus builds take seconds, Verilator builds 10-50 s).
    ("verilator", [1, 2 ** 64 - 1, 65544], 1 / 3, 16),
    ("icarus", [987654321], 0.2, 1),
    ("icarus", [0, 77], 0.75, 4),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator, seeds, density, lanes", COCOTB_CONFIGS)
def test_cocotb(simulator, seeds, density, lanes):
    if simulator not in simulators_available():
        pytest.skip(f"{simulator} is not installed")
    run_cocotb(TernaryGenerator(seeds, density, lanes), "ternkws.sim.tb_ternary_generator",
               name="ternary_generator", simulator=simulator,
               params=cocotb_params(seeds, density, lanes, n_cases=4, seed=lanes))


@pytest.mark.cocotb
def test_run_cocotb_reports_failures():
    # Same design as the first configuration (its build is reused), but the testbench is told other
    # seeds: run_cocotb must raise AssertionError naming the failed cocotb test.
    simulator, seeds, density, lanes = COCOTB_CONFIGS[0]
    wrong = cocotb_params([s + 1 for s in seeds], density, lanes, n_cases=1, seed=0)
    with pytest.raises(AssertionError, match=r"generator_matches_golden: .*entry"):
        run_cocotb(TernaryGenerator(seeds, density, lanes), "ternkws.sim.tb_ternary_generator",
                   name="ternary_generator", simulator=simulator, params=wrong)
