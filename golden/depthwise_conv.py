"""Golden twin of hw/depthwise_conv.py: depthwise conv over time, int8 in, int8 out.

x: (T, C) int8 frames; weight: (C, K) int8; 'same' zero padding p = dilation * (K - 1) / 2 on both ends;
acc[t, c] = sum_k weight[c, k] * x[t + k * dilation - p, c]   (|acc| <= K * 128 * 128 < 2^(14 + log2 K))
y = sat8(round_shift(acc, shift))
"""

import numpy as np

from .intmath import round_shift, sat, signed_bits


def check_kernel(kernel, dilation):
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"depthwise kernel must be odd and >= 1 (centred 'same' padding), not {kernel}")
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, not {dilation}")


def acc_bits(kernel):
    """Accumulator width: every sum of K products of two int8 values fits."""
    return signed_bits(kernel * 128 * 128)


def depthwise_conv_acc(x, weight, dilation=1):
    x = np.asarray(x, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.int64)
    channels, kernel = weight.shape
    check_kernel(kernel, dilation)
    if x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"input must be (T, {channels}), not {x.shape}")
    pad = dilation * (kernel - 1) // 2
    xp = np.pad(x, ((pad, pad), (0, 0)))
    t = x.shape[0]
    acc = np.zeros_like(x)
    for k in range(kernel):
        acc += xp[k * dilation:k * dilation + t, :] * weight[None, :, k]
    return acc


def depthwise_conv(x, weight, dilation=1, shift=0):
    return sat(round_shift(depthwise_conv_acc(x, weight, dilation), shift)).astype(np.int8)
