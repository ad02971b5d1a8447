"""The stream board (hw/board_core.py StreamBoardCore: parser, hw/stream_executor.py, encoder and the
streaming accelerator) driven by the host client boards/host.py Device through the Amaranth simulator
(sim/stream_board_pysim.py), against the golden streaming model (golden/streaming.py): decisions and events
equal; malformed, refused and late FRAMES get their error replies and the frames accepted after them give
the golden model's decisions and events of the frames accepted (no reset)."""

import numpy as np
import pytest

from ternkws.boards.host import Device, DeviceError, StreamParams
from ternkws.golden.protocol import (ERROR_REPLY, REPLY_FLAG, Command, ErrorCode, Identity, Mode, StreamReply,
                                     encode_frame)
from ternkws.hw.board_core import StreamBoardCore
from ternkws.sim.random_streams import random_stream_case
from ternkws.sim.stream_board_pysim import PysimBoardPort
from ternkws.sim.streaming_pysim import golden_stream

CLOCK = 100_000_000
BAUD = 10_000_000            # 10 clocks a bit: 100 cycles a byte (the port passes a byte every 8)
TIMEOUT = 1e-4               # 10,000 cycles


def _params(det, hop, events_only=False):
    return StreamParams(hop, det.smooth, det.refractory, det.threshold, sum(1 << c for c in det.keywords),
                        events_only)


def _events(result):
    return [(e.index, e.cls, e.margin) for e in result.events]


def _long_frames(seed, n, n_mfcc):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.normal(0, 50, (n, n_mfcc))), -128, 127).astype(np.int8)


@pytest.mark.parametrize("seed", [3, 11, 26])
def test_stream_board_equals_golden(seed):
    model, config, frames, det, hop = random_stream_case(seed)
    ref = golden_stream(model, frames, det, hop)
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT)
    with PysimBoardPort(core) as port:
        dev = Device(port, timeout=30, result_timeout=60)
        info = dev.identify()
        assert info.streams and info.modes == Mode.STREAM and info.delay == core.accelerator.delay
        assert info.n_mfcc == model.topology.n_mfcc and info.max_frames * info.n_mfcc <= 255
        dev.start_stream(_params(det, hop))
        # a few frames per request, so that several requests are in flight
        r = dev.stream(frames, max_frames=3)
        rest = dev.drain()
    logits = np.asarray(r.logits + rest.logits, np.int64).reshape(-1, model.topology.n_classes)
    assert logits.shape == ref.logits.shape and len(ref.logits) >= 3
    assert np.array_equal(logits, ref.logits)
    assert r.classes + rest.classes == ref.classes
    assert _events(r) + _events(rest) == ref.events


def test_leds_show_listening_each_event_and_the_last_class():
    """leds[0] (streaming) from STREAM_START to RESET, a pulse of led_seconds per event on leds[1], and
    leds[2:] the class of the last event (StreamBoardCore.led_values; BoardTop drives the pins with them)."""
    model, config, frames, det, hop = random_stream_case(3)
    ref = golden_stream(model, frames, det, hop)
    assert len(ref.events) >= 2
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT, led_seconds=2e-6)    # 200 cycles
    with PysimBoardPort(core, watch=("streaming", "event_led", "last_class")) as port:
        dev = Device(port, timeout=30, result_timeout=60)
        dev.start_stream(_params(det, hop))
        dev.stream(frames, max_frames=1)
        dev.drain()
        dev.stop_stream()
        dev.identify()                   # one more request: the last change is sampled
    seen = port.watch
    assert [v for _, v in seen["streaming"]] == [0, 1, 0]
    assert [v for _, v in seen["event_led"]].count(1) == len(ref.events)
    collapsed = [0]                      # last_class: 0 at power-up, then each event's class
    for _, cls, _ in ref.events:
        if cls != collapsed[-1]:
            collapsed.append(cls)
    assert [v for _, v in seen["last_class"]] == collapsed


def test_events_only_and_a_second_stream():
    """events_only sends no decisions; STREAM_START in the middle starts a new stream from the reset
    state (the golden model of the second part alone)."""
    model, config, frames, det, hop = random_stream_case(11)
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT)
    with PysimBoardPort(core) as port:
        dev = Device(port, timeout=30, result_timeout=60)
        dev.start_stream(_params(det, hop, events_only=True))
        a = dev.stream(frames[:7])
        dev.start_stream(_params(det, hop))
        b = dev.stream(frames)
        rest = dev.drain()
    assert a.logits == []
    ref = golden_stream(model, frames, det, hop)
    assert np.array_equal(np.asarray(b.logits + rest.logits, np.int64).reshape(ref.logits.shape), ref.logits)
    assert _events(b) + _events(rest) == ref.events


def _request(port, dev, frame):
    port.write(frame)
    return dev.read_reply(timeout=30)


def _error(reply):
    command, payload = reply
    assert command == ERROR_REPLY, reply
    return ErrorCode(payload[0]), payload[1]


def test_malformed_and_late_frames_recover_without_reset():
    """Bad CRC, a partial frame, a cut-off frame, HALTED until a POLL, and LATE (the buffer full while the
    engine is behind): each gets its error reply, nothing of it reaches the engine, and the decisions and
    events of the whole session are the golden model's on the frames accepted, in order."""
    model, config, _, det, hop = random_stream_case(26)
    F, nc = model.topology.n_mfcc, model.topology.n_classes
    frames = _long_frames(5, 100, F)
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT)
    accepted, got_logits, got_events = [], [], []

    def collect(payload):
        r = StreamReply.unpack(payload, nc)
        if r.logits is not None:
            got_logits.append(r.logits)
        if r.event is not None:
            got_events.append((r.event.index, r.event.cls, r.event.margin))
        return r

    def ok(reply, command):
        assert reply[0] == command | REPLY_FLAG, reply
        return collect(reply[1])

    with PysimBoardPort(core) as port:
        dev = Device(port, timeout=30, result_timeout=60)
        info = dev.identify()
        # before STREAM_START: frames are refused
        assert _error(_request(port, dev, encode_frame(Command.FRAMES, frames[0].tobytes()))) == (
            ErrorCode.NOT_READY, Command.FRAMES)
        dev.start_stream(_params(det, hop))
        r = dev.stream(frames[:20])
        got_logits += r.logits
        got_events += _events(r)
        accepted += list(frames[:20])
        pos = 20

        bad = bytearray(encode_frame(Command.FRAMES, frames[pos].tobytes()))
        bad[5] ^= 0x10
        assert _error(_request(port, dev, bytes(bad))) == (ErrorCode.BAD_CRC, Command.FRAMES)
        # after an error, FRAMES wait for the POLL that acknowledges it
        assert _error(_request(port, dev, encode_frame(Command.FRAMES, frames[pos].tobytes()))) == (
            ErrorCode.HALTED, Command.FRAMES)
        ok(_request(port, dev, encode_frame(Command.POLL)), Command.POLL)
        # a partial frame: not a whole number of frames
        assert _error(_request(port, dev, encode_frame(Command.FRAMES, frames[pos].tobytes() + b"\x01"))) == (
            ErrorCode.BAD_LENGTH, Command.FRAMES)
        ok(_request(port, dev, encode_frame(Command.POLL)), Command.POLL)
        # a frame cut off after a few payload bytes: the inter-byte timeout ends it
        cut = encode_frame(Command.FRAMES, frames[pos].tobytes())[:6]
        assert _error(_request(port, dev, cut)) == (ErrorCode.TIMEOUT, Command.FRAMES)
        ok(_request(port, dev, encode_frame(Command.POLL)), Command.POLL)

        # LATE: requests of the most frames, two in flight, faster than the engine takes them
        k = info.max_frames
        late = 0
        while late == 0 and pos + 2 * k <= len(frames):
            a = encode_frame(Command.FRAMES, frames[pos:pos + k].tobytes())
            b = encode_frame(Command.FRAMES, frames[pos + k:pos + 2 * k].tobytes())
            port.write(a + b)
            for n, start in enumerate((pos, pos + k)):
                reply = dev.read_reply(timeout=30)
                if reply[0] == ERROR_REPLY:
                    code, _ = _error(reply)
                    assert code == (ErrorCode.LATE if late == 0 else ErrorCode.HALTED)
                    late += 1
                else:
                    assert late == 0, "a FRAMES after a refused one was accepted"
                    ok(reply, Command.FRAMES)
                    accepted += list(frames[start:start + k])
            pos = len(accepted)             # the accepted frames are a prefix of `frames`
        assert late >= 1, "the buffer never filled"
        ok(_request(port, dev, encode_frame(Command.POLL)), Command.POLL)

        # the stream goes on where it was accepted up to
        r = dev.stream(frames[pos:])
        accepted += list(frames[pos:])
        rest = dev.drain()
        got_logits += r.logits + rest.logits
        got_events += _events(r) + _events(rest)
    ref = golden_stream(model, np.asarray(accepted), det, hop)
    assert len(ref.logits) >= 10
    assert np.array_equal(np.asarray(got_logits, np.int64).reshape(ref.logits.shape), ref.logits)
    assert got_events == ref.events


def test_device_goes_back_after_damaged_frames():
    """Line noise on a pipelined FRAMES (it gets BAD_CRC, the one sent behind it HALTED): Device.stream
    acknowledges with a POLL and sends both again; the decisions and events equal the golden model's."""
    model, config, frames, det, hop = random_stream_case(11)
    ref = golden_stream(model, frames, det, hop)
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT)
    with PysimBoardPort(core, damage=(4,)) as port:     # writes 0, 1: IDENTIFY, START; then FRAMES
        dev = Device(port, timeout=30, result_timeout=60)
        dev.start_stream(_params(det, hop))
        r = dev.stream(frames, max_frames=2)
        rest = dev.drain()
        assert dev.stream_errors == [(ErrorCode.BAD_CRC, Command.FRAMES), (ErrorCode.HALTED, Command.FRAMES)]
    logits = np.asarray(r.logits + rest.logits, np.int64).reshape(ref.logits.shape)
    assert np.array_equal(logits, ref.logits) and _events(r) + _events(rest) == ref.events


def test_requests_the_stream_board_refuses():
    model, config, _, det, hop = random_stream_case(3)
    core = StreamBoardCore(model, config, CLOCK, BAUD, timeout=TIMEOUT)
    with PysimBoardPort(core) as port:
        dev = Device(port, timeout=30, result_timeout=60)
        info = Identity.unpack(dev.request(Command.IDENTIFY))
        assert info.model_id == model.model_id and info.protocol == 2
        for cmd in (Command.FEATURES, Command.RUN, Command.RESULT, Command.STATUS, 0x42):
            assert _error(_request(port, dev, encode_frame(cmd))) == (ErrorCode.UNKNOWN_COMMAND, cmd)
        for cmd, payload in ((Command.POLL, b"\x00"), (Command.IDENTIFY, b"\x00"), (Command.STREAM_START, bytes(13))):
            assert _error(_request(port, dev, encode_frame(cmd, payload))) == (ErrorCode.BAD_LENGTH, cmd)
        assert _error(_request(port, dev, encode_frame(Command.POLL))) == (ErrorCode.NOT_READY, Command.POLL)
        # a parameter out of range (smooth 0): refused, the stream stays stopped
        good = _params(det, hop).pack()
        bad = good[:2] + b"\x00" + good[3:]
        assert _error(_request(port, dev, encode_frame(Command.STREAM_START, bad))) == (
            ErrorCode.BAD_PARAMETER, Command.STREAM_START)
        with pytest.raises(DeviceError, match="NOT_READY"):
            dev.poll()
        dev.start_stream(_params(det, hop))
        assert dev.poll().idle
        dev.stop_stream()
        with pytest.raises(DeviceError, match="NOT_READY"):
            dev.poll()
