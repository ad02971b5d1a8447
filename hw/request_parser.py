"""Request parser: received bytes -> one request per frame (boards/PROTOCOL.md, "Parser rules").

    rx bytes -> hunt SYNC -> LEN -> CMD -> payload bytes -> 2 CRC bytes -> request (command, length, error)
                                               |
                                               +-> payload (index, byte), as each byte arrives

The parser hunts for SYNC and drops every other byte; after SYNC it takes LEN, CMD, LEN payload bytes and
two CRC bytes whatever their values, running each through the CRC register (loaded with CRC_INITIAL at
SYNC; a good frame leaves it at CRC_RESIDUE). Then it offers the request and holds it until the
consumer takes it, which the consumer does once the request is *served* (its reply sent): bytes that
arrive meanwhile are dropped, so one request is handled at a time. A gap of more than `timeout_cycles`
between two bytes inside a frame ends it with a TIMEOUT request (command 0 if CMD had not arrived yet).
Payload bytes are passed on as they arrive, before the CRC is known; the consumer keeps them until the
request says whether the frame was good. The parser checks nothing but the CRC and the gaps: what the
command and length mean is the executor's business.

Ports
-----
rx : In(stream.Signature(8, always_ready=True))        received bytes (a UART cannot wait)
payload : Out(stream.Signature(PAYLOAD_LAYOUT, always_ready=True))
                                                       each payload byte and its index in the frame
request : Out(stream.Signature(REQUEST_LAYOUT))        one per frame; accepted when served
command : Out(8)                                       the CMD byte of the frame being parsed, from its arrival
                                                       on (0 before it): what its payload bytes belong to
idle : Out(1)                                          hunting for SYNC, no request pending

REQUEST_LAYOUT: command (8), length (8; meaningless after a TIMEOUT), error (3): 0, ErrorCode.BAD_CRC or
ErrorCode.TIMEOUT. PAYLOAD_LAYOUT: index (8), data (8).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.golden.protocol import CRC_INITIAL, CRC_RESIDUE, CRC_WIDTH, SYNC, ErrorCode

from .frame_crc import crc16_update

__all__ = ["RequestParser", "REQUEST_LAYOUT", "PAYLOAD_LAYOUT", "ERROR_BITS"]

ERROR_BITS = max(ErrorCode).bit_length()      # the request's error field holds 0 or any ErrorCode
REQUEST_LAYOUT = data.StructLayout({"command": 8, "length": 8, "error": ERROR_BITS})
PAYLOAD_LAYOUT = data.StructLayout({"index": 8, "data": 8})


class RequestParser(wiring.Component):
    """Frames from the byte stream `rx` (module docstring); `timeout_cycles`: the longest gap, in clock
    cycles, between two bytes of a frame (an integer >= 1)."""

    rx: In(stream.Signature(8, always_ready=True))
    payload: Out(stream.Signature(PAYLOAD_LAYOUT, always_ready=True))
    request: Out(stream.Signature(REQUEST_LAYOUT))
    command: Out(8)
    idle: Out(1)

    def __init__(self, timeout_cycles):
        if not isinstance(timeout_cycles, int) or isinstance(timeout_cycles, bool) or timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be a positive integer, not {timeout_cycles!r}")
        self._timeout_cycles = timeout_cycles
        super().__init__()

    @property
    def timeout_cycles(self):
        return self._timeout_cycles

    def elaborate(self, platform):
        m = Module()
        byte, got = self.rx.payload, self.rx.valid
        command, length, index = Signal(8), Signal(8), Signal(8)
        crc = Signal(CRC_WIDTH, init=CRC_INITIAL)
        crc_next = crc16_update(crc, byte)
        timed_out = Signal()                          # the frame ended by a gap, not by its CRC
        timer = Signal(range(self._timeout_cycles))
        in_frame = Signal()

        m.d.sync += timer.eq(Mux(got | ~in_frame, 0, timer + 1))
        gap = in_frame & ~got & (timer == self._timeout_cycles - 1)

        m.d.comb += [
            self.request.payload.command.eq(command),
            self.command.eq(command),
            self.request.payload.length.eq(length),
            self.request.payload.error.eq(Mux(timed_out, ErrorCode.TIMEOUT,
                                              Mux(crc != CRC_RESIDUE, ErrorCode.BAD_CRC, 0))),
            self.payload.payload.index.eq(index),
            self.payload.payload.data.eq(byte),
        ]

        def in_frame_state():
            m.d.comb += in_frame.eq(1)
            with m.If(gap):
                m.d.sync += timed_out.eq(1)
                m.next = "DONE"

        with m.FSM(name="parser"):
            with m.State("HUNT"):
                m.d.comb += self.idle.eq(1)
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(CRC_INITIAL), command.eq(0), timed_out.eq(0)]
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                in_frame_state()
                with m.If(got):
                    m.d.sync += [length.eq(byte), crc.eq(crc_next)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                in_frame_state()
                with m.If(got):
                    m.d.sync += [command.eq(byte), crc.eq(crc_next), index.eq(0)]
                    with m.If(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                in_frame_state()
                with m.If(got):
                    m.d.comb += self.payload.valid.eq(1)
                    m.d.sync += [crc.eq(crc_next), index.eq(index + 1)]
                    with m.If(index == length - 1):
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                in_frame_state()
                with m.If(got):
                    # Both CRC bytes go through the register: a good frame leaves it at CRC_RESIDUE.
                    m.d.sync += [crc.eq(crc_next), index.eq(index + 1)]
                    with m.If(index == 1):
                        m.next = "DONE"
            with m.State("DONE"):
                # Bytes that arrive while the request is being served are dropped.
                m.d.comb += self.request.valid.eq(1)
                with m.If(self.request.ready):
                    m.next = "HUNT"
        return m
