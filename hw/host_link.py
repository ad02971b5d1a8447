"""The host link: the UART protocol engine (boards/PROTOCOL.md) between byte streams and the accelerator,
three parts joined by streams:

    rx -> RequestParser --request--> RequestExecutor --reply, reply_data--> ReplyEncoder -> tx
                        --payload-->        |  ^
                                   features v  | logits
                                          Accelerator

- RequestParser (hw/request_parser.py): hunts SYNC, reads LEN, CMD, payload and CRC, checks the CRC and
  the inter-byte timeout, and offers one request per frame; payload bytes are passed on as they arrive.
- RequestExecutor (hw/request_executor.py): the checks, the window (chunk buffer, commit to the
  accelerator, the held last value and RUN), the result collector, STATUS, and each reply's payload;
  it holds the one 512 x 8 memory (a single iCE40 EBR) of chunk, IDENTIFY and RESULT bytes.
- ReplyEncoder (hw/reply_encoder.py): frames each reply (SYNC, LEN, CMD, payload, CRC).

One request is handled at a time: the executor accepts a request only once its reply has gone out, and
the parser drops the bytes that arrive until then (the host waits for each reply before it sends the
next request). golden/protocol.py defines the protocol both this RTL and the host client use.
Resources (bundled model, measured in a scan-chain harness, harness subtracted): HostLink alone on the
iCE40 UP5K 619 LC, 207 FF, 1 EBR; with the UART 728 LC, 259 FF, Fmax 35 MHz; ECP5-85F with the UART
889 LUT4, 262 FF, 1 DP16KD (boards/PROTOCOL.md, Resources).

Ports
-----
rx : In(stream.Signature(8))                bytes from the UART receiver (always ready)
tx : Out(stream.Signature(8))               reply bytes to the UART transmitter
features : Out(stream.Signature(signed(8))) -> Accelerator.i
logits : In(stream.Signature(...))          <- Accelerator.o (n_classes logits, then the class with last)
accelerator_reset : Out(1)                  one-cycle pulse (a register) the cycle after RESET is taken: drop
                                            the accelerator's partial window
idle : Out(1)                               hunting for a frame, no reply pending, not classifying
running : Out(1)                            a classification started by RUN has not delivered its class
result_valid, result_class : Out            the last result (for LEDs)

Timeout: inside a frame, a gap of more than `timeout` seconds (clk_freq * timeout cycles) between two
bytes ends the frame with a TIMEOUT error reply, and the parser hunts for SYNC again.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.golden.protocol import MAX_CLASSES, MAX_PAYLOAD, PROTOCOL_VERSION, Identity

from .reply_encoder import ReplyEncoder
from .request_executor import LOGITS_LAYOUT, MAX_CHUNK, RequestExecutor
from .request_parser import RequestParser

__all__ = ["HostLink", "LinkParameters", "link_parameters", "DEFAULT_MAX_CHUNK", "DEFAULT_TIMEOUT", "MAX_CHUNK"]

DEFAULT_MAX_CHUNK = 128
DEFAULT_TIMEOUT = 0.1      # seconds of silence inside a frame before it is dropped


@dataclass(frozen=True)
class LinkParameters:
    """What a HostLink is built from (link_parameters() checks and derives them)."""
    window: int             # values in one window (n_frames * n_mfcc)
    n_classes: int
    max_chunk: int          # most values per FEATURES frame
    timeout_cycles: int     # the longest gap between two bytes of a frame, in clock cycles
    identity: bytes         # the IDENTIFY reply payload


def link_parameters(model, config, clk_freq, baud, *, timeout=DEFAULT_TIMEOUT, max_chunk=None):
    """The LinkParameters of a HostLink for `model` on accelerator configuration `config` (HostLink's
    arguments); ValueError, in words, for arguments the link cannot take. A parent checks its HostLink with
    this before creating it, so that no refused component is ever created."""
    top = model.topology
    n_mfcc, n_frames, n_classes = top.n_mfcc, model.features.n_frames, top.n_classes
    if max_chunk is None:
        max_chunk = min(MAX_CHUNK, max(DEFAULT_MAX_CHUNK, n_mfcc))
    if not isinstance(max_chunk, int) or isinstance(max_chunk, bool) or not 1 <= max_chunk <= MAX_CHUNK:
        raise ValueError(f"max_chunk must be an integer in 1..{MAX_CHUNK}, not {max_chunk!r}")
    if n_classes > MAX_CLASSES:
        raise ValueError(f"{n_classes} classes do not fit a RESULT reply (class + 4 bytes per logit in "
                         f"{MAX_PAYLOAD} bytes): the host link supports at most {MAX_CLASSES}")
    if n_mfcc * n_frames > 0xFFFF:
        raise ValueError(f"a window of {n_frames} x {n_mfcc} values does not fit the 16-bit count")
    for name, value in (("mixer_lanes", config.mixer_lanes), ("dw_lanes", config.dw_lanes)):
        if not 0 < value <= 0xFFFF:
            raise ValueError(f"{name}={value} does not fit IDENTIFY's 16-bit field")
    if not 0 < clk_freq < 2 ** 32 or baud <= 0:
        raise ValueError(f"clk_freq must be in 1..2**32-1 Hz and baud positive, not {clk_freq} / {baud}")
    timeout_cycles = int(round(timeout * clk_freq))
    byte_cycles = 10 * clk_freq / baud
    if timeout_cycles < 4 * byte_cycles:
        raise ValueError(f"timeout {timeout} s is {timeout_cycles} cycles, shorter than 4 bytes at {baud} "
                         f"baud ({4 * byte_cycles:.0f} cycles); use at least {4 * 10 / baud:.2g} s")
    from ternkws import __version__
    identity = Identity(PROTOCOL_VERSION, __version__, model.model_id, n_mfcc, n_frames, n_classes, max_chunk,
                        config.mixer_lanes, config.dw_lanes, top.mixer, int(clk_freq)).pack()
    return LinkParameters(n_mfcc * n_frames, n_classes, max_chunk, timeout_cycles, identity)


class HostLink(wiring.Component):
    """Protocol engine for `model` (its shape and id) on the accelerator configuration `config`.

    clk_freq: clock in Hz (reported by IDENTIFY; sets the timeout in cycles); baud: the UART rate (the
    timeout must span several bytes); timeout: seconds; max_chunk: most feature values per FEATURES frame
    (default max(128, n_mfcc), at most 224). link_parameters() checks them (ValueError).
    """

    def __init__(self, model, config, clk_freq, baud, *, timeout=DEFAULT_TIMEOUT, max_chunk=None):
        self._parameters = p = link_parameters(model, config, clk_freq, baud, timeout=timeout,
                                               max_chunk=max_chunk)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "logits": In(stream.Signature(LOGITS_LAYOUT)),
            "accelerator_reset": Out(1),
            "idle": Out(1),
            "running": Out(1),
            "result_valid": Out(1),
            "result_class": Out(range(max(p.n_classes, 2))),
        })

    @property
    def parameters(self):
        return self._parameters

    @property
    def window(self):
        return self._parameters.window

    @property
    def max_chunk(self):
        return self._parameters.max_chunk

    @property
    def timeout_cycles(self):
        return self._parameters.timeout_cycles

    @property
    def identity(self):
        """The IDENTIFY reply payload (bytes)."""
        return self._parameters.identity

    def elaborate(self, platform):
        m = Module()
        p = self._parameters
        m.submodules.parser = parser = RequestParser(p.timeout_cycles)
        m.submodules.executor = executor = RequestExecutor(window=p.window, n_classes=p.n_classes,
                                                           max_chunk=p.max_chunk, identity=p.identity)
        m.submodules.encoder = encoder = ReplyEncoder()

        # The link's rx takes every byte (the parser drops those it cannot use).
        m.d.comb += [parser.rx.payload.eq(self.rx.payload), parser.rx.valid.eq(self.rx.valid),
                     self.rx.ready.eq(1)]
        wiring.connect(m, parser.request, executor.request)
        wiring.connect(m, parser.payload, executor.payload)
        wiring.connect(m, executor.reply, encoder.reply)
        wiring.connect(m, executor.reply_data, encoder.data)
        wiring.connect(m, encoder.tx, wiring.flipped(self.tx))
        wiring.connect(m, executor.features, wiring.flipped(self.features))
        wiring.connect(m, wiring.flipped(self.logits), executor.logits)
        m.d.comb += [
            self.accelerator_reset.eq(executor.accelerator_reset),
            self.running.eq(executor.running),
            self.result_valid.eq(executor.result_valid),
            self.result_class.eq(executor.result_class),
            self.idle.eq(parser.idle & ~executor.running),
        ]
        return m
