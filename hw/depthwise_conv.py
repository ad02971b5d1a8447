"""Streaming depthwise convolution over time: int8 frames in, int8 frames out (twin: golden/depthwise_conv.py).

Contract (golden/depthwise_conv.py): x (T, C) int8, weight (C, K) int8, 'same' zero padding
p = dil * (K - 1) / 2 at both ends, acc[t, c] = sum_k w[c, k] * x[t + k*dil - p, c],
y = sat8(round_shift(acc, shift)).

Streams
-------
``i`` and ``o`` carry ``lanes`` int8 channels per beat: a frame is C / lanes beats, beat j holds channels
j*lanes .. j*lanes + lanes - 1 (element l of the payload is channel j*lanes + l). A run is exactly
``frames`` input frames and ``frames`` output frames, in time order. ``layer`` selects the layer of the
run; it is sampled when a run starts (the first cycle ``i.valid`` is seen while ``idle``) and must only
change while ``idle`` (values >= len(layers) are not allowed). While idle, ``i.ready`` is 0; the run
starts the cycle after ``i.valid`` is seen, and the unit is idle again from the edge that takes the last
output beat.

Datapath
--------
* Line buffer: one ``Memory`` of ``lanes * 8``-bit words (one simple dual-port RAM: one write, one read
  port), a ring of ``R = (K - 1) * dil + 2`` frame slots of ``G = C / lanes`` words, so the input frame
  t + p + 1 is written while output frame t reads frames t - p .. t + p. Depth: max over layers of R * G.
  Input beats are written to consecutive addresses; the read address of tap k + 1 is the one of tap k
  plus dil * G (mod R * G), so no address multiplier is needed.
* Weights of all layers: one ``Memory`` (a ROM) of ``lanes * 8``-bit words initialized at elaboration,
  layer by layer in the order (group j, tap k), read at consecutive addresses.
* Schedule: for each output frame, for each group j, for each tap k: one read, ``lanes`` int8 x int8
  multiplies, one accumulate per lane; after tap K - 1 the ``lanes`` sums are rounded, saturated and
  leave as output beat j. So ``lanes`` multipliers, C * K / lanes cycles per output frame in steady state.
* Requantization: each lane's accumulator starts a group at the rounding constant 2^(shift-1), so
  round_shift is a plain arithmetic shift; the shift is a per-layer constant, so a mux over the layers'
  distinct shifts (wiring) replaces a barrel shifter, then sat8.
* Padding: taps whose frame index is outside [0, frames) multiply 0, never buffer content (the ring may
  hold frames of an earlier run).
* Flow control: output frame t starts as soon as input frame min(t + p, frames - 1) is complete; input
  frame f is accepted once output frame f - p - 1 has issued its last read. The pipeline (issue -> RAM
  read -> multiply -> accumulate -> round/saturate) stalls as a whole while ``o.valid & ~o.ready``; no
  value or beat is ever dropped under any stall pattern on ``i`` or ``o``.

Cycles (measured in Verilator by tests/test_depthwise_conv.py::test_cycle_table_default_layers, which
asserts them: ``i`` always valid, ``o`` always ready, T = 128 frames, the default network's depthwise
layers, one unit per lanes value holding all five). Steady state is exactly C * K / lanes cycles per
output frame; a whole run, from the first edge that sees ``i.valid`` to the edge that takes the last
output beat, is ``1 + min(p + 1, T) * C / lanes + T * C * K / lanes + 4`` cycles (1 start cycle, p + 1
frames to fill the buffer, 4 pipeline stages after the last read); ``cycles_per_run()`` gives it.

=============  ===============================  ==========================================
(C, K, dil)    cycles per output frame           cycles per run of 128 frames
               lanes 1    2    4    8   16       lanes 1       2       4       8      16
=============  ===============================  ==========================================
(64, 11, 1)          704  352  176   88   44        90,501  45,253  22,629  11,317   5,661
(128, 13, 1)        1664  832  416  208  104       213,893 106,949  53,477  26,741  13,373
(64, 15, 1)          960  480  240  120   60       123,397  61,701  30,853  15,429   7,717
(64, 17, 1)         1088  544  272  136   68       139,845  69,925  34,965  17,485   8,745
(64, 29, 2)         1856  928  464  232  116       239,429 119,717  59,861  29,933  14,969
all five             --                            807,065 403,545 201,785 100,905  50,465
=============  ===============================  ==========================================

Resources (``ternkws synth --unit depthwise_conv``, bundled 3x1x64 model, iCE40 UP5K, yosys -dsp):
lanes 4: 1,121 LC, 4 DSP, 22 BRAM (line buffer 928 x 32 bit: 8, weights 1,568 x 32 bit: 14), Fmax 35.6 MHz;
lanes 8: 1,497 LC, 8 DSP, 24 BRAM, Fmax 35.8 MHz. Yosys gives every int8 x int8 multiply a whole SB_MAC16
(it does not use the DSP's dual 8 x 8 mode), so on the UP5K lanes + the post-op's 2 DSPs must stay <= 8.
"""

from dataclasses import dataclass

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.depthwise_conv import acc_bits
from ternkws.hw.params import check_int, check_int_array, check_sequence, layer_fields

__all__ = ["DepthwiseLayer", "DepthwiseConv", "check_config", "cycles_per_frame", "cycles_per_run"]


@dataclass(frozen=True)
class DepthwiseLayer:
    channels: int
    kernel: int
    dilation: int
    weight: np.ndarray
    shift: int

    @property
    def pad(self):
        return self.dilation * (self.kernel - 1) // 2

    @property
    def span(self):
        """Frames one output frame reads: (K - 1) * dil + 1."""
        return (self.kernel - 1) * self.dilation + 1


def _check_layer(index, layer):
    name = f"layer {index}"
    channels, kernel, dilation, weight, shift = layer_fields(
        layer, name, ("channels", "kernel", "dilation", "weight", "shift"))
    channels = check_int(channels, f"{name}: channels", low=1)
    kernel = check_int(kernel, f"{name}: kernel")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"{name}: kernel must be odd and >= 1 (centred 'same' padding), not {kernel}")
    dilation = check_int(dilation, f"{name}: dilation", low=1)
    shift = check_int(shift, f"{name}: shift", low=0)
    weight = check_int_array(weight, f"{name}: weight", bits=8, shape=(channels, kernel),
                             shape_text=f"(channels, kernel) = ({channels}, {kernel})")
    return DepthwiseLayer(channels, kernel, dilation, weight, shift)


def check_config(layers, lanes, frames):
    """(layers as DepthwiseLayer tuple, lanes, frames), checked as DepthwiseConv takes them; TypeError /
    ValueError naming the bad value. Callers may run it before building the unit."""
    lanes = check_int(lanes, "lanes", low=1)
    frames = check_int(frames, "frames", low=1)
    layers = tuple(_check_layer(n, layer) for n, layer in enumerate(check_sequence(layers, "layers", "layer")))
    for n, layer in enumerate(layers):
        if layer.channels % lanes:
            raise ValueError(f"layer {n}: lanes ({lanes}) must divide its channels ({layer.channels})")
    return layers, lanes, frames


def cycles_per_frame(channels, kernel, lanes):
    """Steady-state cycles per output frame with ``i`` always valid and ``o`` always ready."""
    return channels * kernel // lanes


def cycles_per_run(channels, kernel, dilation, lanes, frames):
    """Clock edges from the first one that sees ``i.valid`` (unit idle) to the one that takes the last
    output beat, inclusive, with ``i`` always valid and ``o`` always ready: 1 start cycle, p + 1 frames
    to fill the buffer, one output frame per C * K / lanes cycles, 4 pipeline stages after the last read."""
    groups = channels // lanes
    pad = dilation * (kernel - 1) // 2
    return 1 + min(pad + 1, frames) * groups + frames * groups * kernel + 4


class DepthwiseConv(wiring.Component):
    """Streaming depthwise conv over time for several layers (one at a time); see the module docstring.

    Parameters
    ----------
    layers : sequence of ``(channels, kernel, dilation, weight (C, K) int8, shift)`` or objects with
        those attributes (e.g. :class:`DepthwiseLayer`).
    lanes : int8 multipliers working in parallel; divides every layer's channels.
    frames : frames T per run (same for every layer).
    single_port : the line buffer has one address for reads and writes (iCE40 SPRAM: a write steals the
        read slot of that cycle, so a frame takes C * (K + 1) / lanes cycles instead of C * K / lanes).
    attrs : attributes of the line-buffer memory, e.g. {"ram_style": "huge"} to ask for iCE40 SPRAM.

    Ports
    -----
    layer : In(range(len(layers))) — layer of the next run; change only while ``idle``.
    i : In(stream.Signature(ArrayLayout(signed(8), lanes))) — input frames, C / lanes beats each.
    o : Out(stream.Signature(ArrayLayout(signed(8), lanes))) — output frames, same order.
    idle : Out(1) — no run in progress.
    """

    def __init__(self, layers, lanes, frames, single_port=False, attrs=None):
        self._layers, self._lanes, self._frames = check_config(layers, lanes, frames)
        self._single_port = bool(single_port)
        self._attrs = dict(attrs or {})        # attributes of the line-buffer memory (e.g. ram_style)
        self._acc_width = max(acc_bits(layer.kernel) for layer in self._layers)
        beat = data.ArrayLayout(signed(8), self._lanes)
        super().__init__({
            "layer": In(range(len(self._layers))),
            "i": In(stream.Signature(beat)),
            "o": Out(stream.Signature(beat)),
            "idle": Out(1),
        })

    layers = property(lambda self: self._layers)
    lanes = property(lambda self: self._lanes)
    frames = property(lambda self: self._frames)
    single_port = property(lambda self: self._single_port)
    acc_width = property(lambda self: self._acc_width, doc="accumulator width: acc_bits of the largest kernel")

    @property
    def line_buffer_depth(self):
        """Words of lanes * 8 bits: ring of (K - 1) * dil + 2 frames of C / lanes words, largest layer."""
        return max((layer.span + 1) * (layer.channels // self._lanes) for layer in self._layers)

    @property
    def weight_depth(self):
        return sum(layer.channels * layer.kernel // self._lanes for layer in self._layers)

    def _weight_init(self):
        lanes = self._lanes
        words = []
        for layer in self._layers:
            w = layer.weight
            for j in range(layer.channels // lanes):
                for k in range(layer.kernel):
                    word = 0
                    for lane in range(lanes):
                        word |= (int(w[j * lanes + lane, k]) & 0xFF) << (8 * lane)
                    words.append(word)
        return words

    def elaborate(self, platform):
        m = Module()
        lanes, frames, layers = self._lanes, self._frames, self._layers
        beat = data.ArrayLayout(signed(8), lanes)
        aw = self._acc_width

        # --- per-layer constants, latched when a run starts --------------------------------------
        max_groups = max(layer.channels // lanes for layer in layers)
        max_kernel = max(layer.kernel for layer in layers)
        max_pad = max(layer.pad for layer in layers)
        max_dil = max(layer.dilation for layer in layers)
        depth = self.line_buffer_depth
        w_bases, base = [], 0
        for layer in layers:
            w_bases.append(base)
            base += layer.channels * layer.kernel // lanes

        cur_layer = Signal(range(len(layers)))
        groups_m1 = Signal(range(max_groups))          # G - 1
        kernel_m1 = Signal(range(max_kernel))          # K - 1
        pad = Signal(range(max_pad + 1))
        dil = Signal(range(max_dil + 1))
        ring = Signal(range(depth + 1))                # R * G words used by this layer
        step = Signal(range(depth))                    # dil * G: read address step between taps
        w_base = Signal(range(max(self.weight_depth, 1)))

        # --- memories ----------------------------------------------------------------------------
        m.submodules.line_buffer = line_buffer = Memory(shape=unsigned(8 * lanes), depth=depth, init=[],
                                                        attrs=self._attrs)
        m.submodules.weights = weights = Memory(shape=unsigned(8 * lanes), depth=self.weight_depth,
                                                init=self._weight_init())
        wr = line_buffer.write_port()
        rd = line_buffer.read_port(transparent_for=())
        w_rd = weights.read_port(transparent_for=())

        running = Signal()
        m.d.comb += self.idle.eq(~running)

        # --- write side: input beats to consecutive ring addresses -------------------------------
        frames_in = Signal(range(frames + 1))          # complete input frames of this run
        wr_addr = Signal(range(depth))
        wr_group = Signal(range(max_groups))
        t = Signal(range(frames + 1))                  # output frame being issued (frames: done)
        write_now = Signal()
        m.d.comb += [
            self.i.ready.eq(running & (frames_in < frames) & (frames_in <= t + pad + 1)),
            write_now.eq(self.i.valid & self.i.ready),
            wr.data.eq(self.i.payload.as_value()),
            wr.en.eq(write_now),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += wr_addr.eq(Mux(wr_addr == ring - 1, 0, wr_addr + 1))
            with m.If(wr_group == groups_m1):
                m.d.sync += [wr_group.eq(0), frames_in.eq(frames_in + 1)]
            with m.Else():
                m.d.sync += wr_group.eq(wr_group + 1)

        # --- issue stage: one (group j, tap k) per cycle ------------------------------------------
        # The whole pipeline advances unless the output register holds a beat nobody takes.
        adv = Signal()
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)

        j = Signal(range(max_groups))
        k = Signal(range(max_kernel))
        grp_addr = Signal(range(depth))                # ring address of frame t - p, group j
        tap_addr = Signal(range(depth))                # ring address of frame t - p + k*dil, group j
        frame_lo = -max_pad
        frame_hi = frames + max_pad + max_dil * max_kernel
        grp_frame = Signal(range(frame_lo, frame_hi))  # t - p
        tap_frame = Signal(range(frame_lo, frame_hi))  # t - p + k*dil
        w_addr = Signal(range(max(self.weight_depth, 1)))

        inputs_ready = (frames_in >= t + pad + 1) | (frames_in == frames)
        issue = Signal()
        m.d.comb += [w_rd.addr.eq(w_addr), w_rd.en.eq(adv)]
        if self._single_port:
            # One address: a cycle that writes an input beat issues no tap read (and the read port
            # holds the previous read's data for the pipeline).
            shared = Signal(range(depth))
            m.d.comb += [
                issue.eq(running & (t < frames) & inputs_ready & adv & ~write_now),
                shared.eq(Mux(write_now, wr_addr, tap_addr)),
                wr.addr.eq(shared), rd.addr.eq(shared),
                rd.en.eq(adv & ~write_now),
            ]
        else:
            m.d.comb += [
                issue.eq(running & (t < frames) & inputs_ready & adv),
                wr.addr.eq(wr_addr), rd.addr.eq(tap_addr),
                rd.en.eq(adv),
            ]

        # pipeline flags: stage 1 (RAM data), stage 2 (products), stage 3 (accumulator done)
        v1, first1, last1, in_range1 = Signal(), Signal(), Signal(), Signal()
        v2, first2, last2 = Signal(), Signal(), Signal()
        done3 = Signal()

        def wrap_add(a, b):
            s = a + b
            return Mux(s >= ring, s - ring, s)

        with m.If(issue):
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(k == kernel_m1):
                next_grp = wrap_add(grp_addr, 1)
                m.d.sync += [k.eq(0), grp_addr.eq(next_grp), tap_addr.eq(next_grp)]
                with m.If(j == groups_m1):
                    m.d.sync += [j.eq(0), t.eq(t + 1), w_addr.eq(w_base),
                                 grp_frame.eq(grp_frame + 1), tap_frame.eq(grp_frame + 1)]
                with m.Else():
                    m.d.sync += [j.eq(j + 1), tap_frame.eq(grp_frame)]
            with m.Else():
                m.d.sync += [k.eq(k + 1), tap_addr.eq(wrap_add(tap_addr, step)),
                             tap_frame.eq(tap_frame + dil)]

        prod2 = Signal(data.ArrayLayout(signed(16), lanes), reset_less=True)
        # The accumulator starts each group at the rounding constant 2^(s-1) instead of 0, so
        # round_shift(sum, s) is just acc >> s: no rounding adder. s is clamped to aw (larger shifts give
        # 0 as well, since |sum| < 2^(aw-1)), so acc needs aw + 1 bits.
        acc = Signal(data.ArrayLayout(signed(aw + 1), lanes), reset_less=True)
        rounding = Signal(range((1 << (aw - 1)) + 1))    # latched per run
        shifts = {}                                    # clamped shift -> layers using it
        for n, layer in enumerate(layers):
            shifts.setdefault(min(layer.shift, aw), []).append(n)
        sat8 = []
        for lane in range(lanes):
            result, fits = Signal(8, name=f"result{lane}"), Signal(name=f"fits{lane}")
            a = acc[lane]
            with m.Switch(cur_layer):
                for s, members in shifts.items():
                    with m.Case(*members):
                        sh = a >> s
                        if len(sh) > 7:
                            high = sh[7:]
                            ok = (high == 0) | high.all()
                        else:
                            ok = 1
                        m.d.comb += [result.eq(sh[:8] if len(sh) >= 8 else sh.as_signed()), fits.eq(ok)]
            sat8.append(Mux(fits, result, Mux(a[-1], -128, 127)))

        # --- stage 1 -> 2: multiply; taps outside [0, frames) are zero padding ---------------------
        x1 = beat(rd.data)
        w1 = beat(w_rd.data)
        with m.If(adv):
            m.d.sync += [
                v1.eq(issue), first1.eq(k == 0), last1.eq(k == kernel_m1),
                in_range1.eq((tap_frame >= 0) & (tap_frame < frames)),
                v2.eq(v1), first2.eq(first1), last2.eq(last1),
                done3.eq(v2 & last2),
            ]
            for lane in range(lanes):
                m.d.sync += prod2[lane].eq(Mux(in_range1, x1[lane], 0) * w1[lane])
            # --- stage 2 -> 3: accumulate over the K taps of group j ------------------------------
            with m.If(v2):
                for lane in range(lanes):
                    m.d.sync += acc[lane].eq(prod2[lane] + Mux(first2, rounding, acc[lane]))
            # --- stage 3 -> output register: round, shift, saturate -------------------------------
            m.d.sync += self.o.valid.eq(done3)
            with m.If(done3):
                for lane in range(lanes):
                    m.d.sync += self.o.payload[lane].eq(sat8[lane])
        # --- run control -------------------------------------------------------------------------
        with m.If(~running):
            with m.If(self.i.valid):
                m.d.sync += [running.eq(1), cur_layer.eq(self.layer), frames_in.eq(0), wr_addr.eq(0),
                             wr_group.eq(0), t.eq(0), j.eq(0), k.eq(0)]
                with m.Switch(self.layer):
                    for n, layer in enumerate(layers):
                        g = layer.channels // lanes
                        size = (layer.span + 1) * g
                        start = ((layer.pad + 2) % (layer.span + 1)) * g   # ring address of frame -p
                        with m.Case(n):
                            m.d.sync += [
                                groups_m1.eq(g - 1), kernel_m1.eq(layer.kernel - 1), pad.eq(layer.pad),
                                dil.eq(layer.dilation), ring.eq(size), step.eq(layer.dilation * g),
                                w_base.eq(w_bases[n]), w_addr.eq(w_bases[n]),
                                rounding.eq((1 << (min(layer.shift, aw) - 1)) if layer.shift else 0),
                                grp_addr.eq(start), tap_addr.eq(start),
                                grp_frame.eq(-layer.pad), tap_frame.eq(-layer.pad),
                            ]
        with m.Elif((t == frames) & ~v1 & ~v2 & ~done3 & adv):
            # idle from the edge that takes the last output beat on
            m.d.sync += running.eq(0)

        return m
