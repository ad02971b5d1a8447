"""Stored-weights 1x1 mixer: the honest baseline next to hw/ternary_mixer.py.

The same schedule and ports as TernaryMixer (it is a subclass), but each lane multiplies its input by a
learned int8 weight read from a ROM (hw/weight_rom.py): `lanes` int8 x int8 multipliers and
c_out * c_in * 8 weight bits per layer. Twin: golden/ternary_mixer.py `stored_mixer`.
"""

from amaranth.hdl import Signal, signed

from ternkws.golden.ternary_mixer import stored_acc_bits

from ternkws.hw.ternary_mixer import TernaryMixer
from ternkws.hw.weight_rom import WeightRom, check_weights


class StoredMixer(TernaryMixer):
    def __init__(self, weights, lanes):
        self._weights = check_weights(weights, lanes)
        super().__init__([(w.shape[1], w.shape[0], 0) for w in self._weights], 1.0, lanes)

    @property
    def weight_bits(self):
        return sum(w.size for w in self._weights) * 8

    def _acc_bits(self, c_in):
        return stored_acc_bits(c_in)

    def _entry_source(self):
        return WeightRom(self._weights, self._lanes)

    def _lane_term(self, m, lane, x, entry):
        term = Signal(signed(16), name=f"product{lane}")
        m.d.comb += term.eq(x * entry)
        return term
