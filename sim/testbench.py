"""The cocotb testbench of one stream unit (cocotbext-axi's TB pattern): clock, reset, a source on the
input stream with random idle cycles and a sink on the output stream with random back-pressure.

    tb = TB(dut, encode=lambda beat: pack_lanes(beat, 8), decode=lambda raw: as_signed(raw.to_unsigned(), 13))
    for case in cases:
        tb.set_stalls(random.Random(case["rng_seed"]), in_stall=0.3, out_stall=0.5)
        await tb.reset()                          # also drops what the last case left queued / received
        await tb.wait_idle()                      # the unit's `idle`, and nothing of ours in flight
        dut.layer.value = layer
        tb.source.send(beats)
        await tb.sink.wait_for(len(expected))
        assert tb.sink.received == expected

Ports follow `amaranth.back.verilog`'s flattening (sim/streams.py): `<name>__valid/ready/payload`, `clk`,
`rst`. A unit driven by hand (exact-cycle tests) passes `source=None` / `sink=None` and keeps clock and
reset. The Amaranth-simulator twin is sim/pysim_streams.py's PysimTB.
"""

import random

from cocotb.triggers import FallingEdge

from ternkws.sim.streams import CLOCK_PERIOD_NS, StreamSink, StreamSource, start_clock, wait_until
from ternkws.sim.streams import reset as hold_reset

__all__ = ["TB"]


class TB:
    """Clock (started here), reset, `source` (a StreamSource on port `source`, or None) and `sink` (a
    StreamSink on port `sink`, or None) of `dut`. Source and sink share one random generator `rng`;
    `in_stall` is the source's chance of an idle cycle before each beat, `out_stall` the sink's chance of
    holding ready low in a cycle."""

    def __init__(self, dut, *, source="i", sink="o", encode=None, decode=None, rng=None, in_stall=0.0,
                 out_stall=0.0, clock="clk", reset="rst", period_ns=CLOCK_PERIOD_NS):
        self.dut = dut
        self.clock = getattr(dut, clock)
        self._clock_name, self._reset_name = clock, reset
        start_clock(dut, period_ns, clock)
        rng = rng if rng is not None else random.Random(0)
        self.source = None if source is None else StreamSource(
            dut, source, clock=clock, reset=reset, encode=encode, rng=rng, stall=in_stall)
        self.sink = None if sink is None else StreamSink(
            dut, sink, clock=clock, reset=reset, decode=decode, rng=rng, stall=out_stall)

    def set_stalls(self, rng=None, in_stall=None, out_stall=None):
        """From now on: the random generator (when given) and the stall chances (those given)."""
        for driver, stall in ((self.source, in_stall), (self.sink, out_stall)):
            if driver is None:
                continue
            if rng is not None:
                driver.rng = rng
            if stall is not None:
                driver.stall = stall

    async def reset(self, cycles=2):
        """From the next falling edge (so it may follow a ReadOnly phase): drop the source's queue and the
        sink's beats, hold the reset for `cycles` rising edges; returns just after a falling edge."""
        await FallingEdge(self.clock)
        if self.source is not None:
            self.source.clear()
        if self.sink is not None:
            self.sink.clear()
        await hold_reset(self.dut, cycles, self._clock_name, self._reset_name)

    async def wait_idle(self, timeout_cycles=1_000_000, flag="idle"):
        """Wait until the unit's `flag` output is high and the source has nothing queued or offered;
        returns just after the next falling edge, so inputs (e.g. `layer`) may be written."""
        port = getattr(self.dut, flag)
        await wait_until(self.clock, lambda: port.value == 1 and (self.source is None or self.source.idle),
                         timeout_cycles, flag)
        await FallingEdge(self.clock)

    async def cycles(self, count):
        """Let `count` clock cycles pass (falling edge to falling edge)."""
        for _ in range(count):
            await FallingEdge(self.clock)

    async def stop(self):
        """Stop the source and the sink (valid and ready low)."""
        for driver in (self.source, self.sink):
            if driver is not None:
                await driver.stop()
