"""Keyword detector of the streaming mode: decisions' logits in, keyword events out (golden/SPEC.md 6.4;
twin: golden/streaming.py `Detector`).

Per decision k (its n_classes logits, then the class beat, on `i`):

* the logits go into a ring of `smooth` (N) logit vectors: one memory of SMOOTH_MAX * n_classes 32-bit
  words, vector k at slot k mod N; slots not written since `clear` count as 0 (the zero history);
* score S[c] = the sum of the ring's N entries of class c (N reads per class, 36 bits), then, in class
  order: the first keyword class of the largest score (best, among `keywords`), the first class of the
  largest score over all classes and the largest score of the others (so the runner-up of best is known
  without a second pass), margin m = S[best] - max over c != best of S[c] (37 bits);
* the rule: m < threshold re-arms; otherwise a best other than the last event's class re-arms, and an
  armed detector whose last event is at least `refractory` decisions back (or that has none) fires:
  an event (decision index, best, m) on `e`, which disarms it. Decisions since the last event are a
  counter saturating at `refractory`.

Cycles per decision: n_classes * N + 3 after the class beat (plus the wait for the event to be taken).

Ports
-----
i : In(stream.Signature(StructLayout({"value": signed(32), "last": 1})))   the classifier's beats.
e : Out(stream.Signature(EVENT_LAYOUT))       index (decision k, 32 bits), cls, margin (signed 37).
smooth : In(5) (1..16), refractory : In(REFRACTORY_BITS) (>= 1), threshold : In(35),
keywords : In(n_classes) (bit c: class c may fire)       parameters; change them only with `clear`.
clear : In(1)     forget every decision (pulse while `idle`): the reset state.
idle : Out(1)     waiting for a decision's first logit.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
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
    def __init__(self, n_classes):
        self._n_classes = n_classes
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
        return SMOOTH_MAX * self._n_classes

    def elaborate(self, platform):
        m = Module()
        nc = self._n_classes
        depth = self.ring_depth
        m.submodules.ring = ring = Memory(shape=signed(LOGIT_BITS), depth=depth, init=[])
        wp = ring.write_port()
        rp = ring.read_port(transparent_for=())

        k = Signal(INDEX_BITS)                         # decision index
        count = Signal(range(SMOOTH_MAX + 1))          # decisions in the ring (up to N)
        slot = Signal(range(SMOOTH_MAX))               # slot of decision k: k mod N
        slot_base = Signal(range(depth))               # slot * n_classes
        c = Signal(range(nc + 1))                      # class (logits received while collecting)
        jj = Signal(range(SMOOTH_MAX))                 # ring slot being read
        jbase = Signal(range(depth))
        acc = Signal(signed(SCORE_BITS))
        t1, t2, best = (Signal(signed(SCORE_BITS), name=n) for n in ("top1", "top2", "best_score"))
        t1_cls, best_cls = Signal(range(nc)), Signal(range(nc))
        t2_valid, best_valid = Signal(), Signal()
        armed = Signal(init=1)
        has_event = Signal()
        last_cls = Signal(range(nc))
        since = Signal(REFRACTORY_BITS)
        ev_index = Signal(INDEX_BITS)
        ev_cls = Signal(range(nc))
        ev_margin = Signal(signed(MARGIN_BITS))
        m.d.comb += [self.e.payload.index.eq(ev_index), self.e.payload.cls.eq(ev_cls),
                     self.e.payload.margin.eq(ev_margin)]

        # read pipeline of the SUM state: d_* describe the word arriving on rp.data
        d_valid, d_first, d_last, d_in = Signal(), Signal(), Signal(), Signal()
        d_cls = Signal(range(nc))
        issuing = Signal()
        n_m1 = Signal(range(SMOOTH_MAX))
        m.d.comb += n_m1.eq(self.smooth - 1)

        m.d.sync += d_valid.eq(0)
        with m.FSM(name="detector"):
            with m.State("COLLECT"):
                m.d.comb += [self.i.ready.eq(1), self.idle.eq(c == 0),
                             wp.addr.eq(slot_base + c), wp.data.eq(self.i.payload.value)]
                with m.If(self.i.valid):
                    with m.If(self.i.payload.last):
                        m.d.sync += [c.eq(0), jj.eq(0), jbase.eq(0),
                                     count.eq(Mux(count >= self.smooth, self.smooth, count + 1))]
                        m.next = "SUM"
                    with m.Else():
                        m.d.comb += wp.en.eq(1)
                        m.d.sync += c.eq(c + 1)
                with m.Elif(self.clear & (c == 0)):
                    m.d.sync += [k.eq(0), count.eq(0), slot.eq(0), slot_base.eq(0), armed.eq(1),
                                 has_event.eq(0), since.eq(0)]
            with m.State("SUM"):
                # one read per cycle: class c, slot jj; the data arrive the next cycle
                m.d.comb += [issuing.eq(1), rp.addr.eq(jbase + c), rp.en.eq(1)]
                m.d.sync += [d_valid.eq(1), d_first.eq(jj == 0), d_last.eq(jj == n_m1), d_in.eq(jj < count),
                             d_cls.eq(c)]
                with m.If(jj == n_m1):
                    m.d.sync += [jj.eq(0), jbase.eq(0), c.eq(c + 1)]
                    with m.If(c == nc - 1):
                        m.d.sync += c.eq(0)
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [jj.eq(jj + 1), jbase.eq(jbase + nc)]
            with m.State("DRAIN"):
                m.next = "DECIDE"
            with m.State("DECIDE"):
                other = Mux(best_cls == t1_cls, t2, t1)
                margin = Signal(signed(MARGIN_BITS))
                m.d.comb += margin.eq(best - other)
                over = margin >= self.threshold
                since_next = Mux(since >= self.refractory, self.refractory, since + 1)
                armed_next = Mux(~over | ~has_event | (best_cls != last_cls), 1, armed)
                fire = over & armed_next & best_valid & (~has_event | (since_next >= self.refractory))
                m.d.sync += [
                    k.eq(k + 1),
                    slot.eq(Mux(slot == n_m1, 0, slot + 1)),
                    slot_base.eq(Mux(slot == n_m1, 0, slot_base + nc)),
                ]
                with m.If(fire):
                    m.d.sync += [armed.eq(0), has_event.eq(1), last_cls.eq(best_cls), since.eq(0),
                                 ev_index.eq(k), ev_cls.eq(best_cls), ev_margin.eq(margin)]
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += [armed.eq(armed_next), since.eq(since_next)]
                    m.next = "COLLECT"
            with m.State("EMIT"):
                m.d.comb += self.e.valid.eq(1)
                with m.If(self.e.ready):
                    m.next = "COLLECT"

        # accumulate the arriving word; a class's last word updates the running maxima
        term = Mux(d_in, rp.data, 0)
        score = Signal(signed(SCORE_BITS))
        m.d.comb += score.eq(Mux(d_first, 0, acc) + term)
        with m.If(d_valid):
            m.d.sync += acc.eq(score)
            with m.If(d_last):
                with m.If(d_cls == 0):
                    m.d.sync += [t1.eq(score), t1_cls.eq(0), t2_valid.eq(0), best_valid.eq(0)]
                with m.Elif(score > t1):
                    m.d.sync += [t2.eq(t1), t2_valid.eq(1), t1.eq(score), t1_cls.eq(d_cls)]
                with m.Elif(~t2_valid | (score > t2)):
                    m.d.sync += [t2.eq(score), t2_valid.eq(1)]
                with m.If(self.keywords.bit_select(d_cls, 1) & (~best_valid | (score > best) | (d_cls == 0))):
                    m.d.sync += [best.eq(score), best_cls.eq(d_cls), best_valid.eq(1)]
        return m
