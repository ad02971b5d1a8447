"""Keyword detector of the streaming mode: decisions' logits in, keyword events out (golden/SPEC.md 6.4;
twin: golden/streaming.py `Detector`).

Per decision k (its n_classes logits, then the class beat, on `i`):

* the logits go into a ring of `smooth` (N) logit vectors: SMOOTH_MAX * n_classes logits, vector k at slot k mod N; slots not written since `clear` count as 0 (the zero history);
* score S[c] = the sum of the ring's N entries of class c (36 bits), computed twice, in class order: the
  first pass finds the first keyword class of the largest score (best, among `keywords`), the second the
  largest score of the other classes (one comparator for both), margin m = S[best] - max over c != best
  of S[c] (37 bits);
* the rule: m < threshold re-arms; otherwise a best other than the last event's class re-arms, and an
  armed detector whose last event is at least `refractory` decisions back (or that has none) fires:
  an event (decision index, best, m) on `e`, which disarms it. Decisions since the last event are a
  counter saturating at `refractory`.

The ring is 16-bit words (two per logit: the width of an iCE40 SPRAM, where `attrs` {"ram_style": "huge"}
puts it) with one address (a single-port RAM): a logit's low half is written as it arrives, its high
half the next cycle (the input is not ready in that cycle).

Cycles per decision: 4 * n_classes * N + 5 after the class beat (two passes of two reads per logit; the
score, its comparison and the margin each get a register stage, for Fmax), plus the wait for the event
to be taken.

Ports
-----
i : In(stream.Signature(StructLayout({"value": signed(32), "last": 1})))   the classifier's beats.
e : Out(stream.Signature(EVENT_LAYOUT))       index (decision k, 32 bits), cls, margin (signed 37).
smooth : In(5) (1..16), refractory : In(REFRACTORY_BITS) (>= 1), threshold : In(35),
keywords : In(n_classes) (bit c: class c may fire)       parameters; change them only with `clear`.
clear : In(1)     forget every decision (pulse while `idle`): the reset state.
idle : Out(1)     waiting for a decision's first logit.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.contract import LOGIT_BITS
from ternkws.golden.streaming import MARGIN_BITS, SCORE_BITS, SMOOTH_MAX

__all__ = ["StreamDetector", "event_layout", "REFRACTORY_BITS", "THRESHOLD_BITS", "INDEX_BITS", "SMOOTH_BITS"]

REFRACTORY_BITS = 8        # R <= 255 decisions (25.5 s at the default hop)
THRESHOLD_BITS = SCORE_BITS - 1
INDEX_BITS = 32
SMOOTH_BITS = SMOOTH_MAX.bit_length()


def event_layout(n_classes):
    return data.StructLayout({"index": unsigned(INDEX_BITS), "cls": range(n_classes),
                              "margin": signed(MARGIN_BITS)})


class StreamDetector(wiring.Component):
    def __init__(self, n_classes, attrs=None):
        self._n_classes = n_classes
        self._attrs = dict(attrs or {})
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"value": signed(LOGIT_BITS), "last": 1}))),
            "e": Out(stream.Signature(event_layout(n_classes))),
            "smooth": In(SMOOTH_BITS),
            "refractory": In(REFRACTORY_BITS),
            "threshold": In(THRESHOLD_BITS),
            "keywords": In(n_classes),
            "clear": In(1),
            "idle": Out(1),
        })

    @property
    def ring_depth(self):
        """Logits the ring holds: SMOOTH_MAX * n_classes (two 16-bit words each)."""
        return SMOOTH_MAX * self._n_classes

    def elaborate(self, platform):
        m = Module()
        nc = self._n_classes
        depth = self.ring_depth
        # 16-bit words (iCE40 SPRAM width), a logit's low half at 2a, its high half at 2a + 1; one address
        # for both ports (a single-port RAM)
        m.submodules.ring = ring = Memory(shape=unsigned(16), depth=2 * depth, init=[], attrs=self._attrs)
        wp = ring.write_port()
        rp = ring.read_port(transparent_for=())
        addr = Signal(range(2 * depth))
        w_addr, r_addr, r_en = Signal.like(addr), Signal.like(addr), Signal()
        m.d.comb += [addr.eq(Mux(wp.en, w_addr, r_addr)), wp.addr.eq(addr), rp.addr.eq(addr),
                     rp.en.eq(r_en & ~wp.en)]
        pend = Signal()                                # a logit's high half is still to be written
        pend_data = Signal(16)
        pend_addr = Signal.like(addr)

        k = Signal(INDEX_BITS)                         # decision index
        count = Signal(range(SMOOTH_MAX + 1))          # decisions in the ring (up to N)
        slot = Signal(range(SMOOTH_MAX))               # slot of decision k: k mod N
        slot_base = Signal(range(depth))               # slot * n_classes
        c = Signal(range(nc + 1))                      # class (logits received while collecting)
        jj = Signal(range(SMOOTH_MAX))                 # ring slot being read
        jbase = Signal(range(depth))
        acc = Signal(signed(SCORE_BITS))
        best = Signal(signed(SCORE_BITS))              # pass 1: the first keyword class of the largest score
        other = Signal(signed(SCORE_BITS))             # pass 2: the largest score of the other classes
        best_cls = Signal(range(nc))
        best_valid, other_valid = Signal(), Signal()
        second = Signal()                              # the SUM state's second pass
        armed = Signal(init=1)
        has_event = Signal()
        last_cls = Signal(range(nc))
        since = Signal(REFRACTORY_BITS)
        margin = Signal(signed(MARGIN_BITS))           # registered: best - other of the cycle before
        m.d.sync += margin.eq(best - other)
        # an event leaves in EMIT, right after DECIDE: its fields are the live registers
        m.d.comb += [self.e.payload.index.eq(k), self.e.payload.cls.eq(best_cls), self.e.payload.margin.eq(margin)]

        # read pipeline of the SUM state: d_* describe the word arriving on rp.data
        d_valid, d_first, d_last, d_in = Signal(), Signal(), Signal(), Signal()
        d_cls = Signal(range(nc))
        half = Signal()                                # SUM: 0 reads a logit's low half, 1 its high half
        low = Signal(16)                               # the low half read the cycle before
        n_m1 = Signal(range(SMOOTH_MAX))
        m.d.comb += n_m1.eq(self.smooth - 1)

        m.d.sync += d_valid.eq(0)
        with m.If(pend):
            m.d.comb += [wp.en.eq(1), w_addr.eq(pend_addr), wp.data.eq(pend_data)]
            m.d.sync += pend.eq(0)
        with m.FSM(name="detector"):
            with m.State("COLLECT"):
                m.d.comb += [self.i.ready.eq(~pend), self.idle.eq((c == 0) & ~pend)]
                with m.If(self.i.valid & ~pend):
                    with m.If(self.i.payload.last):
                        m.d.sync += [c.eq(0), jj.eq(0), jbase.eq(0), half.eq(0), second.eq(0),
                                     count.eq(Mux(count >= self.smooth, self.smooth, count + 1))]
                        m.next = "SUM"
                    with m.Else():
                        word = (slot_base + c) << 1
                        m.d.comb += [wp.en.eq(1), w_addr.eq(word), wp.data.eq(self.i.payload.value[:16])]
                        m.d.sync += [c.eq(c + 1), pend.eq(1), pend_addr.eq(word + 1),
                                     pend_data.eq(self.i.payload.value[16:])]
                with m.Elif(self.clear & (c == 0) & ~pend):
                    m.d.sync += [k.eq(0), count.eq(0), slot.eq(0), slot_base.eq(0), armed.eq(1),
                                 has_event.eq(0), since.eq(0)]
            with m.State("SUM"):
                # two reads per logit (class c, slot jj): the low half, then the high half; each read's
                # data arrive the next cycle
                m.d.comb += [r_en.eq(1), r_addr.eq(((jbase + c) << 1) | half)]
                m.d.sync += half.eq(~half)
                with m.If(half):
                    m.d.sync += [d_valid.eq(1), d_first.eq(jj == 0), d_last.eq(jj == n_m1), d_in.eq(jj < count),
                                 d_cls.eq(c)]
                    with m.If(jj == n_m1):
                        m.d.sync += [jj.eq(0), jbase.eq(0), c.eq(c + 1)]
                        with m.If(c == nc - 1):
                            m.d.sync += [c.eq(0), second.eq(1)]
                            with m.If(second):
                                m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += [jj.eq(jj + 1), jbase.eq(jbase + nc)]
            with m.State("DRAIN"):                     # the last logit arrives
                m.next = "DRAIN2"
            with m.State("DRAIN2"):                    # its class's score is compared
                m.next = "DRAIN3"
            with m.State("DRAIN3"):                    # the margin is registered
                m.next = "DECIDE"
            with m.State("DECIDE"):
                over = margin >= self.threshold
                since_next = Mux(since >= self.refractory, self.refractory, since + 1)
                armed_next = Mux(~over | ~has_event | (best_cls != last_cls), 1, armed)
                fire = over & armed_next & best_valid & (~has_event | (since_next >= self.refractory))
                m.d.sync += [
                    slot.eq(Mux(slot == n_m1, 0, slot + 1)),
                    slot_base.eq(Mux(slot == n_m1, 0, slot_base + nc)),
                ]
                with m.If(fire):
                    m.d.sync += [armed.eq(0), has_event.eq(1), last_cls.eq(best_cls), since.eq(0)]
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += [armed.eq(armed_next), since.eq(since_next), k.eq(k + 1)]
                    m.next = "COLLECT"
            with m.State("EMIT"):
                m.d.comb += self.e.valid.eq(1)
                with m.If(self.e.ready):
                    m.d.sync += k.eq(k + 1)
                    m.next = "COLLECT"

        # accumulate the arriving logit; a class's last one updates the running maxima
        m.d.sync += low.eq(rp.data)                    # meaningful the cycle after a low half's read
        term = Mux(d_in, Cat(low, rp.data).as_signed(), 0)
        score = Signal(signed(SCORE_BITS))
        m.d.comb += score.eq(Mux(d_first, 0, acc) + term)
        with m.If(d_valid):
            m.d.sync += acc.eq(score)
        # a class's score (in acc the cycle after its last logit) against the pass's running maximum: one
        # comparator for both passes, pass 1 against the best keyword so far, pass 2 against the largest of
        # the other classes so far (the first class of a pass always takes its place)
        d_second, e_last, e_second = Signal(), Signal(), Signal()
        e_cls = Signal(range(nc))
        m.d.sync += [d_second.eq(second), e_last.eq(d_valid & d_last), e_second.eq(d_second), e_cls.eq(d_cls)]
        gt = acc > Mux(e_second, other, best)
        with m.If(e_last):
            with m.If(~e_second):
                with m.If(self.keywords.bit_select(e_cls, 1) & (~best_valid | (e_cls == 0) | gt)):
                    m.d.sync += [best.eq(acc), best_cls.eq(e_cls), best_valid.eq(1)]
                with m.Elif(e_cls == 0):
                    m.d.sync += best_valid.eq(0)
                m.d.sync += other_valid.eq(0)
            with m.Elif((e_cls != best_cls) & (~other_valid | gt)):
                m.d.sync += [other.eq(acc), other_valid.eq(1)]
        return m
