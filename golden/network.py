"""The MatchboxNet-style network: parameters, float forward, post-training quantization, int8 forward.

Arrays live in one flat dict (the checkpoint's layout, golden/SPEC.md section 4):
  float: <layer>.dw (c_in, K), <layer>.pw (c_out, c_in; learned only), <layer>.bn.{gamma,beta,mean,var},
         <layer>.res.pw, <layer>.res.bn.*, classifier.weight (n_classes, C), classifier.bias
  int8:  <layer>.q.dw int8, <layer>.q.dw_shift, <layer>.q.pw int8 (learned only), <layer>.q.res.pw,
         <layer>.q.mult int16, <layer>.q.mult_res, <layer>.q.bias int32, <layer>.q.shift,
         classifier.q.weight int8, classifier.q.bias int32
Activations are (T, C) per clip (frame-major, as the hardware streams them) or (N, T, C) batched.
"""

from functools import lru_cache

import numpy as np

from . import classifier as cls_twin
from .depthwise_conv import depthwise_conv
from .contract import BIAS_BITS, CLASSIFIER_BIAS_MAX, LOGIT_BITS, MULT_BITS, SHIFT_MAX as MAX_SHIFT
from .post_op import post_op
from .ternary_generator import ternary_matrix
from .ternary_mixer import stored_mixer, ternary_mixer
from .topology import Topology, plan

BN_EPS = 1e-3          # NeMo's BatchNorm1d eps for Jasper/MatchboxNet blocks
CALIB_PERCENTILE = 99.99


@lru_cache(maxsize=64)
def _ternary(seed, c_out, c_in, density, pattern="iid"):
    m = ternary_matrix(seed, c_out, c_in, density, pattern)
    m.setflags(write=False)
    return m


def mixer_weight(top: Topology, arrays, key, c_out, c_in, seed):
    """Float weight of a 1x1: the generated ternary matrix, or the learned array."""
    if top.mixer == "ternary":
        return _ternary(seed, c_out, c_in, top.density, top.pattern).astype(np.float64)
    return np.asarray(arrays[key], dtype=np.float64)


def float_param_shapes(top: Topology):
    shapes = {}
    for layer in plan(top):
        if layer.kernel:
            shapes[layer.name + ".dw"] = (layer.c_in, layer.kernel)
        for key, c_in, _ in layer.mixers:
            if top.mixer == "learned":
                shapes[key] = (layer.c_out, c_in)
            bn = key[:-len(".pw")] + ".bn"
            for p in ("gamma", "beta", "mean", "var"):
                shapes[f"{bn}.{p}"] = (layer.c_out,)
    shapes["classifier.weight"] = (top.n_classes, top.final_channels)
    shapes["classifier.bias"] = (top.n_classes,)
    return shapes


def int_param_shapes(top: Topology):
    shapes = {}
    for layer in plan(top):
        q = layer.name + ".q"
        if layer.kernel:
            shapes[q + ".dw"] = ((layer.c_in, layer.kernel), np.int8)
            shapes[q + ".dw_shift"] = ((), np.int32)
        if top.mixer == "learned":
            shapes[q + ".pw"] = ((layer.c_out, layer.c_in), np.int8)
            if layer.residual:
                shapes[q + ".res.pw"] = ((layer.c_out, layer.res_c_in), np.int8)
        shapes[q + ".mult"] = ((layer.c_out,), np.int32)
        if layer.residual:
            shapes[q + ".mult_res"] = ((layer.c_out,), np.int32)
        shapes[q + ".bias"] = ((layer.c_out,), np.int64)
        shapes[q + ".shift"] = ((), np.int32)
    shapes["classifier.q.weight"] = ((top.n_classes, top.final_channels), np.int8)
    shapes["classifier.q.bias"] = ((top.n_classes,), np.int64)
    return shapes


# --- float forward ---------------------------------------------------------------------------------

def _dw_float(x, w, dilation):
    """x (N, T, C), w (C, K): 'same' zero-padded depthwise conv over time."""
    k = w.shape[1]
    pad = dilation * (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    t = x.shape[1]
    y = np.zeros_like(x)
    for j in range(k):
        y += xp[:, j * dilation:j * dilation + t, :] * w[None, None, :, j]
    return y


def _bn_affine(arrays, bn):
    g = np.asarray(arrays[bn + ".gamma"], np.float64) / np.sqrt(np.asarray(arrays[bn + ".var"], np.float64) + BN_EPS)
    h = np.asarray(arrays[bn + ".beta"], np.float64) - np.asarray(arrays[bn + ".mean"], np.float64) * g
    return g, h


def forward_float(top: Topology, arrays, x, trace=None):
    """Float forward on normalized features x (N, T, n_mfcc) -> logits (N, n_classes), float64.

    `trace`, when a dict, receives every layer's depthwise output (<layer>.dw_out), mixer input
    and output (<layer>.out) for calibration and debugging.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    block_in = x
    for layer in plan(top):
        if layer.block_start:
            block_in = x
        h = _dw_float(x, np.asarray(arrays[layer.name + ".dw"], np.float64), layer.dilation) if layer.kernel else x
        if trace is not None:
            trace[layer.name + ".in"] = x
            trace[layer.name + ".dw_out"] = h
        w = mixer_weight(top, arrays, layer.name + ".pw", layer.c_out, layer.c_in, layer.seed)
        g, b = _bn_affine(arrays, layer.name + ".bn")
        z = (h @ w.T) * g + b
        if layer.residual:
            wr = mixer_weight(top, arrays, layer.name + ".res.pw", layer.c_out, layer.res_c_in, layer.res_seed)
            gr, br = _bn_affine(arrays, layer.name + ".res.bn")
            z = z + (block_in @ wr.T) * gr + br
        x = np.maximum(z, 0.0)
        if trace is not None:
            trace[layer.name + ".out"] = x
    pooled = x.mean(axis=1)
    return pooled @ np.asarray(arrays["classifier.weight"], np.float64).T + np.asarray(arrays["classifier.bias"], np.float64)


# --- post-training quantization ---------------------------------------------------------------------

def _percentile_max(a, floor=1e-6):
    a = np.abs(np.asarray(a)).ravel()
    return max(float(np.percentile(a, CALIB_PERCENTILE)) if a.size else 0.0, floor)


def _weight_scale(w, axis=None):
    m = np.max(np.abs(w), axis=axis)
    return np.maximum(m, 1e-12) / 127.0


def _choose_shift(real_mults, real_bias, layer_name):
    """Largest shift in [0, MAX_SHIFT] for which every integer multiplier and the bias fit their widths."""
    mmax = max(float(np.max(np.abs(m))) for m in real_mults)
    bmax = float(np.max(np.abs(real_bias)))
    for s in range(MAX_SHIFT, -1, -1):
        if mmax * 2 ** s <= 2 ** (MULT_BITS - 1) - 1 and bmax * 2 ** s <= 2 ** (BIAS_BITS - 1) - 1:
            return s
    raise ValueError(f"{layer_name}: BN gain {mmax:.3g} or bias {bmax:.3g} too large for the int8 contract "
                     f"(multiplier {MULT_BITS} bits, bias {BIAS_BITS} bits); retrain with weight decay")


def quantize(top: Topology, arrays, calib_x, frames):
    """Post-training quantization: integer parameters and activation scales from calibration inputs.

    calib_x: normalized features (N, T, n_mfcc) of a calibration set; the input scale is 1 (one int8 LSB
    per unit). Returns (int_arrays, scales) where scales[<layer>] = output scale of that layer.
    """
    trace = {}
    forward_float(top, arrays, calib_x, trace=trace)
    q, scales = {}, {}
    s_x = 1.0
    s_block = 1.0
    for layer in plan(top):
        name, p = layer.name, layer.name + ".q"
        if layer.block_start:
            s_block = s_x
        if layer.kernel:
            w = np.asarray(arrays[name + ".dw"], np.float64)
            s_w = float(_weight_scale(w))
            q[p + ".dw"] = np.clip(np.floor(w / s_w + 0.5), -127, 127).astype(np.int8)
            target = _percentile_max(trace[name + ".dw_out"]) / 127.0
            shift = max(0, int(np.ceil(np.log2(target / (s_x * s_w)))))
            q[p + ".dw_shift"] = np.int32(shift)
            s_mix_in = s_x * s_w * 2 ** shift
        else:
            s_mix_in = s_x
        s_out = _percentile_max(trace[name + ".out"]) / 127.0
        g, h = _bn_affine(arrays, name + ".bn")
        if top.mixer == "learned":
            w = np.asarray(arrays[name + ".pw"], np.float64)
            s_pw = _weight_scale(w, axis=1)
            q[p + ".pw"] = np.clip(np.floor(w / s_pw[:, None] + 0.5), -127, 127).astype(np.int8)
            real_mult = g * s_mix_in * s_pw / s_out
        else:
            real_mult = g * s_mix_in / s_out
        mults, bias = [real_mult], h / s_out
        if layer.residual:
            gr, hr = _bn_affine(arrays, name + ".res.bn")
            if top.mixer == "learned":
                wr = np.asarray(arrays[name + ".res.pw"], np.float64)
                s_rpw = _weight_scale(wr, axis=1)
                q[p + ".res.pw"] = np.clip(np.floor(wr / s_rpw[:, None] + 0.5), -127, 127).astype(np.int8)
                mults.append(gr * s_block * s_rpw / s_out)
            else:
                mults.append(gr * s_block / s_out)
            bias = bias + hr / s_out
        shift = _choose_shift(mults, bias, name)
        q[p + ".mult"] = np.floor(mults[0] * 2 ** shift + 0.5).astype(np.int32)
        if layer.residual:
            q[p + ".mult_res"] = np.floor(mults[1] * 2 ** shift + 0.5).astype(np.int32)
        q[p + ".bias"] = np.floor(bias * 2 ** shift + 0.5).astype(np.int64)
        q[p + ".shift"] = np.int32(shift)
        scales[name] = s_out
        s_x = s_out
    wc = np.asarray(arrays["classifier.weight"], np.float64)
    s_c = float(_weight_scale(wc))
    q["classifier.q.weight"] = np.clip(np.floor(wc / s_c + 0.5), -127, 127).astype(np.int8)
    logit_scale = s_x * s_c / frames
    bias = np.floor(np.asarray(arrays["classifier.bias"], np.float64) / logit_scale + 0.5)
    if np.max(np.abs(bias)) > CLASSIFIER_BIAS_MAX:
        raise ValueError(f"classifier bias too large for the int8 contract ({LOGIT_BITS}-bit logits, "
                         f"|bias| <= 2^30)")
    q["classifier.q.bias"] = bias.astype(np.int64)
    scales["logit"] = logit_scale
    return q, scales


# --- int8 forward -----------------------------------------------------------------------------------

def forward_int(top: Topology, q, xq, trace=None):
    """Bit-exact int8 forward of one clip: xq (T, n_mfcc) int8 -> logits (n_classes,) int64.

    `trace`, when a dict, receives every intermediate array by name (<layer>.dw_out, <layer>.acc,
    <layer>.res_acc, <layer>.out, pool, logits): what the RTL is compared against.
    """
    x = np.asarray(xq)
    if x.ndim != 2 or x.shape[1] != top.n_mfcc:
        raise ValueError(f"int8 input must be (frames, {top.n_mfcc}), not {x.shape}")
    x = x.astype(np.int8)
    block_in = x
    for layer in plan(top):
        p = layer.name + ".q"
        if layer.block_start:
            block_in = x
        h = depthwise_conv(x, q[p + ".dw"], layer.dilation, int(q[p + ".dw_shift"])) if layer.kernel else x
        if top.mixer == "ternary":
            acc = ternary_mixer(h, layer.seed, layer.c_out, top.density, top.pattern)
        else:
            acc = stored_mixer(h, q[p + ".pw"])
        acc_res = mult_res = None
        if layer.residual:
            mult_res = q[p + ".mult_res"]
            if top.mixer == "ternary":
                acc_res = ternary_mixer(block_in, layer.res_seed, layer.c_out, top.density, top.pattern)
            else:
                acc_res = stored_mixer(block_in, q[p + ".res.pw"])
        x = post_op(acc, q[p + ".mult"], q[p + ".bias"], int(q[p + ".shift"]), acc_res, mult_res, relu=True)
        if trace is not None:
            trace[layer.name + ".dw_out"] = h
            trace[layer.name + ".acc"] = acc
            if acc_res is not None:
                trace[layer.name + ".res_acc"] = acc_res
            trace[layer.name + ".out"] = x
    logits = cls_twin.classifier(x, q["classifier.q.weight"], q["classifier.q.bias"])
    if trace is not None:
        trace["pool"] = np.asarray(x, np.int64).sum(axis=0)
        trace["logits"] = logits
    return logits


# --- random initialisation (placeholder model, tests) -----------------------------------------------

def init_random(top: Topology, rng, calib_x):
    """Random float weights whose BN statistics are set from `calib_x` so activations are well scaled.

    Not a trained model: used for the placeholder checkpoint and for the random-network tests.
    """
    arrays = {}
    x = np.asarray(calib_x, np.float64)
    block_in = x
    for layer in plan(top):
        if layer.block_start:
            block_in = x
        if layer.kernel:
            arrays[layer.name + ".dw"] = rng.normal(0, 1 / np.sqrt(layer.kernel), (layer.c_in, layer.kernel))
            h = _dw_float(x, arrays[layer.name + ".dw"], layer.dilation)
        else:
            h = x
        z = 0
        for key, c_in, seed in layer.mixers:
            src = h if key == layer.name + ".pw" else block_in
            if top.mixer == "learned":
                arrays[key] = rng.normal(0, 1 / np.sqrt(c_in), (layer.c_out, c_in))
            a = src @ mixer_weight(top, arrays, key, layer.c_out, c_in, seed).T
            bn = key[:-len(".pw")] + ".bn"
            arrays[bn + ".gamma"] = rng.uniform(0.5, 1.5, layer.c_out)
            arrays[bn + ".beta"] = rng.normal(0.0, 0.3, layer.c_out)
            arrays[bn + ".mean"] = a.reshape(-1, layer.c_out).mean(axis=0)
            arrays[bn + ".var"] = a.reshape(-1, layer.c_out).var(axis=0) + 1e-2
            g, b = _bn_affine(arrays, bn)
            z = z + a * g + b
        x = np.maximum(z, 0.0)
    arrays["classifier.weight"] = rng.normal(0, 1 / np.sqrt(top.final_channels), (top.n_classes, top.final_channels))
    arrays["classifier.bias"] = rng.normal(0, 0.1, top.n_classes)
    return {k: np.asarray(v, np.float32) for k, v in arrays.items()}
