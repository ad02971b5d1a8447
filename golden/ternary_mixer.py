"""Golden twin of hw/ternary_mixer.py: a 1x1 conv whose weights come from the LFSR generator.

acc[t, o] = sum_i w[o, i] * x[t, i], w = ternary_matrix(seed, c_out, c_in, density, pattern) in {-1, 0, +1}:
additions and subtractions only; |acc| <= c_in * 128. `stored_mixer` is the learned-weights baseline
(int8 weights read from memory: |acc| <= c_in * 128 * 128).
"""

import numpy as np

from .intmath import signed_bits
from .ternary_generator import ternary_matrix


def acc_bits(c_in):
    return signed_bits(c_in * 128)


def stored_acc_bits(c_in):
    return signed_bits(c_in * 128 * 128)


def ternary_mixer(x, seed, c_out, density, pattern="iid"):
    x = np.asarray(x, dtype=np.int64)
    w = ternary_matrix(seed, c_out, x.shape[1], density, pattern).astype(np.int64)
    return x @ w.T


def stored_mixer(x, weight):
    return np.asarray(x, dtype=np.int64) @ np.asarray(weight, dtype=np.int64).T
