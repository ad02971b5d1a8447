"""Reply encoder: a reply (command, length) and its payload bytes -> one frame of bytes to send.

    reply (command, length) ---+
                               +-> SYNC, LEN, CMD, payload bytes, CRC (most significant byte first) -> tx
    data (payload bytes) ------+

golden.protocol.encode_frame(command, payload) is the reference: the same bytes. The encoder takes
exactly `length` bytes from `data`, in order, passing each to `tx` as it arrives (LEN, CMD and the
payload go through the CRC register). It accepts the reply once the last CRC byte has been taken by
`tx`, so the producer knows the frame is out.

Ports
-----
reply : In(stream.Signature(REPLY_LAYOUT))      command byte of the frame (the request's | REPLY_FLAG, or
                                                ERROR_REPLY) and payload length; accepted when sent
data : In(stream.Signature(8))                  the payload bytes
tx : Out(stream.Signature(8))                   frame bytes
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.golden.protocol import CRC_INITIAL, CRC_WIDTH, SYNC

from .frame_crc import crc16_update

__all__ = ["ReplyEncoder", "REPLY_LAYOUT"]

REPLY_LAYOUT = data.StructLayout({"command": 8, "length": 8})


class ReplyEncoder(wiring.Component):
    """Frames replies (module docstring)."""

    reply: In(stream.Signature(REPLY_LAYOUT))
    data: In(stream.Signature(8))
    tx: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        crc = Signal(CRC_WIDTH, init=CRC_INITIAL)
        crc_next = crc16_update(crc, self.tx.payload)
        sent = Signal(8)                               # payload bytes sent
        header = self.reply.payload

        with m.FSM(name="encoder"):
            with m.State("SYNC"):
                m.d.comb += [self.tx.valid.eq(self.reply.valid), self.tx.payload.eq(SYNC)]
                with m.If(self.tx.valid & self.tx.ready):
                    m.d.sync += [crc.eq(CRC_INITIAL), sent.eq(0)]
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(header.length)]
                with m.If(self.tx.ready):
                    m.d.sync += crc.eq(crc_next)
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(header.command)]
                with m.If(self.tx.ready):
                    m.d.sync += crc.eq(crc_next)
                    with m.If(header.length == 0):
                        m.next = "CRC_HIGH"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [self.tx.valid.eq(self.data.valid), self.tx.payload.eq(self.data.payload),
                             self.data.ready.eq(self.tx.ready)]
                with m.If(self.data.valid & self.tx.ready):
                    m.d.sync += [crc.eq(crc_next), sent.eq(sent + 1)]
                    with m.If(sent == header.length - 1):
                        m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc[8:])]
                with m.If(self.tx.ready):
                    m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc[:8])]
                with m.If(self.tx.ready):
                    m.d.comb += self.reply.ready.eq(1)
                    m.next = "SYNC"
        return m
