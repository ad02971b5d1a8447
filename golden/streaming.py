"""Streaming golden model: the network over an unbounded stream of int8 feature frames, a decision every
hop, keyword events (golden/SPEC.md section 6 "Streaming"; bit-exact by definition of that contract).

The window model (golden/network.py `forward_int`) classifies one cut window of T frames with 'same' zero
padding at both edges of every layer. Here the same checkpoint runs over a stream: every layer keeps the
last (K-1)*dil frames of its input (its line buffer) and, for the last sub-block of a block, the block
input delayed so that it meets the main path; each input frame gives one output frame per layer. Kernels
stay centred (the checkpoints are trained that way), so layer l emits output frame u after its input
frame u + p_l (p = dil*(K-1)/2) and the network's final frame u after input frame u + D, D = sum p_l
(54 frames = 0.54 s for 3x1x64). The global pool is a running sum of the last T final frames; decision k
pools the final frames [k*H, k*H + T) and is known after input frame k*H + T - 1 + D.

Pieces (each usable alone):

* `stream_layout(top)`: per-layer delays and state sizes (what the RTL must hold).
* `StreamingNetwork`: the vectorised engine: `push(int8 frames)` of any chunk size -> `Decisions`.
  Integer arithmetic only (the 1x1 products run through float64 BLAS, exact because every partial sum is
  an integer below 2^53); every width of the contract is asserted.
* `FrameStream`: the frame-by-frame reference (ring buffers, one frame per call, the order of operations
  the hardware follows); tests require it equal to `StreamingNetwork` for every chunking.
* `Detector`: the integer detection rule (smoothed logits, margin threshold, refractory time) -> `Event`s.
* `FeatureStream` / `stream_mfcc`: features of unbounded audio, frame t = samples [160t, 160t + 400),
  chunk-invariant by construction (fixed summation order, no BLAS).
* `GoldenEngine` (network + detector on int8 frames) and `Listener` (audio -> features -> engine): what
  `ternkws listen --golden` and `ternkws infer` on a long clip run. A device (the RTL's streaming mode,
  simulated or on a board) is another engine with the same `push` / `reset` interface.
"""

import math
from dataclasses import dataclass

import numpy as np

from .contract import LOGIT_BITS, Z_BITS
from .depthwise_conv import acc_bits as dw_acc_bits
from .features import FeatureConfig, dct_matrix, hann_periodic, mel_filterbank
from .features import normalize as _normalize
from .features import quantize as _quantize
from .intmath import round_shift, sat, signed_bits
from .labels import KEYWORDS
from .network import mixer_weight
from .ternary_mixer import acc_bits as ternary_acc_bits
from .ternary_mixer import stored_acc_bits
from .topology import plan

# --- detection defaults (golden/SPEC.md 6.4) --------------------------------------------------------
DEFAULT_HOP = 10            # H: frames between decisions (100 ms)
DEFAULT_SMOOTH = 5          # N: decisions summed into the score (500 ms)
DEFAULT_REFRACTORY = 10     # R: decisions after an event during which no event fires (1 s)
DEFAULT_THRESHOLD = 2.0     # margin threshold in float logit units per decision (theta = ceil(2.0 N / s))
SMOOTH_MAX = 16             # N <= 16: the score is LOGIT_BITS + 4 = 36 bits
SCORE_BITS = LOGIT_BITS + 4
MARGIN_BITS = SCORE_BITS + 1
THRESHOLD_MAX = (1 << (SCORE_BITS - 1)) - 1
POOL_BITS = 15              # running pool in [0, 127 T]: 14 bits unsigned for T <= 128 (15 signed)


def _check(a, bits, what):
    """Assert every value of `a` fits a signed `bits`-bit register (the contract's widths)."""
    a = np.asarray(a)
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        lim = 1 << (bits - 1)
        assert -lim <= lo and hi < lim, f"{what}: value {lo if lo < -lim else hi} does not fit {bits} bits"


# --- layout: delays and state -------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerTiming:
    """One layer of the stream: its line buffer, delays and residual FIFO (golden/SPEC.md 6.1)."""
    name: str
    c_in: int
    c_out: int
    kernel: int | None
    dilation: int
    pad: int                # p = dil * (K - 1) / 2: output frame u needs input frames u - p .. u + p
    line_frames: int        # (K - 1) * dil = 2p input frames kept (the newest frame is the one arriving)
    delay: int              # output frame u leaves this layer after the network's input frame u + delay
    res_delay: int          # residual layers: block-input frames held (P_b); 0 otherwise
    res_c_in: int

    @property
    def state_bytes(self):
        """int8 state of this layer: the line buffer and the residual FIFO (one byte per value)."""
        return self.line_frames * self.c_in + self.res_delay * self.res_c_in


def stream_layout(top, causal=False):
    """[LayerTiming] in plan order. causal=True: the causal variant measured in the streaming report
    (no warm-up skip, no residual delay, delay 0), not the contract."""
    out, delay, block_delay = [], 0, 0
    for layer in plan(top):
        k = layer.kernel or 1
        pad = layer.dilation * (k - 1) // 2
        if layer.block_start:
            block_delay = delay
        delay += 0 if causal else pad
        res = (delay - block_delay) if (layer.residual and not causal) else 0
        out.append(LayerTiming(layer.name, layer.c_in, layer.c_out, layer.kernel, layer.dilation, pad,
                               2 * pad, delay, res, layer.res_c_in if layer.residual else 0))
    return out


def total_delay(top):
    """D: the network's final frame u is known after input frame u + D (sum of the pads)."""
    return stream_layout(top)[-1].delay


def state_summary(top, n_frames, n_classes=None, smooth=DEFAULT_SMOOTH):
    """{what: bytes} of the streaming state (int8 activations, pool and detector registers)."""
    lay = stream_layout(top)
    d = {t.name: t.state_bytes for t in lay}
    c = lay[-1].c_out
    d["pool ring (T final frames, 7 bits in 8)"] = n_frames * c
    d["pool sums (15-bit)"] = math.ceil(c * POOL_BITS / 8)
    n = n_classes or top.n_classes
    d[f"detector logits ring ({smooth} x {n} x 32-bit)"] = smooth * n * LOGIT_BITS // 8
    return d


# --- the integer layer constants ---------------------------------------------------------------------

@dataclass
class _Layer:
    t: LayerTiming
    dw: np.ndarray | None           # (c_in, K) int64
    dw_shift: int
    w: np.ndarray                   # (c_out, c_in) float64 holding integers (ternary entries or int8)
    wr: np.ndarray | None
    mult: np.ndarray
    mult_res: np.ndarray | None
    bias: np.ndarray
    shift: int
    acc_bits: int
    res_acc_bits: int
    block_start: bool
    residual: bool


def _int_layers(top, q, causal):
    layers = []
    for layer, t in zip(plan(top), stream_layout(top, causal)):
        p = layer.name + ".q"
        if top.mixer == "ternary":
            w = mixer_weight(top, {}, layer.name + ".pw", layer.c_out, layer.c_in, layer.seed)
            wr = (mixer_weight(top, {}, layer.name + ".res.pw", layer.c_out, layer.res_c_in, layer.res_seed)
                  if layer.residual else None)
            bits, rbits = ternary_acc_bits(layer.c_in), ternary_acc_bits(layer.res_c_in or 1)
        else:
            w = np.asarray(q[p + ".pw"], np.float64)
            wr = np.asarray(q[p + ".res.pw"], np.float64) if layer.residual else None
            bits, rbits = stored_acc_bits(layer.c_in), stored_acc_bits(layer.res_c_in or 1)
        layers.append(_Layer(
            t, np.asarray(q[p + ".dw"], np.int64) if layer.kernel else None,
            int(q[p + ".dw_shift"]) if layer.kernel else 0, np.ascontiguousarray(w.T),
            None if wr is None else np.ascontiguousarray(wr.T),
            np.asarray(q[p + ".mult"], np.int64), np.asarray(q[p + ".mult_res"], np.int64) if layer.residual else None,
            np.asarray(q[p + ".bias"], np.int64), int(q[p + ".shift"]), bits, rbits,
            layer.block_start, layer.residual))
    return layers


def _mix(x, wt, bits, what):
    """1x1 of int frames x (n, c_in) with integer weights wt (c_in, c_out): exact through float64 (every
    partial sum is an integer of at most 2^31 < 2^53)."""
    acc = (np.asarray(x, np.float64) @ wt).astype(np.int64)
    _check(acc, bits, what)
    return acc


def _post(L, acc, acc_res):
    z = acc * L.mult[None, :] + L.bias[None, :]
    if acc_res is not None:
        z = z + acc_res * L.mult_res[None, :]
    _check(z, Z_BITS, f"{L.t.name} post-op z")
    return np.clip(round_shift(z, L.shift), 0, 127)


def _classifier_arrays(q):
    return np.asarray(q["classifier.q.weight"], np.int64), np.asarray(q["classifier.q.bias"], np.int64)


# --- decisions ---------------------------------------------------------------------------------------

@dataclass
class Decisions:
    """A batch of decisions (arrays in decision order). Decision k pools the final frames
    [k H, k H + T): `frame` = k H + T - 1 (its last), `ready` = frame + D (the input frame after which it
    is known)."""
    index: np.ndarray
    frame: np.ndarray
    ready: np.ndarray
    logits: np.ndarray          # (n, n_classes) int64 (32-bit values)

    @property
    def cls(self):
        return np.argmax(self.logits, axis=1) if len(self.index) else np.zeros(0, np.int64)

    def __len__(self):
        return len(self.index)

    @classmethod
    def empty(cls, n_classes):
        z = np.zeros(0, np.int64)
        return cls(z, z, z, np.zeros((0, n_classes), np.int64))

    @classmethod
    def concat(cls, parts, n_classes):
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(n_classes)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("index", "frame", "ready", "logits")))


def _decisions(frames_out_before, m, n_frames, hop, delay):
    """Decision indices k whose last pooled frame u_k = k H + T - 1 lies among the new final frames."""
    lo, hi = frames_out_before, frames_out_before + m          # new final frames [lo, hi)
    k0 = max(0, -(-(lo - (n_frames - 1)) // hop))
    k1 = (hi - 1 - (n_frames - 1)) // hop                       # last k with u_k < hi
    ks = np.arange(k0, k1 + 1, dtype=np.int64) if k1 >= k0 else np.zeros(0, np.int64)
    frames = ks * hop + n_frames - 1
    return ks, frames, frames + delay


class StreamingNetwork:
    """The vectorised streaming engine of one checkpoint (golden/SPEC.md 6.1-6.3).

    `push(frames)` takes (n, n_mfcc) int8 feature frames (any n, also 0) and returns the `Decisions`
    completed by them. State: `reset()`. `causal=True` runs the causal variant (no residual delay, no
    warm-up skip: what today's centred weights give on a causal datapath); it is measured, not the
    contract.
    """

    def __init__(self, topology, int_arrays, n_frames, hop=DEFAULT_HOP, causal=False):
        if not (isinstance(hop, (int, np.integer)) and hop >= 1):
            raise ValueError(f"hop must be an integer >= 1, not {hop}")
        self.topology, self.n_frames, self.hop, self.causal = topology, int(n_frames), int(hop), causal
        self.layout = stream_layout(topology, causal)
        self.delay = self.layout[-1].delay
        self._layers = _int_layers(topology, int_arrays, causal)
        self._wc, self._bc = _classifier_arrays(int_arrays)
        self.n_classes = len(self._bc)
        self.pool_bits = signed_bits(127 * self.n_frames)     # 15 for T = 128
        self.reset()

    @classmethod
    def from_model(cls, model, hop=DEFAULT_HOP, causal=False):
        return cls(model.topology, model.int_arrays, model.features.n_frames, hop, causal)

    def reset(self):
        self.frames_in = 0
        self.frames_out = 0
        self._line = [np.zeros((L.t.line_frames, L.t.c_in), np.int64) for L in self._layers]
        self._skip = [0 if self.causal else L.t.pad for L in self._layers]
        self._fifo = [np.zeros((0, L.t.res_c_in), np.int64) for L in self._layers]
        self._hist = np.zeros((self.n_frames, self._layers[-1].t.c_out), np.int64)   # last T final frames

    def _depthwise(self, i, L, x):
        if L.dw is None:
            return x
        buf = np.concatenate([self._line[i], x])
        n = len(x)
        acc = np.zeros((n, L.t.c_in), np.int64)
        for k in range(L.dw.shape[1]):
            acc += buf[k * L.t.dilation:k * L.t.dilation + n] * L.dw[None, :, k]
        _check(acc, dw_acc_bits(L.dw.shape[1]), f"{L.t.name} depthwise acc")
        self._line[i] = buf[len(buf) - L.t.line_frames:]
        skip = min(self._skip[i], n)
        self._skip[i] -= skip
        return sat(round_shift(acc[skip:], L.dw_shift))

    def push(self, frames, trace=None):
        """Consume int8 frames (n, n_mfcc); return the Decisions they complete. `trace`, a dict, gets
        each layer's new output frames (<layer>.out) and the final frames' pools (pool)."""
        x = np.asarray(frames)
        if x.ndim != 2 or x.shape[1] != self.topology.n_mfcc:
            raise ValueError(f"frames must be (n, {self.topology.n_mfcc}), not {x.shape}")
        _check(x, 8, "input frames")
        x = x.astype(np.int64)
        self.frames_in += len(x)
        block_in = x
        for i, L in enumerate(self._layers):
            if L.block_start:
                block_in = x
            h = self._depthwise(i, L, x)
            acc = _mix(h, L.w, L.acc_bits, f"{L.t.name} mixer acc")
            acc_res = None
            if L.residual:
                res = np.concatenate([self._fifo[i], block_in])
                r, self._fifo[i] = res[:len(h)], res[len(h):]
                assert len(self._fifo[i]) <= L.t.res_delay
                acc_res = _mix(r, L.wr, L.res_acc_bits, f"{L.t.name} residual acc")
            x = _post(L, acc, acc_res)
            if trace is not None:
                trace.setdefault(L.t.name + ".out", []).append(x)
        return self._pool(x, trace)

    def _pool(self, y, trace):
        m = len(y)
        ks, frames, ready = _decisions(self.frames_out, m, self.n_frames, self.hop, self.delay)
        both = np.concatenate([self._hist, y])
        if len(ks):
            cs = np.concatenate([np.zeros((1, both.shape[1]), np.int64), np.cumsum(both, axis=0)])
            end = frames - self.frames_out + self.n_frames + 1      # row after u_k in `both`, as cs index
            pool = cs[end] - cs[end - self.n_frames]
            assert pool.min() >= 0 and pool.max() <= 127 * self.n_frames
            logits = pool @ self._wc.T + self._bc[None, :]
            _check(logits, LOGIT_BITS, "logits")
            if trace is not None:
                trace.setdefault("pool", []).append(pool)
        else:
            logits = np.zeros((0, self.n_classes), np.int64)
        self._hist = both[len(both) - self.n_frames:]
        self.frames_out += m
        return Decisions(ks, frames, ready, logits)

    def run(self, frames, chunk=4096):
        """All Decisions of a whole stream of frames (from the current state), `chunk` frames at a time."""
        return Decisions.concat([self.push(frames[i:i + chunk]) for i in range(0, len(frames), chunk)],
                                self.n_classes)


class FrameStream:
    """Frame-by-frame reference of the contract (golden/SPEC.md 6.3, "order of operations"): ring
    buffers indexed modulo their length, one input frame per `step`, per-frame loops over taps. Slow;
    tests require `StreamingNetwork` equal to it."""

    def __init__(self, topology, int_arrays, n_frames, hop=DEFAULT_HOP, causal=False):
        self.topology, self.n_frames, self.hop, self.causal = topology, int(n_frames), int(hop), causal
        self._layers = _int_layers(topology, int_arrays, causal)
        self.delay = stream_layout(topology, causal)[-1].delay
        self._wc, self._bc = _classifier_arrays(int_arrays)
        # the residual layer of the block each block-start layer opens
        self._res_of = {}
        for i, L in enumerate(self._layers):
            if L.block_start:
                self._res_of[i] = next(j for j in range(i, len(self._layers)) if self._layers[j].residual)
        self.reset()

    def reset(self):
        # line ring: span = 2p + 1 slots (the 2p frames kept and the arriving one), all zero at reset
        self._ring = [np.zeros((L.t.line_frames + 1, L.t.c_in), np.int64) for L in self._layers]
        self._wr = [0] * len(self._layers)          # next slot to write
        self._seen = [0] * len(self._layers)        # input frames this layer has received
        self._fifo = [[] for _ in self._layers]     # residual FIFO (block-input frames)
        c = self._layers[-1].t.c_out
        self._pring = np.zeros((self.n_frames, c), np.int64)
        self._pos = 0
        self._pool = np.zeros(c, np.int64)
        self.frames_out = 0

    def step(self, frame):
        """One int8 frame (n_mfcc,) in; the decision it completes out: (k, logits) or None."""
        x = np.asarray(frame, np.int64)
        for i, L in enumerate(self._layers):
            if L.block_start:
                self._fifo[self._res_of[i]].append(x)       # the block input enters its residual FIFO
            if L.dw is not None:
                ring, span = self._ring[i], L.t.line_frames + 1
                ring[self._wr[i]] = x
                self._wr[i] = (self._wr[i] + 1) % span
                self._seen[i] += 1
                if not self.causal and self._seen[i] <= L.t.pad:
                    return None                             # warm-up: the output would be centred before 0
                # oldest slot = the next one to write; tap k reads the frame k*dil after the oldest
                acc = np.zeros(L.t.c_in, np.int64)
                for k in range(L.dw.shape[1]):
                    acc += L.dw[:, k] * ring[(self._wr[i] + k * L.t.dilation) % span]
                h = sat(round_shift(acc, L.dw_shift))
            else:
                h = x
            acc = (h[None, :].astype(np.float64) @ L.w).astype(np.int64)[0]
            acc_res = None
            if L.residual:
                r = self._fifo[i].pop(0)                    # the block input aligned with this output
                assert len(self._fifo[i]) == L.t.res_delay
                acc_res = (r[None, :].astype(np.float64) @ L.wr).astype(np.int64)[0]
            z = acc * L.mult + L.bias + (0 if acc_res is None else acc_res * L.mult_res)
            x = np.clip(round_shift(z, L.shift), 0, 127)
        # running pool: add the new final frame, subtract the one T frames older
        self._pool += x - self._pring[self._pos]
        assert self._pool.min() >= 0 and self._pool.max() <= 127 * self.n_frames
        self._pring[self._pos] = x
        self._pos = (self._pos + 1) % self.n_frames
        u = self.frames_out
        self.frames_out += 1
        if u >= self.n_frames - 1 and (u - (self.n_frames - 1)) % self.hop == 0:
            return (u - (self.n_frames - 1)) // self.hop, self._wc @ self._pool + self._bc
        return None


# --- detection rule ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectorConfig:
    """The integer detection rule's parameters (golden/SPEC.md 6.4)."""
    threshold: int                  # theta: margin of the smoothed score, in logit LSBs
    keywords: tuple                 # class indices that can fire (the others only compete)
    smooth: int = DEFAULT_SMOOTH    # N decisions summed
    refractory: int = DEFAULT_REFRACTORY   # R decisions

    def __post_init__(self):
        if not 1 <= self.smooth <= SMOOTH_MAX:
            raise ValueError(f"smooth must be in [1, {SMOOTH_MAX}], not {self.smooth}")
        if self.refractory < 1:
            raise ValueError(f"refractory must be >= 1, not {self.refractory}")
        if not 0 <= self.threshold <= THRESHOLD_MAX:
            raise ValueError(f"threshold must be in [0, 2^{SCORE_BITS - 1} - 1], not {self.threshold}")
        if not self.keywords:
            raise ValueError("at least one keyword class is needed")


def keyword_classes(labels):
    """Indices of the labels that are keywords (not silence or unknown)."""
    ks = tuple(i for i, name in enumerate(labels) if name in KEYWORDS)
    return ks or tuple(i for i, name in enumerate(labels) if name not in ("silence", "unknown"))


def threshold_int(threshold, smooth, logit_scale):
    """theta from a threshold in float logit units per decision: ceil(threshold * N / logit_scale),
    clamped to [0, THRESHOLD_MAX] (a negative float threshold gives 0)."""
    v = math.ceil(float(threshold) * smooth / float(logit_scale))
    return int(min(max(v, 0), THRESHOLD_MAX))


def detector_config(model, threshold=DEFAULT_THRESHOLD, smooth=DEFAULT_SMOOTH, refractory=DEFAULT_REFRACTORY):
    return DetectorConfig(threshold_int(threshold, smooth, model.scales.get("logit", 1.0)),
                          keyword_classes(model.labels), smooth, refractory)


@dataclass(frozen=True)
class Event:
    index: int          # decision k
    frame: int          # u_k, the last final frame pooled
    ready: int          # the input frame after which the event is known
    cls: int
    margin: int         # the integer margin m_k (>= theta)


def scores(logits, cfg, history=None):
    """(S, best, margin) for every decision of `logits` (n, C): S the smoothed score (n, C), best the
    first keyword argmax, margin = S[best] - max of the other classes. `history`: the N - 1 logits before
    (zeros at the stream start)."""
    logits = np.asarray(logits, np.int64)
    n, c = logits.shape
    hist = np.zeros((cfg.smooth - 1, c), np.int64) if history is None else history
    both = np.concatenate([hist, logits])
    cs = np.concatenate([np.zeros((1, c), np.int64), np.cumsum(both, axis=0)])
    s = cs[cfg.smooth:] - cs[:len(cs) - cfg.smooth]                    # sum of rows j-N+1 .. j
    _check(s, SCORE_BITS, "smoothed score")
    kw = np.asarray(cfg.keywords)
    best = kw[np.argmax(s[:, kw], axis=1)] if n else np.zeros(0, np.int64)
    others = s.copy()
    others[np.arange(n), best] = np.iinfo(np.int64).min
    margin = s[np.arange(n), best] - others.max(axis=1) if n else np.zeros(0, np.int64)
    _check(margin, MARGIN_BITS, "margin")
    return s, best, margin


class Detector:
    """The detection rule on a stream of decisions (golden/SPEC.md 6.4): an event at decision k when
    margin_k >= theta, the detector is armed, and the last event is at least R decisions back; an event
    disarms it; a decision with margin_k < theta, or whose best keyword is not the last event's class,
    arms it again."""

    def __init__(self, cfg, n_classes):
        self.cfg, self.n_classes = cfg, n_classes
        self.reset()

    def reset(self):
        self._hist = np.zeros((self.cfg.smooth - 1, self.n_classes), np.int64)
        self._state = (None, None, True)     # (decision index of the last event, its class, armed)

    def update(self, decisions):
        """Events (in order) of a batch of Decisions that follow the ones seen before."""
        if not len(decisions):
            return []
        _, best, margin = scores(decisions.logits, self.cfg, self._hist)
        both = np.concatenate([self._hist, decisions.logits])
        self._hist = both[len(both) - (self.cfg.smooth - 1):] if self.cfg.smooth > 1 else self._hist
        fired, self._state = fire(decisions.index, margin, best, self.cfg.threshold, self.cfg.refractory,
                                  self._state)
        return [Event(int(decisions.index[j]), int(decisions.frame[j]), int(decisions.ready[j]), int(best[j]),
                      int(margin[j])) for j in fired]


def fire(index, margin, best, threshold, refractory, state=(None, None, True)):
    """The detector's state machine (golden/SPEC.md 6.4) over consecutive decisions `index` with margins
    `margin` and best keywords `best`: the positions that fire, and the state after, (decision index of
    the last event, its class, armed). Only the decisions over the threshold are visited: one under it
    in between re-arms."""
    last, last_cls, armed = state
    over = np.flatnonzero(np.asarray(margin) >= threshold)
    fired, prev = [], -1
    for j in over:
        c, k = int(best[j]), int(index[j])
        if j != prev + 1 or c != last_cls:
            armed = True            # a decision under the threshold since, or another keyword on top
        if armed and (last is None or k - last >= refractory):
            fired.append(int(j))
            last, last_cls, armed = k, c, False
        prev = j
    if len(margin) and (not len(over) or over[-1] != len(margin) - 1):
        armed = True
    return fired, (last, last_cls, armed)


def detect(decisions, cfg, n_classes):
    """Events of a whole stream of Decisions (a fresh Detector)."""
    return Detector(cfg, n_classes).update(decisions)


# --- features of unbounded audio ----------------------------------------------------------------------

@dataclass(frozen=True)
class _FeatureTables:
    window: np.ndarray
    mel_bins: tuple         # per mel band: (bins ascending, weights)
    dct: np.ndarray


def _tables(cfg):
    fb = mel_filterbank(cfg)
    bins = tuple((np.flatnonzero(fb[:, m]), fb[np.flatnonzero(fb[:, m]), m]) for m in range(cfg.n_mels))
    return _FeatureTables(hann_periodic(cfg.win_length), bins, dct_matrix(cfg.n_mels, cfg.n_mfcc))


_TABLES = {}


def frame_mfcc(frames, cfg=FeatureConfig()):
    """Float MFCC (n, n_mfcc) float32 of framed audio (n, win_length), each row alone (golden/SPEC.md
    6.5): the steps of section 3 with every sum in ascending index order (elementwise float64, no BLAS),
    so a frame's value does not depend on the other rows, the chunking or the machine's BLAS."""
    t = _TABLES.get(cfg)
    if t is None:
        t = _TABLES[cfg] = _tables(cfg)
    frames = np.asarray(frames, np.float64)
    spec = np.fft.rfft(frames * t.window[None, :], n=cfg.n_fft, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = np.zeros((len(frames), cfg.n_mels))
    for m, (bins, w) in enumerate(t.mel_bins):
        acc = np.zeros(len(frames))
        for b, wb in zip(bins, w):
            acc = acc + power[:, b] * wb
        mel[:, m] = acc
    logmel = 10.0 * np.log10(np.maximum(mel, cfg.log_floor))
    out = np.zeros((len(frames), cfg.n_mfcc))
    for n in range(cfg.n_mels):
        out = out + logmel[:, n:n + 1] * t.dct[n][None, :]
    return out.astype(np.float32)


def n_stream_frames(n_samples, cfg=FeatureConfig()):
    """Complete frames in n samples: frame t covers samples [t hop, t hop + win)."""
    return max(0, (n_samples - cfg.win_length) // cfg.hop_length + 1)


def stream_mfcc(samples, cfg=FeatureConfig(), chunk=8192):
    """Float MFCC of a whole stream (frames t = 0 .. n_stream_frames - 1), `chunk` frames at a time."""
    x = np.asarray(samples, np.float64)
    n = n_stream_frames(len(x), cfg)
    out = np.zeros((n, cfg.n_mfcc), np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        idx = (np.arange(a, b) * cfg.hop_length)[:, None] + np.arange(cfg.win_length)[None, :]
        out[a:b] = frame_mfcc(x[idx], cfg)
    return out


class FeatureStream:
    """Audio in chunks of any size -> the MFCC frames they complete (equal to `stream_mfcc` of the whole).
    Keeps the samples of the frames not yet complete (at most win_length - 1 + hop_length)."""

    def __init__(self, cfg, mean, scale):
        self.cfg, self.mean, self.scale = cfg, mean, scale
        self.reset()

    def reset(self):
        self._buf = np.zeros(0, np.float64)
        self.frames = 0
        self.samples = 0

    def push_mfcc(self, samples):
        x = np.asarray(samples, np.float64).ravel()
        self.samples += len(x)
        self._buf = np.concatenate([self._buf, x])
        n = n_stream_frames(len(self._buf), self.cfg)
        if n == 0:
            return np.zeros((0, self.cfg.n_mfcc), np.float32)
        c = stream_mfcc(self._buf[:(n - 1) * self.cfg.hop_length + self.cfg.win_length], self.cfg)
        self._buf = self._buf[n * self.cfg.hop_length:]
        self.frames += n
        return c

    def push(self, samples):
        """int8 feature frames (n, n_mfcc) completed by `samples`."""
        return _quantize(self.push_mfcc(samples), self.mean, self.scale)

    def push_float(self, samples):
        """Normalized float features (the float network's input) completed by `samples`."""
        return _normalize(self.push_mfcc(samples), self.mean, self.scale)


# --- engines and the listener ---------------------------------------------------------------------------

class GoldenEngine:
    """int8 frames -> (Decisions, [Event]): the golden streaming network and detector. A device engine
    (the RTL's streaming mode) has the same interface: push, reset, delay, hop, n_frames, n_classes."""

    name = "golden"

    def __init__(self, model, detector=None, hop=DEFAULT_HOP, causal=False):
        self.net = StreamingNetwork.from_model(model, hop, causal)
        self.detector_cfg = detector or detector_config(model)
        self.detector = Detector(self.detector_cfg, self.net.n_classes)
        self.delay, self.hop, self.n_frames, self.n_classes = self.net.delay, hop, self.net.n_frames, self.net.n_classes

    def reset(self):
        self.net.reset()
        self.detector.reset()

    def push(self, frames):
        d = self.net.push(frames)
        return d, self.detector.update(d)


@dataclass
class Detection:
    """An event with its label and times (seconds from the stream's first sample)."""
    label: str
    cls: int
    time: float             # when it is known: the end of input frame `ready`
    window: tuple           # (start, end) of the audio the pooled window covers
    score: float            # margin in float logit units per decision (margin * logit scale / N)
    margin: int
    index: int

    def to_dict(self):
        return {"time_s": round(self.time, 3), "class": self.label, "score": round(self.score, 3),
                "margin": self.margin, "decision": self.index,
                "window_s": [round(self.window[0], 3), round(self.window[1], 3)]}


class Listener:
    """Audio -> FeatureStream -> engine -> detections with times. `push(samples)` returns the
    Detections completed so far; `finish()` feeds the tail (D + T/2 frames of digital silence) so that a
    keyword at the very end is still decided, and returns the last ones. `record=True` keeps every
    Decision (self.decisions)."""

    def __init__(self, model, engine=None, record=False, tail=True):
        self.model = model
        self.engine = engine or GoldenEngine(model)
        self.features = FeatureStream(model.features, model.feature_mean, model.feature_scale)
        self.record, self.tail = record, tail
        self._decisions = []
        self.detections = []
        self.logit_scale = float(model.scales.get("logit", 1.0))

    def reset(self):
        self.engine.reset()
        self.features.reset()
        self._decisions, self.detections = [], []

    @property
    def decisions(self):
        return Decisions.concat(self._decisions, self.engine.n_classes)

    def frame_end(self, t):
        """Seconds at the end of input frame t."""
        f = self.model.features
        return (t * f.hop_length + f.win_length) / f.sample_rate

    def frame_start(self, t):
        f = self.model.features
        return t * f.hop_length / f.sample_rate

    def _detection(self, e):
        cfg = getattr(self.engine, "detector_cfg", None)
        n = cfg.smooth if cfg else 1
        t = self.model.features.n_frames
        return Detection(self.model.labels[e.cls], e.cls, self.frame_end(e.ready),
                         (self.frame_start(e.frame - t + 1), self.frame_end(e.frame)),
                         e.margin * self.logit_scale / n, e.margin, e.index)

    def push(self, samples):
        d, events = self.engine.push(self.features.push(samples))
        if self.record:
            self._decisions.append(d)
        out = [self._detection(e) for e in events]
        self.detections += out
        return out

    def tail_samples(self):
        f = self.model.features
        frames = self.engine.delay + f.n_frames // 2
        return np.zeros(frames * f.hop_length, np.float32)

    def finish(self):
        return self.push(self.tail_samples()) if self.tail else []

    def listen(self, samples, chunk_seconds=None):
        """All detections of a whole recording (push in chunks, then finish)."""
        step = len(samples) if not chunk_seconds else int(chunk_seconds * self.model.features.sample_rate)
        for a in range(0, len(samples), max(step, 1)):
            self.push(samples[a:a + step])
        self.finish()
        return self.detections
