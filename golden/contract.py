"""The checkpoint contract: every width and range the RTL assumes, defined once (golden/SPEC.md 2.2, 4).

A checkpoint is only a model the chip can run if its integers fit the datapath's widths, its floats
are finite and its shape stays inside what the units are built for. The bounds live here and nowhere
else: `golden/checkpoint.py` `load` refuses a checkpoint that breaks one (one sentence naming the array,
the offending value and index, and the allowed range), the golden model's quantizer aims at them, and
the hw/ units import the widths they are built with from this module.

Bounds (golden/SPEC.md section 2.2, "Bounds the loader enforces", is the same list in prose):

=========================  ===================================  ==============================================
what (checkpoint entry)    range                                why (the RTL's assumption)
=========================  ===================================  ==============================================
<layer>.q.dw               int8 [-128, 127]                     depthwise lanes: int8 x int8 multipliers,
                                                                8-bit weight ROM words (hw/depthwise_conv.py)
<layer>.q.pw, .q.res.pw    int8 [-128, 127]                     stored mixer: 8-bit weight ROM, int8 x int8
                                                                products in 16 bits (hw/stored_mixer.py)
classifier.q.weight        int8 [-128, 127]                     classifier ROM of signed(8) words
<layer>.q.mult, mult_res   signed 16-bit [-2^15, 2^15 - 1]      post-op multipliers are acc x 16 bits and the
                                                                constants ROM holds 16-bit words (hw/post_op.py)
<layer>.q.bias             signed 32-bit [-2^31, 2^31 - 1]      with acc <= 31 bits and 16-bit multipliers,
                                                                z = acc*mult + acc_res*mult_res + bias fits the
                                                                48-bit post-op accumulator (Z_BITS)
<layer>.q.shift            [0, 40] (Z_BITS - 8)                 the post-op's shift mux; round_shift of a
                                                                48-bit z to an int8 needs no more
<layer>.q.dw_shift         [0, 40]                              the depthwise requant shift (the unit clamps
                                                                shifts above its accumulator width, which give
                                                                0 in the golden model too)
classifier.q.bias          [-2^30, 2^30]                        32-bit logits with headroom: with C, T <= 128,
                                                                |sum_c Wc * pool| < 2^28
classifier (per class k)   every logit bc[k] + sum_c Wc[k,c] *  the logit register is LOGIT_BITS = 32 bits
                           pool[c], pool[c] in [0, 127 * T],    (hw/accelerator.py CLASSIFY, hw/classifier.py):
                           in [-2^31, 2^31 - 1]                 a logit outside wraps in the RTL and not in
                                                                the golden model (`logit_range`)
topology.seed              integer in [0, 2^48)                 per-layer seed base * 2^16 + n must be < 2^64
                                                                (hw/ternary_generator.py check_seed)
1x1 layers per network     <= 2^16                              n in the per-layer seed is 16 bits
topology.density           real in (0, 1]                       generator threshold t in [1, 128]
topology.pattern           "iid" or "grouped"; grouped:         the grouped mixer's groups of M = round(1/density)
                           density >= 1/128                     <= 128 inputs, 7 position bits (SPEC 1.1)
kernels                    odd integer in [1, 63]               centred 'same' padding; depthwise acc_bits
dilations, repeats         integer >= 1
channels (every layer)     integer in [1, 1024]                 mixer accumulator acc_bits(c_in) must be
                                                                <= MAX_ACC_WIDTH = 31 (hw/post_op.py input)
n_classes                  integer in [2, 63]                   host link RESULT reply: 1 + 4 * n_classes
                                                                bytes in a 255-byte payload (hw/host_link.py)
features.n_frames          integer >= 1, n_frames * n_mfcc      host link: the window count is a 16-bit field
                           <= 65535
features.mean              finite float                         the int8 input map (SPEC section 3)
features.scale             finite float > 0                     the int8 input map (SPEC section 3)
every float array          finite                               the float model (reference of the int8 one)
<layer>.bn.var             >= 0                                 a variance: sqrt(var + eps) of the BN fold
scales                     finite float > 0                     logit scale of the confidence
=========================  ===================================  ==============================================
"""

from dataclasses import dataclass

from .intmath import signed_bits

__all__ = [
    "ACT_BITS", "WEIGHT_BITS", "MULT_BITS", "BIAS_BITS", "Z_BITS", "LOGIT_BITS",
    "WEIGHT_MIN", "WEIGHT_MAX", "MULT_MIN", "MULT_MAX", "BIAS_MIN", "BIAS_MAX", "LOGIT_MIN", "LOGIT_MAX",
    "SHIFT_MAX", "DW_SHIFT_MAX", "CLASSIFIER_BIAS_MAX", "MAX_ACC_WIDTH",
    "SEED_BITS", "MIXER_INDEX_BITS", "BASE_SEED_BITS", "MAX_MIXERS",
    "KERNEL_MAX", "CHANNELS_MAX", "CLASSES_MIN", "CLASSES_MAX", "FRAMES_MIN", "WINDOW_MAX",
    "Bound", "INT_BOUNDS", "int_bound", "signed_range", "logit_range",
]


def signed_range(bits):
    """(min, max) of a two's-complement `bits`-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# --- datapath widths ---------------------------------------------------------------------------------
ACT_BITS = 8            # int8 features and activations
WEIGHT_BITS = 8         # int8 weights: depthwise, learned 1x1 (baseline), classifier
MULT_BITS = 16          # BN multipliers mult, mult_res: signed 16-bit
BIAS_BITS = 32          # BN bias: signed 32-bit
Z_BITS = 48             # the post-op accumulator z = acc * mult + acc_res * mult_res + bias
LOGIT_BITS = 32         # the classifier's logit register and the accelerator's `o.value`

WEIGHT_MIN, WEIGHT_MAX = signed_range(WEIGHT_BITS)      # -128, 127
MULT_MIN, MULT_MAX = signed_range(MULT_BITS)            # -32768, 32767
BIAS_MIN, BIAS_MAX = signed_range(BIAS_BITS)            # -2^31, 2^31 - 1
LOGIT_MIN, LOGIT_MAX = signed_range(LOGIT_BITS)         # -2^31, 2^31 - 1

# --- rounding shifts ---------------------------------------------------------------------------------
SHIFT_MAX = Z_BITS - 8  # 40: post-op requant shift in [0, SHIFT_MAX] (a 48-bit z down to 8 bits)
DW_SHIFT_MAX = 40       # depthwise requant shift in [0, DW_SHIFT_MAX]; larger ones give 0 anyway

# --- classifier --------------------------------------------------------------------------------------
CLASSIFIER_BIAS_MAX = 1 << 30   # |classifier.q.bias| <= 2^30 (the quantizer's target; headroom of 2^30)

# --- mixer accumulator -------------------------------------------------------------------------------
# The post-op takes acc / acc_res of at most this width: 2 * 2^(w-1) * 2^15 + 2^31 + 2^39 < 2^47.
MAX_ACC_WIDTH = Z_BITS - MULT_BITS - 1      # 31

# --- generator seeds ---------------------------------------------------------------------------------
SEED_BITS = 64                  # a generator seed is an integer in [0, 2^64)
MIXER_INDEX_BITS = 16           # per-layer seed = base_seed * 2^16 + n (golden/topology.py mixer_seed)
BASE_SEED_BITS = SEED_BITS - MIXER_INDEX_BITS   # topology.seed in [0, 2^48)
MAX_MIXERS = 1 << MIXER_INDEX_BITS              # 1x1 layers per network (n < 2^16)

# --- shape limits ------------------------------------------------------------------------------------
KERNEL_MAX = 63                 # depthwise kernels: odd, in [1, 63] (acc_bits(63) = 21)
CHANNELS_MAX = 1024             # channels of every layer, in [1, 1024]
CLASSES_MIN = 2
CLASSES_MAX = 63                # host link RESULT payload: 1 + 4 * n_classes <= 255 bytes
FRAMES_MIN = 1
WINDOW_MAX = 0xFFFF             # n_frames * n_mfcc feature values: the host link's 16-bit count

# Every mixer accumulator the channel limit allows fits the post-op's input (learned 1x1: int8 x int8).
assert signed_bits(CHANNELS_MAX * 128 * 128) <= MAX_ACC_WIDTH
# With C, T <= 128 any int8 classifier and |bias| <= 2^30 gives 32-bit logits (SPEC 2.2).
assert CLASSIFIER_BIAS_MAX + 128 * 128 * 127 * 128 <= LOGIT_MAX


@dataclass(frozen=True)
class Bound:
    """The allowed range of one kind of integer array, and what in the RTL needs it."""
    suffix: str         # the end of the array name: "classifier.q.bias", ".q.mult", ...
    lo: int
    hi: int
    what: str           # e.g. "a signed 16-bit BN multiplier"
    why: str            # the RTL's assumption


_INT8 = "the RTL's 8-bit weight memories and int8 x int8 multipliers"
INT_BOUNDS = (
    # most specific suffix first
    Bound("classifier.q.weight", WEIGHT_MIN, WEIGHT_MAX, "an int8 classifier weight", _INT8),
    Bound("classifier.q.bias", -CLASSIFIER_BIAS_MAX, CLASSIFIER_BIAS_MAX, "a classifier bias",
          "32-bit logits with 2^30 of headroom for the pooled products"),
    Bound(".q.dw_shift", 0, DW_SHIFT_MAX, "a depthwise rounding shift", "the depthwise requantization"),
    Bound(".q.dw", WEIGHT_MIN, WEIGHT_MAX, "an int8 depthwise weight", _INT8),
    Bound(".q.res.pw", WEIGHT_MIN, WEIGHT_MAX, "an int8 learned residual 1x1 weight", _INT8),
    Bound(".q.pw", WEIGHT_MIN, WEIGHT_MAX, "an int8 learned 1x1 weight", _INT8),
    Bound(".q.mult_res", MULT_MIN, MULT_MAX, "a signed 16-bit residual BN multiplier",
          "the post-op's 16-bit multipliers"),
    Bound(".q.mult", MULT_MIN, MULT_MAX, "a signed 16-bit BN multiplier", "the post-op's 16-bit multipliers"),
    Bound(".q.bias", BIAS_MIN, BIAS_MAX, "a signed 32-bit BN bias", f"the post-op's {Z_BITS}-bit accumulator"),
    Bound(".q.shift", 0, SHIFT_MAX, "a post-op rounding shift", f"the post-op's {Z_BITS}-bit accumulator"),
)


def int_bound(key):
    """The Bound of the integer array named `key` (KeyError if none applies)."""
    for b in INT_BOUNDS:
        if key.endswith(b.suffix):
            return b
    raise KeyError(f"no contract bound for the integer array {key!r}")


def logit_range(weight_row, bias, frames):
    """(lo, hi) of one class's logit over every input: pool[c] in [0, 127 * frames]."""
    pos = sum(int(w) for w in weight_row if w > 0)
    neg = sum(int(w) for w in weight_row if w < 0)
    pool_max = 127 * int(frames)
    return int(bias) + neg * pool_max, int(bias) + pos * pool_max
