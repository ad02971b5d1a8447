"""Host side of the UART protocol (boards/PROTOCOL.md): `Device`, which speaks to a board (or the
simulated board) over any pyserial-like port.

    import serial
    from ternkws.boards.host import Device
    device = Device(serial.Serial("/dev/ttyUSB1", 115200))
    info = device.identify()                 # Identity(protocol=1, model_id='1a2b3c4d', ...)
    cls, logits = device.classify(window)    # window: int8 (n_frames, n_mfcc)
    # a stream board (protocol version 2, Identity.streams):
    device.start_stream(StreamParams(hop=10, smooth=5, refractory=10, threshold=t, keywords=mask))
    result = device.stream(frames)           # StreamResult: decisions (logits, class) and events so far
    result = device.drain()                  # the rest, once the engine is idle

The port needs `read(n)` (returning fewer bytes when its timeout runs out) and `write(data)`; if it has a
`timeout` attribute, Device sets it to a short poll interval and keeps its own deadlines. The protocol
itself (commands, formats, sizes, CRC, framing, FrameDecoder) is golden/protocol.py, shared with the RTL;
its names are re-exported here for the client's callers.
"""

import struct
import time

from collections import deque
from dataclasses import dataclass, field

from ternkws.golden.protocol import (ERROR_REPLY, ERROR_SIZE, ERROR_TEXT, IDENTIFY_FORMAT, MAX_OUTSTANDING,
                                     MAX_PAYLOAD, PROTOCOL_VERSION, REPLY_FLAG, STATUS_FORMAT, SYNC, COUNT_FORMAT,
                                     COUNT_SIZE, Command, ErrorCode, FrameDecoder, Identity, Status, StreamEvent,
                                     StreamParams, StreamReply, crc16, encode_frame, result_format, result_size,
                                     version_bytes)

__all__ = ["Device", "StreamResult", "LinkError", "LinkTimeout", "ProtocolError", "PortError", "DeviceError",
           "transient", "StreamParams", "StreamEvent",
           # re-exported from ternkws.golden.protocol
           "PROTOCOL_VERSION", "SYNC", "MAX_PAYLOAD", "REPLY_FLAG", "ERROR_REPLY", "Command", "ErrorCode",
           "IDENTIFY_FORMAT", "STATUS_FORMAT", "crc16", "encode_frame", "FrameDecoder", "Identity", "Status",
           "version_bytes"]


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


# Error codes the device sends when a request reached it damaged: worth sending again.
_TRANSIENT_CODES = (ErrorCode.BAD_CRC, ErrorCode.TIMEOUT)


def transient(error):
    """True for a link error that sending the request again may cure: no (complete) reply in time, a
    reply that does not parse (bad CRC), or the device saying the request reached it damaged (BAD_CRC,
    TIMEOUT). A failed port or any other device error is not."""
    if isinstance(error, (LinkTimeout, ProtocolError)):
        return True
    return isinstance(error, DeviceError) and error.code in _TRANSIENT_CODES


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
        self._decisions = self._last_buffered = 0
        self.stream_errors = []         # (code, command) of each error reply Device.stream recovered from
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

    def retrying(self, call, *args, retries=1, on_retry=None):
        """`call(*args)` (e.g. self.classify, window), sent again up to `retries` times after a transient
        error (see `transient`); `on_retry(error, attempt)` is called before each new attempt (attempt 2
        is the first retry). The last error is raised when every attempt failed; other errors at once.
        Only whole operations that start afresh are retried: classify() begins with RESET, and
        identify() and status() only read."""
        for attempt in range(1, retries + 2):
            try:
                return call(*args)
            except LinkError as e:
                if attempt > retries or not transient(e):
                    raise
                if on_retry is not None:
                    on_retry(e, attempt + 1)
                self._settle()

    def _settle(self, quiet_s=None):
        """Drop whatever is still arriving (the rest of a garbled or late reply): read until the line is
        quiet for `quiet_s` seconds (default two poll intervals), at most a second."""
        quiet_s = 2 * self.POLL if quiet_s is None else quiet_s
        end = time.monotonic() + 1.0
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet_s:
            try:
                chunk = self.port.read(256)
            except OSError as e:
                raise PortError(f"reading failed: {e}") from None
            if chunk:
                self.bytes_received += len(chunk)
                last = time.monotonic()
            elif not hasattr(self.port, "timeout"):
                time.sleep(self.POLL)
        self._drain()

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
        self._send(command, payload)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        reply, data = self._read_frame(deadline)
        if reply == ERROR_REPLY:
            if len(data) != ERROR_SIZE:
                raise ProtocolError(f"error reply of {len(data)} bytes, expected {ERROR_SIZE}")
            raise DeviceError(data[0], data[1])
        if reply != (int(command) | REPLY_FLAG) & 0xFF:
            raise ProtocolError(f"reply 0x{reply:02x} to command 0x{int(command):02x} "
                                f"(expected 0x{(int(command) | REPLY_FLAG) & 0xFF:02x})")
        return data

    # -- commands ------------------------------------------------------------------------------------

    def identify(self):
        self._identity = _unpack(Identity, self.request(Command.IDENTIFY))
        return self._identity

    @property
    def identity(self):
        return self._identity if self._identity is not None else self.identify()

    def status(self):
        return _unpack(Status, self.request(Command.STATUS))

    def reset(self):
        """Drop the partial window and the result; the device is then as after power-up."""
        self.request(Command.RESET)

    def send_features(self, values):
        """Append int8 values to the window in chunks of at most max_chunk; returns the count held."""
        data = bytes(int(v) & 0xFF for v in values)
        step, count = self.identity.max_chunk, None
        for k in range(0, len(data), step):
            reply = self.request(Command.FEATURES, data[k:k + step])
            if len(reply) != COUNT_SIZE:
                raise ProtocolError(f"FEATURES reply of {len(reply)} bytes, expected {COUNT_SIZE}")
            (count,) = struct.unpack(COUNT_FORMAT, reply)
        return count

    def run(self):
        self.request(Command.RUN)

    def result(self):
        """(class index, logits as a list of ints) of the last window run."""
        data = self.request(Command.RESULT, timeout=self.result_timeout)
        n = self.identity.n_classes
        if len(data) != result_size(n):
            raise ProtocolError(f"RESULT reply of {len(data)} bytes, expected {result_size(n)}")
        cls, *logits = struct.unpack(result_format(n), data)
        return cls, logits

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


    # -- the streaming mode (protocol version 2) ----------------------------------------------------------

    def _require_stream(self):
        info = self.identity
        if not info.streams:
            raise ProtocolError(f"the device answers the window commands only (IDENTIFY modes {info.modes:#04x}): "
                                f"build and flash the stream board (ternkws build --mode stream)")
        return info

    def start_stream(self, params):
        """STREAM_START: a new stream with `params` (StreamParams); the device waits for the frames it
        still holds, then clears the engine (timeout: result_timeout)."""
        self._require_stream()
        self.request(Command.STREAM_START, params.pack(), timeout=self.result_timeout)
        self._decisions = 0
        self._last_buffered = 0

    def stop_stream(self):
        """RESET on a stream board: the stream stops once the buffered frames went through."""
        self.request(Command.RESET, timeout=self.result_timeout)

    def poll(self):
        """One POLL: the StreamReply (what became ready)."""
        return self._stream_reply(self.request(Command.POLL))

    def _stream_reply(self, payload):
        try:
            return StreamReply.unpack(payload, self.identity.n_classes)
        except ValueError as e:
            raise ProtocolError(str(e)) from None

    def _send(self, command, payload=b""):
        frame = encode_frame(command, payload)
        try:
            self.port.write(frame)
        except OSError as e:
            raise PortError(f"writing failed: {e}") from None
        self.bytes_sent += len(frame)

    def _collect(self, reply, result):
        if reply.event is not None:
            result.events.append(reply.event)
        if reply.logits is not None:
            result.logits.append(reply.logits)
            result.classes.append(reply.cls)
        self._last_buffered = reply.buffered

    MAX_STREAM_ERRORS = 8

    def stream(self, frames, *, max_frames=None):
        """Send int8 frames (n, n_mfcc) to the started stream, pipelined: up to MAX_OUTSTANDING requests
        unanswered, each FRAMES of up to `max_frames` frames (default the device's most), never more
        values in flight than the device's buffer holds. A FRAMES refused (LATE, BAD_CRC, TIMEOUT,
        HALTED) is sent again after a POLL, so the frames enter the engine in order and once each.
        Returns the StreamResult of the replies (decisions and events that became ready meanwhile)."""
        info = self._require_stream()
        rows = [bytes(int(v) & 0xFF for v in row) for row in _rows(frames, info.n_mfcc)]
        step = min(max_frames or info.max_frames, info.max_frames)
        result = StreamResult()
        pending = deque()           # (command, first frame, frames) of the requests sent, not answered
        next_frame, errors = 0, 0
        self._drain()
        while next_frame < len(rows) or pending:
            while len(pending) < MAX_OUTSTANDING and next_frame < len(rows):
                k = min(step, len(rows) - next_frame)
                in_flight = sum(n for cmd, _, n in pending if cmd == Command.FRAMES) * info.n_mfcc
                if self._last_buffered + in_flight + k * info.n_mfcc > info.buffer:
                    if pending:
                        break           # room comes with the replies
                    self._send(Command.POLL)
                    pending.append((Command.POLL, next_frame, 0))
                    break
                self._send(Command.FRAMES, b"".join(rows[next_frame:next_frame + k]))
                pending.append((Command.FRAMES, next_frame, k))
                next_frame += k
            cmd, first, _ = pending.popleft()
            reply, data = self._read_frame(time.monotonic() + self.timeout)
            if reply == ERROR_REPLY:
                if len(data) != ERROR_SIZE:
                    raise ProtocolError(f"error reply of {len(data)} bytes, expected {ERROR_SIZE}")
                error = DeviceError(data[0], data[1])
                if data[0] not in (ErrorCode.LATE, ErrorCode.HALTED, ErrorCode.BAD_CRC, ErrorCode.TIMEOUT):
                    raise error
                errors += 1
                self.stream_errors.append((ErrorCode(data[0]), data[1]))
                if errors > self.MAX_STREAM_ERRORS:
                    raise error
                # go back: the later requests were refused too (HALTED) or carried no frames
                for c, _, _ in pending:
                    r, d = self._read_frame(time.monotonic() + self.timeout)
                    if r == ERROR_REPLY and len(d) == ERROR_SIZE:
                        self.stream_errors.append((ErrorCode(d[0]) if d[0] in set(ErrorCode) else d[0], d[1]))
                    if c == Command.FRAMES and r != ERROR_REPLY:
                        raise ProtocolError("a FRAMES request after a refused one was accepted: frames out of order")
                    if c == Command.POLL and r != ERROR_REPLY:
                        self._collect(self._stream_reply(d), result)
                pending.clear()
                next_frame = first if cmd == Command.FRAMES else next_frame
                self._collect(self.poll(), result)          # acknowledges the error (the device resumes)
                continue
            if reply != (int(cmd) | REPLY_FLAG):
                raise ProtocolError(f"reply 0x{reply:02x} to command 0x{int(cmd):02x}")
            self._collect(self._stream_reply(data), result)
        return result

    def drain(self, timeout=None):
        """POLL until the device is idle with nothing left to send: the StreamResult of the rest."""
        self._require_stream()
        result = StreamResult()
        deadline = time.monotonic() + (self.result_timeout if timeout is None else timeout)
        while True:
            reply = self.poll()
            self._collect(reply, result)
            if reply.idle and reply.event is None and reply.logits is None:
                return result
            if time.monotonic() > deadline:
                raise LinkTimeout("the stream did not become idle within the timeout")


@dataclass
class StreamResult:
    """Decisions (logits, class; in order, numbered from STREAM_START by the caller) and events
    (golden.protocol.StreamEvent) received from a stream board."""
    logits: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    events: list = field(default_factory=list)


def _rows(frames, n_mfcc):
    try:
        import numpy as np
    except ImportError:     # pragma: no cover - numpy is a dependency
        rows = [list(r) for r in frames]
    else:
        rows = np.asarray(frames).reshape(-1, n_mfcc).tolist() if len(frames) else []
    for r in rows:
        if len(r) != n_mfcc:
            raise ValueError(f"a frame of {len(r)} values; the device takes {n_mfcc}")
        if any(not -128 <= int(v) <= 127 for v in r):
            raise ValueError("feature values must be int8 (-128..127)")
    return rows


def _unpack(kind, payload):
    try:
        return kind.unpack(payload)
    except ValueError as e:
        raise ProtocolError(str(e)) from None


def _flatten(window):
    try:
        import numpy as np
    except ImportError:     # pragma: no cover - numpy is a dependency
        return [int(v) for row in window for v in row]
    return [int(v) for v in np.asarray(window).reshape(-1)]
