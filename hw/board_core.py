"""Board tops: the accelerator behind the UART host link, with LEDs; pins kept abstract.

    BoardCore(model, config, clk_freq, baud)  HostLink + Accelerator on byte streams (no UART): what the
                                              protocol tests drive in the Amaranth simulator.
    StreamBoardCore(model, config, clk_freq, baud)
                                              the stream board: RequestParser + StreamExecutor +
                                              ReplyEncoder + StreamingAccelerator on byte streams
                                              (boards/PROTOCOL.md, "Streaming")
    BoardTop(model, config, clk_freq, baud, mode="window"|"stream")
                                              UARTRx + UARTTx + the core of that mode + LEDs, on plain pins:
        rx   : In(1)        UART receive pin (idle high), from the host's TX
        tx   : Out(1)       UART transmit pin (idle high), to the host's RX
        leds : Out(n_leds)  window: leds[0] accelerator busy (a window loading or being classified),
                            leds[1] a result is held, leds[2:] the class index of that result, LSB first
                            (0 while no result is held); stream: leds[0] a stream is started (listening),
                            leds[1] a pulse of about 0.1 s per keyword event, leds[2:] the class index of
                            the last event, LSB first; LEDs beyond those are off
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

from amaranth.hdl import Signal

from ternkws.hw.accelerator import Accelerator, check_config
from ternkws.hw.host_link import DEFAULT_TIMEOUT, HostLink, link_parameters
from ternkws.hw.uart import UARTRx, UARTTx, divisor_for

__all__ = ["BoardCore", "StreamBoardCore", "BoardTop", "MODES", "EVENT_LED_SECONDS"]

MODES = ("window", "stream")
EVENT_LED_SECONDS = 0.1


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

    def led_values(self):
        """What the LEDs show, in order (module docstring)."""
        shown = self.result_class
        return [self.busy, self.result_valid] + [self.result_valid & shown[b] for b in range(len(shown))]

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


def _link_timing(clk_freq, baud, timeout):
    """Cycles of the inter-byte timeout; ValueError for a clock, baud rate or timeout the link cannot take
    (link_parameters' rules)."""
    if not 0 < clk_freq < 2 ** 32 or baud <= 0:
        raise ValueError(f"clk_freq must be in 1..2**32-1 Hz and baud positive, not {clk_freq} / {baud}")
    timeout_cycles = int(round(timeout * clk_freq))
    if timeout_cycles < 4 * 10 * clk_freq / baud:
        raise ValueError(f"timeout {timeout} s is {timeout_cycles} cycles, shorter than 4 bytes at {baud} "
                         f"baud; use at least {4 * 10 / baud:.2g} s")
    return timeout_cycles


def stream_identity(model, config, clk_freq, max_frames, buffer, delay):
    """The stream board's IDENTIFY payload (golden.protocol.Identity, modes STREAM)."""
    from ternkws import __version__
    from ternkws.golden.protocol import PROTOCOL_VERSION, Identity, Mode
    top = model.topology
    return Identity(PROTOCOL_VERSION, __version__, model.model_id, top.n_mfcc, model.features.n_frames,
                    top.n_classes, max_frames * top.n_mfcc, config.mixer_lanes, config.dw_lanes, top.mixer,
                    int(clk_freq), Mode.STREAM, max_frames, buffer, delay).pack()


class StreamBoardCore(wiring.Component):
    """The stream board on byte streams: RequestParser -> StreamExecutor -> ReplyEncoder around the
    StreamingAccelerator (hw/streaming.py) of `model` on `config`.

    rx: In(stream.Signature(8)), tx: Out(stream.Signature(8)) protocol bytes; idle: nothing in flight
    (parser hunting, no reply pending, nothing buffered, engine idle); streaming: a stream is started;
    event_led: high for EVENT_LED_SECONDS after each keyword event appears; last_class: the class of the
    last event. max_frames: most frames per FRAMES request (default: as many as fit); led_seconds: the
    event LED's pulse.
    """

    def __init__(self, model, config, clk_freq, baud, *, timeout=DEFAULT_TIMEOUT, max_frames=None,
                 led_seconds=EVENT_LED_SECONDS):
        from ternkws.golden.streaming import DEFAULT_HOP, DEFAULT_REFRACTORY, DEFAULT_SMOOTH, detector_config
        from ternkws.hw.streaming import StreamingAccelerator

        from .stream_executor import BUFFER, StreamExecutor

        self._timeout_cycles = _link_timing(clk_freq, baud, timeout)
        self._accelerator = StreamingAccelerator(model, config)
        nc = model.topology.n_classes
        det = detector_config(model)
        defaults = {"hop": DEFAULT_HOP, "smooth": DEFAULT_SMOOTH, "refractory": DEFAULT_REFRACTORY,
                    "threshold": det.threshold, "keywords": sum(1 << c for c in det.keywords if c < nc)}
        from .stream_executor import max_frames_for
        frames = max_frames if max_frames is not None else max_frames_for(model.topology.n_mfcc)
        identity = stream_identity(model, config, clk_freq, frames, BUFFER, self._accelerator.delay)
        self._executor = StreamExecutor(n_mfcc=model.topology.n_mfcc, n_classes=nc, identity=identity,
                                        defaults=defaults, max_frames=max_frames)
        self._identity = identity
        self._led_cycles = max(1, int(round(led_seconds * clk_freq)))
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "idle": Out(1),
            "streaming": Out(1),
            "event_led": Out(1),
            "last_class": Out(range(max(nc, 2))),
        })

    accelerator = property(lambda self: self._accelerator)
    executor = property(lambda self: self._executor)
    identity = property(lambda self: self._identity)
    timeout_cycles = property(lambda self: self._timeout_cycles)

    def led_values(self):
        return [self.streaming, self.event_led] + [self.last_class[b] for b in range(len(self.last_class))]

    def elaborate(self, platform):
        from .reply_encoder import ReplyEncoder
        from .request_parser import RequestParser

        m = Module()
        acc, ex = self._accelerator, self._executor
        m.submodules.parser = parser = RequestParser(self._timeout_cycles)
        m.submodules.executor = ex
        m.submodules.encoder = encoder = ReplyEncoder()
        m.submodules.accelerator = acc
        m.d.comb += [parser.rx.payload.eq(self.rx.payload), parser.rx.valid.eq(self.rx.valid),
                     self.rx.ready.eq(1), ex.command.eq(parser.command)]
        wiring.connect(m, parser.request, ex.request)
        wiring.connect(m, parser.payload, ex.payload)
        wiring.connect(m, ex.reply, encoder.reply)
        wiring.connect(m, ex.reply_data, encoder.data)
        wiring.connect(m, encoder.tx, wiring.flipped(self.tx))
        wiring.connect(m, ex.features, acc.i)
        wiring.connect(m, acc.o, ex.decisions)
        wiring.connect(m, acc.e, ex.events)
        m.d.comb += [acc.hop.eq(ex.hop), acc.smooth.eq(ex.smooth), acc.refractory.eq(ex.refractory),
                     acc.threshold.eq(ex.threshold), acc.keywords.eq(ex.keywords),
                     acc.events_only.eq(ex.events_only), acc.clear.eq(ex.clear), ex.engine_idle.eq(acc.idle),
                     self.idle.eq(ex.idle & parser.idle), self.streaming.eq(ex.streaming)]

        # LEDs: the class of the last event, and a pulse when one appears
        seen = Signal()
        timer = Signal(range(self._led_cycles + 1))
        m.d.sync += seen.eq(acc.e.valid)
        with m.If(acc.e.valid):
            m.d.sync += self.last_class.eq(acc.e.payload.cls)
        with m.If(acc.e.valid & ~seen):
            m.d.sync += timer.eq(self._led_cycles)
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        m.d.comb += self.event_led.eq(timer != 0)
        return m


class BoardTop(wiring.Component):
    """The whole board design on pins rx / tx / leds (see the module docstring).

    clk_freq: the `sync` clock in Hz; baud: UART rate (clk_freq / baud rounded is the clocks per bit, at
    least 4, within 2%); timeout: seconds of silence that end a partial frame; n_leds: LEDs driven.
    """

    def __init__(self, model, config, clk_freq, baud, *, n_leds=8, timeout=DEFAULT_TIMEOUT, max_chunk=None,
                 mode="window", max_frames=None):
        # Checked before the core is created (a refusal leaves no unused core).
        if not isinstance(n_leds, int) or n_leds < 1:
            raise ValueError(f"n_leds must be a positive integer, not {n_leds!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._divisor = divisor_for(clk_freq, baud)
        self._clk_freq, self._baud, self._mode = clk_freq, baud, mode
        if mode == "window":
            self._core = BoardCore(model, config, clk_freq, baud, timeout=timeout, max_chunk=max_chunk)
        else:
            self._core = StreamBoardCore(model, config, clk_freq, baud, timeout=timeout, max_frames=max_frames)
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

    @property
    def mode(self):
        return self._mode

    def elaborate(self, platform):
        m = Module()
        core = self._core
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.submodules.core = core
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, core.rx)
        wiring.connect(m, core.tx, uart_tx.i)

        for n, value in enumerate(core.led_values()[:len(self.leds)]):
            m.d.comb += self.leds[n].eq(value)
        m.d.comb += self.idle.eq(core.idle & ~uart_rx.active & ~uart_rx.o.valid & uart_tx.i.ready)
        return m
