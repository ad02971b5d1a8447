"""The whole network on chip: every layer of a checkpoint, one shared datapath, layer by layer.

Dataflow of one window (golden/SPEC.md section 2; the schedule and every unit's records come from
hw/layers.py `hardware_plan(model, config)`):

    i (int8 features, frame-major) -> buffer 0
    for each pass (one per 1x1 in plan order; a residual layer first runs its residual 1x1):
      residual pass:  block buffer -> reader -> regroup(1->P) -> mixer -> acc_res memory
      main pass:      input buffer -> reader -> regroup(1->D) -> depthwise conv -> regroup(D->P)
                      -> mixer -> (join acc_res) -> post-op -> output buffer   (final layer: -> pool)
    classifier (hw/classifier.py): logit[k] = sum_c Wc[k, c] * pool[c] + bc[k] -> o (logits, then the class)

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

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .classifier import LOGIT_BITS

from .layers import (CONFIGS, AcceleratorConfig, Pass, check_config, hardware_plan, make_classifier, make_depthwise,
                     make_mixer, make_post_op, schedule)
from .memory_reader import MemoryReader
from .regroup import Regroup

__all__ = ["Accelerator", "AcceleratorConfig", "CONFIGS", "LOGIT_BITS", "Pass", "check_config", "schedule"]


class _Port:
    """addr / en / data signals of a memory port, wired later to whichever memory holds the data."""

    def __init__(self, addr_shape, data_shape):
        self.addr, self.en, self.data = Signal(addr_shape), Signal(), Signal(data_shape)

    def connect_read(self, m, port):
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]

    def connect_write(self, m, port):
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), port.data.eq(self.data)]


class Accelerator(wiring.Component):
    """The whole network of `model` on `config`; every unit and memory size from hardware_plan()."""

    def __init__(self, model, config=CONFIGS["up5k"]):
        self._model, self._config = model, config
        self._plan = hardware_plan(model, config)
        self._passes = list(self._plan.passes)
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

    @property
    def plan(self):
        """The HardwarePlan (hw/layers.py) this accelerator is built from."""
        return self._plan

    # -- elaboration ---------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        plan, cfg, passes = self._plan, self._config, self._passes
        T, P, D = plan.frames, cfg.mixer_lanes, cfg.dw_lanes
        buf_depth, accres_depth, acc_width = plan.buffer_depth, plan.accres_depth, plan.acc_width

        m.submodules.mixer = mixer = make_mixer(plan)
        m.submodules.dw = dw = make_depthwise(plan)
        m.submodules.post = post = make_post_op(plan)
        m.submodules.classifier = classifier = make_classifier(plan)
        m.submodules.reader = reader = MemoryReader(signed(8), buf_depth)
        m.submodules.to_dw = to_dw = Regroup(signed(8), 1, D)
        # The mixer's input beats: P channels (dense ternary and stored mixers) or 1 (grouped mixer).
        P_in = getattr(mixer, "in_lanes", P)
        m.submodules.to_mixer = to_mixer = Regroup(signed(8), 1, P_in)
        m.submodules.dw_to_mixer = dw_to_mixer = Regroup(signed(8), D, P_in)
        m.submodules.accres_reader = accres_reader = MemoryReader(signed(acc_width), accres_depth)

        # Memories: two or three activation buffers, acc_res (and the pool sums).
        bufs = []
        n_bufs = plan.n_buffers
        for b in range(n_bufs):
            mem = Memory(shape=signed(8), depth=buf_depth, init=[], attrs=cfg.memory_attrs)
            m.submodules[f"buf{b}"] = mem
            bufs.append((mem.read_port(), mem.write_port()))
        m.submodules.accres = accres = Memory(shape=signed(acc_width), depth=accres_depth, init=[],
                                              attrs=cfg.memory_attrs)
        accres_r, accres_w = accres.read_port(), accres.write_port()
        C = plan.classifier.channels
        pool_bits = plan.classifier.pool_bits
        # The pool sums live in the acc_res memory when they fit (it is idle in the last pass and
        # while classifying): one block RAM less on the UP5K. Otherwise in a memory of their own.
        pool_shared = pool_bits <= acc_width and C <= accres_depth
        pool_r = _Port(range(C), signed(pool_bits))
        pool_w = _Port(range(C), signed(pool_bits))
        pool_active = Signal()
        if not pool_shared:
            m.submodules.pool = pool = Memory(shape=signed(pool_bits), depth=C, init=[])
            pool_r.connect_read(m, pool.read_port())
            pool_w.connect_write(m, pool.write_port())

        # Per-pass constants, selected by the pass counter.
        pidx = Signal(range(len(passes)))
        kind_res, has_dw, residual, to_pool = Signal(), Signal(), Signal(), Signal()
        src, dst = Signal(range(n_bufs)), Signal(range(n_bufs))
        read_count = Signal(range(buf_depth + 1))
        write_count = Signal(range(max(buf_depth, accres_depth) + 1))
        with m.Switch(pidx):
            for n, p in enumerate(passes):
                with m.Case(n):
                    m.d.comb += [
                        kind_res.eq(p.kind == "res"), has_dw.eq(p.dw >= 0), residual.eq(p.residual),
                        to_pool.eq(p.to_pool),
                        src.eq(p.src), dst.eq(max(p.dst, 0)),
                        read_count.eq(T * p.c_in), write_count.eq(T * p.c_out),
                        mixer.layer.eq(p.mixer), post.layer.eq(max(p.post, 0)),
                    ]
                    if p.dw >= 0:
                        m.d.comb += dw.layer.eq(p.dw)

        # Sequencer.
        load_addr = Signal(range(buf_depth + 1))
        written = Signal(range(max(buf_depth, accres_depth) + 1))
        start = Signal()
        running = Signal()
        n_in = T * plan.n_mfcc

        m.d.comb += [reader.start.eq(start), reader.count.eq(read_count)]
        # The classifier reads the pool sums; its logits and class are the accelerator's output.
        m.d.comb += [pool_r.addr.eq(classifier.pool_addr), classifier.pool_data.eq(pool_r.data)]
        wiring.connect(m, wiring.flipped(self.o), classifier.o)

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
                        m.d.comb += classifier.start.eq(1)
                        m.next = "CLASSIFY"
                    with m.Else():
                        m.d.sync += pidx.eq(pidx + 1)
                        m.next = "START"
            with m.State("CLASSIFY"):
                m.d.comb += [self.busy.eq(1), pool_active.eq(1), pool_r.en.eq(classifier.pool_en)]
                with m.If(self.o.valid & self.o.ready & self.o.payload.last):
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


