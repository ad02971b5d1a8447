"""Random streaming cases for RTL-vs-golden campaigns of the streaming mode: a random small network
(sim/random_networks.py `random_case`), a stream of frames long enough for several decisions, a hop,
and detector parameters chosen so that events fire (the threshold is drawn among the stream's own
golden margins)."""

from dataclasses import replace
from math import gcd

import numpy as np

from ternkws.golden.streaming import DetectorConfig, StreamingNetwork, scores, total_delay

from .random_networks import random_case

__all__ = ["random_stream_case", "run_stream_case"]


def _frames(rng, n, c):
    """Segments of different statistics (loud, quiet, a constant, extremes), so decisions change."""
    out = np.zeros((n, c), np.int64)
    t = 0
    while t < n:
        length = int(rng.integers(1, 8))
        kind = int(rng.integers(0, 6))
        if kind == 0:
            seg = rng.normal(0, 60, (length, c))
        elif kind == 1:
            seg = rng.normal(rng.normal(0, 30, c), 10, (length, c))
        elif kind == 2:
            seg = np.full((length, c), rng.integers(-128, 128))
        elif kind == 3:
            seg = rng.choice([-128, 127], (length, c))
        else:
            seg = rng.normal(0, 25, (length, c))
        out[t:t + length] = np.clip(np.round(seg[:n - t]), -128, 127)
        t += length
    return out.astype(np.int8)


def random_stream_case(seed, *, mixer="ternary", pattern="iid", decisions=(3, 7)):
    """(model, config, frames, detector, hop): decisions (lo, hi) bounds the number of decisions."""
    model, config, _ = random_case(seed, mixer=mixer, pattern=pattern)
    # the stream keeps the final layer's input in a ring too: dw_lanes must divide its channels as well
    lanes = gcd(config.dw_lanes, model.topology.epilogue_channels)
    # half the cases with `spram`: the single-port layout of the UP5K (the pool ring and sums in one memory)
    spram = bool(np.random.default_rng(seed + 9_000_000).integers(2))
    config = replace(config, dw_lanes=lanes, spram=spram)
    rng = np.random.default_rng(seed + 7_000_000)
    top, T = model.topology, model.features.n_frames
    hop = int(rng.choice([1, 1, 2, 3, 5]))
    n_dec = int(rng.integers(decisions[0], decisions[1] + 1))
    n = total_delay(top) + T + (n_dec - 1) * hop + int(rng.integers(0, hop + 1))
    frames = _frames(rng, n, top.n_mfcc)
    nc = top.n_classes
    keywords = tuple(int(c) for c in np.flatnonzero(rng.random(nc) < 0.6)) or (int(rng.integers(nc)),)
    smooth = int(rng.choice([1, 2, 3, 5, 16]))
    refractory = int(rng.choice([1, 1, 2, 3, 10]))
    d = StreamingNetwork.from_model(model, hop).run(frames)
    threshold = 0
    if len(d):
        _, _, margin = scores(d.logits, DetectorConfig(0, keywords, smooth, refractory))
        pick = np.concatenate([margin, [0]])
        threshold = int(max(0, min(int(rng.choice(pick)), (1 << 35) - 1)))
    return model, config, frames, DetectorConfig(threshold, keywords, smooth, refractory), hop


def run_stream_case(seed, *, mixer="ternary", pattern="iid", stall=0.0, **kw):
    """Run random_stream_case(seed) on the RTL (Amaranth simulator) and the golden model:
    (model, config, rtl StreamResult, golden StreamResult, [differences])."""
    from .streaming_pysim import compare, golden_stream, run_stream_pysim
    model, config, frames, det, hop = random_stream_case(seed, mixer=mixer, pattern=pattern)
    ref = golden_stream(model, frames, det, hop)
    rtl = run_stream_pysim(model, config, frames, detector=det, hop=hop, seed=seed, stall=stall, **kw)
    return model, config, rtl, ref, compare(rtl, ref)
