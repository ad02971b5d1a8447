"""Post-op: BN fold, residual add, ReLU, requantization to int8 (twin: golden/post_op.py).

Contract (golden/post_op.py): z[t, o] = acc[t, o] * mult[o] + acc_res[t, o] * mult_res[o] + bias[o]
(48-bit signed; mult, mult_res signed 16-bit, bias signed 32-bit), y = clip(round_shift(z, shift), 0, 127)
with ReLU, sat8(round_shift(z, shift)) without. The residual term exists only for layers that have one.

Streams
-------
``i``: one output channel per beat, ``{acc, acc_res}`` (each ``signed(acc_width)``), channels 0 .. c_out - 1
of a frame in order, frames back to back; ``acc_res`` is ignored for layers without a residual. ``o``: one
int8 per beat, same order. ``layer`` is sampled with the first beat (channel 0) of every frame and holds
for the frame; it may change at any time, a new value takes effect at the next frame (values >=
len(layers) are not allowed).

Datapath (4 stages, one beat per cycle, the whole pipeline stalls while ``o.valid & ~o.ready``)
------------------------------------------------------------------------------------------------
1. accept: register acc, acc_res (0 for layers without a residual); read the channel's constants.
2. multiply and add: z = (acc * mult + bias') + acc_res * mult_res into one register, where bias' =
   bias + 2^(shift-1) (the rounding constant folded in at elaboration; exact: round_shift(z, s) =
   (z + 2^(s-1)) >> s). Two ``acc_width`` x 16 signed multipliers (one when no layer has a residual):
   for ``acc_width`` <= 16 each is one iCE40 SB_MAC16 (2 of the UP5K's 8 DSPs) and yosys puts all of
   stage 2 inside them -- the acc register (DSP input register), both adders and the z register (the
   second DSP's output register, its hold input the stall) -- because the data registers are
   reset_less (a DSP register has no synchronous reset; only the valid bits are reset). Each sum is as
   wide as the tables bound it (|acc| <= 2^(acc_width-1)), 32 bits for the bundled model: the DSPs'
   width. On the UP5K board build this stage costs 230 logic cells less than registered products, a
   separate bias stage and reset data registers did. Sharing one DSP over two cycles would halve the
   rate and add input multiplexers (logic cells) to save a DSP, of which the UP5K has spare.
3. shift and clip: the shift is a per-layer constant, so per distinct shift the 8 result bits of
   z >> s and whether the bits above them are all the sign (a multiplexer over the layers of
   constant shifts, no barrel shifter, no comparator); then ReLU/saturation into an 8-bit register.
4. output register (``o.payload``).

Constants: per-channel mult and bias' words (``Memory`` initialized at elaboration; EBR on iCE40), the
residual layers' channels first, so that a residual channel's mult_res sits at the low bits of the same
address of its own ROM (no second address counter). A table of more than 512 rows would be cut by yosys
into 256-row blocks behind a wide output multiplexer (83 LUTs for the bundled model's 576 rows); when
the rows past 512 fit beside mult_res in one 256-row memory (`packed_constants`), the first 512 rows
are one 512 x 38 memory (5 EBR, no multiplexer) and the tail shares the mult_res memory (3 EBR): 8 EBR
instead of 9 and a 2:1 multiplexer. Per-layer scalars (shift, c_out, table bases, has-residual) are
constant muxes on the layer index: a few bits each, not worth a memory. A retrained checkpoint changes
only the initial contents.

Resources (UP5K board build, boards/breakdown.py; bundled 3x1x64 model: 6 layers, 576 channels, 2
residual layers, acc_width 16): 177 LC, 71 FF, 2 DSP, 8 EBR (`ternkws synth --unit post_op` measures
the unit alone, reports/units.md).
"""

from dataclasses import dataclass

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.contract import BIAS_BITS, MULT_BITS, Z_BITS
from ternkws.hw.params import check_bool, check_int, check_int_array, check_sequence, layer_fields

__all__ = ["PostOpLayer", "PostOp", "check_config", "MAX_SHIFT", "MAX_ACC_WIDTH"]

MAX_SHIFT = Z_BITS - 8          # 40
SPLIT = 512                     # rows of the main constants memory when the table is longer
# |acc * mult| + |acc_res * mult_res| + |bias| <= 2 * 2^(w-1) * 2^15 + 2^31 < 2^47 needs w <= 31
MAX_ACC_WIDTH = Z_BITS - MULT_BITS - 1


@dataclass(frozen=True)
class PostOpLayer:
    c_out: int
    mult: np.ndarray
    bias: np.ndarray
    shift: int
    mult_res: np.ndarray = None

    @property
    def residual(self):
        return self.mult_res is not None


def _signed_width(values):
    """Bits of a two's-complement register that holds every value in `values`."""
    lo, hi = min(int(v) for v in values), max(int(v) for v in values)
    return max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1


def _check_layer(index, layer):
    name = f"layer {index}"
    c_out, mult, bias, shift, mult_res = layer_fields(layer, name, ("c_out", "mult", "bias", "shift"),
                                                      optional=("mult_res",))
    c_out = check_int(c_out, f"{name}: c_out", low=1)
    shift = check_int(shift, f"{name}: shift", low=0, high=MAX_SHIFT)

    def vector(value, what, bits):
        return check_int_array(value, f"{name}: {what}", bits=bits, shape=(c_out,),
                               shape_text=f"({c_out},) (one per output channel)")
    mult = vector(mult, "mult", MULT_BITS)
    bias = vector(bias, "bias", BIAS_BITS)
    if mult_res is not None:
        mult_res = vector(mult_res, "mult_res", MULT_BITS)
    return PostOpLayer(c_out, mult, bias, shift, mult_res)


def check_config(layers, acc_width, relu):
    """(layers as PostOpLayer tuple, acc_width, relu), checked as PostOp takes them; TypeError /
    ValueError naming the bad value. Callers may run it before building the unit."""
    acc_width = check_int(acc_width, "acc_width", low=1, high=MAX_ACC_WIDTH,
                          bounds=f"in [1, {MAX_ACC_WIDTH}] so that z fits {Z_BITS} bits")
    relu = check_bool(relu, "relu")
    layers = tuple(_check_layer(n, layer) for n, layer in enumerate(check_sequence(layers, "layers", "layer")))
    return layers, acc_width, relu


class PostOp(wiring.Component):
    """BN fold + residual add + ReLU + requantize for several layers; see the module docstring.

    Parameters
    ----------
    layers : sequence of ``(c_out, mult (c_out,), bias (c_out,), shift, mult_res (c_out,) or None)`` or
        objects with those attributes (e.g. :class:`PostOpLayer`).
    acc_width : width of the signed ``acc`` / ``acc_res`` inputs, 1 .. 31 (so z fits 48 bits).
    relu : clip to [0, 127] (every layer of the network) or, when False, saturate to [-128, 127].

    Ports
    -----
    layer : In(range(len(layers))) — sampled with channel 0 of each frame.
    i : In(stream.Signature(StructLayout({"acc": signed(acc_width), "acc_res": signed(acc_width)})))
    o : Out(stream.Signature(signed(8)))
    """

    def __init__(self, layers, acc_width, relu=True):
        self._layers, self._acc_width, self._relu = check_config(layers, acc_width, relu)
        super().__init__({
            "layer": In(range(len(self._layers))),
            "i": In(stream.Signature(data.StructLayout({"acc": signed(self._acc_width),
                                                          "acc_res": signed(self._acc_width)}))),
            "o": Out(stream.Signature(signed(8))),
        })

    layers = property(lambda self: self._layers)
    acc_width = property(lambda self: self._acc_width)
    relu = property(lambda self: self._relu)

    @property
    def residual(self):
        """True when some layer has a residual term (and the unit a second multiplier)."""
        return any(layer.residual for layer in self._layers)

    @property
    def multipliers(self):
        """acc_width x 16 signed multipliers: 1, or 2 when some layer has a residual."""
        return 2 if self.residual else 1

    @property
    def packed_constants(self):
        """True when the constants table is longer than SPLIT rows and its tail fits the residual ROM's
        memory (256 rows) beside mult_res: two memories and no wide output multiplexer (elaborate())."""
        n_rows = sum(layer.c_out for layer in self._layers)
        n_res = sum(layer.c_out for layer in self._layers if layer.residual)
        return self.residual and n_rows > SPLIT and n_res + (n_rows - SPLIT) <= 256

    def _tables(self):
        """Per-channel ROM contents: (mult, bias + rounding) of all layers, the residual layers' channels
        first, so that a residual channel's mult_res sits at the same address of its own ROM (which holds
        only those); and each layer's first address."""
        order = sorted(range(len(self._layers)), key=lambda n: not self._layers[n].residual)
        mult, bias, mult_res, bases = [], [], [], [0] * len(self._layers)
        for n in order:
            layer = self._layers[n]
            bases[n] = len(mult)
            rounding = (1 << (layer.shift - 1)) if layer.shift else 0
            mult += [int(v) for v in layer.mult]
            bias += [int(v) + rounding for v in layer.bias]
            if layer.residual:
                mult_res += [int(v) for v in layer.mult_res]
        return mult, bias, mult_res, bases

    def elaborate(self, platform):
        m = Module()
        layers, aw = self._layers, self._acc_width
        mult_t, bias_t, mult_res_t, bases = self._tables()
        bias_width = _signed_width(bias_t)
        residual = self.residual
        max_c_out = max(layer.c_out for layer in layers)
        # Bounds over the tables themselves: |acc|, |acc_res| <= 2^(aw-1), so per channel
        # |acc * mult + bias'| <= 2^(aw-1) |mult| + |bias'| and |z| <= that + 2^(aw-1) |mult_res|
        # (acc_res is 0 for the layers without a residual); at most 2 * 2^(aw-1) * 2^15 + 2^31 < 2^47.
        half = 1 << (aw - 1)
        res_of = [0] * len(mult_t)
        for n, layer in enumerate(layers):
            if layer.residual:
                for c in range(layer.c_out):
                    res_of[bases[n] + c] = int(layer.mult_res[c])
        p1_bound = max(half * abs(mv) + abs(bv) for mv, bv in zip(mult_t, bias_t))
        z_bound = max(half * (abs(mv) + abs(rv)) + abs(bv) for mv, bv, rv in zip(mult_t, bias_t, res_of))
        p1_width, z_width = p1_bound.bit_length() + 1, z_bound.bit_length() + 1
        assert z_width <= Z_BITS

        consts = data.StructLayout({"mult": signed(MULT_BITS), "bias": signed(bias_width)})
        words = [(mv & 0xFFFF) | ((bv & ((1 << bias_width) - 1)) << MULT_BITS) for mv, bv in zip(mult_t, bias_t)]
        n_rows, n_res = len(words), len(mult_res_t)
        # Memory layout (iCE40 EBR: 256 x 16, 512 x 8, 1024 x 4 or 2048 x 2 each). A table deeper than
        # 512 rows would be cut into 256-row blocks whose outputs a wide multiplexer selects (83 LUTs for
        # the bundled model's 576 rows): instead the first SPLIT rows are one 512-deep memory (no
        # multiplexer) and the rest share a 256-row memory with mult_res -- the residual rows' mult_res
        # at rows 0.., the remaining constants at its last rows -- whenever they fit it together.
        packed = self.packed_constants
        if packed:
            tail = n_rows - SPLIT
            m.submodules.consts = consts_mem = Memory(shape=unsigned(consts.size), depth=SPLIT,
                                                      init=words[:SPLIT])
            side = [v & 0xFFFF for v in mult_res_t] + [0] * (256 - n_res - tail) + words[SPLIT:]
            m.submodules.side = side_mem = Memory(shape=unsigned(consts.size), depth=256, init=side)
            consts_rd, side_rd = consts_mem.read_port(transparent_for=()), side_mem.read_port(transparent_for=())
        else:
            m.submodules.consts = consts_mem = Memory(shape=unsigned(consts.size), depth=n_rows, init=words)
            consts_rd = consts_mem.read_port(transparent_for=())
            if residual:
                # Addressed by the low bits of the constants' address (the residual channels come first);
                # rows past them are read for other layers' channels, whose acc_res is 0.
                res_bits = max((n_res - 1).bit_length(), 1)
                m.submodules.mult_res = res_mem = Memory(shape=signed(MULT_BITS), depth=1 << res_bits,
                                                         init=mult_res_t)
                res_rd = res_mem.read_port(transparent_for=())

        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]
        take = self.i.valid & self.i.ready

        # --- stage 0: channel counter, layer of the frame, ROM addresses --------------------------
        ch = Signal(range(max_c_out))
        cur_layer = Signal(range(len(layers)))
        next_addr = Signal(range(len(mult_t) + 1))
        eff_layer = Signal(range(len(layers)))
        addr = Signal(range(len(mult_t)))
        c_out_m1 = Signal(range(max_c_out))
        has_res = Signal()
        m.d.comb += [eff_layer.eq(Mux(ch == 0, self.layer, cur_layer)), addr.eq(next_addr)]
        with m.Switch(eff_layer):
            for n, layer in enumerate(layers):
                with m.Case(n):
                    m.d.comb += [c_out_m1.eq(layer.c_out - 1), has_res.eq(layer.residual)]
                    with m.If(ch == 0):
                        m.d.comb += addr.eq(bases[n])
        m.d.comb += [consts_rd.addr.eq(addr), consts_rd.en.eq(adv)]
        if packed:
            tail_row = Signal(range(256))
            m.d.comb += [tail_row.eq(addr - SPLIT + (256 - tail)),
                         side_rd.addr.eq(Mux(addr >= SPLIT, tail_row, addr[:8])), side_rd.en.eq(adv)]
        elif residual:
            m.d.comb += [res_rd.addr.eq(addr[:res_bits]), res_rd.en.eq(adv)]
        with m.If(take):
            m.d.sync += [cur_layer.eq(eff_layer), next_addr.eq(addr + 1),
                         ch.eq(Mux(ch == c_out_m1, 0, ch + 1))]

        # --- stages 1..3 -------------------------------------------------------------------------
        # The valid bits are reset; the data registers need not be (reset_less: their flip-flops' reset
        # input zeroes acc_res for the layers without a residual, with no multiplexer).
        v1, v2, v3 = Signal(), Signal(), Signal()
        acc1 = Signal(signed(aw), reset_less=True)
        acc_res1 = Signal(signed(aw), reset_less=True)
        layer1, layer2 = (Signal(range(len(layers)), name=f"layer{n}", reset_less=True) for n in (1, 2))
        if packed:
            in_tail = Signal(reset_less=True)           # the row read for stage 1 is in the side memory
            with m.If(adv):
                m.d.sync += in_tail.eq(addr >= SPLIT)
            const1 = consts(Mux(in_tail, side_rd.data, consts_rd.data))
            mult_res1 = side_rd.data[:MULT_BITS].as_signed()
        else:
            const1 = consts(consts_rd.data)
            mult_res1 = res_rd.data if residual else None
        # stage 2: z = acc * mult + bias' (one DSP: multiplier and its adder) + acc_res * mult_res (the
        # second DSP), unregistered, into one register; each sum as wide as its bound for these tables.
        p1 = Signal(signed(p1_width))
        m.d.comb += p1.eq(acc1 * const1.mult + const1.bias)
        z = p1
        if residual:
            z = p1 + acc_res1 * mult_res1
        z2 = Signal(signed(z_width), reset_less=True)

        # stage 3: per distinct shift, the 8 result bits of z >> s and whether z >> s fits them (bits
        # above them all equal to the sign: zero for ReLU's non-negative range); then clip.
        neg = z2[-1]
        result = Signal(8)
        fits = Signal()
        shifts = {}                                    # shift -> layers using it
        for n, layer in enumerate(layers):
            shifts.setdefault(layer.shift, []).append(n)
        with m.Switch(layer2):
            for s, members in shifts.items():
                with m.Case(*members):
                    shifted = z2 >> s
                    high = shifted[7:] if len(shifted) > 7 else shifted[-1:]
                    if self._relu:
                        ok = ~high.any() if len(shifted) > 7 else ~neg
                    else:
                        ok = (high == 0) | high.all() if len(shifted) > 7 else 1
                    m.d.comb += [result.eq(shifted[:8] if len(shifted) >= 8 else shifted.as_signed()),
                                 fits.eq(ok)]
        if self._relu:
            y = Mux(neg, 0, Mux(fits, result, 127))
        else:
            y = Mux(fits, result, Mux(neg, -128, 127))
        y3 = Signal(8, reset_less=True)

        with m.If(adv):
            m.d.sync += [
                v1.eq(take), acc1.eq(self.i.payload.acc), layer1.eq(eff_layer),
                acc_res1.eq(Mux(has_res, self.i.payload.acc_res, 0)),
                v2.eq(v1), layer2.eq(layer1), z2.eq(z),
                v3.eq(v2), y3.eq(y),
                self.o.valid.eq(v3), self.o.payload.eq(y3),
            ]
        return m
