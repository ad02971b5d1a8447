"""Board tops: the accelerator behind the UART host link, with LEDs; pins kept abstract.

    BoardCore(model, config, clk_freq, baud)  HostLink + Accelerator on byte streams (no UART): what the
                                              protocol tests drive in the Amaranth simulator.
    BoardTop(model, config, clk_freq, baud)   UARTRx + UARTTx + BoardCore + LEDs, on plain pins:
        rx   : In(1)        UART receive pin (idle high), from the host's TX
        tx   : Out(1)       UART transmit pin (idle high), to the host's RX
        leds : Out(n_leds)  leds[0] accelerator busy (a window loading or being classified),
                            leds[1] a result is held, leds[2:] the class index of that result, LSB first
                            (0 while no result is held); LEDs beyond those are off
        idle : Out(1)       nothing in flight: UART quiet, no frame being parsed, no reply pending, not
                            classifying (the simulated board's TCP bridge runs the clock only while this
                            is low or the host is sending; a board leaves it unconnected)

A board wrapper connects these ports to platform resources (e.g. `platform.request("uart")`,
`platform.request("led", n)`) and supplies the `sync` clock domain; nothing here depends on a platform.
All LED outputs are active high: invert in the wrapper for active-low LEDs.
"""

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.hw.accelerator import Accelerator, check_config
from ternkws.hw.host_link import DEFAULT_TIMEOUT, HostLink, link_parameters
from ternkws.hw.uart import UARTRx, UARTTx, divisor_for

__all__ = ["BoardCore", "BoardTop"]


class BoardCore(wiring.Component):
    """HostLink and Accelerator connected; RESET (the protocol command) also resets the accelerator.

    rx: In(stream.Signature(8)), tx: Out(stream.Signature(8)) protocol bytes; busy (accelerator), idle,
    running, result_valid, result_class: as HostLink's.
    """

    def __init__(self, model, config, clk_freq, baud, *, timeout=DEFAULT_TIMEOUT, max_chunk=None):
        # Both parts' arguments are checked before either is created: a refusal leaves no unused part.
        link_parameters(model, config, clk_freq, baud, timeout=timeout, max_chunk=max_chunk)
        check_config(model, config)
        self._accelerator = Accelerator(model, config)
        self._link = HostLink(model, config, clk_freq, baud, timeout=timeout, max_chunk=max_chunk)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "busy": Out(1),
            "idle": Out(1),
            "running": Out(1),
            "result_valid": Out(1),
            "result_class": Out(self._link.result_class.shape()),
        })

    @property
    def link(self):
        return self._link

    @property
    def accelerator(self):
        return self._accelerator

    def elaborate(self, platform):
        m = Module()
        link, acc = self._link, self._accelerator
        m.submodules.link = link
        m.submodules.accelerator = ResetInserter(link.accelerator_reset)(acc)
        wiring.connect(m, link.features, acc.i)
        wiring.connect(m, acc.o, link.logits)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += [
            self.busy.eq(acc.busy), self.idle.eq(link.idle), self.running.eq(link.running),
            self.result_valid.eq(link.result_valid), self.result_class.eq(link.result_class),
        ]
        return m


class BoardTop(wiring.Component):
    """The whole board design on pins rx / tx / leds (see the module docstring).

    clk_freq: the `sync` clock in Hz; baud: UART rate (clk_freq / baud rounded is the clocks per bit, at
    least 4, within 2%); timeout: seconds of silence that end a partial frame; n_leds: LEDs driven.
    """

    def __init__(self, model, config, clk_freq, baud, *, n_leds=8, timeout=DEFAULT_TIMEOUT, max_chunk=None):
        # Checked before the core is created (a refusal leaves no unused core).
        if not isinstance(n_leds, int) or n_leds < 1:
            raise ValueError(f"n_leds must be a positive integer, not {n_leds!r}")
        self._divisor = divisor_for(clk_freq, baud)
        self._clk_freq, self._baud = clk_freq, baud
        self._core = BoardCore(model, config, clk_freq, baud, timeout=timeout, max_chunk=max_chunk)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "leds": Out(n_leds),
            "idle": Out(1),
        })

    @property
    def divisor(self):
        """Clocks per UART bit."""
        return self._divisor

    @property
    def core(self):
        return self._core

    def elaborate(self, platform):
        m = Module()
        core = self._core
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.submodules.core = core
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, core.rx)
        wiring.connect(m, core.tx, uart_tx.i)

        shown = core.result_class
        class_leds = max(len(self.leds) - 2, 0)
        leds = [core.busy]
        if len(self.leds) > 1:
            leds.append(core.result_valid)
        for bit in range(class_leds):
            if bit < len(shown):
                leds.append(core.result_valid & shown[bit])
        for n, value in enumerate(leds):
            m.d.comb += self.leds[n].eq(value)
        m.d.comb += self.idle.eq(core.idle & ~uart_rx.active & ~uart_rx.o.valid & uart_tx.i.ready)
        return m
