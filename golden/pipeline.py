"""Clip -> features -> golden float and int8 predictions (what `ternkws infer` and the demo print)."""

from dataclasses import dataclass

import numpy as np

from .audio import read_wav
from .features import mfcc, normalize, quantize
from .network import forward_float, forward_int


@dataclass
class Prediction:
    label: str
    confidence: float          # softmax of the int8 logits (dequantized)
    label_float: str
    logits_int: np.ndarray
    logits_float: np.ndarray

    @property
    def agree(self):
        return self.label == self.label_float


def clip_features(model, samples):
    """(normalized float features, int8 features), each (n_frames, n_mfcc)."""
    c = mfcc(samples, model.features)
    return normalize(c, model.feature_mean, model.feature_scale), quantize(c, model.feature_mean, model.feature_scale)


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def predict_features(model, xf, xq):
    li = forward_int(model.topology, model.int_arrays, xq)
    lf = forward_float(model.topology, model.float_arrays, xf[None])[0]
    p = softmax(li * model.scales.get("logit", 1.0))
    k = int(np.argmax(li))
    return Prediction(model.labels[k], float(p[k]), model.labels[int(np.argmax(lf))], li, lf)


def predict_wav(model, path):
    xf, xq = clip_features(model, read_wav(path, model.features.sample_rate))
    return predict_features(model, xf, xq)
