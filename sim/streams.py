"""cocotb drivers for Amaranth stream ports, plus clock/reset and payload packing helpers.

`amaranth.back.verilog.convert` flattens a stream port `i` into `i__valid`, `i__ready` and `i__payload`
(an ArrayLayout payload is one vector, element k at bits [k*width, (k+1)*width)); the clock and reset
are `clk` and `rst` (synchronous, active high).

Timing model (same on Icarus and Verilator): drivers write their inputs just after the falling edge and
read the handshake in the ReadOnly phase of that time step, when everything combinational has settled;
those are exactly the values the design samples at the next rising edge. (At a rising edge Icarus shows
pre-edge values but Verilator post-edge ones, so nothing here samples there.)

    await start(dut)                              # clock + reset
    source = StreamSource(dut, "i", encode=lambda beat: pack_lanes(beat, 8), rng=rng, stall=0.3)
    sink = StreamSink(dut, "o", decode=lambda raw: as_signed(raw, 13), rng=rng, stall=0.3)
    source.send(beats)
    await sink.wait_for(count)

sim/testbench.py's TB bundles these (clock, reset, one source, one sink) for a unit's testbench.
"""

import collections
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["start_clock", "reset", "start", "StreamSource", "StreamSink", "pack_lanes", "unpack_lanes",
           "as_signed", "wait_until", "CLOCK_PERIOD_NS"]

CLOCK_PERIOD_NS = 10


def pack_lanes(values, width):
    """Pack a sequence of (signed or unsigned) ints into one vector, element k at bits [k*width, ...)."""
    mask = (1 << width) - 1
    raw = 0
    for k, value in enumerate(values):
        raw |= (int(value) & mask) << (k * width)
    return raw


def as_signed(raw, width):
    """Two's-complement reading of the low `width` bits of `raw`."""
    raw = int(raw) & ((1 << width) - 1)
    return raw - (1 << width) if raw >> (width - 1) else raw


def unpack_lanes(raw, width, count, signed=True):
    """Inverse of pack_lanes: `count` elements of `width` bits."""
    raw = int(raw)
    values = [(raw >> (k * width)) & ((1 << width) - 1) for k in range(count)]
    return [as_signed(v, width) for v in values] if signed else values


def start_clock(dut, period_ns=CLOCK_PERIOD_NS, clock="clk"):
    """Start a free-running clock on `dut.<clock>`; returns the task."""
    return cocotb.start_soon(Clock(getattr(dut, clock), period_ns, unit="ns").start())


async def reset(dut, cycles=2, clock="clk", rst="rst"):
    """Hold the synchronous reset for `cycles` rising edges; returns just after a falling edge."""
    clk = getattr(dut, clock)
    getattr(dut, rst).value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    await FallingEdge(clk)
    getattr(dut, rst).value = 0


async def start(dut, period_ns=CLOCK_PERIOD_NS, reset_cycles=2):
    """Clock and reset `dut` (ports `clk`, `rst`)."""
    start_clock(dut, period_ns)
    await reset(dut, reset_cycles)


async def wait_until(clock, condition, timeout_cycles, what="condition"):
    """Wait (falling edge to falling edge) until `condition()` holds, read in ReadOnly; fail after
    `timeout_cycles` cycles. Returns just after the ReadOnly phase, so no write is allowed until the
    next edge."""
    for _ in range(timeout_cycles):
        await FallingEdge(clock)
        await ReadOnly()
        if condition():
            return
    raise AssertionError(f"timed out after {timeout_cycles} cycles waiting for {what}")


def _chance(rng, probability):
    return probability > 0 and rng.random() < probability


class StreamSource:
    """Drives `<name>__valid` / `<name>__payload`, watches `<name>__ready`.

    Before each beat it idles (valid low) for a cycle with probability `stall`, repeatedly; once valid is
    high it stays high with the same payload until the beat is accepted (stream rule).
    `encode(beat) -> int` turns a queued beat into the raw payload vector (default: int(beat)).
    With `reset` (the name of the reset port) it offers nothing while the reset is high.
    """

    def __init__(self, dut, name, *, clock="clk", reset=None, encode=None, rng=None, stall=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock = getattr(dut, clock)
        self.reset = getattr(dut, reset) if reset is not None else None
        self.encode = encode if encode is not None else int
        self.rng = rng if rng is not None else random.Random(0)
        self.stall = stall
        self.queue = collections.deque()
        self.sent = 0
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beats):
        """Queue beats (returns at once)."""
        self.queue.extend(beats)

    @property
    def idle(self):
        return not self.queue and self._current is None

    def clear(self):
        """Drop the queued beats and the one on the bus (valid drops at the next falling edge)."""
        self.queue.clear()
        self._current = None

    async def stop(self):
        """Stop driving: cancel the driver and drop valid at the next falling edge."""
        self._task.cancel()
        await FallingEdge(self.clock)
        self.valid.value = 0

    async def wait_idle(self, timeout_cycles=1_000_000):
        await wait_until(self.clock, lambda: self.idle, timeout_cycles, "the stream source to drain")

    _current = None

    def _in_reset(self):
        return self.reset is not None and self.reset.value == 1

    async def _run(self):
        while True:
            await FallingEdge(self.clock)
            if self._current is None:
                if self.queue and not self._in_reset() and not _chance(self.rng, self.stall):
                    self._current = self.queue.popleft()
                    self.payload.value = self.encode(self._current)
                    self.valid.value = 1
                else:
                    self.valid.value = 0
            await ReadOnly()
            if self._current is not None and self.ready.value == 1 and not self._in_reset():
                self._current = None      # accepted at the coming rising edge
                self.sent += 1


class StreamSink:
    """Drives `<name>__ready` (low with probability `stall` each cycle), collects accepted payloads into
    `received` (`decode(LogicArray) -> value`, default unsigned int). With `reset` (the name of the reset
    port) nothing is collected while the reset is high."""

    def __init__(self, dut, name, *, clock="clk", reset=None, decode=None, rng=None, stall=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock = getattr(dut, clock)
        self.reset = getattr(dut, reset) if reset is not None else None
        self.decode = decode if decode is not None else (lambda raw: raw.to_unsigned())
        self.rng = rng if rng is not None else random.Random(0)
        self.stall = stall
        self.received = []
        self.cycle = 0
        self.cycles = []                   # cycle index (falling edges since start) of each beat
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def stop(self):
        """Stop collecting: cancel the driver and drop ready at the next falling edge."""
        self._task.cancel()
        await FallingEdge(self.clock)
        self.ready.value = 0

    def clear(self):
        """Forget the beats received so far (and their cycles)."""
        self.received.clear()
        self.cycles.clear()

    async def wait_for(self, count, timeout_cycles=1_000_000):
        await wait_until(self.clock, lambda: len(self.received) >= count, timeout_cycles,
                         f"{count} beats (have {len(self.received)})")

    async def _run(self):
        while True:
            await FallingEdge(self.clock)
            ready = not _chance(self.rng, self.stall)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1 and not (self.reset is not None and self.reset.value == 1):
                value = self.payload.value
                if not value.is_resolvable:
                    raise AssertionError(f"payload {value} has X/Z bits in a valid beat")
                self.received.append(self.decode(value))
                self.cycles.append(self.cycle)
            self.cycle += 1
