"""Small random networks (topology, seeds, weights, inputs, lanes) for RTL-vs-golden campaigns."""

from math import gcd

import numpy as np

from ternkws.golden.checkpoint import make_model
from ternkws.golden.features import FeatureConfig
from ternkws.golden.network import init_random
from ternkws.golden.topology import Block, Topology, plan
from ternkws.hw.accelerator import AcceleratorConfig
from ternkws.hw.grouped_mixer import ADDS


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_case(seed, *, mixer="ternary", pattern="iid", max_frames=8):
    """(model, config, windows): a random small network with random quantized weights and inputs;
    `pattern` the ternary pattern (the grouped mixer's rows per cycle are drawn from 1, 2, 4, 8)."""
    rng = np.random.default_rng(seed)
    ch = lambda: int(rng.choice([4, 8, 12, 16]))
    odd = lambda hi: int(rng.choice(range(1, hi + 1, 2)))
    n_mfcc = int(rng.choice([4, 8]))
    blocks = tuple(Block(ch(), odd(7), int(rng.integers(1, 3)), int(rng.integers(1, 3)))
                   for _ in range(int(rng.integers(1, 3))))
    top = Topology(n_mfcc=n_mfcc, n_classes=int(rng.integers(2, 6)), prologue_channels=ch(),
                   prologue_kernel=odd(7), blocks=blocks, epilogue_channels=ch(), epilogue_kernel=odd(9),
                   epilogue_dilation=int(rng.integers(1, 3)), final_channels=ch(), mixer=mixer,
                   density=float(rng.choice([1 / 3, 0.2, 0.5, 1.0])), seed=int(rng.integers(0, 2 ** 32)),
                   pattern=pattern if mixer == "ternary" else "iid")
    frames = int(rng.integers(2, max_frames + 1))
    feats = FeatureConfig(n_mfcc=n_mfcc, n_mels=max(n_mfcc, 8), n_frames=frames)
    x = np.clip(rng.normal(0, 40, (6, frames, n_mfcc)), -128, 127)
    arrays = init_random(top, rng, x)
    labels = tuple(f"c{k}" for k in range(top.n_classes))
    model = make_model(top, arrays, x, np.zeros(n_mfcc), np.ones(n_mfcc), {"trained": False, "random_case": seed},
                       feats, labels=labels)
    layers = plan(top)
    g_mix = 0
    for layer in layers:
        g_mix = gcd(g_mix, layer.c_in)
        if layer.residual:
            g_mix = gcd(g_mix, layer.res_c_in)
    g_dw = 0
    for layer in layers:
        if layer.kernel:
            g_dw = gcd(g_dw, layer.c_in)
    # grouped: 1 to 32 rows per cycle (up to four 8-row blocks at once; 64 and 128 only add copies of
    # the same per-block logic and slow the simulator down)
    mixer_lanes = _divisors(g_mix) if top.pattern == "iid" or mixer != "ternary" else [a for a in ADDS if a <= 32]
    config = AcceleratorConfig(f"random{seed}", int(rng.choice(mixer_lanes)), int(rng.choice(_divisors(g_dw))),
                               single_port_line_buffer=bool(rng.integers(2)))
    windows = np.clip(np.floor(x + 0.5), -128, 127).astype(np.int8)
    # Extreme windows too: all -128, all 127, all 0.
    special = rng.integers(0, 4)
    if special < 3:
        windows[0] = [-128, 127, 0][special]
    return model, config, windows[: int(rng.integers(1, 3))]
