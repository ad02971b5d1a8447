"""Stored 1x1 weights: the stored-weights baseline's replacement for the LFSR ternary generator.

Same ports and order as hw/ternary_generator.py (layer, restart, o with `lanes` entries per beat,
row-major), but the entries are learned int8 weights read from a ROM initialised at elaboration:
c_out * c_in bytes per layer that the ternary design does not store at all.
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.hw.params import check_int_array, check_lanes, check_sequence

__all__ = ["WeightRom", "check_weights"]


def check_weights(weights, lanes):
    """The (c_out, c_in) int8 matrices as read-only int64 arrays, checked (`lanes` must divide every c_in);
    TypeError / ValueError naming the bad value."""
    lanes = check_lanes(lanes)
    weights = check_sequence(weights, "weights", "(c_out, c_in) int8 matrix", "(c_out, c_in) int8 matrices")
    checked = []
    for n, w in enumerate(weights):
        shape = np.shape(w)
        if len(shape) != 2 or 0 in shape:
            raise ValueError(f"weights[{n}] must be a non-empty (c_out, c_in) matrix, not shape {shape}")
        w = check_int_array(w, f"weights[{n}]", bits=8)
        if w.shape[1] % lanes:
            raise ValueError(f"layer {n}: lanes={lanes} does not divide c_in={w.shape[1]}; choose lanes among "
                             f"the divisors of every layer's c_in")
        checked.append(w)
    return tuple(checked)


class WeightRom(wiring.Component):
    def __init__(self, weights, lanes):
        self._lanes = check_lanes(lanes)
        self._weights = check_weights(weights, self._lanes)
        self._bases = []
        words = 0
        for w in self._weights:
            self._bases.append(words)
            words += w.size // self._lanes
        self._words = words
        super().__init__({
            "layer": In(range(len(self._weights))),
            "restart": In(1),
            "o": Out(stream.Signature(data.ArrayLayout(signed(8), self._lanes))),
        })

    @property
    def bits(self):
        """Weight bits held by the ROM."""
        return self._words * self._lanes * 8

    def elaborate(self, platform):
        m = Module()
        lanes = self._lanes
        init = []
        for w in self._weights:
            flat = w.astype(np.int64).reshape(-1, lanes)
            init.extend([[int(v) for v in word] for word in flat])
        m.submodules.rom = rom = Memory(shape=data.ArrayLayout(signed(8), lanes), depth=self._words, init=init)
        rd = rom.read_port()
        addr = Signal(range(max(self._words, 2)))
        base = Signal(range(max(self._words, 2)))
        with m.Switch(self.layer):
            for n, b in enumerate(self._bases):
                with m.Case(n):
                    m.d.comb += base.eq(b)
        # The word read in a restart cycle is current from the next cycle on (as the generator's first
        # entries are); o.valid is low in the restart cycle itself and in the first cycle after reset,
        # before the read port holds a word.
        word_ready = Signal()
        m.d.comb += self.o.valid.eq(word_ready & ~self.restart)
        accept = self.o.valid & self.o.ready
        nxt = Mux(self.restart, base, Mux(accept, addr + 1, addr))
        # The read port always reads the word that will be current next cycle: no bubble.
        m.d.comb += [rd.addr.eq(nxt), rd.en.eq(1), self.o.payload.eq(rd.data)]
        m.d.sync += [addr.eq(nxt), word_ready.eq(1)]
        return m
