# amaranth: UnusedElaboratable=no
"""hw/uart.py in the Amaranth simulator: TX waveform, TX->RX loopback at several divisors with random
stalls, framing errors, glitches, overrun, a sender off by +-3%, and the divisor arithmetic."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from ternkws.hw.uart import UARTRx, UARTTx, divisor_for


def _line_bits(byte):
    """The 10 bits of one 8N1 character, in line order."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


async def _bitbang(ctx, pin, bits, period):
    """Drive `pin` with `bits`, each `period` cycles long (a float: the edges are rounded, so a period
    that is not a whole number of cycles models a sender with another clock)."""
    t = 0.0
    for bit in bits:
        ctx.set(pin, bit)
        cycles = round(t + period) - round(t)
        t += period
        await ctx.tick().repeat(cycles)
    ctx.set(pin, 1)


def _run(dut, *testbenches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in background:
        sim.add_testbench(tb, background=True)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


class _Receiver:
    """Collects the RX output (ready low with probability `stall`) and counts error/overrun pulses."""

    def __init__(self, rx, rng=None, stall=0.0, ready=True):
        self.rx, self.rng, self.stall, self.ready = rx, rng, stall, ready
        self.bytes, self.errors, self.overruns = [], 0, 0

    async def run(self, ctx):
        while True:
            ready = self.ready and not (self.rng is not None and self.rng.random() < self.stall)
            ctx.set(self.rx.o.ready, ready)
            _, _, valid, payload, error, overrun = await ctx.tick().sample(
                self.rx.o.valid, self.rx.o.payload, self.rx.error, self.rx.overrun)
            if ready and valid:
                self.bytes.append(payload)
            self.errors += error
            self.overruns += overrun


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_tx_waveform_exact(divisor):
    """Each bit lasts exactly `divisor` cycles; two bytes back to back leave no gap; idle high."""
    dut = UARTTx(divisor)
    line = []

    async def producer(ctx):
        for byte in (0x5A, 0xC3):
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def probe(ctx):
        for _ in range(24 * divisor):
            _, _, tx = await ctx.tick().sample(dut.tx)
            line.append(tx)

    _run(dut, probe, background=[producer])
    start = line.index(0)
    assert start <= 2 and all(line[:start])
    expected = [b for byte in (0x5A, 0xC3) for bit in _line_bits(byte) for b in [bit] * divisor]
    assert line[start:start + len(expected)] == expected
    assert all(line[start + len(expected):])


@pytest.mark.parametrize("divisor", [4, 5, 8, 13])
def test_loopback(divisor):
    """TX pin wired to RX pin: random bytes with random gaps and RX back-pressure arrive intact."""
    rng = random.Random(divisor)
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(28)]
    receiver = _Receiver(rx, rng, stall=0.5)

    async def producer(ctx):
        for byte in data:
            if rng.random() < 0.3:
                await ctx.tick().repeat(rng.randrange(1, 3 * divisor))
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)
        await ctx.tick().repeat(12 * divisor + 10)

    _run(m, producer, background=[receiver.run])
    assert receiver.bytes == data
    assert receiver.errors == 0 and receiver.overruns == 0


def test_framing_error_then_recovery():
    """A low stop bit drops the byte and pulses `error`; the receiver waits out the break, then works."""
    divisor = 8
    rx = UARTRx(divisor)
    receiver = _Receiver(rx)

    async def tb(ctx):
        await ctx.tick().repeat(5)
        await _bitbang(ctx, rx.rx, _line_bits(0x3C)[:-1] + [0] * 4, divisor)   # stop bit low, a break
        await ctx.tick().repeat(3 * divisor)
        assert receiver.errors == 1 and receiver.bytes == []
        await _bitbang(ctx, rx.rx, _line_bits(0xA7) + _line_bits(0x01), divisor)
        await ctx.tick().repeat(3 * divisor)
        assert receiver.bytes == [0xA7, 0x01] and receiver.errors == 1

    _run(rx, tb, background=[receiver.run])


def test_glitch_is_not_a_start_bit():
    """A low pulse shorter than half a bit is ignored."""
    divisor = 16
    rx = UARTRx(divisor)
    receiver = _Receiver(rx)

    async def tb(ctx):
        await ctx.tick().repeat(5)
        ctx.set(rx.rx, 0)
        await ctx.tick().repeat(divisor // 2 - 3)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        assert receiver.bytes == [] and receiver.errors == 0
        await _bitbang(ctx, rx.rx, _line_bits(0x81), divisor)
        await ctx.tick().repeat(2 * divisor)
        assert receiver.bytes == [0x81]

    _run(rx, tb, background=[receiver.run])


@pytest.mark.parametrize("skew", [-0.03, 0.03])
def test_sender_off_by_3_percent(skew):
    """Mid-bit sampling tolerates a sender whose bit period is 3% off (10 back-to-back bytes)."""
    divisor = 16
    rx = UARTRx(divisor)
    receiver = _Receiver(rx)
    data = [random.Random(5).randrange(256) for _ in range(10)]

    async def tb(ctx):
        await ctx.tick().repeat(5)
        await _bitbang(ctx, rx.rx, [b for byte in data for b in _line_bits(byte)], divisor * (1 + skew))
        await ctx.tick().repeat(2 * divisor)
        assert receiver.bytes == data and receiver.errors == 0

    _run(rx, tb, background=[receiver.run])


def test_overrun_keeps_the_first_byte():
    divisor = 4
    rx = UARTRx(divisor)
    receiver = _Receiver(rx, ready=False)

    async def tb(ctx):
        await ctx.tick().repeat(5)
        await _bitbang(ctx, rx.rx, _line_bits(0x11) + _line_bits(0x22), divisor)
        await ctx.tick().repeat(2 * divisor)
        assert receiver.overruns == 1
        receiver.ready = True
        await ctx.tick().repeat(3)
        assert receiver.bytes == [0x11]

    _run(rx, tb, background=[receiver.run])


def test_divisor_for():
    assert divisor_for(12_000_000, 115_200) == 104
    assert divisor_for(25_000_000, 115_200) == 217
    assert divisor_for(100_000_000, 12_500_000) == 8
    with pytest.raises(ValueError, match="at least 4"):
        divisor_for(12_000_000, 6_000_000)
    with pytest.raises(ValueError, match="off"):
        divisor_for(12_000_000, 2_700_000)        # 4.44 clocks per bit -> 4 is 11% off
    with pytest.raises(ValueError, match="divisor"):
        UARTRx(3)
    with pytest.raises(ValueError, match="divisor"):
        UARTTx(2.5)
