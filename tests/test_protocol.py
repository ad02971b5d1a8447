"""golden/protocol.py, the one definition of the host protocol: the CRC against its known answers and two
independent implementations, the worked examples of boards/PROTOCOL.md byte for byte, FrameDecoder, the
payload formats, and that the module stays plain Python (the host client imports it without Amaranth)."""

import binascii
import random
import struct
import subprocess
import sys

import pytest
from amaranth.lib import crc

from ternkws.golden.protocol import (COUNT_SIZE, CRC_CHECK, CRC_INITIAL, CRC_POLYNOMIAL, CRC_REFLECT_INPUT,
                                     CRC_REFLECT_OUTPUT, CRC_RESIDUE, CRC_WIDTH, CRC_XOR_OUTPUT, ERROR_REPLY,
                                     ERROR_SIZE, FRAME_OVERHEAD, IDENTIFY_SIZE, MAX_CLASSES, MAX_PAYLOAD,
                                     PROTOCOL_VERSION, REPLY_FLAG, STATUS_SIZE, SYNC, Command, ErrorCode,
                                     FrameDecoder, Identity, Status, StatusFlag, crc16, encode_frame,
                                     result_format, result_size, version_bytes)


def _algorithm():
    return crc.Algorithm(crc_width=CRC_WIDTH, polynomial=CRC_POLYNOMIAL, initial_crc=CRC_INITIAL,
                         reflect_input=CRC_REFLECT_INPUT, reflect_output=CRC_REFLECT_OUTPUT,
                         xor_output=CRC_XOR_OUTPUT)


# -- CRC -----------------------------------------------------------------------------------------------

def test_crc_check_value():
    assert crc16(b"123456789") == CRC_CHECK == 0x29B1     # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc16(b"") == CRC_INITIAL


def test_crc_parameters_are_ccitt_false():
    """The protocol's parameters are the catalogue's CRC-16/CCITT-FALSE, and amaranth.lib.crc computes the
    same check value and residue from them."""
    params = _algorithm()(8)
    ccitt_false = crc.catalog.CRC16_CCITT_FALSE
    assert repr(params.algorithm) == repr(ccitt_false)
    assert params.compute(b"123456789") == CRC_CHECK
    assert params.residue() == CRC_RESIDUE


def test_crc_equals_independent_implementations():
    rng = random.Random(0)
    params = _algorithm()(8)
    for n in (1, 2, 7, 64, 255):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == binascii.crc_hqx(data, CRC_INITIAL) == params.compute(data)
        # continuing from a register value is the same as one pass
        assert crc16(data[n // 2:], crc16(data[:n // 2])) == crc16(data)


def test_crc_residue_of_a_good_frame():
    rng = random.Random(1)
    for n in (0, 1, 5, 255):
        frame = encode_frame(rng.randrange(256), bytes(rng.randrange(256) for _ in range(n)))
        assert crc16(frame[1:]) == CRC_RESIDUE
        bad = bytearray(frame)
        bad[rng.randrange(1, len(bad))] ^= 1 << rng.randrange(8)
        assert crc16(bytes(bad[1:])) != CRC_RESIDUE


# -- framing: the worked examples of boards/PROTOCOL.md ---------------------------------------------------

@pytest.mark.parametrize("command, payload, wire", [
    (Command.IDENTIFY, b"", "a5 00 01 0d 2e"),
    (Command.FEATURES, bytes([0x01, 0xFF, 0x80]), "a5 03 02 01 ff 80 b7 f1"),
    (Command.FEATURES | REPLY_FLAG, struct.pack("<H", 3), "a5 02 82 03 00 69 c1"),
    (ERROR_REPLY, bytes([ErrorCode.BAD_CRC, Command.IDENTIFY]), "a5 02 ff 01 01 85 db"),
    (ERROR_REPLY, bytes([ErrorCode.TIMEOUT, 0]), "a5 02 ff 05 00 59 3e"),
    (Command.RESET, b"", "a5 00 05 4d aa"),
    (Command.RESET | REPLY_FLAG, b"", "a5 00 85 dc 22"),
    (Command.RUN, b"", "a5 00 03 2d 6c"),
    (Command.RUN | REPLY_FLAG, b"", "a5 00 83 bc e4"),
    (Command.RESULT, b"", "a5 00 04 5d 8b"),
    (Command.STATUS, b"", "a5 00 06 7d c9"),
    (Command.RESULT | REPLY_FLAG, struct.pack(result_format(3), 2, -5, 1000, 70000),
     "a5 0d 84 02 fb ff ff ff e8 03 00 00 70 11 01 00 a7 b7"),
])
def test_worked_examples(command, payload, wire):
    frame = encode_frame(command, payload)
    assert frame.hex(" ") == wire
    assert len(frame) == len(payload) + FRAME_OVERHEAD and frame[0] == SYNC
    assert FrameDecoder().feed(frame) == [(int(command) & 0xFF, payload, True)]


def test_encode_frame_refuses_a_long_payload():
    assert len(encode_frame(Command.FEATURES, bytes(MAX_PAYLOAD))) == MAX_PAYLOAD + FRAME_OVERHEAD
    with pytest.raises(ValueError, match="at most 255"):
        encode_frame(Command.FEATURES, bytes(MAX_PAYLOAD + 1))


def test_frame_decoder_in_pieces_with_garbage_and_a_bad_crc():
    rng = random.Random(2)
    frames = [(rng.randrange(256), bytes(rng.randrange(256) for _ in range(rng.randrange(20))))
              for _ in range(30)]
    stream, expected = bytearray(), []
    for n, (command, payload) in enumerate(frames):
        stream += bytes(rng.choice([0x00, 0x5A, 0xFF]) for _ in range(rng.randrange(4)))   # no SYNC in it
        frame = bytearray(encode_frame(command, payload))
        ok = n % 5 != 3
        if not ok:
            frame[-1] ^= 0x01
        stream += frame
        expected.append((command, payload, ok))
    decoder, got = FrameDecoder(), []
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 9)
        got += decoder.feed(stream[pos:pos + step])
        pos += step
    assert got == expected and decoder.pending == b""
    assert decoder.feed(encode_frame(Command.STATUS)[:3]) == [] and decoder.pending == bytes([SYNC, 0, 6])


# -- payloads ------------------------------------------------------------------------------------------

def test_sizes():
    assert (IDENTIFY_SIZE, STATUS_SIZE, COUNT_SIZE, ERROR_SIZE) == (29, 9, 2, 2)     # boards/PROTOCOL.md
    assert result_size(12) == 49 == struct.calcsize(result_format(12))
    assert result_size(MAX_CLASSES) <= MAX_PAYLOAD < result_size(MAX_CLASSES + 1)


def test_identity_round_trip():
    info = Identity(PROTOCOL_VERSION, "0.1.0", "1a2b3c4d", 64, 128, 12, 128, 8, 2, "learned", 12_000_000)
    payload = info.pack()
    assert len(payload) == IDENTIFY_SIZE and payload[0] == PROTOCOL_VERSION
    assert payload[4:8] == bytes.fromhex("1a2b3c4d")          # most significant byte first
    assert payload[18] == 1                                    # mixer: 1 learned
    assert Identity.unpack(payload) == info and info.window == 128 * 64
    with pytest.raises(ValueError, match="IDENTIFY reply of 28 bytes, expected 29"):
        Identity.unpack(payload[:-1])


def test_status_round_trip():
    status = Status(True, False, True, 300, ErrorCode.OVERFLOW, 255, (1 << 24) - 1)
    payload = status.pack()
    assert payload[0] == StatusFlag.WINDOW_COMPLETE | StatusFlag.RESULT_VALID == 0b101
    assert Status.unpack(payload) == status
    with pytest.raises(ValueError, match="STATUS reply of 8 bytes"):
        Status.unpack(payload[:-1])


def test_version_bytes():
    assert version_bytes("0.1.0") == (0, 1, 0)
    assert version_bytes("1.2.3.dev4") == (1, 2, 3)
    assert version_bytes("2") == (2, 0, 0)
    assert version_bytes("300.1rc1.7") == (255, 1, 7)


def test_plain_python():
    """The ground layer's protocol imports neither Amaranth nor NumPy (the host client runs without them)."""
    code = ("import sys, ternkws.golden.protocol; "
            "print(sorted(m for m in ('amaranth', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- version 2: the streaming commands ------------------------------------------------------------------

from ternkws.golden.protocol import (EVENT_SIZE, MAX_OUTSTANDING, STREAM_PARAMS_SIZE, STREAM_REPLY_HEADER,  # noqa: E402
                                     Mode, StreamEvent, StreamFlag, StreamParams, StreamReply, decision_size,
                                     stream_budget, stream_reply_size)

DEFAULT_PARAMS = StreamParams(10, 5, 10, 1311537, 0x3FF, False)


@pytest.mark.parametrize("command, payload, wire", [
    (Command.STREAM_START, DEFAULT_PARAMS.pack(), "a5 0e 07 0a 00 05 0a 31 03 14 00 00 ff 03 00 00 00 ce a6"),
    (Command.STREAM_START | REPLY_FLAG, b"", "a5 00 87 fc 60"),
    (Command.FRAMES, bytes([0x01, 0xFF, 0x80, 0x7F]), "a5 04 08 01 ff 80 7f 27 ab"),
    (Command.POLL, b"", "a5 00 09 8c 26"),
    (Command.FRAMES | REPLY_FLAG, StreamReply(False, 192).pack(), "a5 03 88 00 c0 00 b1 71"),
    (Command.POLL | REPLY_FLAG, StreamReply(True, 0).pack(), "a5 03 89 04 00 00 0d 51"),
    (Command.POLL | REPLY_FLAG, StreamReply(False, 64, (-5, 1000, 70000), 2, StreamEvent(7, 2, 69995)).pack(),
     "a5 1a 89 03 40 00 07 00 00 00 02 6b 11 01 00 00 fb ff ff ff e8 03 00 00 70 11 01 00 02 79 7b"),
    (ERROR_REPLY, bytes([ErrorCode.LATE, Command.FRAMES]), "a5 02 ff 07 08 be 54"),
    (ERROR_REPLY, bytes([ErrorCode.HALTED, Command.FRAMES]), "a5 02 ff 08 08 ae 6a"),
])
def test_stream_worked_examples(command, payload, wire):
    """The bytes of boards/PROTOCOL.md, "Worked examples (stream)"."""
    frame = encode_frame(command, payload)
    assert frame.hex(" ") == wire
    assert FrameDecoder().feed(frame) == [(int(command) & 0xFF, payload, True)]


def test_stream_payload_round_trips_and_refusals():
    assert STREAM_PARAMS_SIZE == 14 and STREAM_REPLY_HEADER == 3 and EVENT_SIZE == 10
    assert StreamParams.unpack(DEFAULT_PARAMS.pack()) == DEFAULT_PARAMS
    top = StreamParams(0xFFFF, 16, 255, (1 << 35) - 1, 0xFFFFFFFF, True)
    assert StreamParams.unpack(top.pack()) == top and top.pack()[-1] == 1
    for bad, field in ((StreamParams(0, 5, 10, 0, 1), "hop"), (StreamParams(1, 17, 10, 0, 1), "smooth"),
                       (StreamParams(1, 5, 0, 0, 1), "refractory"), (StreamParams(1, 5, 1, 1 << 35, 1), "threshold")):
        with pytest.raises(ValueError, match=field):
            bad.pack()
    rng = random.Random(7)
    for _ in range(50):
        nc = rng.randrange(2, 33)
        event = StreamEvent(rng.randrange(1 << 32), rng.randrange(nc), rng.randrange(-(1 << 36), 1 << 36)) \
            if rng.random() < 0.5 else None
        logits = tuple(rng.randrange(-(1 << 31), 1 << 31) for _ in range(nc)) if rng.random() < 0.5 else None
        r = StreamReply(rng.random() < 0.3, rng.randrange(1 << 16), logits, rng.randrange(nc) if logits else None, event)
        payload = r.pack()
        assert len(payload) == stream_reply_size(nc, logits is not None, event is not None)
        assert StreamReply.unpack(payload, nc) == r
        assert payload[0] == r.flags
    with pytest.raises(ValueError, match="expected 52 for flags 0x01 and 12 classes"):
        StreamReply.unpack(bytes([StreamFlag.DECISION, 0, 0]) + bytes(10), 12)
    assert decision_size(12) == 49 and MAX_OUTSTANDING == 2


def test_identity_v2_fields():
    info = Identity(PROTOCOL_VERSION, "0.1.0", "1a2b3c4d", 64, 128, 12, 192, 8, 2, "ternary", 12_000_000,
                    Mode.STREAM, 3, 448, 54)
    payload = info.pack()
    assert len(payload) == IDENTIFY_SIZE == 29 and payload[23] == Mode.STREAM and payload[24] == 3
    assert Identity.unpack(payload) == info and info.streams
    window = Identity(PROTOCOL_VERSION, "0.1.0", "1a2b3c4d", 64, 128, 12, 128, 8, 2, "ternary", 12_000_000)
    assert not Identity.unpack(window.pack()).streams and window.pack()[23:] == bytes([1, 0, 0, 0, 0, 0])


def test_stream_baud_budget():
    """boards/PROTOCOL.md "Baud budget": the default model at 100 frames/s, hop 10, every decision and an
    event with each; the stream board's 1 Mbaud leaves >= 2x in both directions, 115200 does not."""
    from ternkws.boards.platforms import STREAM_BAUD
    one = stream_budget(64, 12)
    assert one == {"to_device": 100 * (64 + 5), "to_host": 100 * (5 + 3) + 10 * 49 + 10 * 10, "bits_per_byte": 10}
    three = stream_budget(64, 12, frames_per_request=3)
    assert round(three["to_device"]) == 6567 and round(three["to_host"]) == 857
    margin = {baud: baud / one["bits_per_byte"] / max(one["to_device"], one["to_host"])
              for baud in (115_200, 1_000_000, 3_000_000)}
    assert [round(m, 2) for m in margin.values()] == [1.67, 14.49, 43.48]
    assert margin[115_200] < 2 <= margin[STREAM_BAUD] and STREAM_BAUD == 1_000_000
    assert 12_000_000 % STREAM_BAUD == 0          # an exact divisor of the iCEBreaker's clock
