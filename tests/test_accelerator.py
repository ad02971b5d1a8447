# amaranth: UnusedElaboratable=no
"""The whole accelerator against the golden int8 model, bit for bit, under random back-pressure."""

import numpy as np
import pytest

from ternkws.golden.network import forward_int
from ternkws.hw.accelerator import CONFIGS, Accelerator, AcceleratorConfig, check_config, schedule
from ternkws.sim.accelerator_pysim import run_pysim
from ternkws.sim.random_networks import random_case

N_RANDOM = 50


def check_case(model, config, windows, *, seed, stall):
    results = run_pysim(model, config, windows, seed=seed, stall=stall)
    assert len(results) == len(windows)
    for (logits, cls, cycles), w in zip(results, windows):
        ref = forward_int(model.topology, model.int_arrays, w)
        np.testing.assert_array_equal(logits, ref)
        assert cls == int(np.argmax(ref))
        assert cycles > 0
    return results


@pytest.mark.parametrize("case", range(N_RANDOM))
def test_random_network_bit_exact(case):
    model, config, windows = random_case(1000 + case)
    check_case(model, config, windows, seed=case, stall=[0.0, 0.3, 0.6][case % 3])


@pytest.mark.parametrize("case", range(N_RANDOM))
def test_random_grouped_network_bit_exact(case):
    """Networks of the grouped pattern on the grouped mixer (1 to 32 rows per cycle)."""
    model, config, windows = random_case(5000 + case, pattern="grouped")
    assert model.topology.pattern == "grouped" and config.mixer_lanes in (1, 2, 4, 8, 16, 32)
    check_case(model, config, windows, seed=case, stall=[0.0, 0.3, 0.6][case % 3])


def test_campaign_reports_a_mismatch(monkeypatch):
    """The campaign runner flags a wrong RTL result (it is not a test that cannot fail)."""
    import ternkws.sim.campaign as campaign
    import ternkws.sim.accelerator_pysim as pysim
    real = pysim.run_pysim

    def corrupted(*args, **kw):
        results = real(*args, **kw)
        logits, cls, cycles = results[0]
        logits = logits.copy()
        logits[0] += 1
        return [(logits, cls, cycles)] + results[1:]

    monkeypatch.setattr(pysim, "run_pysim", corrupted)
    r = campaign.run_case(0)
    assert not r["ok"] and r["mismatches"]


@pytest.mark.parametrize("case", range(10))
def test_random_stored_weights_network_bit_exact(case):
    """The stored-weights baseline (learned int8 1x1 read from ROM) through the same accelerator."""
    model, config, windows = random_case(3000 + case, mixer="learned")
    check_case(model, config, windows, seed=case, stall=[0.0, 0.4][case % 2])


def test_schedule_of_default_model():
    from ternkws.golden.checkpoint import load
    passes = schedule(load())
    kinds = [(p.kind, p.layer.name, p.src, p.dst) for p in passes]
    assert kinds == [
        ("main", "prologue", 0, 1),
        ("res", "block1.0", 1, -1), ("main", "block1.0", 1, 0),
        ("res", "block2.0", 0, -1), ("main", "block2.0", 0, 1),
        ("res", "block3.0", 1, -1), ("main", "block3.0", 1, 0),
        ("main", "epilogue", 0, 1),
        ("main", "final", 1, -1),
    ]


def test_bad_lanes_are_refused_in_words():
    import dataclasses

    from ternkws.golden.checkpoint import load, resolve
    # the dense (iid) mixer takes mixer_lanes entries of a row per cycle: they must divide c_in
    with pytest.raises(ValueError, match="mixer_lanes=3 does not divide the 64 input channels of prologue"):
        Accelerator(load(resolve("iid")), AcceleratorConfig("x", 3, 1))
    grouped = load()
    assert grouped.topology.pattern == "grouped"
    # the grouped mixer serves rows, not inputs: 3 lanes run it at 2 rows per cycle
    assert Accelerator(grouped, AcceleratorConfig("x", 3, 1)).plan.pattern == "grouped"
    with pytest.raises(ValueError, match="dw_lanes=5"):
        check_config(load(), AcceleratorConfig("x", 8, 5))
    for config in CONFIGS.values():
        check_config(load(), config)
