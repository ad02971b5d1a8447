"""Regroup a stream of element arrays: n_in elements per beat in, n_out per beat out, order kept.

Used between units whose lane counts differ (memory reader -> depthwise conv lanes -> mixer lanes).
One of n_in, n_out must divide the other. Gathering k = n_out / n_in beats costs no bubble: a full
output beat leaves in the cycle the next gather starts. Scattering emits k = n_in / n_out beats per
input beat and takes the next input beat in the cycle the last piece leaves.
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.hw.params import check_positive

__all__ = ["Regroup"]


class Regroup(wiring.Component):
    """i: In(stream.Signature(ArrayLayout(shape, n_in))) -> o: Out(stream.Signature(ArrayLayout(shape,
    n_out))); element order kept (element k of the stream is element k % n of beat k // n)."""

    def __init__(self, shape, n_in, n_out):
        n_in, n_out = check_positive(n_in, "n_in"), check_positive(n_out, "n_out")
        if n_out % n_in and n_in % n_out:
            raise ValueError(f"one of n_in={n_in} and n_out={n_out} must divide the other")
        self._shape, self._n_in, self._n_out = Shape.cast(shape), n_in, n_out
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(shape, n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(shape, n_out))),
        })

    shape = property(lambda self: self._shape)
    n_in = property(lambda self: self._n_in)
    n_out = property(lambda self: self._n_out)

    def elaborate(self, platform):
        m = Module()
        n_in, n_out, w = self._n_in, self._n_out, self._shape.width
        if n_in == n_out:
            m.d.comb += [
                self.o.valid.eq(self.i.valid),
                self.o.payload.eq(self.i.payload),
                self.i.ready.eq(self.o.ready),
            ]
        elif n_out > n_in:
            k = n_out // n_in
            buf = Signal(n_out * w)
            cnt = Signal(range(k))
            full = Signal()
            m.d.comb += [
                self.o.valid.eq(full),
                self.o.payload.eq(buf),
                self.i.ready.eq(~full | self.o.ready),
            ]
            with m.If(full & self.o.ready):
                m.d.sync += full.eq(0)
            with m.If(self.i.valid & self.i.ready):
                with m.Switch(cnt):
                    for c in range(k):
                        with m.Case(c):
                            m.d.sync += buf[c * n_in * w:(c + 1) * n_in * w].eq(self.i.payload.as_value())
                with m.If(cnt == k - 1):
                    m.d.sync += [cnt.eq(0), full.eq(1)]
                with m.Else():
                    m.d.sync += cnt.eq(cnt + 1)
        else:
            k = n_in // n_out
            buf = Signal(n_in * w)
            cnt = Signal(range(k))
            have = Signal()
            piece = Signal(n_out * w)
            with m.Switch(cnt):
                for c in range(k):
                    with m.Case(c):
                        m.d.comb += piece.eq(buf[c * n_out * w:(c + 1) * n_out * w])
            last = cnt == k - 1
            m.d.comb += [
                self.o.valid.eq(have),
                self.o.payload.eq(piece),
                self.i.ready.eq(~have | (self.o.ready & last)),
            ]
            with m.If(have & self.o.ready):
                m.d.sync += cnt.eq(0 if k == 1 else cnt + 1)
                with m.If(last):
                    m.d.sync += [cnt.eq(0), have.eq(0)]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [buf.eq(self.i.payload.as_value()), have.eq(1), cnt.eq(0)]
        return m
