"""The host protocol (boards/PROTOCOL.md), defined once: commands, error codes, frame layout, payload
formats and sizes, the CRC, and the pure-Python framing both sides share.

    encode_frame(Command.IDENTIFY)            -> b"\\xa5\\x00\\x01\\x0d\\x2e"
    FrameDecoder().feed(data)                 -> [(command, payload, crc_ok), ...]
    Identity.unpack(payload), Status.unpack(payload), .pack()
    StreamParams(...).pack(), StreamReply.unpack(payload, n_classes)      (version 2: the streaming mode)
    stream_budget(n_mfcc, n_classes, ...)     bytes per second a stream needs each way

The device (hw/host_link.py and its parts) and the host client (boards/host.py, `Device`) both import
it, so the RTL and the host cannot disagree on a command code, a size or the CRC. Plain Python (no
Amaranth, no NumPy): this is the ground layer. Malformed payloads raise ValueError; the host client turns
them into its own ProtocolError.
"""

import enum
import re
import struct
from dataclasses import dataclass

__all__ = ["PROTOCOL_VERSION", "SYNC", "MAX_PAYLOAD", "REPLY_FLAG", "ERROR_REPLY", "FRAME_OVERHEAD",
           "Command", "ErrorCode", "ERROR_TEXT", "StatusFlag",
           "IDENTIFY_FORMAT", "IDENTIFY_SIZE", "STATUS_FORMAT", "STATUS_SIZE", "COUNT_FORMAT", "COUNT_SIZE",
           "ERROR_FORMAT", "ERROR_SIZE", "MIXER_KINDS", "MAX_CLASSES", "STATUS_CYCLES_MAX", "ERROR_COUNT_MAX",
           "result_format", "result_size",
           "CRC_WIDTH", "CRC_POLYNOMIAL", "CRC_INITIAL", "CRC_REFLECT_INPUT", "CRC_REFLECT_OUTPUT",
           "CRC_XOR_OUTPUT", "CRC_CHECK", "CRC_RESIDUE",
           "crc16", "encode_frame", "FrameDecoder", "version_bytes", "Identity", "Status",
           "Mode", "WINDOW_COMMANDS", "STREAM_COMMANDS", "STREAM_PARAMS_FORMAT", "STREAM_PARAMS_SIZE", "StreamParams",
           "StreamFlag", "STREAM_REPLY_FORMAT", "STREAM_REPLY_HEADER", "EVENT_FORMAT", "EVENT_SIZE", "MARGIN_BYTES",
           "THRESHOLD_BYTES", "decision_format", "decision_size", "stream_reply_size", "frames_payload_size",
           "StreamEvent", "StreamReply", "MAX_OUTSTANDING", "stream_budget"]

PROTOCOL_VERSION = 2        # 2: the streaming commands and IDENTIFY's mode fields (boards/PROTOCOL.md)
SYNC = 0xA5
MAX_PAYLOAD = 255          # the length field is one byte
REPLY_FLAG = 0x80          # a successful reply carries the request's command | 0x80
ERROR_REPLY = 0xFF         # an error reply: payload [error code, request command (0 if none was received)]
FRAME_OVERHEAD = 5         # SYNC, LEN, CMD, CRC (2)


class Command(enum.IntEnum):
    IDENTIFY = 0x01
    FEATURES = 0x02
    RUN = 0x03
    RESULT = 0x04
    RESET = 0x05            # window board: drop the window and result; stream board: stop the stream
    STATUS = 0x06
    STREAM_START = 0x07     # version 2: a new stream with these parameters (StreamParams)
    FRAMES = 0x08           # version 2: 1..max_frames whole feature frames for the stream
    POLL = 0x09             # version 2: no frames; the reply carries what became ready


class ErrorCode(enum.IntEnum):
    BAD_CRC = 0x01          # the frame's CRC does not match (nothing executed)
    BAD_LENGTH = 0x02       # payload length wrong for the command (FEATURES: 0 or > max_chunk; others: not 0)
    UNKNOWN_COMMAND = 0x03
    OVERFLOW = 0x04         # the chunk would take the window past n_frames * n_mfcc values (chunk dropped)
    TIMEOUT = 0x05          # a frame stopped arriving (inter-byte gap > the device's timeout)
    NOT_READY = 0x06        # RUN with an incomplete window, RESULT with no result; FRAMES / POLL with no stream
    LATE = 0x07             # FRAMES while the frame buffer had no room for them (the engine is behind): dropped
    HALTED = 0x08           # FRAMES after an error reply and before the POLL that acknowledges it: dropped
    BAD_PARAMETER = 0x09    # STREAM_START with a parameter out of its range: the stream stays stopped


ERROR_TEXT = {
    ErrorCode.BAD_CRC: "bad CRC",
    ErrorCode.BAD_LENGTH: "bad length for the command",
    ErrorCode.UNKNOWN_COMMAND: "unknown command",
    ErrorCode.OVERFLOW: "more feature values than a window",
    ErrorCode.TIMEOUT: "inter-byte timeout inside a frame",
    ErrorCode.NOT_READY: "not ready (incomplete window, no result, or no stream started)",
    ErrorCode.LATE: "frames late: the device's frame buffer was full",
    ErrorCode.HALTED: "frames refused after an error until a POLL",
    ErrorCode.BAD_PARAMETER: "stream parameter out of range",
}


class Mode(enum.IntFlag):
    """IDENTIFY's modes byte: what the board design answers."""
    WINDOW = 1 << 0         # the window commands FEATURES, RUN, RESULT, STATUS (hw/board_core.py BoardCore)
    STREAM = 1 << 1         # the streaming commands STREAM_START, FRAMES, POLL (StreamBoardCore)


WINDOW_COMMANDS = (Command.IDENTIFY, Command.FEATURES, Command.RUN, Command.RESULT, Command.RESET, Command.STATUS)
STREAM_COMMANDS = (Command.IDENTIFY, Command.RESET, Command.STREAM_START, Command.FRAMES, Command.POLL)
# A host may have at most this many requests unanswered (sent, reply not yet received in full); the device
# then never drops a byte (boards/PROTOCOL.md, "Pipelining").
MAX_OUTSTANDING = 2


class StatusFlag(enum.IntFlag):
    """Bits of the STATUS reply's first byte."""
    WINDOW_COMPLETE = 1 << 0    # all n_frames * n_mfcc values received, waiting for RUN
    RUNNING = 1 << 1            # classifying
    RESULT_VALID = 1 << 2       # a result is held: RESULT answers at once


# IDENTIFY reply payload, little-endian: protocol version, ternkws version (major, minor, patch),
# model id (4 bytes, most significant first: bytes.hex() is Model.model_id), n_mfcc, n_frames, n_classes,
# max_chunk, mixer_lanes, dw_lanes, mixer kind (index in MIXER_KINDS), clock frequency in Hz; version 2
# adds: modes (Mode), max_frames (most frames per FRAMES; 0 without the stream mode), buffer (feature
# values the frame buffer holds, u16), delay (the stream's delay D in frames, u16).
IDENTIFY_FORMAT = "<B3B4sHHBBHHBIBBHH"
IDENTIFY_SIZE = struct.calcsize(IDENTIFY_FORMAT)
MIXER_KINDS = ("ternary", "learned")   # golden.topology.MIXERS order; "learned": the stored-weights baseline
# STATUS reply payload: flags (StatusFlag), count of values held, last error code, error replies sent,
# cycles of the last classification.
STATUS_FORMAT = "<BHBBI"
STATUS_SIZE = struct.calcsize(STATUS_FORMAT)
STATUS_CYCLES_MAX = (1 << 24) - 1      # the cycle count saturates here
ERROR_COUNT_MAX = 0xFF                 # the error reply count saturates here
COUNT_FORMAT = "<H"                    # FEATURES reply: values held in the window
COUNT_SIZE = struct.calcsize(COUNT_FORMAT)
ERROR_FORMAT = "<BB"                   # error reply: code, request command
ERROR_SIZE = struct.calcsize(ERROR_FORMAT)
MAX_CLASSES = (MAX_PAYLOAD - 1) // 4   # a RESULT reply is one byte of class and 4 bytes per logit


def result_format(n_classes):
    """struct format of the RESULT reply payload: class index, then n_classes int32 logits."""
    return f"<B{n_classes}i"


def result_size(n_classes):
    return 1 + 4 * n_classes


# -- CRC ---------------------------------------------------------------------------------------------------
# CRC-16/CCITT-FALSE (reveng: CRC-16/IBM-3740), in the Williams model. The CRC goes on the wire most
# significant byte first; with no final XOR, the CRC over a whole good frame body and its CRC is
# CRC_RESIDUE (0), which is what the device checks.
CRC_WIDTH = 16
CRC_POLYNOMIAL = 0x1021
CRC_INITIAL = 0xFFFF
CRC_REFLECT_INPUT = False
CRC_REFLECT_OUTPUT = False
CRC_XOR_OUTPUT = 0x0000
CRC_CHECK = 0x29B1          # crc16(b"123456789")
CRC_RESIDUE = 0x0000


def crc16(data, crc=CRC_INITIAL):
    """The frame CRC of `data`, continuing from register value `crc` (bitwise, most significant bit first;
    no reflection and no final XOR, so the register is the CRC)."""
    top, mask = 1 << (CRC_WIDTH - 1), (1 << CRC_WIDTH) - 1
    for byte in bytes(data):
        crc ^= byte << (CRC_WIDTH - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLYNOMIAL) & mask if crc & top else (crc << 1) & mask
    return crc


# -- framing -----------------------------------------------------------------------------------------------

def encode_frame(command, payload=b""):
    """SYNC, LEN, CMD, PAYLOAD, CRC-16 (over LEN, CMD, PAYLOAD; most significant byte first)."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes; a frame holds at most {MAX_PAYLOAD}")
    body = bytes([len(payload), int(command) & 0xFF]) + payload
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


class FrameDecoder:
    """Incremental parser of a byte stream into frames, the way the device parses (hunt SYNC, then LEN,
    CMD, payload, CRC). `feed(data)` returns the frames completed: (command, payload, crc_ok)."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        self._buf += bytes(data)
        frames = []
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                self._buf.clear()
                return frames
            del self._buf[:start]
            if len(self._buf) < 3 or len(self._buf) < self._buf[1] + FRAME_OVERHEAD:
                return frames
            n = self._buf[1] + FRAME_OVERHEAD
            frame, self._buf = bytes(self._buf[:n]), self._buf[n:]
            body = frame[1:-2]
            frames.append((frame[2], frame[3:-2], crc16(body) == int.from_bytes(frame[-2:], "big")))

    @property
    def pending(self):
        """Bytes held after the last complete frame (a frame in progress)."""
        return bytes(self._buf)


# -- payloads ----------------------------------------------------------------------------------------------

def version_bytes(version):
    """(major, minor, patch) of a version string such as "0.1.0" or "1.2.3.dev4" (each clamped to 255)."""
    parts = [int(re.match(r"\d*", p).group() or 0) for p in str(version).split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return tuple(min(p, 255) for p in parts)


@dataclass(frozen=True)
class Identity:
    """The IDENTIFY reply payload."""
    protocol: int
    version: str
    model_id: str
    n_mfcc: int
    n_frames: int
    n_classes: int
    max_chunk: int
    mixer_lanes: int
    dw_lanes: int
    mixer: str
    clk_freq: int
    modes: int = Mode.WINDOW
    max_frames: int = 0
    buffer: int = 0
    delay: int = 0

    @property
    def streams(self):
        """The board answers the streaming commands."""
        return bool(Mode(self.modes) & Mode.STREAM)

    @property
    def window(self):
        """Feature values in one window (n_frames * n_mfcc)."""
        return self.n_frames * self.n_mfcc

    def pack(self):
        """The payload bytes; struct.error for a field out of its range."""
        mixer = MIXER_KINDS.index(self.mixer) if self.mixer in MIXER_KINDS else int(self.mixer)
        return struct.pack(IDENTIFY_FORMAT, self.protocol, *version_bytes(self.version),
                           bytes.fromhex(self.model_id), self.n_mfcc, self.n_frames, self.n_classes,
                           self.max_chunk, self.mixer_lanes, self.dw_lanes, mixer, self.clk_freq, int(self.modes),
                           self.max_frames, self.buffer, self.delay)

    @classmethod
    def unpack(cls, payload):
        if len(payload) != IDENTIFY_SIZE:
            raise ValueError(f"IDENTIFY reply of {len(payload)} bytes, expected {IDENTIFY_SIZE} (protocol "
                             f"version {payload[0] if payload else '?'}; this host speaks {PROTOCOL_VERSION})")
        (proto, major, minor, patch, model, n_mfcc, n_frames, n_classes, max_chunk, mixer_lanes, dw_lanes,
         mixer, clk, modes, max_frames, buffer, delay) = struct.unpack(IDENTIFY_FORMAT, payload)
        return cls(proto, f"{major}.{minor}.{patch}", model.hex(), n_mfcc, n_frames, n_classes, max_chunk,
                   mixer_lanes, dw_lanes, MIXER_KINDS[mixer] if mixer < len(MIXER_KINDS) else str(mixer), clk,
                   modes, max_frames, buffer, delay)


@dataclass(frozen=True)
class Status:
    """The STATUS reply payload."""
    window_complete: bool    # all n_frames * n_mfcc values received, waiting for RUN
    running: bool            # the accelerator is classifying
    result_valid: bool       # RESULT would answer at once
    count: int               # feature values accumulated
    last_error: int          # code of the last error reply (0: none since power-up)
    error_count: int         # error replies sent (saturates at ERROR_COUNT_MAX)
    cycles: int              # clock cycles of the last classification, RUN to class (saturates at STATUS_CYCLES_MAX)

    @property
    def flags(self):
        return (StatusFlag.WINDOW_COMPLETE * self.window_complete | StatusFlag.RUNNING * self.running
                | StatusFlag.RESULT_VALID * self.result_valid)

    def pack(self):
        return struct.pack(STATUS_FORMAT, int(self.flags), self.count, self.last_error, self.error_count,
                           self.cycles)

    @classmethod
    def unpack(cls, payload):
        if len(payload) != STATUS_SIZE:
            raise ValueError(f"STATUS reply of {len(payload)} bytes, expected {STATUS_SIZE}")
        flags, count, last_error, error_count, cycles = struct.unpack(STATUS_FORMAT, payload)
        flags = StatusFlag(flags & 7)
        return cls(StatusFlag.WINDOW_COMPLETE in flags, StatusFlag.RUNNING in flags,
                   StatusFlag.RESULT_VALID in flags, count, last_error, error_count, cycles)


# -- version 2: the streaming mode (boards/PROTOCOL.md, "Streaming") ---------------------------------------
# STREAM_START payload, little-endian: hop (u16, >= 1), smooth (u8, 1..16), refractory (u8, >= 1),
# threshold (u40: 5 bytes, < 2**35), keyword mask (u32: bit c lets class c fire), flags (bit 0: events
# only, no decisions in the replies). golden/SPEC.md 6.2 and 6.4 define each parameter.
STREAM_PARAMS_FORMAT = "<HBB5sIB"
STREAM_PARAMS_SIZE = struct.calcsize(STREAM_PARAMS_FORMAT)
THRESHOLD_BYTES = 5
MARGIN_BYTES = 5            # an event's margin (37 bits signed) as a 40-bit two's-complement number


@dataclass(frozen=True)
class StreamParams:
    """The STREAM_START payload."""
    hop: int
    smooth: int
    refractory: int
    threshold: int
    keywords: int           # bit mask over the classes
    events_only: bool = False

    def pack(self):
        """The payload bytes; ValueError for a field out of its range."""
        for name, value, lo, hi in (("hop", self.hop, 1, 0xFFFF), ("smooth", self.smooth, 1, 16),
                                    ("refractory", self.refractory, 1, 0xFF),
                                    ("threshold", self.threshold, 0, (1 << 35) - 1),
                                    ("keywords", self.keywords, 0, 0xFFFFFFFF)):
            if not lo <= value <= hi:
                raise ValueError(f"stream parameter {name}={value} outside [{lo}, {hi}]")
        return struct.pack(STREAM_PARAMS_FORMAT, self.hop, self.smooth, self.refractory,
                           int(self.threshold).to_bytes(THRESHOLD_BYTES, "little"), self.keywords,
                           int(bool(self.events_only)))

    @classmethod
    def unpack(cls, payload):
        if len(payload) != STREAM_PARAMS_SIZE:
            raise ValueError(f"STREAM_START payload of {len(payload)} bytes, expected {STREAM_PARAMS_SIZE}")
        hop, smooth, refractory, threshold, keywords, flags = struct.unpack(STREAM_PARAMS_FORMAT, payload)
        return cls(hop, smooth, refractory, int.from_bytes(threshold, "little"), keywords, bool(flags & 1))


class StreamFlag(enum.IntFlag):
    """Bits of a FRAMES / POLL reply's first byte."""
    DECISION = 1 << 0       # a decision follows (n_classes int32 logits, then the u8 class), after the event if any
    EVENT = 1 << 1          # an event follows the header (u32 decision index, u8 class, int40 margin)
    IDLE = 1 << 2           # when the reply started: no frame buffered, the engine idle, nothing else to send


# FRAMES / POLL reply payload: flags (StreamFlag), values buffered (u16: feature values received and not
# yet taken by the engine), then the event, then the decision, each only when its flag is set.
STREAM_REPLY_FORMAT = "<BH"
STREAM_REPLY_HEADER = struct.calcsize(STREAM_REPLY_FORMAT)
EVENT_FORMAT = f"<IB{MARGIN_BYTES}s"   # decision index, class, margin (40-bit signed)
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)


def decision_format(n_classes):
    """struct format of a decision in a stream reply: n_classes int32 logits, then the class index (the
    order the engine emits them in)."""
    return f"<{n_classes}iB"


def decision_size(n_classes):
    return 4 * n_classes + 1


def stream_reply_size(n_classes, decision=True, event=True):
    """Payload bytes of a FRAMES / POLL reply carrying a decision and / or an event."""
    return STREAM_REPLY_HEADER + decision_size(n_classes) * bool(decision) + EVENT_SIZE * bool(event)


def frames_payload_size(n_mfcc, frames):
    """Payload bytes of a FRAMES request of `frames` whole frames."""
    return n_mfcc * frames


@dataclass(frozen=True)
class StreamEvent:
    index: int          # decision index k
    cls: int
    margin: int


@dataclass(frozen=True)
class StreamReply:
    """A FRAMES / POLL reply payload: flags, values buffered, the event and the decision (logits, class)
    it carries (None when absent)."""
    idle: bool
    buffered: int
    logits: tuple = None
    cls: int = None
    event: StreamEvent = None

    @property
    def flags(self):
        return (StreamFlag.DECISION * (self.logits is not None) | StreamFlag.EVENT * (self.event is not None)
                | StreamFlag.IDLE * self.idle)

    def pack(self):
        out = struct.pack(STREAM_REPLY_FORMAT, int(self.flags), self.buffered)
        if self.event is not None:
            e = self.event
            out += struct.pack(EVENT_FORMAT, e.index, e.cls, int(e.margin).to_bytes(MARGIN_BYTES, "little", signed=True))
        if self.logits is not None:
            out += struct.pack(decision_format(len(self.logits)), *self.logits, self.cls)
        return out

    @classmethod
    def unpack(cls, payload, n_classes):
        payload = bytes(payload)
        if len(payload) < STREAM_REPLY_HEADER:
            raise ValueError(f"stream reply of {len(payload)} bytes, shorter than its {STREAM_REPLY_HEADER}-byte header")
        flags, buffered = struct.unpack_from(STREAM_REPLY_FORMAT, payload)
        flags = StreamFlag(flags & 7)
        want = stream_reply_size(n_classes, StreamFlag.DECISION in flags, StreamFlag.EVENT in flags)
        if len(payload) != want:
            raise ValueError(f"stream reply of {len(payload)} bytes, expected {want} for flags {int(flags):#04x} "
                             f"and {n_classes} classes")
        pos, logits, c, event = STREAM_REPLY_HEADER, None, None, None
        if StreamFlag.EVENT in flags:
            index, ecls, margin = struct.unpack_from(EVENT_FORMAT, payload, pos)
            event = StreamEvent(index, ecls, int.from_bytes(margin, "little", signed=True))
            pos += EVENT_SIZE
        if StreamFlag.DECISION in flags:
            *logits, c = struct.unpack_from(decision_format(n_classes), payload, pos)
            logits = tuple(logits)
        return cls(StreamFlag.IDLE in flags, buffered, logits, c, event)


def stream_budget(n_mfcc, n_classes, *, frames_per_s=100.0, hop=10, frames_per_request=1, events_per_s=None):
    """Bytes per second each way of a stream at `frames_per_s` (the worst case the protocol allows: every
    request is a FRAMES of `frames_per_request` frames, every decision is sent, and an event comes with
    every decision unless `events_per_s` says otherwise). {"to_device", "to_host", "bits_per_byte"}: a UART
    carries 10 bits a byte (8N1), and both directions run at once (full duplex)."""
    requests = frames_per_s / frames_per_request
    decisions = frames_per_s / hop
    events = decisions if events_per_s is None else events_per_s
    to_device = requests * (frames_payload_size(n_mfcc, frames_per_request) + FRAME_OVERHEAD)
    to_host = (requests * (FRAME_OVERHEAD + STREAM_REPLY_HEADER) + decisions * decision_size(n_classes)
               + events * EVENT_SIZE)
    return {"to_device": to_device, "to_host": to_host, "bits_per_byte": 10}
