"""The frame CRC of the host protocol in hardware: one byte a cycle, as one XOR network.

    crc_next = crc16_update(crc, byte)      # Amaranth expressions: 16-bit register, 8-bit byte

golden/protocol.py defines the CRC (CRC-16/CCITT-FALSE: CRC_POLYNOMIAL, CRC_INITIAL, no reflection, no
final XOR) and `crc16`, its bitwise reference; the request parser and the reply encoder each keep a
16-bit register, load it with CRC_INITIAL at SYNC and step it with this network.

Why not amaranth.lib.crc.Processor (the same CRC, amaranth.lib.crc.catalog.CRC16_CCITT_FALSE): placed
alone on the iCE40 UP5K behind the same ports (start, valid, byte in; CRC, match out) the Processor took
39 logic cells, this network 31 (both 16 FF); the whole HostLink took 634 LC with Processors in the
parser and the encoder, 619 with this network. The Processor muxes the initial value into the network's
inputs so that `start` and `valid` may coincide, which the protocol never needs.
`pytest -m slow -s tests/test_frame_crc.py` repeats the first measurement.
"""

import functools
import operator

from amaranth.hdl import Cat

from ternkws.golden.protocol import CRC_WIDTH, crc16

__all__ = ["crc16_update", "CRC_WIDTH"]


@functools.cache
def _columns():
    # The CRC of one byte is linear over GF(2) in (register, byte): column i of each part is the response
    # to a single set bit.
    return ([crc16(b"\0", 1 << i) for i in range(CRC_WIDTH)], [crc16(bytes([1 << i]), 0) for i in range(8)])


def crc16_update(crc, byte):
    """Amaranth expression: the CRC register `crc` (16 bits) after one more `byte` (8 bits), as one XOR
    network (golden.protocol.crc16 is the reference)."""
    crc_cols, byte_cols = _columns()
    bits = []
    for j in range(CRC_WIDTH):
        terms = ([crc[i] for i in range(CRC_WIDTH) if crc_cols[i] >> j & 1]
                 + [byte[i] for i in range(8) if byte_cols[i] >> j & 1])
        bits.append(functools.reduce(operator.xor, terms))
    return Cat(*bits)
