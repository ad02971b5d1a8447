"""One mapping from a checkpoint to the hardware: typed per-layer records, derived once.

    plan = hardware_plan(model, config)     # a HardwarePlan
    plan.passes                             # the schedule of one window (Pass records)
    plan.mixer_layers                       # MixerLayer per pass, in pass order (the mixer's layer table)
    plan.depthwise_layers, plan.post_op_layers, plan.classifier

The accelerator (hw/accelerator.py), `ternkws synth --unit` (boards/units.py), the testbenches and the
cycle model all build their units from these records through `make_mixer`, `make_generator`,
`make_depthwise`, `make_post_op` and `make_classifier`, so a unit measured alone is the unit the
accelerator instantiates (tests/test_layers.py checks their Verilog is identical).

Every record is a frozen dataclass: MixerLayer and ClassifierLayer here, and the units' own
DepthwiseLayer (hw/depthwise_conv.py) and PostOpLayer (hw/post_op.py). MixerLayer also unpacks like the
(c_in, c_out, seed) tuple the ternary mixer takes.
"""

from dataclasses import dataclass, field

import numpy as np

from ternkws.golden.ternary_mixer import acc_bits as mixer_acc_bits, stored_acc_bits

from .depthwise_conv import DepthwiseLayer
from .post_op import PostOpLayer

__all__ = ["AcceleratorConfig", "CONFIGS", "Pass", "MixerLayer", "DepthwiseLayer", "PostOpLayer",
           "ClassifierLayer", "HardwarePlan", "schedule", "check_config", "grouped", "grouped_adds", "hardware_plan", "make_mixer",
           "make_generator", "make_depthwise", "make_post_op", "make_classifier"]


@dataclass(frozen=True)
class AcceleratorConfig:
    """Datapath size: `mixer_lanes` ternary entries (adds) per cycle, `dw_lanes` int8 multipliers.

    `single_port_line_buffer`: the depthwise line buffer is a single-port RAM (iCE40 SPRAM; the UP5K's
    30 block RAMs hold the weights and BN constants), at one extra cycle per input beat.
    `spram`: mark the single-port memories (activation buffers, acc_res, single-port line buffer) with
    ram_style "huge" so that iCE40 synthesis maps them to SPRAM (see boards/toolchain.py).
    """
    name: str
    mixer_lanes: int
    dw_lanes: int
    single_port_line_buffer: bool = False
    spram: bool = False

    @property
    def memory_attrs(self):
        """Attributes of the single-port memories: ram_style "huge" (iCE40 SPRAM) when `spram`."""
        return {"ram_style": "huge"} if self.spram else None


CONFIGS = {
    "up5k": AcceleratorConfig("up5k", mixer_lanes=8, dw_lanes=2, single_port_line_buffer=True, spram=True),
    "ecp5": AcceleratorConfig("ecp5", mixer_lanes=64, dw_lanes=16),
}


@dataclass(frozen=True)
class Pass:
    """One pass of the schedule: one 1x1 (and, for a main pass, the depthwise conv before it)."""
    kind: str          # "res" or "main"
    layer: object      # golden.topology.Layer
    mixer: int         # index into the mixer's layer table (plan.mixer_layers)
    dw: int            # index into the depthwise table, -1: no depthwise conv (res passes, final)
    post: int          # index into the post-op table (main passes), -1 for res passes
    src: int           # activation buffer read
    dst: int           # activation buffer written (main passes); -1: pool (last layer) or acc_res
    c_in: int          # mixer input channels
    c_out: int
    residual: bool     # main pass of a layer with a residual term

    @property
    def to_pool(self):
        """The main pass of the last layer: its outputs go to the pool sums, not a buffer."""
        return self.kind == "main" and self.dst < 0


@dataclass(frozen=True)
class MixerLayer:
    """One 1x1 as the mixer runs it: c_in -> c_out; `seed` of its ternary matrix (0 for a learned one),
    `weights` its learned (c_out, c_in) int8 matrix (None for a ternary one)."""
    c_in: int
    c_out: int
    seed: int
    weights: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __iter__(self):
        return iter((self.c_in, self.c_out, self.seed))


@dataclass(frozen=True)
class ClassifierLayer:
    """The classifier: `channels` pool sums of `frames` frames -> `n_classes` logits (int8 weights
    (n_classes, channels), 32-bit biases)."""
    channels: int
    n_classes: int
    frames: int
    weights: np.ndarray = field(compare=False, repr=False)
    bias: np.ndarray = field(compare=False, repr=False)

    @property
    def pool_bits(self):
        """Width of a pool sum: ReLU outputs are in [0, 127], T of them."""
        return (127 * self.frames).bit_length() + 1


@dataclass(frozen=True)
class HardwarePlan:
    """Everything the accelerator's datapath is built from, for one model and one configuration."""
    config: AcceleratorConfig
    mixer: str                      # "ternary" or "learned" (the topology's mixer)
    density: float
    pattern: str                    # the ternary pattern: "iid" or "grouped" (golden/SPEC.md section 1)
    n_mfcc: int
    frames: int
    passes: tuple
    mixer_layers: tuple             # MixerLayer per pass, in pass order
    depthwise_layers: tuple         # DepthwiseLayer per depthwise conv, in plan order
    post_op_layers: tuple           # PostOpLayer per layer, in plan order
    classifier: ClassifierLayer
    acc_width: int                  # mixer accumulator width (= the post-op's input width)

    @property
    def buffer_depth(self):
        """Words of each activation buffer: T frames of the widest layer input/output."""
        return self.frames * max([self.n_mfcc] + [p.c_out for p in self.passes if p.kind == "main"])

    @property
    def accres_depth(self):
        """Words of the acc_res memory: T frames of the widest residual 1x1 output (1 if none)."""
        return self.frames * max([p.c_out for p in self.passes if p.kind == "res"] + [1])

    @property
    def n_buffers(self):
        return 1 + max(max(p.src, p.dst) for p in self.passes)


def schedule(model):
    """The passes of one window, buffer assignment included: a residual layer first runs its residual
    1x1 (into acc_res), then its main pass; the last layer's main pass goes to the pool."""
    passes = []
    cur, block = 0, None       # block: the buffer holding the block input while a residual needs it
    plan = model.plan
    dw_index = post_index = 0
    for n, layer in enumerate(plan):
        if layer.block_start:
            block = cur if any(later.residual for later in plan[n:]) else None
        if layer.residual:
            passes.append(Pass("res", layer, len(passes), -1, -1, block, -1, layer.res_c_in, layer.c_out, False))
        last = n == len(plan) - 1
        dst = -1 if last else min({0, 1, 2} - {cur, block})
        passes.append(Pass("main", layer, len(passes), dw_index if layer.kernel else -1, post_index, cur, dst,
                           layer.c_in, layer.c_out, layer.residual))
        dw_index += bool(layer.kernel)
        post_index += 1
        cur = dst
        if layer.residual:
            block = None       # the block input is dead: two buffers suffice when every R is 1
    return passes


def grouped(model):
    """True when the model's 1x1s are ternary of the "grouped" pattern (the grouped mixer runs them)."""
    top = model.topology
    return top.mixer == "ternary" and top.pattern == "grouped"


def grouped_adds(config):
    """Rows (adds) per cycle of the grouped mixer on `config`: the largest of 1, 2, 4, 8 not above
    mixer_lanes (its 8-row block bounds it: the ecp5 preset's 64 lanes run it at 8)."""
    from .grouped_mixer import ADDS
    return max(a for a in ADDS if a <= config.mixer_lanes)


def check_config(model, config):
    """Raise ValueError, in words, when the lanes do not fit the model's channel counts."""
    for name, lanes in (("mixer_lanes", config.mixer_lanes), ("dw_lanes", config.dw_lanes)):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"{name} must be a positive integer, not {lanes!r}")
    for p in schedule(model):
        if p.c_in % config.mixer_lanes and not grouped(model):
            raise ValueError(f"mixer_lanes={config.mixer_lanes} does not divide the {p.c_in} input channels of "
                             f"{p.layer.name}'s {'residual ' if p.kind == 'res' else ''}1x1; use a divisor of {p.c_in}")
        if p.dw >= 0 and p.c_in % config.dw_lanes:
            raise ValueError(f"dw_lanes={config.dw_lanes} does not divide the {p.c_in} channels of "
                             f"{p.layer.name}'s depthwise conv; use a divisor of {p.c_in}")


def hardware_plan(model, config=CONFIGS["up5k"], *, mixer_weights=None):
    """The HardwarePlan of `model` (a golden.checkpoint.Model) on `config`; ValueError when the lanes
    do not fit. `mixer_weights`: the int arrays to take learned 1x1 weights from (default the model's;
    `ternkws synth` gives a ternary model the learned baseline's to size the stored-weights mixer)."""
    check_config(model, config)
    top, q = model.topology, model.int_arrays
    w = q if mixer_weights is None else mixer_weights
    passes = tuple(schedule(model))
    mixers = []
    for p in passes:
        key = f"{p.layer.name}.q.{'res.' if p.kind == 'res' else ''}pw"
        seed = p.layer.res_seed if p.kind == "res" else p.layer.seed
        weights = w.get(key)
        mixers.append(MixerLayer(p.c_in, p.c_out, seed, None if weights is None else np.asarray(weights)))
    depthwise = tuple(DepthwiseLayer(layer.c_in, layer.kernel, layer.dilation, np.asarray(q[f"{layer.name}.q.dw"]),
                                     int(q[f"{layer.name}.q.dw_shift"]))
                      for layer in model.plan if layer.kernel)
    post = tuple(PostOpLayer(layer.c_out, np.asarray(q[f"{layer.name}.q.mult"]), np.asarray(q[f"{layer.name}.q.bias"]),
                             int(q[f"{layer.name}.q.shift"]),
                             np.asarray(q[f"{layer.name}.q.mult_res"]) if layer.residual else None)
                 for layer in model.plan)
    frames = model.features.n_frames
    classifier = ClassifierLayer(top.final_channels, top.n_classes, frames,
                                 np.asarray(q["classifier.q.weight"]), np.asarray(q["classifier.q.bias"]))
    bits = mixer_acc_bits if top.mixer == "ternary" else stored_acc_bits
    acc_width = max(bits(p.c_in) for p in passes)
    return HardwarePlan(config, top.mixer, top.density, top.pattern, top.n_mfcc, frames, passes, tuple(mixers), depthwise,
                        post, classifier, acc_width)


# -- the units, built from the records ---------------------------------------------------------------

def make_mixer(plan, stored=None):
    """The 1x1 unit of `plan`: TernaryMixer for a ternary model, StoredMixer (learned int8 weights in a
    ROM) for a learned one; `stored=True` forces the stored-weights mixer (its records must carry
    weights)."""
    stored = plan.mixer == "learned" if stored is None else stored
    if stored:
        from .stored_mixer import StoredMixer
        missing = [n for n, m in enumerate(plan.mixer_layers) if m.weights is None]
        if missing:
            raise ValueError(f"the stored-weights mixer needs learned 1x1 weights; pass {missing[0]} has none")
        return StoredMixer([m.weights for m in plan.mixer_layers], plan.config.mixer_lanes)
    if plan.pattern == "grouped":
        from .grouped_mixer import GroupedMixer
        return GroupedMixer(list(plan.mixer_layers), plan.density, grouped_adds(plan.config))
    from .ternary_mixer import TernaryMixer
    return TernaryMixer(list(plan.mixer_layers), plan.density, plan.config.mixer_lanes)


def make_generator(plan):
    """The ternary generator the ternary mixer holds: one seed per pass, in pass order."""
    from .ternary_generator import TernaryGenerator
    if plan.mixer == "ternary" and plan.pattern == "grouped":
        return TernaryGenerator([m.seed for m in plan.mixer_layers], plan.density, grouped_adds(plan.config),
                                pattern="grouped")
    return TernaryGenerator([m.seed for m in plan.mixer_layers], plan.density, plan.config.mixer_lanes)


def make_depthwise(plan):
    from .depthwise_conv import DepthwiseConv
    return DepthwiseConv(list(plan.depthwise_layers), plan.config.dw_lanes, plan.frames,
                         single_port=plan.config.single_port_line_buffer, attrs=plan.config.memory_attrs)


def make_post_op(plan):
    from .post_op import PostOp
    return PostOp(list(plan.post_op_layers), plan.acc_width, relu=True)


def make_classifier(plan):
    from .classifier import Classifier
    return Classifier(plan.classifier)
