"""Classifier: pool sums -> learned int8 linear layer -> logits, then the class (twin: golden/classifier.py).

logit[k] = bias[k] + sum_c weight[k, c] * pool[c]; class = the first k with the largest logit. The pool
sums live outside (the accelerator keeps them in its acc_res memory); the classifier reads them through
a memory read port of its own signature. The weights are a ROM (n_classes * channels int8) and the
biases constants, both from the checkpoint at elaboration. One register accumulates each logit and
is emitted as it (no copy; the class index goes out of it too); it is `accumulator_bits` wide: enough for the largest |logit| these
weights and biases give with any pool sum the port can carry, sign-extended to 32 bits on `o` (at
most 32: a wider one would wrap to 32 bits on `o` anyway). The bundled model needs 28 bits.

Ports
-----
start : In(1)          pulse for one cycle (while `idle`): classify the pool sums now in memory.
pool_addr : Out(range(channels)), pool_en : Out(1), pool_data : In(signed(pool_bits))
                       read port of the pool memory: data of the address given with en high arrives
                       the next cycle (a synchronous read, like amaranth.lib.memory's).
o : Out(stream.Signature(StructLayout({"value": signed(32), "last": 1})))
                       n_classes logits (last = 0), then the class index (last = 1).
idle : Out(1)          high when no classification is in progress.

Schedule: per class, channels + 1 cycles of one multiply-accumulate (cycle c reads channel c, cycle
c + 1 accumulates it), then one cycle at least to emit the logit (longer under back-pressure); after
the last logit, one beat with the class. From the cycle `start` is high to the cycle the class beat is
taken, both counted, without back-pressure: n_classes * (channels + 2) + 2 cycles.
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.contract import LOGIT_BITS

__all__ = ["Classifier", "cycles"]


def cycles(channels, n_classes):
    """Cycles from the `start` cycle to the cycle the class beat is taken, both counted, output always ready."""
    return n_classes * (channels + 2) + 2


class Classifier(wiring.Component):
    def __init__(self, layer):
        weights = np.asarray(layer.weights)
        bias = np.asarray(layer.bias)
        if weights.shape != (layer.n_classes, layer.channels):
            raise ValueError(f"classifier weights must have shape {(layer.n_classes, layer.channels)}, "
                             f"not {weights.shape}")
        if bias.shape != (layer.n_classes,):
            raise ValueError(f"classifier bias must have shape {(layer.n_classes,)}, not {bias.shape}")
        self._layer, self._weights, self._bias = layer, weights, bias
        super().__init__({
            "start": In(1),
            "pool_addr": Out(range(layer.channels)),
            "pool_en": Out(1),
            "pool_data": In(signed(layer.pool_bits)),
            "o": Out(stream.Signature(data.StructLayout({"value": signed(LOGIT_BITS), "last": 1}))),
            "idle": Out(1),
        })

    @property
    def accumulator_bits(self):
        """Bits of the accumulator (= the logit register): enough for bias[k] + sum_c |weight[k, c]| *
        2^(pool_bits - 1) for every class (the largest |logit| any pool sum on the port can give), at most
        LOGIT_BITS."""
        pool_max = 1 << (self._layer.pool_bits - 1)
        bound = max(abs(int(b)) + int(np.abs(w.astype(np.int64)).sum()) * pool_max
                    for w, b in zip(self._weights, self._bias))
        return min(LOGIT_BITS, bound.bit_length() + 1)

    def elaborate(self, platform):
        m = Module()
        C, K = self._layer.channels, self._layer.n_classes
        m.submodules.weights = rom = Memory(shape=signed(8), depth=K * C,
                                            init=[int(v) for v in self._weights.ravel()])
        rd = rom.read_port()

        k = Signal(range(K + 1))
        c = Signal(range(C + 1))
        # The accumulator holds the logit itself (emitted from it): as wide as the largest |logit| these
        # weights and biases can give with any pool sum the port carries, at most LOGIT_BITS (wider
        # logits wrap to LOGIT_BITS either way, as the logit register always did).
        width = self.accumulator_bits
        # reset_less: yosys then builds the accumulator inside the SB_MAC16 (its adder, its output register
        # with a hold, its load from C/D for the bias and the class index): no logic cells for it.
        mac = Signal(signed(width), reset_less=True)
        best = Signal(signed(width))
        best_k = Signal(range(K))
        load, load_value, update = Signal(), Signal(signed(width)), Signal()
        bias_k = Signal(signed(width))
        with m.Switch(k):
            for kk, b in enumerate(self._bias):
                with m.Case(kk):
                    m.d.comb += bias_k.eq(int(b))
        acc_next = Signal(signed(width))
        m.d.comb += acc_next.eq(Mux(load, load_value, rd.data * self.pool_data + mac))
        with m.If(update):
            m.d.sync += mac.eq(acc_next)

        m.d.comb += self.o.payload.value.eq(mac)
        with m.FSM(name="classify"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    m.d.sync += [k.eq(0), c.eq(0)]
                    m.next = "MAC"
            with m.State("MAC"):
                # One MAC per cycle: cycle c issues the reads of channel c, cycle c + 1 accumulates it
                # (cycle 0 loads the bias). With a power-of-two C the address is k and c side by side: no
                # adder. The read at c = C is not used.
                addr = Cat(c[:C.bit_length() - 1], k) if C & (C - 1) == 0 else k * C + c
                m.d.comb += [self.pool_addr.eq(c), self.pool_en.eq(1), rd.addr.eq(addr), rd.en.eq(1),
                             update.eq(1), load.eq(c == 0), load_value.eq(bias_k)]
                with m.If(c == C):
                    m.d.sync += c.eq(0)
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += c.eq(c + 1)
            with m.State("EMIT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    better = (k == 0) | (mac > best)
                    with m.If(better):
                        m.d.sync += [best.eq(mac), best_k.eq(k)]
                    with m.If(k == K - 1):
                        # The class goes out of the same register as the logits (no output multiplexer).
                        m.d.comb += [update.eq(1), load.eq(1), load_value.eq(Mux(better, k, best_k))]
                        m.next = "CLASS"
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
                        m.next = "MAC"
            with m.State("CLASS"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.last.eq(1)]
                with m.If(self.o.ready):
                    m.next = "IDLE"
        return m
