"""Integer primitives of the int8 contract (golden/SPEC.md section 2). All on int64 NumPy arrays."""

import numpy as np


def round_shift(x, shift):
    """Arithmetic right shift with round-half-up: floor((x + 2^(shift-1)) / 2^shift); shift 0 is identity."""
    x = np.asarray(x, dtype=np.int64)
    if shift < 0:
        raise ValueError(f"shift must be >= 0, not {shift}")
    if shift == 0:
        return x
    return (x + (1 << (shift - 1))) >> shift


def sat(x, bits=8, lo=None):
    """Saturate to the signed `bits`-bit range (or to [lo, max] when lo is given)."""
    hi = (1 << (bits - 1)) - 1
    lo = -(1 << (bits - 1)) if lo is None else lo
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def signed_bits(bound):
    """Bits of a two's-complement register that holds every value in [-bound, bound]."""
    return int(bound).bit_length() + 1
