# amaranth: UnusedElaboratable=no
"""hw/classifier.py against its golden twin (golden/classifier.py), under random back-pressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from ternkws.golden.classifier import argmax, classifier
from ternkws.hw.classifier import Classifier, cycles
from ternkws.hw.layers import ClassifierLayer


def run_classifier(layer, pool, *, stall=0.0, seed=0):
    """(logits, class, cycles from start to the class beat) of the RTL on pool sums `pool`."""
    dut = Classifier(layer)
    rng = np.random.default_rng(seed)
    out, when = [], []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycle = 1
        while len(out) < layer.n_classes + 1:
            ready = not (stall and rng.random() < stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, value, last = await ctx.tick().sample(dut.o.valid, dut.o.payload.value, dut.o.payload.last)
            if ready and valid:
                out.append({"value": value, "last": last})
                when.append(cycle)
            cycle += 1

    async def pool_memory(ctx):
        # a synchronous-read memory holding `pool`: data of the address given with en arrives next cycle
        async for _, _, addr, en in ctx.tick().sample(dut.pool_addr, dut.pool_en):
            if en and addr < len(pool):   # the read one past the last channel is never accumulated
                ctx.set(dut.pool_data, int(pool[addr]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(pool_memory)
    sim.run()
    values = [o["value"] for o in out]
    assert [o["last"] for o in out] == [0] * layer.n_classes + [1]
    return np.array(values[:-1], np.int64), values[-1], when[-1] + 1


def random_layer(rng, channels, n_classes, frames=128, bias_bits=31):
    weights = rng.integers(-128, 128, (n_classes, channels))
    bias = rng.integers(-2 ** (bias_bits - 1), 2 ** (bias_bits - 1), n_classes)
    return ClassifierLayer(channels, n_classes, frames, weights, bias)


@pytest.mark.parametrize("case", range(6))
def test_bit_exact_with_the_golden_twin(case):
    rng = np.random.default_rng(case)
    channels, n_classes = [(8, 3), (16, 12), (5, 2), (32, 4), (128, 12), (3, 5)][case]
    layer = random_layer(rng, channels, n_classes)
    x = rng.integers(0, 128, (layer.frames, channels))      # ReLU outputs of the last layer
    pool = x.sum(axis=0)
    ref = classifier(x, layer.weights, layer.bias)
    logits, cls, _ = run_classifier(layer, pool, stall=[0.0, 0.5][case % 2], seed=case)
    np.testing.assert_array_equal(logits, ref)
    assert cls == argmax(ref)


def test_extreme_values():
    """Largest pool sums and weights of both signs, biases at +-2^30: no overflow, still exact."""
    channels, n_classes, frames = 128, 4, 128
    weights = np.array([[127] * channels, [-128] * channels, [-128, 127] * (channels // 2), [0] * channels])
    bias = np.array([2 ** 30, -2 ** 30, 0, -5])
    layer = ClassifierLayer(channels, n_classes, frames, weights, bias)
    x = np.full((frames, channels), 127)
    ref = classifier(x, weights, bias)
    logits, cls, _ = run_classifier(layer, x.sum(axis=0))
    np.testing.assert_array_equal(logits, ref)
    assert cls == argmax(ref)


def test_ties_take_the_first_class():
    layer = ClassifierLayer(4, 3, 8, np.zeros((3, 4), int), np.array([7, 9, 9]))
    logits, cls, _ = run_classifier(layer, np.zeros(4, int))
    assert list(logits) == [7, 9, 9] and cls == 1


@pytest.mark.parametrize("channels, n_classes", [(8, 3), (128, 12), (1, 2)])
def test_cycles_follow_the_rule(channels, n_classes):
    rng = np.random.default_rng(1)
    layer = random_layer(rng, channels, n_classes)
    _, _, measured = run_classifier(layer, np.zeros(channels, int))
    assert measured == cycles(channels, n_classes)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="weights must have shape"):
        Classifier(ClassifierLayer(4, 3, 8, np.zeros((4, 3)), np.zeros(3)))
    with pytest.raises(ValueError, match="bias must have shape"):
        Classifier(ClassifierLayer(4, 3, 8, np.zeros((3, 4)), np.zeros(4)))
