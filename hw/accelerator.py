"""The whole network on chip: every layer of a checkpoint, one shared datapath, layer by layer.

Dataflow of one window (golden/SPEC.md section 2; the schedule is `schedule(model)`):

    i (int8 features, frame-major) -> buffer 0
    for each pass (one per 1x1 in plan order; a residual layer first runs its residual 1x1):
      residual pass:  block buffer -> reader -> regroup(1->P) -> mixer -> acc_res memory
      main pass:      input buffer -> reader -> regroup(1->D) -> depthwise conv -> regroup(D->P)
                      -> mixer -> (join acc_res) -> post-op -> output buffer   (final layer: -> pool)
    classifier: logit[k] = sum_c Wc[k, c] * pool[c] + bc[k] -> o (logits, then the class)

The three activation buffers (T x C_max int8 each) and the acc_res memory are single-port memories
(one address shared by reads and writes: iCE40 SPRAM when synthesized with `synth_ice40 -spram`,
DP16KD on ECP5); a buffer is only ever read or written by one agent during a pass. Every constant (seeds,
depthwise weights, BN integers, classifier) comes from the checkpoint at elaboration.

Ports
-----
i : In(stream.Signature(signed(8)))      T * n_mfcc feature values, frame-major (frame 0 channel 0 first).
o : Out(stream.Signature(StructLayout({"value": signed(32), "last": 1})))
                                        n_classes logits, then the class index with last = 1.
busy : Out(1)                           high from the first input value until the class has left.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.depthwise_conv import acc_bits as dw_acc_bits
from ternkws.golden.ternary_mixer import acc_bits as mixer_acc_bits, stored_acc_bits

from .depthwise_conv import DepthwiseConv
from .memory_reader import MemoryReader
from .post_op import PostOp
from .regroup import Regroup
from .ternary_mixer import TernaryMixer

LOGIT_BITS = 32


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


CONFIGS = {
    "up5k": AcceleratorConfig("up5k", mixer_lanes=8, dw_lanes=2, single_port_line_buffer=True, spram=True),
    "ecp5": AcceleratorConfig("ecp5", mixer_lanes=64, dw_lanes=16),
}


@dataclass(frozen=True)
class Pass:
    kind: str          # "res" or "main"
    layer: object      # golden.topology.Layer
    mixer: int         # index into the mixer's layer table
    dw: int            # index into the depthwise table, -1: no depthwise conv (res passes, final)
    post: int          # index into the post-op table (main passes), -1 for res passes
    src: int           # activation buffer read
    dst: int           # activation buffer written (main passes); -1: pool (last layer) or acc_res
    c_in: int          # mixer input channels
    c_out: int
    residual: bool     # main pass of a layer with a residual term


def schedule(model):
    """The passes of one window, buffer assignment included."""
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


def check_config(model, config):
    """Raise ValueError, in words, when the lanes do not fit the model's channel counts."""
    for name, lanes in (("mixer_lanes", config.mixer_lanes), ("dw_lanes", config.dw_lanes)):
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"{name} must be a positive integer, not {lanes!r}")
    for p in schedule(model):
        if p.c_in % config.mixer_lanes:
            raise ValueError(f"mixer_lanes={config.mixer_lanes} does not divide the {p.c_in} input channels of "
                             f"{p.layer.name}'s {'residual ' if p.kind == 'res' else ''}1x1; use a divisor of {p.c_in}")
        if p.dw >= 0 and p.c_in % config.dw_lanes:
            raise ValueError(f"dw_lanes={config.dw_lanes} does not divide the {p.c_in} channels of "
                             f"{p.layer.name}'s depthwise conv; use a divisor of {p.c_in}")


class _Port:
    """addr / en / data signals of a memory port, wired later to whichever memory holds the data."""

    def __init__(self, addr_shape, data_shape):
        self.addr, self.en, self.data = Signal(addr_shape), Signal(), Signal(data_shape)

    def connect_read(self, m, port):
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]

    def connect_write(self, m, port):
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), port.data.eq(self.data)]


class Accelerator(wiring.Component):
    def __init__(self, model, config=CONFIGS["up5k"]):
        check_config(model, config)
        self._model, self._config = model, config
        self._passes = schedule(model)
        top = model.topology
        self._frames = model.features.n_frames
        channels = [top.n_mfcc] + [layer.c_out for layer in model.plan]
        self._buf_depth = self._frames * max(channels)
        res_c_out = [p.c_out for p in self._passes if p.kind == "res"]
        self._accres_depth = self._frames * max(res_c_out + [1])
        if top.mixer == "ternary":
            self._acc_width = max(mixer_acc_bits(p.c_in) for p in self._passes)
        else:
            self._acc_width = max(stored_acc_bits(p.c_in) for p in self._passes)
        super().__init__({
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(data.StructLayout({"value": signed(LOGIT_BITS), "last": 1}))),
            "busy": Out(1),
        })

    @property
    def passes(self):
        return self._passes

    @property
    def config(self):
        return self._config

    # -- units ---------------------------------------------------------------------------------------

    def _mixer(self):
        top, cfg = self._model.topology, self._config
        if top.mixer == "ternary":
            layers = [(p.c_in, p.c_out, p.layer.res_seed if p.kind == "res" else p.layer.seed) for p in self._passes]
            return TernaryMixer(layers, top.density, cfg.mixer_lanes)
        from .stored_mixer import StoredMixer
        q = self._model.int_arrays
        weights = [q[f"{p.layer.name}.q.{'res.' if p.kind == 'res' else ''}pw"] for p in self._passes]
        return StoredMixer(weights, cfg.mixer_lanes)

    def _depthwise(self):
        q = self._model.int_arrays
        layers = [(layer.c_in, layer.kernel, layer.dilation, q[layer.name + ".q.dw"], int(q[layer.name + ".q.dw_shift"]))
                  for layer in self._model.plan if layer.kernel]
        return DepthwiseConv(layers, self._config.dw_lanes, self._frames,
                             single_port=self._config.single_port_line_buffer,
                             attrs={"ram_style": "huge"} if self._config.spram else None)

    def _post_op(self):
        q = self._model.int_arrays
        layers = []
        for layer in self._model.plan:
            p = layer.name + ".q"
            layers.append((layer.c_out, q[p + ".mult"], q[p + ".bias"], int(q[p + ".shift"]),
                           q[p + ".mult_res"] if layer.residual else None))
        return PostOp(layers, self._acc_width, relu=True)

    # -- elaboration ---------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cfg, passes, T = self._config, self._passes, self._frames
        top, q = self._model.topology, self._model.int_arrays
        P, D = cfg.mixer_lanes, cfg.dw_lanes

        m.submodules.mixer = mixer = self._mixer()
        m.submodules.dw = dw = self._depthwise()
        m.submodules.post = post = self._post_op()
        m.submodules.reader = reader = MemoryReader(signed(8), self._buf_depth)
        m.submodules.to_dw = to_dw = Regroup(signed(8), 1, D)
        m.submodules.to_mixer = to_mixer = Regroup(signed(8), 1, P)
        m.submodules.dw_to_mixer = dw_to_mixer = Regroup(signed(8), D, P)
        m.submodules.accres_reader = accres_reader = MemoryReader(signed(self._acc_width), self._accres_depth)

        # Memories: two or three activation buffers, acc_res (and the pool sums), classifier weights.
        bufs = []
        n_bufs = 1 + max(max(p.src, p.dst) for p in passes)
        huge = {"ram_style": "huge"} if cfg.spram else None
        for b in range(n_bufs):
            mem = Memory(shape=signed(8), depth=self._buf_depth, init=[], attrs=huge)
            m.submodules[f"buf{b}"] = mem
            bufs.append((mem.read_port(), mem.write_port()))
        m.submodules.accres = accres = Memory(shape=signed(self._acc_width), depth=self._accres_depth, init=[],
                                              attrs=huge)
        accres_r, accres_w = accres.read_port(), accres.write_port()
        C = top.final_channels
        pool_bits = (127 * T).bit_length() + 1
        # The pool sums live in the acc_res memory when they fit (it is idle in the last pass and
        # while classifying): one block RAM less on the UP5K. Otherwise in a memory of their own.
        pool_shared = pool_bits <= self._acc_width and C <= self._accres_depth
        pool_r = _Port(range(C), signed(pool_bits))
        pool_w = _Port(range(C), signed(pool_bits))
        pool_active = Signal()
        if not pool_shared:
            m.submodules.pool = pool = Memory(shape=signed(pool_bits), depth=C, init=[])
            pool_r.connect_read(m, pool.read_port())
            pool_w.connect_write(m, pool.write_port())
        m.submodules.cls_w = cls_w = Memory(shape=signed(8), depth=top.n_classes * C,
                                            init=[int(v) for v in np.asarray(q["classifier.q.weight"]).ravel()])
        cls_r = cls_w.read_port()
        cls_bias = [int(v) for v in q["classifier.q.bias"]]

        # Per-pass constants, selected by the pass counter.
        pidx = Signal(range(len(passes)))
        kind_res, has_dw, residual, to_pool = Signal(), Signal(), Signal(), Signal()
        src, dst = Signal(range(n_bufs)), Signal(range(n_bufs))
        read_count = Signal(range(self._buf_depth + 1))
        write_count = Signal(range(max(self._buf_depth, self._accres_depth) + 1))
        with m.Switch(pidx):
            for n, p in enumerate(passes):
                with m.Case(n):
                    m.d.comb += [
                        kind_res.eq(p.kind == "res"), has_dw.eq(p.dw >= 0), residual.eq(p.residual),
                        to_pool.eq(p.kind == "main" and p.dst < 0),
                        src.eq(p.src), dst.eq(max(p.dst, 0)),
                        read_count.eq(T * p.c_in), write_count.eq(T * p.c_out),
                        mixer.layer.eq(p.mixer), post.layer.eq(max(p.post, 0)),
                    ]
                    if p.dw >= 0:
                        m.d.comb += dw.layer.eq(p.dw)

        # Sequencer.
        load_addr = Signal(range(self._buf_depth + 1))
        written = Signal(range(max(self._buf_depth, self._accres_depth) + 1))
        start = Signal()
        running = Signal()
        n_in = T * top.n_mfcc
        k = Signal(range(top.n_classes + 1))
        c = Signal(range(C + 1))
        mac = Signal(signed(LOGIT_BITS + 8))
        best = Signal(signed(LOGIT_BITS))
        best_k = Signal(range(top.n_classes))
        cls_valid = Signal()
        logit = Signal(signed(LOGIT_BITS))

        m.d.comb += [reader.start.eq(start), reader.count.eq(read_count)]

        with m.FSM(name="seq"):
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += load_addr.eq(load_addr + 1)
                    with m.If(load_addr == n_in - 1):
                        m.d.sync += [load_addr.eq(0), pidx.eq(0)]
                        m.next = "START"
                m.d.comb += self.busy.eq(load_addr != 0)
            with m.State("START"):
                m.d.comb += [start.eq(1), self.busy.eq(1)]
                m.d.sync += written.eq(0)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [running.eq(1), self.busy.eq(1)]
                with m.If(written == write_count):
                    with m.If(pidx == len(passes) - 1):
                        m.d.sync += [k.eq(0), c.eq(0)]
                        m.next = "CLASSIFY"
                    with m.Else():
                        m.d.sync += pidx.eq(pidx + 1)
                        m.next = "START"
            with m.State("CLASSIFY"):
                # One MAC per cycle: cycle c issues the reads of channel c, cycle c + 1 accumulates it.
                m.d.comb += [self.busy.eq(1), pool_active.eq(1)]
                m.d.comb += [pool_r.addr.eq(c), pool_r.en.eq(1), cls_r.addr.eq(k * C + c), cls_r.en.eq(1)]
                with m.If(c == 0):
                    with m.Switch(k):
                        for kk, b in enumerate(cls_bias):
                            with m.Case(kk):
                                m.d.sync += mac.eq(b)
                with m.Else():
                    m.d.sync += mac.eq(mac + cls_r.data * pool_r.data)
                with m.If(c == C):
                    m.d.sync += [logit.eq(mac + cls_r.data * pool_r.data), c.eq(0)]
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += c.eq(c + 1)
            with m.State("EMIT"):
                m.d.comb += [self.busy.eq(1), self.o.valid.eq(1), self.o.payload.value.eq(logit)]
                with m.If(self.o.ready):
                    with m.If((k == 0) | (logit > best)):
                        m.d.sync += [best.eq(logit), best_k.eq(k)]
                    with m.If(k == top.n_classes - 1):
                        m.next = "CLASS"
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
                        m.next = "CLASSIFY"
            with m.State("CLASS"):
                m.d.comb += [self.busy.eq(1), self.o.valid.eq(1), self.o.payload.value.eq(best_k),
                             self.o.payload.last.eq(1)]
                with m.If(self.o.ready):
                    m.next = "LOAD"

        # Reader -> (depthwise ->) mixer input.
        main_dw = running & ~kind_res & has_dw
        with m.If(main_dw):
            m.d.comb += [
                to_dw.i.valid.eq(reader.o.valid), to_dw.i.payload.eq(reader.o.payload),
                reader.o.ready.eq(to_dw.i.ready),
                mixer.i.valid.eq(dw_to_mixer.o.valid), mixer.i.payload.eq(dw_to_mixer.o.payload),
                dw_to_mixer.o.ready.eq(mixer.i.ready),
            ]
        with m.Else():
            m.d.comb += [
                to_mixer.i.valid.eq(reader.o.valid), to_mixer.i.payload.eq(reader.o.payload),
                reader.o.ready.eq(to_mixer.i.ready),
                mixer.i.valid.eq(to_mixer.o.valid & running), mixer.i.payload.eq(to_mixer.o.payload),
                to_mixer.o.ready.eq(mixer.i.ready & running),
            ]
        wiring.connect(m, to_dw.o, dw.i)
        wiring.connect(m, dw.o, dw_to_mixer.i)

        # Mixer output -> acc_res memory (residual pass) or -> post-op (main pass).
        m.d.comb += [accres_reader.start.eq(start & residual), accres_reader.count.eq(write_count)]
        accres_write = Signal()
        with m.If(kind_res):
            m.d.comb += [mixer.o.ready.eq(1), accres_write.eq(mixer.o.valid)]
        with m.Else():
            joined = mixer.o.valid & (accres_reader.o.valid | ~residual)
            m.d.comb += [
                post.i.valid.eq(joined),
                post.i.payload.acc.eq(mixer.o.payload),
                post.i.payload.acc_res.eq(Mux(residual, accres_reader.o.payload, 0)),
                mixer.o.ready.eq(post.i.ready & (accres_reader.o.valid | ~residual)),
                accres_reader.o.ready.eq(post.i.ready & mixer.o.valid & residual),
            ]
        # acc_res memory: one address for both ports (single-port RAM); the pool's when pool_active.
        m.d.comb += accres_reader.data.eq(accres_r.data)
        with m.If(pool_active if pool_shared else 0):
            addr = Mux(pool_w.en, pool_w.addr, pool_r.addr)
            m.d.comb += [
                accres_r.addr.eq(addr), accres_w.addr.eq(addr),
                accres_r.en.eq(pool_r.en & ~pool_w.en),
                accres_w.en.eq(pool_w.en), accres_w.data.eq(pool_w.data),
            ]
        with m.Else():
            m.d.comb += [
                accres_r.addr.eq(Mux(kind_res, written, accres_reader.addr)),
                accres_w.addr.eq(Mux(kind_res, written, accres_reader.addr)),
                accres_r.en.eq(accres_reader.en & ~accres_write),   # a single-port RAM: no read while writing
                accres_w.data.eq(mixer.o.payload),
                accres_w.en.eq(accres_write),
            ]
        if pool_shared:
            m.d.comb += pool_r.data.eq(accres_r.data)

        # Post-op output -> destination buffer, or -> pool (read-modify-write, 2 cycles per value).
        buf_write = Signal()
        pool_state = Signal()          # 0: ready for a value, 1: value read, write the sum
        pool_value = Signal(signed(8))
        pool_addr = Signal(range(C))
        pool_first = Signal()          # frame 0: start the sum
        frame = Signal(range(T))
        with m.If(to_pool):
            m.d.comb += post.o.ready.eq(~pool_state)
            with m.If(running):
                m.d.comb += pool_active.eq(1)
            with m.If(post.o.valid & ~pool_state):
                m.d.comb += [pool_r.addr.eq(pool_addr), pool_r.en.eq(1)]
                m.d.sync += [pool_state.eq(1), pool_value.eq(post.o.payload), pool_first.eq(frame == 0)]
            with m.If(pool_state):
                m.d.comb += [
                    pool_w.addr.eq(pool_addr), pool_w.en.eq(1),
                    pool_w.data.eq(Mux(pool_first, 0, pool_r.data) + pool_value),
                ]
                m.d.sync += [pool_state.eq(0), written.eq(written + 1)]
                with m.If(pool_addr == C - 1):
                    m.d.sync += [pool_addr.eq(0), frame.eq(frame + 1)]
                with m.Else():
                    m.d.sync += pool_addr.eq(pool_addr + 1)
        with m.Else():
            m.d.comb += [post.o.ready.eq(1), buf_write.eq(post.o.valid & ~kind_res)]
        with m.If(start):
            m.d.sync += [frame.eq(0), pool_addr.eq(0)]
        with m.If((accres_write & kind_res) | buf_write):
            m.d.sync += written.eq(written + 1)

        # Activation buffers: each has one address, driven by whoever owns it in this state.
        loading = self.i.ready
        for b, (rp, wp) in enumerate(bufs):
            is_src = running & (src == b)
            is_dst = ~kind_res & ~to_pool & (dst == b)
            addr = Mux(loading, load_addr, Mux(is_dst & running, written, reader.addr))
            we = (loading & (b == 0) & self.i.valid) | (is_dst & buf_write)
            m.d.comb += [
                rp.addr.eq(addr), wp.addr.eq(addr),
                rp.en.eq(is_src & reader.en & ~we),      # single-port RAM: never read while writing
                wp.en.eq(we),
                wp.data.eq(Mux(loading, self.i.payload, post.o.payload)),
            ]
        with m.Switch(src):
            for b, (rp, _) in enumerate(bufs):
                with m.Case(b):
                    m.d.comb += reader.data.eq(rp.data)
        return m


