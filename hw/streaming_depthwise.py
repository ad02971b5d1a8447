"""Streaming depthwise unit: every layer's line buffer as a ring in one memory, one output frame per job
(golden/SPEC.md 6.1; twin: golden/streaming.py `FrameStream`).

The window unit (hw/depthwise_conv.py) runs T frames of one layer and forgets them; in the stream each
layer keeps the last frames of its input from one input frame to the next. This unit holds them all:

* **Rings.** Ring l (one per plan layer, the final 1x1 included) is `span` frame slots of G = C / lanes
  words (`lanes` int8 each) at word address `base` of one memory (a single-port RAM when
  `single_port`: iCE40 SPRAM). `span` = 2p + 1 for a depthwise layer (p = dil (K - 1) / 2), lengthened
  to P_b + 1 for a block's first layer when its block's residual reaches further back (P_b > 2p: a
  block of several sub-blocks); 1 for the final layer (its input frame). The block input of a residual
  layer is read from its block's first ring, P_b frames back: the residual FIFO costs no memory of its
  own.
* **Step.** A `step` pulse (unit idle) starts the work of one input frame: the rings 0 .. n_recv - 1
  each advance their newest slot (the oldest frame is overwritten) and count the frame (up to span);
  then `w` carries their new frames in ring order (G beats each), and jobs 0 .. n_jobs - 1 run in order.
* **Jobs** (one per mixer pass, in pass order). A conv job (`dw` >= 0) computes the layer's output
  frame u from its ring: for each group j, taps k = 0 .. K - 1 read the frame 2p - k dil slots back from
  the newest (one read per cycle; a tap on a frame not received since reset reads as 0, which is the
  stream's zero state), multiply, accumulate; round, shift and saturate (hw/depthwise_conv.py's
  datapath). A copy job (`dw` = -1) sends the frame `offset` slots back unchanged, one read per group:
  a residual's block input, or the final layer's input. Each job's G words leave on `o` in order.
* **Newest frame.** A job that reads the newest frame (every conv job; a copy job with offset 0) issues
  group j only once group j of that frame has been written, so a job can start while the layer before
  is still producing: the depthwise of layer l + 1 follows the mixer of layer l channel by channel.
* **Single port.** With `single_port` a write takes the memory's cycle (writes have priority; `w` is
  always ready while frames are due), and no read is issued in it.

Ports
-----
step : In(1), n_recv : In(range(len(rings) + 1)), n_jobs : In(range(len(jobs) + 1)), order : In(2)
    Start of an input frame's work (pulse while `idle`); n_recv, n_jobs, order are sampled with it.
    order 0: jobs 0 .. n_jobs - 1; order 1 (n_jobs = all): the last two swapped, the final layer's
    copy job reading the previous frame's input (the stream defers the final 1x1 of a frame to the
    next frame's step, before its epilogue); order 2: that deferred copy job alone (a flush).
clear : In(1)      Forget every ring (pulse while `idle`): the reset state.
w : In(stream.Signature(ArrayLayout(signed(8), lanes)))     the rings' new frames.
o : Out(stream.Signature(ArrayLayout(signed(8), lanes)))    the jobs' output frames.
idle : Out(1)      every job of the step issued and drained, every frame written.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.depthwise_conv import acc_bits

__all__ = ["Ring", "Job", "StreamDepthwise"]


@dataclass(frozen=True)
class Ring:
    """A layer's line buffer: `span` frames of `channels` int8 at word `base` (words of `lanes` int8)."""
    channels: int
    span: int
    base: int


@dataclass(frozen=True)
class Job:
    """One output frame for the mixer: from ring `ring`, the first read `offset` frames back from the
    newest; `dw` the depthwise layer (index into the unit's layers) or -1 for a plain copy."""
    ring: int
    offset: int
    dw: int


class StreamDepthwise(wiring.Component):
    """See the module docstring. `layers`: the plan's DepthwiseLayer records (hw/depthwise_conv.py)."""

    def __init__(self, rings, jobs, layers, lanes, single_port=False, attrs=None):
        self._rings, self._jobs, self._layers = tuple(rings), tuple(jobs), tuple(layers)
        self._lanes = lanes
        self._single_port = bool(single_port)
        self._attrs = dict(attrs or {})
        for n, r in enumerate(self._rings):
            if r.channels % lanes:
                raise ValueError(f"ring {n}: lanes ({lanes}) must divide its channels ({r.channels})")
        for n, job in enumerate(self._jobs):
            ring = self._rings[job.ring]
            reach = 2 * self._layers[job.dw].pad if job.dw >= 0 else job.offset
            if not 0 <= reach < ring.span or (job.dw >= 0 and job.offset != reach):
                raise ValueError(f"job {n}: offset {job.offset} does not fit ring {job.ring} of {ring.span} frames")
        self._acc_width = max([acc_bits(layer.kernel) for layer in self._layers] + [9])
        beat = data.ArrayLayout(signed(8), lanes)
        super().__init__({
            "step": In(1),
            "n_recv": In(range(len(self._rings) + 1)),
            "n_jobs": In(range(len(self._jobs) + 1)),
            "order": In(2),
            "clear": In(1),
            "w": In(stream.Signature(beat)),
            "o": Out(stream.Signature(beat)),
            "idle": Out(1),
        })

    rings = property(lambda self: self._rings)
    jobs = property(lambda self: self._jobs)
    lanes = property(lambda self: self._lanes)

    @property
    def depth(self):
        """Words (of `lanes` int8) of the ring memory: sum of span * C / lanes."""
        return sum(r.span * r.channels // self._lanes for r in self._rings)

    @property
    def weight_depth(self):
        return sum(layer.channels * layer.kernel // self._lanes for layer in self._layers)

    def _weight_init(self):
        lanes, words = self._lanes, []
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
        D, rings, jobs, layers = self._lanes, self._rings, self._jobs, self._layers
        beat = data.ArrayLayout(signed(8), D)
        aw = self._acc_width
        depth = self.depth
        G = [r.channels // D for r in rings]
        g_max = max(G)
        w_bases, base = [], 0
        for layer in layers:
            w_bases.append(base)
            base += layer.channels * layer.kernel // D
        wdepth = max(self.weight_depth, 1)

        m.submodules.rings = mem = Memory(shape=unsigned(8 * D), depth=depth, init=[], attrs=self._attrs)
        m.submodules.weights = wmem = Memory(shape=unsigned(8 * D), depth=wdepth,
                                             init=self._weight_init() or [0])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())
        w_rd = wmem.read_port(transparent_for=())

        # --- per ring: the newest slot's word address and the frames received (up to span) ----------
        heads = [Signal(range(depth), init=r.base, name=f"head{n}") for n, r in enumerate(rings)]
        counts = [Signal(range(r.span + 1), name=f"count{n}") for n, r in enumerate(rings)]
        n_recv = Signal.like(self.n_recv)
        n_jobs = Signal.like(self.n_jobs)

        # --- write side -----------------------------------------------------------------------
        wl = Signal(range(len(rings) + 1))          # ring whose new frame is being written
        wg = Signal(range(g_max))                   # its next group
        w_head = Signal(range(depth))
        w_last = Signal(range(g_max))
        with m.Switch(wl):
            for n in range(len(rings)):
                with m.Case(n):
                    m.d.comb += [w_head.eq(heads[n]), w_last.eq(G[n] - 1)]
        write_now = Signal()
        m.d.comb += [
            self.w.ready.eq(wl < n_recv),
            write_now.eq(self.w.valid & self.w.ready),
            wr.data.eq(self.w.payload.as_value()),
            wr.en.eq(write_now),
        ]
        with m.If(write_now):
            with m.If(wg == w_last):
                m.d.sync += [wg.eq(0), wl.eq(wl + 1)]
            with m.Else():
                m.d.sync += wg.eq(wg + 1)

        # --- job constants (muxed by the job index) ------------------------------------------------
        # the step's jobs, by position: order 0 in job order; order 1 the last two swapped, the last
        # position's job (the final layer's input copy) being the previous frame's (deferred: its data
        # are a step old, so it waits for no write); order 2 that deferred job alone
        J = len(jobs)
        jpos = Signal(range(J + 1))
        order = Signal(2)
        jn = Signal(range(J + 1))
        deferred = Signal()
        with m.If(order == 2):
            m.d.comb += [jn.eq(J - 1), deferred.eq(1)]
        with m.Elif((order == 1) & (jpos == J - 2)):
            m.d.comb += [jn.eq(J - 1), deferred.eq(1)]
        with m.Elif((order == 1) & (jpos == J - 1)):
            m.d.comb += jn.eq(J - 2)
        with m.Else():
            m.d.comb += jn.eq(jpos)
        max_k = max([layer.kernel for layer in layers] + [1])
        max_span = max(r.span for r in rings)
        max_dil = max([layer.dilation for layer in layers] + [1])
        j_ring = Signal(range(len(rings)))
        j_conv = Signal()
        j_new = Signal()                            # the job reads the newest frame
        j_k_m1 = Signal(range(max_k))
        j_g_m1 = Signal(range(g_max))
        j_step = Signal(range(depth + 1))           # dil * G: address step between taps
        j_dil = Signal(range(max_dil + 1))
        j_off = Signal(range(max_span))             # frames back from the newest of the first read
        j_off_words = Signal(range(depth + 1))
        j_base = Signal(range(depth))
        j_size = Signal(range(depth + 1))
        j_wbase = Signal(range(wdepth))
        with m.Switch(jn):
            for n, job in enumerate(jobs):
                r, g = rings[job.ring], G[job.ring]
                layer = layers[job.dw] if job.dw >= 0 else None
                with m.Case(n):
                    m.d.comb += [
                        j_ring.eq(job.ring), j_conv.eq(layer is not None),
                        j_new.eq(layer is not None or job.offset == 0),
                        j_k_m1.eq(layer.kernel - 1 if layer else 0), j_g_m1.eq(g - 1),
                        j_step.eq(layer.dilation * g if layer else 0), j_dil.eq(layer.dilation if layer else 0),
                        j_off.eq(job.offset), j_off_words.eq(job.offset * g),
                        j_base.eq(r.base), j_size.eq(r.span * g),
                        j_wbase.eq(w_bases[job.dw] if layer else 0),
                    ]
        r_head = Signal(range(depth))
        r_count = Signal(range(max_span + 1))
        with m.Switch(j_ring):
            for n in range(len(rings)):
                with m.Case(n):
                    m.d.comb += [r_head.eq(heads[n]), r_count.eq(counts[n])]

        # --- issue ---------------------------------------------------------------------------------
        adv = Signal()
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)
        j = Signal(range(g_max))
        k = Signal(range(max_k))
        grp_addr = Signal(range(depth))
        tap_addr = Signal(range(depth))
        frame_lo, frame_hi = -max_span - 1, max_span + max_k * max_dil + 1
        grp_frame = Signal(range(frame_lo, frame_hi))     # frames since reset of the first read (< 0: none)
        tap_frame = Signal(range(frame_lo, frame_hi))
        w_addr = Signal(range(wdepth))
        written = Signal()
        m.d.comb += written.eq((wl > j_ring) | ((wl == j_ring) & (wg > j)))
        issue = Signal()
        running = Signal()
        waiting = Signal()                          # the IDLE state: every job of the step issued
        with m.FSM(name="jobs"):
            with m.State("IDLE"):
                m.d.comb += waiting.eq(1)
                with m.If(self.step):
                    m.d.sync += [n_recv.eq(self.n_recv), n_jobs.eq(self.n_jobs), order.eq(self.order), wl.eq(0),
                                 wg.eq(0), jpos.eq(0)]
                    for n, r in enumerate(rings):
                        with m.If(n < self.n_recv):
                            if r.span > 1:
                                nxt = heads[n] + G[n]
                                m.d.sync += heads[n].eq(Mux(nxt >= r.base + r.span * G[n], nxt - r.span * G[n], nxt))
                            m.d.sync += counts[n].eq(Mux(counts[n] == r.span, r.span, counts[n] + 1))
                    m.next = "JOB"
                with m.Elif(self.clear):
                    for n, r in enumerate(rings):
                        m.d.sync += [heads[n].eq(r.base), counts[n].eq(0)]
            with m.State("JOB"):
                with m.If(jpos == n_jobs):
                    m.next = "IDLE"
                with m.Else():
                    first = r_head - j_off_words
                    start = Mux(r_head < j_base + j_off_words, first + j_size, first)
                    m.d.sync += [j.eq(0), k.eq(0), grp_addr.eq(start), tap_addr.eq(start), w_addr.eq(j_wbase),
                                 grp_frame.eq(r_count - 1 - j_off), tap_frame.eq(r_count - 1 - j_off)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(issue):
                    m.d.sync += w_addr.eq(w_addr + 1)
                    with m.If(k == j_k_m1):
                        m.d.sync += [k.eq(0), grp_addr.eq(grp_addr + 1), tap_addr.eq(grp_addr + 1),
                                     tap_frame.eq(grp_frame)]
                        with m.If(j == j_g_m1):
                            m.d.sync += jpos.eq(jpos + 1)
                            m.next = "JOB"
                        with m.Else():
                            m.d.sync += j.eq(j + 1)
                    with m.Else():
                        nxt = tap_addr + j_step
                        m.d.sync += [k.eq(k + 1), tap_addr.eq(Mux(nxt >= j_base + j_size, nxt - j_size, nxt)),
                                     tap_frame.eq(tap_frame + j_dil)]

        m.d.comb += [w_rd.addr.eq(w_addr), w_rd.en.eq(adv)]
        ready_in = ~j_new | deferred | written
        if self._single_port:
            shared = Signal(range(depth))           # one address for both ports (single-port RAM)
            m.d.comb += [
                issue.eq(running & adv & ready_in & ~write_now),
                shared.eq(Mux(write_now, w_head + wg, tap_addr)),
                wr.addr.eq(shared), rd.addr.eq(shared),
                rd.en.eq(adv & ~write_now),
            ]
        else:
            m.d.comb += [
                issue.eq(running & adv & ready_in),
                wr.addr.eq(w_head + wg), rd.addr.eq(tap_addr), rd.en.eq(adv),
            ]

        # --- pipeline: RAM data -> products -> accumulate -> round, shift, saturate ---------------------
        v1, first1, last1, in_range1 = Signal(), Signal(), Signal(), Signal()
        v2, first2, last2 = Signal(), Signal(), Signal()
        done3 = Signal()
        job1, job2, job3 = (Signal(range(max(len(jobs), 1)), name=f"job{n}") for n in (1, 2, 3))
        conv1 = Signal()
        prod2 = Signal(data.ArrayLayout(signed(16), D))
        acc = Signal(data.ArrayLayout(signed(aw + 1), D))
        rounding2 = Signal(range((1 << (aw - 1)) + 1))
        with m.Switch(job2):
            for n, job in enumerate(jobs):
                if job.dw >= 0:
                    s = min(layers[job.dw].shift, aw)
                    with m.Case(n):
                        m.d.comb += rounding2.eq((1 << (s - 1)) if s else 0)
        shifts = {}
        for n, job in enumerate(jobs):
            shifts.setdefault(min(layers[job.dw].shift, aw) if job.dw >= 0 else 0, []).append(n)
        sat8 = []
        for lane in range(D):
            shifted = Signal(signed(aw + 1), name=f"shifted{lane}")
            with m.Switch(job3):
                for s, members in shifts.items():
                    with m.Case(*members):
                        m.d.comb += shifted.eq(acc[lane] >> s)
            sat8.append(Mux(shifted > 127, 127, Mux(shifted < -128, -128, shifted[:8])))

        x1 = beat(rd.data)
        w1 = beat(w_rd.data)
        with m.If(adv):
            m.d.sync += [
                v1.eq(issue), first1.eq(k == 0), last1.eq(k == j_k_m1), in_range1.eq(tap_frame >= 0),
                job1.eq(jn), conv1.eq(j_conv),
                v2.eq(v1), first2.eq(first1), last2.eq(last1), job2.eq(job1),
                done3.eq(v2 & last2), job3.eq(job2),
            ]
            for lane in range(D):
                x = Mux(in_range1, x1[lane], 0)
                m.d.sync += prod2[lane].eq(Mux(conv1, x * w1[lane], x))
            with m.If(v2):
                for lane in range(D):
                    m.d.sync += acc[lane].eq(Mux(first2, rounding2, acc[lane]) + prod2[lane])
            m.d.sync += self.o.valid.eq(done3)
            with m.If(done3):
                for lane in range(D):
                    m.d.sync += self.o.payload[lane].eq(sat8[lane])

        m.d.comb += self.idle.eq(waiting & ~v1 & ~v2 & ~done3 & ~self.o.valid & (wl == n_recv))
        return m
