"""Golden twin of hw/post_op.py: BN fold, residual add, ReLU, requantization to int8.

z[t, o] = acc[t, o] * mult[o] + acc_res[t, o] * mult_res[o] + bias[o]      (48-bit signed, see SPEC)
y = clip(round_shift(z, shift), 0, 127)     with ReLU (every layer of the network)
y = sat8(round_shift(z, shift))             without
"""

import numpy as np

from .contract import BIAS_BITS, MULT_BITS, Z_BITS  # noqa: F401  (widths: golden/contract.py; re-exported)
from .intmath import round_shift, sat


def post_op(acc, mult, bias, shift, acc_res=None, mult_res=None, relu=True):
    z = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64)[None, :]
    if acc_res is not None:
        z = z + np.asarray(acc_res, dtype=np.int64) * np.asarray(mult_res, dtype=np.int64)[None, :]
    z = z + np.asarray(bias, dtype=np.int64)[None, :]
    y = round_shift(z, shift)
    return (sat(y, lo=0) if relu else sat(y)).astype(np.int8)
