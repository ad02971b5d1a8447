"""The random-weights placeholder checkpoint (used only until a trained model is committed)."""

import numpy as np

from .checkpoint import make_model
from .features import FeatureConfig
from .network import init_random
from .topology import Topology


def placeholder_model(top=None, seed=0, n_calib=16):
    """A checkpoint-complete Model with random weights, labelled as such in its metadata."""
    top = top or Topology()
    feats = FeatureConfig()
    rng = np.random.default_rng(seed)
    calib = np.clip(rng.normal(0, 32, (n_calib, feats.n_frames, top.n_mfcc)), -128, 127)
    arrays = init_random(top, rng, calib)
    # MFCC statistics of typical speech-level audio: mean 0 and unit-ish spread is wrong for c0, so use
    # a fixed broad map (+-4 std of an order-of-magnitude guess) -- random weights make it moot anyway.
    mean = np.zeros(top.n_mfcc, np.float32)
    mean[0] = -400.0
    scale = np.full(top.n_mfcc, 128 / 200.0, np.float32)
    scale[0] = 128 / 800.0
    meta = {"trained": False, "description": "RANDOM WEIGHTS: untrained placeholder, predictions are meaningless",
            "seed": seed}
    return make_model(top, arrays, calib, mean, scale, meta, feats)
