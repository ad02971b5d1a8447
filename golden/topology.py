"""Network topology: the MatchboxNet B x R x C configuration and the flat layer plan derived from it.

The plan is the order in which the golden model and the accelerator run the layers (golden/SPEC.md
section 2.1). Every 1x1 is ternary (LFSR, seed per layer) or learned (the baseline), per `mixer`.
"""

import re
from dataclasses import asdict, dataclass, field

from ternkws.golden.errors import UserError

from .contract import BASE_SEED_BITS, CHANNELS_MAX, KERNEL_MAX, MIXER_INDEX_BITS
from .ternary_generator import GROUP_MAX, PATTERNS

MIXERS = ("ternary", "learned")


@dataclass(frozen=True)
class Block:
    channels: int
    kernel: int
    repeat: int = 1
    dilation: int = 1


@dataclass(frozen=True)
class Topology:
    n_mfcc: int = 64
    n_classes: int = 12
    prologue_channels: int = 128
    prologue_kernel: int = 11
    blocks: tuple = (Block(64, 13), Block(64, 15), Block(64, 17))
    epilogue_channels: int = 128
    epilogue_kernel: int = 29
    epilogue_dilation: int = 2
    final_channels: int = 128
    mixer: str = "ternary"
    density: float = 1 / 3
    seed: int = 1
    pattern: str = "iid"          # ternary pattern (golden/SPEC.md section 1): "iid" or "grouped"

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(b if isinstance(b, Block) else Block(**b) for b in self.blocks))
        self.validate()

    def validate(self):
        def need(cond, msg):
            if not cond:
                raise UserError(f"bad topology: {msg}")
        need(self.mixer in MIXERS, f"mixer must be one of {MIXERS}, not {self.mixer!r}")
        need(0.0 < self.density <= 1.0, f"density must be in (0, 1], not {self.density}")
        need(self.pattern in PATTERNS, f"pattern must be one of {PATTERNS}, not {self.pattern!r}")
        need(self.pattern != "grouped" or self.density * GROUP_MAX >= 1 - 1e-12,
             f"the grouped pattern needs density >= 1/{GROUP_MAX} (groups of at most {GROUP_MAX} inputs), "
             f"not {self.density}")
        need(0 <= self.seed < 2 ** BASE_SEED_BITS, f"seed must be in [0, 2^{BASE_SEED_BITS}), not {self.seed}")
        need(self.n_classes >= 2, f"need at least 2 classes, not {self.n_classes}")
        for name in ("n_mfcc", "prologue_channels", "epilogue_channels", "final_channels"):
            v = getattr(self, name)
            need(1 <= v <= CHANNELS_MAX, f"{name} must be in [1, {CHANNELS_MAX}], not {v}")
        kernels = [("prologue_kernel", self.prologue_kernel), ("epilogue_kernel", self.epilogue_kernel)]
        kernels += [(f"blocks[{i}].kernel", b.kernel) for i, b in enumerate(self.blocks)]
        for name, k in kernels:
            need(k >= 1 and k % 2 == 1 and k <= KERNEL_MAX,
                 f"{name} must be odd and in [1, {KERNEL_MAX}] (centred 'same' padding), not {k}")
        for i, b in enumerate(self.blocks):
            need(1 <= b.channels <= CHANNELS_MAX, f"blocks[{i}].channels must be in [1, {CHANNELS_MAX}], not {b.channels}")
            need(b.repeat >= 1, f"blocks[{i}].repeat must be >= 1, not {b.repeat}")
            need(b.dilation >= 1, f"blocks[{i}].dilation must be >= 1, not {b.dilation}")
        need(self.epilogue_dilation >= 1, f"epilogue_dilation must be >= 1, not {self.epilogue_dilation}")

    @property
    def name(self):
        """B x R x C, e.g. 3x1x64 (when every block has the same repeat and channels)."""
        reps = {b.repeat for b in self.blocks}
        chans = {b.channels for b in self.blocks}
        if len(reps) == 1 and len(chans) == 1 and self.blocks:
            return f"{len(self.blocks)}x{reps.pop()}x{chans.pop()}"
        return "custom"

    @classmethod
    def from_name(cls, name, **kw):
        """'BxRxC' -> B blocks of R sub-blocks of C channels, kernels 13, 15, 17, ... (NeMo's rule)."""
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", name)
        if not m:
            raise UserError(f"topology name must look like BxRxC (e.g. 3x1x64), not {name!r}")
        b, r, c = map(int, m.groups())
        return cls(blocks=tuple(Block(c, 13 + 2 * i, r) for i in range(b)), **kw)

    def to_dict(self):
        d = asdict(self)
        d["blocks"] = [asdict(b) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d):
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UserError(f"bad topology: unknown field(s) {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Layer:
    """One separable layer: [depthwise conv] -> 1x1 mixer -> BN [-> + residual 1x1 -> BN] -> ReLU."""
    name: str
    index: int
    c_in: int
    c_out: int
    kernel: int | None        # None: no depthwise conv (the final 1x1)
    dilation: int
    seed: int                 # seed of the ternary generator of this layer's 1x1
    block_start: bool = False  # this layer's input is a block input (kept for the residual)
    residual: bool = False     # add BN(1x1(block input)) before the ReLU
    res_c_in: int = 0
    res_seed: int = 0

    @property
    def mixers(self):
        """(key, c_in, seed) of every 1x1 in this layer."""
        out = [(self.name + ".pw", self.c_in, self.seed)]
        if self.residual:
            out.append((self.name + ".res.pw", self.res_c_in, self.res_seed))
        return out


def one_in(density):
    """M when the density is exactly 1/M (one nonzero per M entries), else None."""
    m = round(1 / density)
    return m if m >= 1 and abs(m * density - 1) < 1e-9 else None


def density_name(density):
    """A density as people write it: 1/M where it is one (1/3, 1/2; 1 for M = 1), else the decimal (0.4)."""
    m = one_in(density)
    return f"{density:g}" if m is None else "1" if m == 1 else f"1/{m}"


def mixer_seed(base_seed, mixer_index):
    """Seed of the n-th 1x1 of the network (plan order, residual after main): base * 2^16 + n."""
    return (base_seed << MIXER_INDEX_BITS) + mixer_index


def plan(top: Topology):
    layers = []
    n_mixer = 0

    def add(name, c_in, c_out, kernel, dilation, block_start=False, residual=False, res_c_in=0):
        nonlocal n_mixer
        seed = mixer_seed(top.seed, n_mixer)
        n_mixer += 1
        res_seed = 0
        if residual:
            res_seed = mixer_seed(top.seed, n_mixer)
            n_mixer += 1
        layers.append(Layer(name, len(layers), c_in, c_out, kernel, dilation, seed, block_start,
                            residual, res_c_in, res_seed))

    add("prologue", top.n_mfcc, top.prologue_channels, top.prologue_kernel, 1)
    c = top.prologue_channels
    for bi, b in enumerate(top.blocks):
        block_in = c
        for r in range(b.repeat):
            last = r == b.repeat - 1
            add(f"block{bi + 1}.{r}", c, b.channels, b.kernel, b.dilation, block_start=(r == 0),
                residual=last, res_c_in=block_in if last else 0)
            c = b.channels
    add("epilogue", c, top.epilogue_channels, top.epilogue_kernel, top.epilogue_dilation)
    add("final", top.epilogue_channels, top.final_channels, None, 1)
    return layers


def count_parameters(top: Topology):
    """Trained parameters (as PyTorch counts them: dw, learned 1x1, BN gamma/beta, classifier)."""
    n = 0
    for layer in plan(top):
        if layer.kernel:
            n += layer.c_in * layer.kernel
        for _, c_in, _ in layer.mixers:
            if top.mixer == "learned":
                n += layer.c_out * c_in
            n += 2 * layer.c_out  # BN gamma, beta
    n += top.n_classes * top.final_channels + top.n_classes
    return n


def count_ternary_entries(top: Topology):
    """Entries of the 1x1 matrices (generated on chip for a ternary model, stored for a learned one)."""
    return sum(layer.c_out * c_in for layer in plan(top) for _, c_in, _ in layer.mixers)
