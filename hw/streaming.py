"""The streaming mode on chip: an unbounded stream of int8 feature frames in, a decision every hop and
keyword events out (golden/SPEC.md section 6; twin: golden/streaming.py `FrameStream` + `Detector`).

The window accelerator (hw/accelerator.py) runs one layer over T frames at a time; here every input
frame runs once through every layer, and each layer's state stays on chip between frames. The units
are the window accelerator's, built from the same records (hw/layers.py `hardware_plan`): the mixer
(`make_mixer`: dense ternary, grouped or stored weights), the post-op and the classifier; the
depthwise stage is hw/streaming_depthwise.py (every layer's line buffer as a ring in one memory) and
the detector hw/streaming_detector.py.

Per input frame (a *step*; layer l computes once the stream has reached its delay D_l, 6.1):

    i -> ring 0 (prologue input)
    depthwise unit: one job per mixer pass in pass order (a conv job: the layer's output frame from
        its ring; a copy job: a residual's block input from its block's first ring, P_b frames back,
        or the final layer's input)  -> job FIFO (two frames) -> regroup -> mixer
    mixer, one pass at a time (res pass -> acc_res; main pass -> post-op, joined with acc_res)
    post-op -> ring l + 1 (the next layer's input; the depthwise job of layer l + 1 follows channel by
        channel) or, for the final layer, -> pool: pool[c] += y - ring[u mod T][c], ring[u mod T][c] = y
    every hop frames once T final frames exist: classifier (logits, class on `o`) -> detector (`e`)

The depthwise unit works ahead of the mixer (the FIFO holds a res job's frame and the next conv job's),
so the depthwise of layer l + 1 overlaps the mixer of layer l. A frame's *front end* (ring writes,
depthwise jobs, mixer passes) ends once its jobs are done, every pass fed and every ring written; the
next frame starts then, while the *back end* of this one (the final pass's pool update, the
classifier and the detector) finishes: the pool takes the next frame's final values only once the
back end is idle. The final 1x1 of a frame is deferred to the next frame's step, where it runs just
before that frame's epilogue pass (in the shadow of the epilogue's depthwise, the longest job); when
no frame follows at once, a flush step runs it alone, so a decision never waits for the next frame
longer than the front end takes. Cycles per frame: hw/streaming_cycles.py (exact; UP5K default model
9,004).

State (memories; `state_bits()` counts them; single-port ones are iCE40 SPRAM with `config.spram`):

| memory | holds | default model, up5k | UP5K |
|---|---|---|---|
| dw.rings | every layer's ring: (2p + 1) frames of its input (P_b + 1 for a block's first layer when the block's residual reaches further), the final layer's input frame | 4,096 x 16 bit (8 KiB) | SPRAM |
| pool_mem (with spram) | the pool ring (T final frames, two values a word) and the C pool sums | 8,320 x 16 bit | SPRAM |
| pool_ring + pool_sums (without) | the same, apart (2 cycles per final value instead of 4) | 16,384 x 8 + 128 x 15 bit | |
| accres | one frame of the widest residual 1x1's accumulators | 64 x 16 bit | SPRAM |
| detector.ring | 16 logit vectors (two 16-bit words a logit) | 384 x 16 bit | SPRAM |
| fifo | the job FIFO: two frames of the widest layer input | 127 x 16 bit | 1 BRAM |

plus the window mode's unit memories (mixer frame buffer, depthwise weights, post-op constants,
classifier weights). Counters: frames seen (saturating at D + 1), final frames (at T), the hop phase,
each ring's head and frame count, the detector's state (hw/streaming_detector.py).

Ports
-----
i : In(stream.Signature(signed(8)))       feature values, frame-major (n_mfcc per frame), unbounded.
o : Out(stream.Signature(StructLayout({"value": signed(32), "last": 1})))
                                          per decision: n_classes logits, then the class (last = 1).
e : Out(stream.Signature(event_layout))   per event: decision index, class, margin (hw/streaming_detector.py).
hop (16 bits, >= 1), smooth (1..16), refractory (8 bits, >= 1), threshold (35 bits), keywords (a bit
per class)                                the stream's parameters (init: golden/streaming.py's defaults
                                          for this checkpoint); change them only with `clear`.
events_only : In(1)                       1: decisions are not sent on `o` (the detector still runs).
clear : In(1)                             back to the reset state (pulse while `idle`).
idle : Out(1)                             between frames: no step in progress.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.contract import LOGIT_BITS
from ternkws.golden.streaming import DEFAULT_HOP, DEFAULT_REFRACTORY, DEFAULT_SMOOTH, detector_config, stream_layout

from .layers import CONFIGS, hardware_plan, make_classifier, make_mixer, make_post_op
from .memory_reader import MemoryReader
from .regroup import Regroup
from .streaming_depthwise import Job, Ring, StreamDepthwise
from .streaming_detector import (REFRACTORY_BITS, SMOOTH_BITS, THRESHOLD_BITS, StreamDetector,
                                 event_layout)

__all__ = ["StreamingAccelerator", "StreamPlan", "stream_plan", "HOP_BITS", "state_bits"]

HOP_BITS = 16


@dataclass(frozen=True)
class StreamPlan:
    """The streaming schedule of a HardwarePlan: a ring per plan layer, a depthwise job per pass."""
    rings: tuple            # Ring per plan layer (its input frames)
    jobs: tuple             # Job per pass (plan.passes order)
    delays: tuple           # D_l per plan layer: layer l computes once more than D_l frames arrived
    pass_layer: tuple       # plan-layer index of each pass
    lanes: int              # words of the rings: dw_lanes int8

    @property
    def delay(self):
        return self.delays[-1]

    def n_jobs(self, n):
        """Passes that run when the stream has received n frames (this one included)."""
        return sum(1 for layer in self.pass_layer if self.delays[layer] < n)

    def n_recv(self, n):
        """Rings that receive a frame then: layer 0 and every layer after a computing one."""
        return sum(1 for layer in range(len(self.rings)) if layer == 0 or self.delays[layer - 1] < n)

    @property
    def ring_words(self):
        return sum(r.span * r.channels // self.lanes for r in self.rings)


def stream_plan(model, plan):
    """StreamPlan of `model` on `plan` (hw/layers.py HardwarePlan); ValueError when a ring's channels
    are not a multiple of dw_lanes."""
    top = model.topology
    lay = stream_layout(top)
    layers = model.plan
    lanes = plan.config.dw_lanes
    # a block's first layer keeps its block input as long as the block's residual needs it
    reach = [2 * t.pad for t in lay]
    block = 0
    for n, layer in enumerate(layers):
        if layer.block_start:
            block = n
        if layer.residual:
            reach[block] = max(reach[block], lay[n].res_delay)
    rings, base = [], 0
    for n, layer in enumerate(layers):
        if layer.c_in % lanes:
            raise ValueError(f"dw_lanes={lanes} does not divide the {layer.c_in} input channels of "
                             f"{layer.name} (its stream ring); use a divisor of {layer.c_in}")
        span = reach[n] + 1
        rings.append(Ring(layer.c_in, span, base))
        base += span * layer.c_in // lanes
    jobs, pass_layer, dw_index, block = [], [], {}, 0
    for layer in layers:
        if layer.kernel:
            dw_index[layer.index] = len(dw_index)
    starts = {}
    for n, layer in enumerate(layers):
        if layer.block_start:
            block = n
        starts[n] = block
    for p in plan.passes:
        n = p.layer.index
        pass_layer.append(n)
        if p.kind == "res":
            jobs.append(Job(starts[n], lay[n].res_delay, -1))
        elif p.layer.kernel:
            jobs.append(Job(n, 2 * lay[n].pad, dw_index[n]))
        else:
            jobs.append(Job(n, 0, -1))
    return StreamPlan(tuple(rings), tuple(jobs), tuple(t.delay for t in lay), tuple(pass_layer), lanes)


def state_bits(model, config=CONFIGS["up5k"]):
    """{memory: bits used} of the streaming mode's own memories (the state kept from one frame to the
    next, and the per-frame buffers the stream adds to the window mode's units)."""
    plan = hardware_plan(model, config)
    sp = stream_plan(model, plan)
    C, T, nc = plan.classifier.channels, plan.frames, plan.classifier.n_classes
    res = [p.c_out for p in plan.passes if p.kind == "res"]
    return {
        "rings (line buffers, residual block inputs, final input)": sp.ring_words * 8 * sp.lanes,
        "pool ring (T final frames, 8 bits a value)": T * C * 8,
        "pool sums": C * (16 if packed_pool(plan) else plan.classifier.pool_bits),
        "detector logit ring (16 x n_classes x 32 bit)": 16 * nc * LOGIT_BITS,
        "acc_res (one frame)": max(res + [1]) * plan.acc_width,
        "job FIFO (two frames)": (_fifo_depth(plan, sp) - 1) * 8 * sp.lanes,
    }


def packed_pool(plan):
    """True when the pool ring and sums share one 16-bit single-port memory (see StreamingAccelerator)."""
    return bool(plan.config.spram) and plan.classifier.pool_bits <= 16


def _fifo_depth(plan, sp):
    words = [sp.rings[j.ring].channels // sp.lanes for j in sp.jobs]
    return max(2 * max(words), 2)


def _count_below(m, value, thresholds, name):
    """A signal = the number of thresholds < value (thresholds ascending)."""
    out = Signal(range(len(thresholds) + 1), name=name)
    distinct = sorted(set(thresholds), reverse=True)
    first = True
    for t in distinct:
        with (m.If if first else m.Elif)(value > t):
            m.d.comb += out.eq(sum(1 for x in thresholds if x <= t))
        first = False
    return out


class StreamingAccelerator(wiring.Component):
    """The streaming mode of `model` on `config` (see the module docstring)."""

    def __init__(self, model, config=CONFIGS["up5k"]):
        self._model, self._config = model, config
        self._plan = hardware_plan(model, config)
        self._splan = stream_plan(model, self._plan)
        nc = self._plan.classifier.n_classes
        det = detector_config(model)
        mask = sum(1 << c for c in det.keywords if c < nc)
        super().__init__({
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(data.StructLayout({"value": signed(LOGIT_BITS), "last": 1}))),
            "e": Out(stream.Signature(event_layout(nc))),
            "hop": In(HOP_BITS, init=DEFAULT_HOP),
            "smooth": In(SMOOTH_BITS, init=DEFAULT_SMOOTH),
            "refractory": In(REFRACTORY_BITS, init=DEFAULT_REFRACTORY),
            "threshold": In(THRESHOLD_BITS, init=det.threshold),
            "keywords": In(nc, init=mask),
            "events_only": In(1),
            "clear": In(1),
            "idle": Out(1),
        })

    plan = property(lambda self: self._plan)
    stream_plan = property(lambda self: self._splan)
    config = property(lambda self: self._config)

    @property
    def delay(self):
        return self._splan.delay

    @property
    def packed_pool(self):
        """The pool ring and sums share one single-port memory of 16-bit words (configurations with
        `spram`, where block RAM is scarce): 4 cycles per final value instead of 2."""
        return packed_pool(self._plan)

    def elaborate(self, platform):
        m = Module()
        plan, sp, cfg = self._plan, self._splan, self._config
        passes = list(plan.passes)
        J, L = len(passes), len(sp.rings)
        D = cfg.dw_lanes
        T = plan.frames
        C = plan.classifier.channels
        pool_bits = plan.classifier.pool_bits
        top = self._model.topology

        m.submodules.mixer = mixer = make_mixer(plan)
        m.submodules.post = post = make_post_op(plan)
        m.submodules.classifier = classifier = make_classifier(plan)
        m.submodules.dw = dw = StreamDepthwise(sp.rings, sp.jobs, plan.depthwise_layers, D,
                                               single_port=cfg.single_port_line_buffer, attrs=cfg.memory_attrs)
        m.submodules.detector = det = StreamDetector(plan.classifier.n_classes, attrs=cfg.memory_attrs)
        P_in = getattr(mixer, "in_lanes", cfg.mixer_lanes)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8 * D, depth=_fifo_depth(plan, sp))
        m.submodules.to_mixer = to_mixer = Regroup(signed(8), D, P_in)
        m.submodules.gather = gather = Regroup(signed(8), 1, D)
        res_c_out = [p.c_out for p in passes if p.kind == "res"]
        accres_depth = max(res_c_out + [1])
        m.submodules.accres_reader = accres_reader = MemoryReader(signed(plan.acc_width), accres_depth)
        m.submodules.accres = accres = Memory(shape=signed(plan.acc_width), depth=accres_depth, init=[],
                                              attrs=cfg.memory_attrs)
        accres_r, accres_w = accres.read_port(), accres.write_port()

        m.d.comb += [det.smooth.eq(self.smooth), det.refractory.eq(self.refractory),
                     det.threshold.eq(self.threshold), det.keywords.eq(self.keywords)]

        # --- step bookkeeping ------------------------------------------------------------------------
        D_all = sp.delay
        n = Signal(range(D_all + 2))                   # frames received, saturating at D + 1
        n_next = Signal.like(n)
        m.d.comb += n_next.eq(Mux(n == D_all + 1, n, n + 1))
        jobs_next = _count_below(m, n_next, [sp.delays[layer] for layer in sp.pass_layer], "jobs_next")
        recv_next = _count_below(m, n_next, [-1] + [sp.delays[layer] for layer in range(L - 1)], "recv_next")
        n_jobs = Signal(range(J + 1))                  # mixer passes (positions) of this step
        order = Signal(2)                              # their order (hw/streaming_depthwise.py `order`)
        final_pending = Signal()                       # the last frame's final 1x1 is still to run

        running = Signal()
        start = Signal()
        step_done = Signal()
        decide = Signal()                              # this step's final frame completes a decision

        # --- feeder: job FIFO -> regroup -> mixer, one pass at a time ---------------------------------
        mp = Signal(range(J + 1))                      # next pass to feed
        mlayer = Signal(range(J))                      # pass the mixer runs (its `layer`)
        fed = Signal(range(max(p.c_in for p in passes) + 1))
        taken = Signal(range(max(p.c_in for p in passes) + 1))
        kind_res, residual, to_pool = Signal(), Signal(), Signal()
        words_d, beats_in = Signal.like(fed), Signal.like(taken)
        c_out = Signal(range(max(p.c_out for p in passes) + 1))
        with m.Switch(mlayer):
            for k, p in enumerate(passes):
                with m.Case(k):
                    m.d.comb += [kind_res.eq(p.kind == "res"), residual.eq(p.residual), to_pool.eq(p.to_pool),
                                 words_d.eq(p.c_in // D), beats_in.eq(p.c_in // P_in), c_out.eq(p.c_out),
                                 post.layer.eq(max(p.post, 0))]
        m.d.comb += mixer.layer.eq(mlayer)
        m.d.comb += [fifo.w_data.eq(dw.o.payload.as_value()), fifo.w_en.eq(dw.o.valid), dw.o.ready.eq(fifo.w_rdy)]
        feeding = Signal()
        ores = Signal(range(accres_depth + 1))         # acc_res words written in this res pass
        m.d.comb += [
            to_mixer.i.valid.eq(feeding & fifo.r_rdy & (fed < words_d)),
            to_mixer.i.payload.eq(fifo.r_data),
            fifo.r_en.eq(feeding & to_mixer.i.ready & (fed < words_d)),
            mixer.i.valid.eq(to_mixer.o.valid),
            mixer.i.payload.eq(to_mixer.o.payload),
            to_mixer.o.ready.eq(mixer.i.ready),
            accres_reader.count.eq(c_out),
        ]
        with m.If(to_mixer.i.valid & to_mixer.i.ready):
            m.d.sync += fed.eq(fed + 1)
        mapped = Signal(range(J))                      # the pass at position mp (the depthwise unit's order)
        with m.If(order == 2):
            m.d.comb += mapped.eq(J - 1)
        with m.Elif((order == 1) & (mp == J - 2)):
            m.d.comb += mapped.eq(J - 1)
        with m.Elif((order == 1) & (mp == J - 1)):
            m.d.comb += mapped.eq(J - 2)
        with m.Else():
            m.d.comb += mapped.eq(mp)
        layer_push = Signal()                          # a main pass starts: its layer's outputs come next
        with m.FSM(name="feeder"):
            with m.State("SWITCH"):
                with m.If((mp < n_jobs) & mixer.idle):
                    m.d.sync += [mlayer.eq(mapped), fed.eq(0), taken.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [accres_reader.start.eq(residual), layer_push.eq(~kind_res)]
                m.d.sync += ores.eq(0)
                m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += feeding.eq(1)
                with m.If(mixer.i.valid & mixer.i.ready):
                    m.d.sync += taken.eq(taken + 1)
                    with m.If(taken == beats_in - 1):
                        m.d.sync += mp.eq(mp + 1)
                        m.next = "SWITCH"
        with m.If(start):
            m.d.sync += mp.eq(0)

        # --- mixer output: acc_res (res pass) or post-op (main pass) ---------------------------------
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
        with m.If(accres_write):
            m.d.sync += ores.eq(ores + 1)
        accres_addr = Signal(range(accres_depth))      # one address for both ports (single-port RAM)
        m.d.comb += [
            accres_reader.data.eq(accres_r.data),
            accres_addr.eq(Mux(kind_res, ores, accres_reader.addr)),
            accres_r.addr.eq(accres_addr), accres_w.addr.eq(accres_addr),
            accres_r.en.eq(accres_reader.en & ~accres_write),
            accres_w.data.eq(mixer.o.payload),
            accres_w.en.eq(accres_write),
        ]

        # --- input writer: the frame's values -> ring 0 (through the gather) --------------------------
        in_busy = Signal()                             # this step's input frame is not complete yet
        in_c = Signal(range(plan.n_mfcc))
        # --- post writer: each layer's outputs -> the next layer's ring, the final layer's -> pool. The
        # layers come in the mixer's pass order: a queue of the main passes started and not yet written
        # (at most two are in flight: one leaving the post-op, one in the mixer; three places) ----------
        pass_layer = [p.layer.index for p in passes]
        queue = [Signal(range(L), name=f"queue{k}") for k in range(3)]
        queued = Signal(range(4))
        pl = queue[0]                                  # layer of the next post-op value
        pl_valid = queued != 0
        pv = Signal(range(max([r.channels for r in sp.rings] + [C])))
        pl_last = Signal.like(pv)
        with m.Switch(pl):
            for k in range(L):
                with m.Case(k):
                    m.d.comb += pl_last.eq((sp.rings[k + 1].channels if k + 1 < L else C) - 1)
        push_layer = Signal(range(L))
        with m.Switch(mlayer):
            for k in range(J):
                with m.Case(k):
                    m.d.comb += push_layer.eq(pass_layer[k])
        pop = Signal()
        m.d.comb += pop.eq(post.o.valid & post.o.ready & (pv == pl_last))
        after_pop = [queue[1], queue[2], queue[2]]
        for k in range(3):
            with m.If(pop):
                m.d.sync += queue[k].eq(after_pop[k])
            with m.If(layer_push & (queued - pop == k)):
                m.d.sync += queue[k].eq(push_layer)
        m.d.sync += queued.eq(queued + layer_push - pop)
        wiring.connect(m, gather.o, dw.w)
        ps = Signal(range(4))                          # pool step of the value in hand (0: ready for one)
        pool_busy = Signal()
        pool_take = Signal()
        back_idle = Signal()
        pool_free = Signal()
        to_pool_now = pl_valid & (pl == L - 1)
        m.d.comb += [
            pool_free.eq(back_idle & ~decide & ~pool_busy),
            gather.i.valid.eq(Mux(in_busy, running & self.i.valid, post.o.valid & pl_valid & ~to_pool_now)),
            gather.i.payload.eq(Mux(in_busy, self.i.payload, post.o.payload)),
            self.i.ready.eq(running & in_busy & gather.i.ready),
            post.o.ready.eq(Mux(to_pool_now, pool_free, pl_valid & ~in_busy & gather.i.ready)),
            pool_take.eq(to_pool_now & pool_free & post.o.valid),
        ]
        with m.If(self.i.valid & self.i.ready):
            with m.If(in_c == plan.n_mfcc - 1):
                m.d.sync += [in_c.eq(0), in_busy.eq(0)]
            with m.Else():
                m.d.sync += in_c.eq(in_c + 1)
        with m.If(post.o.valid & post.o.ready):
            m.d.sync += pv.eq(Mux(pv == pl_last, 0, pv + 1))

        # --- pool: running sum of the last T final frames --------------------------------------------
        # pool[c] += y - ring[u mod T][c]; ring[u mod T][c] = y. The ring holds 0 before T final frames
        # exist (never read then: `old` is 0 while fc < T) and the sum starts at y for u = 0.
        fc = Signal(range(T + 1))                      # final frames so far, saturating at T
        phase = Signal(HOP_BITS)                       # (u - T + 1) mod hop once u >= T - 1
        pos = Signal(range(T * C))                     # (u mod T) * C
        pc = Signal(range(C))
        y = Signal(8)
        old = Signal(8)
        classifying = Signal()
        last_step = Signal()                           # the pool's last cycle for this value
        m.d.comb += pool_busy.eq(ps != 0)
        if self.packed_pool:
            # one single-port memory of 16-bit words (an iCE40 SPRAM): the ring, two values a word, then
            # the sums; a value takes 4 cycles: read its ring word, read its sum, write the ring byte,
            # write the sum
            half = (T * C + 1) // 2
            m.submodules.pool_mem = pool_mem = Memory(shape=unsigned(16), depth=half + C, init=[],
                                                      attrs=cfg.memory_attrs)
            pr, pw = pool_mem.read_port(transparent_for=()), pool_mem.write_port(granularity=8)
            paddr = Signal(range(half + C))
            r_en = Signal()
            rword = Signal(range(half))
            byte = Signal()
            nsum = Signal(signed(pool_bits))
            m.d.comb += [pr.addr.eq(paddr), pw.addr.eq(paddr), pr.en.eq(r_en & (pw.en == 0))]
            sum_now = pr.data[:pool_bits].as_signed()
            with m.Switch(ps):
                with m.Case(0):
                    with m.If(pool_take):
                        ba = pos + pc
                        m.d.comb += [paddr.eq(ba >> 1), r_en.eq(1)]
                        m.d.sync += [ps.eq(1), y.eq(post.o.payload), rword.eq(ba >> 1), byte.eq(ba[0])]
                    with m.Elif(classifying):
                        m.d.comb += [paddr.eq(half + classifier.pool_addr), r_en.eq(classifier.pool_en)]
                with m.Case(1):
                    m.d.comb += [paddr.eq(half + pc), r_en.eq(1)]
                    m.d.sync += [ps.eq(2), old.eq(Mux(byte, pr.data[8:], pr.data[:8]))]
                with m.Case(2):
                    m.d.comb += [paddr.eq(rword), pw.data.eq(Cat(y, y)), pw.en.eq(Mux(byte, 0b10, 0b01))]
                    m.d.sync += [ps.eq(3), nsum.eq(Mux(fc == 0, y, sum_now + y - Mux(fc == T, old, 0)))]
                with m.Case(3):
                    m.d.comb += [paddr.eq(half + pc), pw.data.eq(nsum), pw.en.eq(0b11), last_step.eq(1)]
                    m.d.sync += ps.eq(0)
            m.d.comb += classifier.pool_data.eq(sum_now)
        else:
            # the ring (single-port) and the sums in memories of their own: 2 cycles a value
            m.submodules.pool_ring = pool_ring = Memory(shape=unsigned(8), depth=T * C, init=[],
                                                        attrs=cfg.memory_attrs)
            ring_r, ring_w = pool_ring.read_port(), pool_ring.write_port()
            m.submodules.pool_sums = sums = Memory(shape=signed(pool_bits), depth=C, init=[])
            sums_r, sums_w = sums.read_port(), sums.write_port()
            sums_addr, sums_en = Signal(range(C)), Signal()
            ring_addr = Signal(range(T * C))           # one address for both ports (single-port RAM)
            # a value is read in the cycle it arrives and written back in the next (never both)
            m.d.comb += [ring_w.en.eq(ps == 1), ring_r.en.eq(pool_take & ~ring_w.en)]
            m.d.comb += [ring_addr.eq(pos + pc), ring_r.addr.eq(ring_addr), ring_w.addr.eq(ring_addr),
                         sums_w.addr.eq(pc), ring_w.data.eq(y), sums_r.addr.eq(sums_addr), sums_r.en.eq(sums_en)]
            with m.If(pool_take):
                m.d.comb += [sums_addr.eq(pc), sums_en.eq(1)]
                m.d.sync += [ps.eq(1), y.eq(post.o.payload)]
            with m.Elif(classifying):
                m.d.comb += [sums_addr.eq(classifier.pool_addr), sums_en.eq(classifier.pool_en)]
            with m.If(ps == 1):
                m.d.comb += [sums_w.en.eq(1), last_step.eq(1),
                             sums_w.data.eq(Mux(fc == 0, y, sums_r.data + y - Mux(fc == T, ring_r.data, 0)))]
                m.d.sync += ps.eq(0)
            m.d.comb += classifier.pool_data.eq(sums_r.data)
        with m.If(last_step):
            with m.If(pc == C - 1):
                m.d.sync += [pc.eq(0), pos.eq(Mux(pos == (T - 1) * C, 0, pos + C)),
                             fc.eq(Mux(fc == T, T, fc + 1))]
                with m.If(fc >= T - 1):
                    m.d.sync += [decide.eq(phase == 0), phase.eq(Mux(phase >= self.hop - 1, 0, phase + 1))]
            with m.Else():
                m.d.sync += pc.eq(pc + 1)

        # --- classifier -> o, and the detector ------------------------------------------------------
        out_ok = self.o.ready | self.events_only
        m.d.comb += [
            self.o.valid.eq(classifier.o.valid & ~self.events_only & det.i.ready),
            self.o.payload.eq(classifier.o.payload),
            classifier.o.ready.eq(out_ok & det.i.ready),
            det.i.valid.eq(classifier.o.valid & out_ok),
            det.i.payload.eq(classifier.o.payload),
        ]
        wiring.connect(m, det.e, wiring.flipped(self.e))

        # --- back end: a decision's classifier and detector, while the next frame runs in front ------------
        with m.FSM(name="back"):
            with m.State("IDLE"):
                m.d.comb += back_idle.eq(1)
                with m.If(decide):
                    m.d.comb += classifier.start.eq(1)
                    m.d.sync += decide.eq(0)
                    m.next = "CLASSIFY"
            with m.State("CLASSIFY"):
                m.d.comb += classifying.eq(1)
                with m.If(classifier.o.valid & classifier.o.ready & classifier.o.payload.last):
                    m.next = "DETECT"
            with m.State("DETECT"):
                with m.If(det.idle):
                    m.next = "IDLE"

        # --- front end: a step per input frame; the next one starts once this one's jobs, passes and ring
        # writes are done (its final pass, pool update and decision may still run) ------------------------
        m.d.comb += step_done.eq(~in_busy & dw.idle & (mp == n_jobs))
        all_idle = ~running & back_idle & ~decide & ~pool_busy & ~pl_valid & ~final_pending
        m.d.comb += self.idle.eq(all_idle)
        # The final 1x1 of a frame is deferred to the next frame's step, where it runs just before that
        # frame's epilogue (order 1): the depthwise unit is then busy with the epilogue's depthwise, the
        # longest, instead of idle while the final pass runs after it. When no frame follows at once, a
        # flush step runs it alone (order 2).
        final_now = n_next > D_all                     # the final layer computes in the coming step
        m.d.comb += [dw.n_recv.eq(recv_next), dw.n_jobs.eq(jobs_next), dw.order.eq(0)]
        with m.If(final_pending):
            m.d.comb += [dw.n_jobs.eq(J), dw.order.eq(1)]
        with m.Elif(final_now):
            m.d.comb += dw.n_jobs.eq(J - 1)
        with m.FSM(name="step"):
            with m.State("WAIT"):
                with m.If(self.clear & all_idle):
                    m.d.comb += [dw.clear.eq(1), det.clear.eq(1)]
                    m.d.sync += [n.eq(0), fc.eq(0), phase.eq(0), pos.eq(0), pc.eq(0), pv.eq(0)]
                with m.Elif(self.i.valid):
                    m.d.comb += [start.eq(1), dw.step.eq(1)]
                    m.d.sync += [n.eq(n_next), n_jobs.eq(dw.n_jobs), order.eq(dw.order), in_busy.eq(1),
                                 final_pending.eq(final_pending | final_now)]
                    m.next = "RUN"
                with m.Elif(final_pending):
                    m.d.comb += [start.eq(1), dw.step.eq(1), dw.n_recv.eq(0), dw.n_jobs.eq(1), dw.order.eq(2)]
                    m.d.sync += [n_jobs.eq(1), order.eq(2), final_pending.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(step_done):
                    m.next = "WAIT"
        return m
