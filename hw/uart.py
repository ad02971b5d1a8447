"""UART (8N1) receiver and transmitter with a clocks-per-bit divisor, as byte streams.

    UARTRx(divisor): rx pin -> o (stream of bytes)
    UARTTx(divisor): i (stream of bytes) -> tx pin

Receiver: the pin passes a 2-flop synchronizer (amaranth.lib.cdc.FFSynchronizer, idle high). A low level
while idle starts a byte; the start bit is re-checked divisor // 2 cycles later (the middle of the bit;
a shorter low pulse is a glitch and ignored), then each data bit (LSB first) and the stop bit are
sampled `divisor` cycles apart, at their middles. A low stop bit is a framing error: the byte is dropped,
`error` pulses for one cycle, and the receiver waits for the line to go high (a break) before it looks
for the next start bit. The byte waits in an output register until taken; a byte completed while the
previous one is still waiting is dropped and `overrun` pulses. The receiver is back to idle at the middle
of the stop bit, so back-to-back bytes and a sender up to about +-4% off (divisor >= 8) are received.

Transmitter: `i.ready` is high when the line is idle; a byte taken goes out as start bit, 8 data bits LSB
first and one stop bit, each `divisor` cycles; the next byte can follow the stop bit directly.
`tx` is a flip-flop output (glitch free), high when idle.
"""

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ternkws.hw.params import check_int

__all__ = ["UARTRx", "UARTTx", "check_divisor", "divisor_for", "MIN_DIVISOR"]

MIN_DIVISOR = 4


def divisor_for(clk_freq, baud, tolerance=0.02):
    """Clocks per bit for `baud` at `clk_freq` Hz (rounded); ValueError if the rate error exceeds
    `tolerance` or the divisor is below MIN_DIVISOR."""
    if baud <= 0 or clk_freq <= 0:
        raise ValueError(f"clock frequency and baud rate must be positive, not {clk_freq} Hz / {baud} baud")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{baud} baud at {clk_freq / 1e6:g} MHz is {clk_freq / baud:.2f} clocks per bit; the "
                         f"UART needs at least {MIN_DIVISOR}: lower the baud rate to {clk_freq // MIN_DIVISOR} or less")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"{baud} baud at {clk_freq / 1e6:g} MHz: divisor {divisor} gives "
                         f"{clk_freq / divisor:.0f} baud, {100 * error:.1f}% off (more than "
                         f"{100 * tolerance:.0f}%); pick a baud rate near clk_freq / n")
    return divisor


def check_divisor(divisor):
    """`divisor` (clocks per bit) as an int >= MIN_DIVISOR; ValueError otherwise, a non-integer included
    (the UART's one parameter is a count: any bad value is a ValueError)."""
    try:
        return check_int(divisor, "divisor (clocks per bit)", low=MIN_DIVISOR,
                         kind=f"an integer >= {MIN_DIVISOR}", bounds=f"an integer >= {MIN_DIVISOR}")
    except TypeError as error:
        raise ValueError(*error.args) from None


class UARTRx(wiring.Component):
    """rx: In(1) pin (idle high); o: Out(stream.Signature(8)) received bytes; error, overrun: one-cycle
    pulses (framing error: byte dropped; overrun: byte dropped because the previous one was not taken);
    active: high from a start bit until the receiver is idle again."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    error: Out(1)
    overrun: Out(1)
    active: Out(1)

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(d))
        bit = Signal(range(8))
        shift = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        sample = timer == 0

        with m.FSM(name="rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.active.eq(1)
                with m.If(sample):
                    with m.If(line):
                        m.next = "IDLE"          # shorter than half a bit: a glitch
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.active.eq(1)
                with m.If(sample):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.comb += self.active.eq(1)
                with m.If(sample):
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                m.d.comb += self.active.eq(1)
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """i: In(stream.Signature(8)) bytes to send; tx: Out(1) pin (idle high)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        shift = Signal(10, init=0x3FF)     # bit 0 is on the line
        remaining = Signal(range(11))      # bit periods left of the current byte
        timer = Signal(range(d))

        # Ready while idle, and in the last cycle of a stop bit so that a next byte follows without a gap.
        m.d.comb += [self.tx.eq(shift[0]),
                     self.i.ready.eq((remaining == 0) | ((remaining == 1) & (timer == 0)))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(C(0, 1), self.i.payload, C(1, 1))), remaining.eq(10), timer.eq(d - 1)]
        with m.Elif(remaining != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], C(1, 1))), remaining.eq(remaining - 1), timer.eq(d - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
