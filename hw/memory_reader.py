"""Stream `count` consecutive words of a memory (from address 0) through its synchronous read port.

The reader drives the port's address and enable and keeps a small FIFO so that back-pressure on `o`
never loses a word: it only issues a read when the FIFO has room for it.
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ternkws.hw.params import check_int

__all__ = ["MemoryReader", "FIFO_DEPTH"]

FIFO_DEPTH = 4


class MemoryReader(wiring.Component):
    """Ports: start (pulse, loads count), count, o (words), busy; addr/en/data face the read port."""

    def __init__(self, shape, depth):
        depth = check_int(depth, "depth", low=1)
        self._shape, self._depth = Shape.cast(shape), depth
        super().__init__({
            "start": In(1),
            "count": In(range(depth + 1)),
            "busy": Out(1),
            "o": Out(stream.Signature(shape)),
            "addr": Out(range(depth)),
            "en": Out(1),
            "data": In(shape),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=self._shape.width, depth=FIFO_DEPTH)
        remaining = Signal(range(self._depth + 1))
        addr = Signal(range(self._depth))
        inflight = Signal()
        issue = Signal()
        m.d.comb += [
            issue.eq((remaining != 0) & (fifo.level + inflight < FIFO_DEPTH)),
            self.en.eq(issue),
            self.addr.eq(addr),
            fifo.w_en.eq(inflight),
            fifo.w_data.eq(self.data),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
            self.busy.eq((remaining != 0) | inflight | fifo.r_rdy),
        ]
        m.d.sync += inflight.eq(issue)
        with m.If(self.start):
            m.d.sync += [remaining.eq(self.count), addr.eq(0)]
        with m.Elif(issue):
            m.d.sync += [remaining.eq(remaining - 1), addr.eq(addr + 1)]
        return m
