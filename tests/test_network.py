"""Golden network: the int8 twins against naive loops, worst-case bounds, int8 vs float agreement."""

import numpy as np
import pytest

from ternkws.golden import classifier, depthwise_conv, post_op, ternary_mixer
from ternkws.golden.intmath import round_shift
from ternkws.golden.network import forward_float, forward_int, init_random, quantize
from ternkws.golden.ternary_generator import ternary_matrix
from ternkws.golden.topology import Block, Topology, count_parameters, count_ternary_entries, plan
from ternkws.golden.errors import UserError


def test_round_shift_rule():
    x = np.array([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5])
    # floor((x + 2) / 4): half rounds up (towards +inf)
    assert round_shift(x, 2).tolist() == [-1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1]
    assert round_shift(np.array([6, -6, -7]), 2).tolist() == [2, -1, -2]
    assert round_shift(x, 0).tolist() == x.tolist()


def test_depthwise_against_loops():
    rng = np.random.default_rng(1)
    for kernel, dil, t in [(1, 1, 5), (3, 1, 7), (5, 2, 9), (11, 1, 4), (29, 2, 20)]:
        c = 3
        x = rng.integers(-128, 128, (t, c))
        w = rng.integers(-128, 128, (c, kernel))
        p = dil * (kernel - 1) // 2
        ref = np.zeros((t, c), np.int64)
        for tt in range(t):
            for ch in range(c):
                for k in range(kernel):
                    src = tt + k * dil - p
                    if 0 <= src < t:
                        ref[tt, ch] += w[ch, k] * x[src, ch]
        assert np.array_equal(depthwise_conv.depthwise_conv_acc(x, w, dil), ref)
        y = depthwise_conv.depthwise_conv(x, w, dil, shift=7)
        assert np.array_equal(y, np.clip((ref + 64) >> 7, -128, 127))


def test_depthwise_worst_case_fits_its_width():
    for kernel in (11, 13, 29):
        x = np.full((64, 2), -128)
        w = np.full((2, kernel), -128)
        acc = depthwise_conv.depthwise_conv_acc(x, w)
        assert acc.max() == kernel * 128 * 128
        assert acc.max() < 2 ** (depthwise_conv.acc_bits(kernel) - 1)
    with pytest.raises(ValueError, match="odd"):
        depthwise_conv.depthwise_conv_acc(np.zeros((4, 2)), np.zeros((2, 4)))


def test_ternary_mixer_is_signed_sum_of_inputs():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (6, 32))
    w = ternary_matrix(77, 16, 32, 1 / 3)
    acc = ternary_mixer.ternary_mixer(x, 77, 16, 1 / 3)
    for t in range(6):
        for o in range(16):
            assert acc[t, o] == sum(x[t, i] for i in range(32) if w[o, i] == 1) - sum(
                x[t, i] for i in range(32) if w[o, i] == -1)
    worst = ternary_mixer.ternary_mixer(np.full((1, 128), -128), 5, 128, 1.0)
    assert np.abs(worst).max() <= 128 * 128 < 2 ** (ternary_mixer.acc_bits(128) - 1)


def test_post_op_rule():
    acc = np.array([[100, -100, 7]])
    res = np.array([[3, 3, 3]])
    y = post_op.post_op(acc, [3, 3, 1000], [0, 10, 0], 2, res, [1, 1, 1000])
    z = np.array([300 + 3, -300 + 3 + 10, 7000 + 3000])
    assert y.tolist() == [np.clip((z + 2) >> 2, 0, 127).tolist()]
    assert post_op.post_op(acc, [1, 1, 1], [0, 0, 0], 0, relu=False).tolist() == [[100, -100, 7]]


def test_classifier_and_tie_rule():
    x = np.array([[1, 2], [3, 4]])
    logits = classifier.classifier(x, [[1, 0], [0, 1], [0, 1]], [0, 0, 0])
    assert logits.tolist() == [4, 6, 6]
    assert classifier.argmax(logits) == 1


def test_parameter_counts_match_design():
    assert count_parameters(Topology(mixer="learned")) == 74892  # PyTorch count in DESIGN.md
    assert count_ternary_entries(Topology()) == 65536
    names = [layer.name for layer in plan(Topology.from_name("3x2x64"))]
    assert names == ["prologue", "block1.0", "block1.1", "block2.0", "block2.1", "block3.0", "block3.1",
                     "epilogue", "final"]


def test_topology_validation_messages():
    with pytest.raises(UserError, match="odd"):
        Topology(prologue_kernel=10)
    with pytest.raises(UserError, match="density"):
        Topology(density=1.5)
    with pytest.raises(UserError, match="BxRxC"):
        Topology.from_name("3x64")


SMALL = Topology(n_mfcc=16, n_classes=5, prologue_channels=32, prologue_kernel=5,
                 blocks=(Block(16, 7, 2), Block(24, 9, 1)), epilogue_channels=32, epilogue_kernel=9,
                 epilogue_dilation=2, final_channels=32)


@pytest.mark.parametrize("mixer", ["ternary", "learned"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_forward_agrees_with_float_on_random_weights(mixer, seed):
    top = Topology(**{**SMALL.to_dict(), "mixer": mixer, "seed": seed + 3})
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0, 30, (48, 32, top.n_mfcc)), -128, 127)
    arrays = init_random(top, rng, x[:16])
    q, scales = quantize(top, arrays, x[:16], frames=32)
    lf = forward_float(top, arrays, x)
    xq = np.clip(np.floor(x + 0.5), -128, 127).astype(np.int8)
    li = np.stack([forward_int(top, q, xi) for xi in xq]) * scales["logit"]
    assert np.corrcoef(lf.ravel(), li.ravel())[0, 1] > 0.98
    err = np.abs(lf - li).max() / np.abs(lf).max()
    assert err < 0.15
    # Argmax agreement wherever the float decision is not a near-tie.
    srt = np.sort(lf, axis=1)
    clear = (srt[:, -1] - srt[:, -2]) > 0.1 * np.abs(lf).max()
    assert clear.sum() >= 10
    assert (lf.argmax(1) == li.argmax(1))[clear].mean() >= 0.9


def test_int8_forward_trace_is_consistent_and_in_range():
    rng = np.random.default_rng(5)
    x = np.clip(rng.normal(0, 30, (8, 32, SMALL.n_mfcc)), -128, 127)
    arrays = init_random(SMALL, rng, x)
    q, _ = quantize(SMALL, arrays, x, frames=32)
    trace = {}
    extreme = np.full((32, SMALL.n_mfcc), -128, np.int8)
    extreme[::2] = 127
    logits = forward_int(SMALL, q, extreme, trace)
    assert np.array_equal(trace["logits"], logits)
    for layer in plan(SMALL):
        out = trace[layer.name + ".out"]
        assert out.shape == (32, layer.c_out) and out.min() >= 0 and out.max() <= 127
        assert np.abs(trace[layer.name + ".acc"]).max() <= layer.c_in * 128
    assert abs(int(logits.max())) < 2 ** 31
    assert np.array_equal(trace["pool"], trace["final.out"].astype(np.int64).sum(axis=0))
