"""Host side of the UART protocol (boards/PROTOCOL.md): the Python reference of framing and CRC, and
`Device`, which speaks to a board (or the simulated board) over any pyserial-like port.

    import serial
    from ternkws.boards.host import Device
    device = Device(serial.Serial("/dev/ttyUSB1", 115200))
    info = device.identify()                 # Identity(protocol=1, model_id='1a2b3c4d', ...)
    cls, logits = device.classify(window)    # window: int8 (n_frames, n_mfcc)

The port needs `read(n)` (returning fewer bytes when its timeout runs out) and `write(data)`; if it has a
`timeout` attribute, Device sets it to a short poll interval and keeps its own deadlines. This module is
plain Python (no Amaranth, no NumPy at import): hw/host_link.py takes its constants from here, so the RTL
and the host cannot disagree on a command code.
"""

import enum
import re
import struct
import time
from dataclasses import dataclass

__all__ = ["PROTOCOL_VERSION", "SYNC", "MAX_PAYLOAD", "REPLY_FLAG", "ERROR_REPLY", "Command", "ErrorCode",
           "IDENTIFY_FORMAT", "STATUS_FORMAT", "crc16", "encode_frame", "FrameDecoder", "Identity", "Status",
           "Device", "LinkError", "LinkTimeout", "ProtocolError", "PortError", "DeviceError", "version_bytes"]

PROTOCOL_VERSION = 1
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
    RESET = 0x05
    STATUS = 0x06


class ErrorCode(enum.IntEnum):
    BAD_CRC = 0x01          # the frame's CRC does not match (nothing executed)
    BAD_LENGTH = 0x02       # payload length wrong for the command (FEATURES: 0 or > max_chunk; others: not 0)
    UNKNOWN_COMMAND = 0x03
    OVERFLOW = 0x04         # the chunk would take the window past n_frames * n_mfcc values (chunk dropped)
    TIMEOUT = 0x05          # a frame stopped arriving (inter-byte gap > the device's timeout)
    NOT_READY = 0x06        # RUN with an incomplete window, RESULT with no result


ERROR_TEXT = {
    ErrorCode.BAD_CRC: "bad CRC",
    ErrorCode.BAD_LENGTH: "bad length for the command",
    ErrorCode.UNKNOWN_COMMAND: "unknown command",
    ErrorCode.OVERFLOW: "more feature values than a window",
    ErrorCode.TIMEOUT: "inter-byte timeout inside a frame",
    ErrorCode.NOT_READY: "not ready (incomplete window or no result)",
}

# IDENTIFY reply payload, little-endian: protocol version, ternkws version (major, minor, patch),
# model id (4 bytes, most significant first: bytes.hex() is Model.model_id), n_mfcc, n_frames, n_classes,
# max_chunk, mixer_lanes, dw_lanes, mixer kind (0 ternary, 1 learned: the stored-weights baseline), clock
# frequency in Hz.
IDENTIFY_FORMAT = "<B3B4sHHBBHHBI"
MIXER_KINDS = ("ternary", "learned")   # golden.topology.MIXERS order
# STATUS reply payload: flags (bit 0 window complete, 1 classifying, 2 result held), count of values held,
# last error code, error replies sent, cycles of the last classification.
STATUS_FORMAT = "<BHBBI"


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE: polynomial 0x1021, init 0xFFFF, no reflection, no final XOR.
    crc16(b"123456789") == 0x29B1."""
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def encode_frame(command, payload=b""):
    """SYNC, LEN, CMD, PAYLOAD, CRC-16 (over LEN, CMD, PAYLOAD; most significant byte first)."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes; a frame holds at most {MAX_PAYLOAD}")
    body = bytes([len(payload), int(command) & 0xFF]) + payload
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


def version_bytes(version):
    """(major, minor, patch) of a version string such as "0.1.0" or "1.2.3.dev4" (each clamped to 255)."""
    parts = [int(re.match(r"\d*", p).group() or 0) for p in str(version).split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return tuple(min(p, 255) for p in parts)


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


@dataclass(frozen=True)
class Identity:
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

    @property
    def window(self):
        """Feature values in one window (n_frames * n_mfcc)."""
        return self.n_frames * self.n_mfcc

    @classmethod
    def unpack(cls, payload):
        if len(payload) != struct.calcsize(IDENTIFY_FORMAT):
            raise ProtocolError(f"IDENTIFY reply of {len(payload)} bytes, expected "
                                f"{struct.calcsize(IDENTIFY_FORMAT)} (protocol version "
                                f"{payload[0] if payload else '?'}; this host speaks {PROTOCOL_VERSION})")
        (proto, major, minor, patch, model, n_mfcc, n_frames, n_classes, max_chunk, mixer_lanes, dw_lanes,
         mixer, clk) = struct.unpack(IDENTIFY_FORMAT, payload)
        return cls(proto, f"{major}.{minor}.{patch}", model.hex(), n_mfcc, n_frames, n_classes, max_chunk,
                   mixer_lanes, dw_lanes, MIXER_KINDS[mixer] if mixer < len(MIXER_KINDS) else str(mixer), clk)


@dataclass(frozen=True)
class Status:
    window_complete: bool    # all n_frames * n_mfcc values received, waiting for RUN
    running: bool            # the accelerator is classifying
    result_valid: bool       # RESULT would answer at once
    count: int               # feature values accumulated
    last_error: int          # code of the last error reply (0: none since power-up)
    error_count: int         # error replies sent (saturates at 255)
    cycles: int              # clock cycles of the last classification, RUN to class (saturates at 2**24-1)

    @classmethod
    def unpack(cls, payload):
        if len(payload) != struct.calcsize(STATUS_FORMAT):
            raise ProtocolError(f"STATUS reply of {len(payload)} bytes, expected {struct.calcsize(STATUS_FORMAT)}")
        flags, count, last_error, error_count, cycles = struct.unpack(STATUS_FORMAT, payload)
        return cls(bool(flags & 1), bool(flags & 2), bool(flags & 4), count, last_error, error_count, cycles)


class LinkError(Exception):
    """Base of the errors Device raises."""


class LinkTimeout(LinkError):
    """No (complete) reply within the deadline."""


class ProtocolError(LinkError):
    """A reply that does not parse: bad CRC, unexpected command or size."""


class PortError(LinkError):
    """The port itself failed (unplugged, socket closed)."""


class DeviceError(LinkError):
    """The device answered with an error reply."""

    def __init__(self, code, command):
        self.code, self.command = code, command
        try:
            code_name, text = ErrorCode(code).name, ERROR_TEXT[ErrorCode(code)]
        except ValueError:
            code_name, text = f"0x{code:02x}", "unknown error code"
        try:
            cmd_name = Command(command).name
        except ValueError:
            cmd_name = f"0x{command:02x}"
        super().__init__(f"device error {code_name} ({text}) for command {cmd_name}")


class Device:
    """The protocol over a pyserial-like `port`.

    timeout: seconds to wait for a reply (RESULT gets `result_timeout`: it waits for the classification).
    Every request gets exactly one reply; stale bytes are dropped before each request.
    """

    POLL = 0.05

    def __init__(self, port, *, timeout=1.0, result_timeout=10.0):
        self.port = port
        self.timeout, self.result_timeout = timeout, result_timeout
        self._identity = None
        if hasattr(port, "timeout"):
            port.timeout = self.POLL
        self.bytes_sent = self.bytes_received = 0

    # -- framing -------------------------------------------------------------------------------------

    def _read_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.port.read(n - len(buf))
            except OSError as e:          # serial.SerialException is an OSError
                raise PortError(f"reading failed: {e}") from None
            if chunk:
                buf += chunk
            elif time.monotonic() > deadline:
                raise LinkTimeout(f"no reply within the timeout (got {len(buf)} of {n} bytes)")
        self.bytes_received += len(buf)
        return bytes(buf)

    def _read_frame(self, deadline):
        while self._read_exact(1, deadline)[0] != SYNC:
            pass
        length, command = self._read_exact(2, deadline)
        payload = self._read_exact(length, deadline)
        crc = int.from_bytes(self._read_exact(2, deadline), "big")
        if crc16(bytes([length, command]) + payload) != crc:
            raise ProtocolError(f"reply with a bad CRC (command 0x{command:02x}, {length} bytes)")
        return command, payload

    def read_reply(self, timeout=None):
        """Read one frame, whatever it is: (command, payload). For raw traffic written to `port`."""
        return self._read_frame(time.monotonic() + (self.timeout if timeout is None else timeout))

    def _drain(self):
        if hasattr(self.port, "reset_input_buffer"):
            try:
                self.port.reset_input_buffer()
            except OSError as e:
                raise PortError(f"draining the input failed: {e}") from None

    def request(self, command, payload=b"", timeout=None):
        """Send one request and return the reply payload; DeviceError for an error reply."""
        self._drain()
        frame = encode_frame(command, payload)
        try:
            self.port.write(frame)
        except OSError as e:
            raise PortError(f"writing failed: {e}") from None
        self.bytes_sent += len(frame)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        reply, data = self._read_frame(deadline)
        if reply == ERROR_REPLY:
            if len(data) != 2:
                raise ProtocolError(f"error reply of {len(data)} bytes, expected 2")
            raise DeviceError(data[0], data[1])
        if reply != (int(command) | REPLY_FLAG) & 0xFF:
            raise ProtocolError(f"reply 0x{reply:02x} to command 0x{int(command):02x} "
                                f"(expected 0x{(int(command) | REPLY_FLAG) & 0xFF:02x})")
        return data

    # -- commands ------------------------------------------------------------------------------------

    def identify(self):
        self._identity = Identity.unpack(self.request(Command.IDENTIFY))
        return self._identity

    @property
    def identity(self):
        return self._identity if self._identity is not None else self.identify()

    def status(self):
        return Status.unpack(self.request(Command.STATUS))

    def reset(self):
        """Drop the partial window and the result; the device is then as after power-up."""
        self.request(Command.RESET)

    def send_features(self, values):
        """Append int8 values to the window in chunks of at most max_chunk; returns the count held."""
        data = bytes(int(v) & 0xFF for v in values)
        step, count = self.identity.max_chunk, None
        for k in range(0, len(data), step):
            reply = self.request(Command.FEATURES, data[k:k + step])
            if len(reply) != 2:
                raise ProtocolError(f"FEATURES reply of {len(reply)} bytes, expected 2")
            count = int.from_bytes(reply, "little")
        return count

    def run(self):
        self.request(Command.RUN)

    def result(self):
        """(class index, logits as a list of ints) of the last window run."""
        data = self.request(Command.RESULT, timeout=self.result_timeout)
        n = self.identity.n_classes
        if len(data) != 1 + 4 * n:
            raise ProtocolError(f"RESULT reply of {len(data)} bytes, expected {1 + 4 * n}")
        return data[0], list(struct.unpack(f"<{n}i", data[1:]))

    def classify(self, window):
        """Classify one int8 window (n_frames, n_mfcc), frame-major: RESET, FEATURES..., RUN, RESULT."""
        info = self.identity
        flat = _flatten(window)
        if len(flat) != info.window:
            raise ValueError(f"window of {len(flat)} values; the device takes {info.n_frames} frames x "
                             f"{info.n_mfcc} coefficients = {info.window}")
        if any(not -128 <= v <= 127 for v in flat):
            raise ValueError("feature values must be int8 (-128..127)")
        self.reset()
        self.send_features(flat)
        self.run()
        return self.result()


def _flatten(window):
    try:
        import numpy as np
    except ImportError:     # pragma: no cover - numpy is a dependency
        return [int(v) for row in window for v in row]
    return [int(v) for v in np.asarray(window).reshape(-1)]
