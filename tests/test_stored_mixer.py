# amaranth: UnusedElaboratable=no
"""The stored-weights baseline mixer against golden stored_mixer, under stalls; the weight ROM alone."""

import random

import numpy as np
import pytest
from amaranth.back import rtlil

from ternkws.golden.ternary_mixer import stored_mixer
from ternkws.hw.stored_mixer import StoredMixer
from ternkws.hw.weight_rom import WeightRom
from tests.test_ternary_mixer import make_frames, simulate


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
@pytest.mark.parametrize("case", range(2))
def test_matches_golden_under_stalls(lanes, case):
    rng = random.Random(lanes * 10 + case)
    nprng = np.random.default_rng(lanes * 10 + case)
    weights = [nprng.integers(-128, 128, (rng.randint(1, 5), lanes * rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
    weights[0][0, :] = -128  # extreme weights with extreme inputs reach the accumulator bound
    dut = StoredMixer(weights, lanes)
    groups = [(n % len(weights), make_frames(rng, weights[n % len(weights)].shape[1], 2)) for n in range(3)]
    outputs, _ = simulate(dut, groups, rng=rng, in_stall=0.3, out_stall=0.3)
    expect = np.concatenate([stored_mixer(frames, weights[layer]).ravel() for layer, frames in groups])
    np.testing.assert_array_equal(np.array(outputs), expect)


def test_weight_bits_and_multipliers_are_real():
    weights = [np.ones((8, 16), np.int8), np.ones((4, 8), np.int8)]
    dut = StoredMixer(weights, 4)
    assert dut.weight_bits == (128 + 32) * 8
    text = rtlil.convert(dut)
    assert "$mul" in text  # the baseline pays for multipliers; the ternary mixer has none
    assert WeightRom(weights, 4).bits == (128 + 32) * 8


def test_bad_weights():
    with pytest.raises(ValueError, match="lanes=3 does not divide c_in=8"):
        StoredMixer([np.zeros((2, 8), np.int8)], 3)
    with pytest.raises(ValueError, match="int8"):
        StoredMixer([np.full((2, 8), 300)], 2)
