# amaranth: UnusedElaboratable=no
"""hw/host_link.py (with the accelerator, ternkws.hw.board_core.BoardCore) in the Amaranth simulator on tiny random
models: CRC known answers, IDENTIFY, classification equal to the golden model, every error code, and a
fuzz of malformed traffic after which valid requests still work without reset. BoardTop (UART pins, LEDs)
once at the end. The Python reference of the protocol is golden/protocol.py; each part of the link has
its own test (tests/test_request_parser.py, test_request_executor.py, test_reply_encoder.py).
The first line (Amaranth's documented per-file linter option) is there because test_bad_parameters
creates refused components on purpose."""

import binascii
import random
import struct

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from ternkws.golden.network import forward_int
from ternkws.golden.protocol import (PROTOCOL_VERSION, Mode, ERROR_REPLY, IDENTIFY_FORMAT, MAX_PAYLOAD, REPLY_FLAG, SYNC, Command, ErrorCode,
                                     FrameDecoder, Identity, Status, crc16, encode_frame)
from ternkws.hw.board_core import BoardCore, BoardTop
from ternkws.hw.frame_crc import crc16_update
from ternkws.hw.host_link import HostLink
from ternkws.sim.random_networks import random_case
from ternkws import __version__

CLK = 1_000_000
BAUD = 250_000          # 4 clocks per bit (BoardCore has no UART: the rate only bounds the timeout from below)
TIMEOUT_CYCLES = 400


def _core(model, config, *, max_chunk=None, timeout_cycles=TIMEOUT_CYCLES):
    return BoardCore(model, config, CLK, BAUD, timeout=timeout_cycles / CLK, max_chunk=max_chunk)


class TB:
    """Drives BoardCore's rx byte stream and collects its tx bytes (random tx back-pressure, random gaps
    between rx bytes); `replies` are the frames decoded so far: (command, payload, crc_ok)."""

    def __init__(self, dut, *, seed=0, stall=0.0):
        self.dut, self.rng, self.stall = dut, random.Random(seed), stall
        self.decoder = FrameDecoder()
        self.replies = []
        self.cycle = 0
        self.last_tx = 0

    async def consumer(self, ctx):
        while True:
            ready = not (self.stall and self.rng.random() < self.stall)
            ctx.set(self.dut.tx.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(self.dut.tx.valid, self.dut.tx.payload)
            self.cycle += 1
            if ready and valid:
                self.last_tx = self.cycle
                self.replies.extend(self.decoder.feed(bytes([payload])))

    async def send(self, ctx, data):
        for byte in data:
            while self.stall and self.rng.random() < self.stall:
                ctx.set(self.dut.rx.valid, 0)
                await ctx.tick()
            ctx.set(self.dut.rx.payload, byte)
            ctx.set(self.dut.rx.valid, 1)
            await ctx.tick()
        ctx.set(self.dut.rx.valid, 0)

    async def request(self, ctx, command, payload=b"", *, raw=None, max_cycles=200_000):
        """Send one frame (or `raw` bytes) and return the one reply (command, payload)."""
        start = len(self.replies)
        await self.send(ctx, encode_frame(command, payload) if raw is None else raw)
        for _ in range(max_cycles):
            if len(self.replies) > start:
                break
            await ctx.tick()
        else:
            raise AssertionError(f"no reply to {command!r} within {max_cycles} cycles")
        await ctx.tick().repeat(3)
        assert len(self.replies) == start + 1, f"expected one reply, got {self.replies[start:]}"
        cmd, data, ok = self.replies[start]
        assert ok, "reply with a bad CRC"
        return cmd, data

    async def ok(self, ctx, command, payload=b""):
        cmd, data = await self.request(ctx, command, payload)
        assert cmd == int(command) | REPLY_FLAG, f"{command!r}: reply {cmd:#x} {data.hex()}"
        return data

    async def settle(self, ctx, quiet):
        """Tick until the link has been idle and silent for `quiet` cycles; return the replies since."""
        start, calm = len(self.replies), 0
        while calm < quiet:
            _, _, idle = await ctx.tick().sample(self.dut.idle)
            calm = calm + 1 if idle and self.cycle - self.last_tx > 2 else 0
        return self.replies[start:]

    def run(self, main):
        sim = Simulator(self.dut)
        sim.add_clock(1 / CLK)
        sim.add_testbench(self.consumer, background=True)
        sim.add_testbench(main)
        sim.run()


def _error(cmd_payload):
    cmd, data = cmd_payload
    assert cmd == ERROR_REPLY and len(data) == 2, f"expected an error reply, got {cmd:#x} {data.hex()}"
    return ErrorCode(data[0]), data[1]


def _golden(model, window):
    ref = forward_int(model.topology, model.int_arrays, window)
    return int(np.argmax(ref)), [int(v) for v in ref]


def _window_bytes(window):
    return bytes(int(v) & 0xFF for v in np.asarray(window).reshape(-1))


# -- CRC ---------------------------------------------------------------------------------------------------

def test_crc16_known_answers():
    assert crc16(b"123456789") == 0x29B1          # the CRC-16/CCITT-FALSE check value
    assert crc16(b"") == 0xFFFF
    rng = random.Random(0)
    for n in (1, 2, 7, 255):      # binascii.crc_hqx with init 0xFFFF is the same CRC, written independently
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)
    # The worked example of boards/PROTOCOL.md.
    assert encode_frame(Command.IDENTIFY).hex(" ") == "a5 00 01 0d 2e"
    assert encode_frame(Command.FEATURES, bytes([0x01, 0xFF, 0x80])).hex(" ") == "a5 03 02 01 ff 80 b7 f1"
    assert encode_frame(ERROR_REPLY, bytes([ErrorCode.BAD_CRC, Command.IDENTIFY])).hex(" ") == "a5 02 ff 01 01 85 db"


def test_crc16_rtl_equals_reference():
    """The XOR network of hw.frame_crc.crc16_update, one byte per cycle, against golden.protocol.crc16."""
    rng = random.Random(1)
    messages = [b"123456789", bytes(range(256)), bytes(rng.randrange(256) for _ in range(64))]
    crc, byte = Signal(16), Signal(8)
    m = Module()
    nxt = Signal(16)
    m.d.comb += nxt.eq(crc16_update(crc, byte))

    async def tb(ctx):
        for message in messages:
            value = 0xFFFF
            for b in message:
                ctx.set(crc, value)
                ctx.set(byte, b)
                value = ctx.get(nxt)
            assert value == crc16(message), message
        assert crc16(b"123456789") == 0x29B1

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


# -- protocol ------------------------------------------------------------------------------------------

def test_identify():
    model, config, _ = random_case(11)
    dut = _core(model, config, max_chunk=20)
    tb = TB(dut)

    async def main(ctx):
        info = Identity.unpack(await tb.ok(ctx, Command.IDENTIFY))
        assert info.protocol == PROTOCOL_VERSION == 2 and info.modes == Mode.WINDOW and info.version == __version__
        assert info.model_id == model.model_id
        assert (info.n_mfcc, info.n_frames, info.n_classes) == (
            model.topology.n_mfcc, model.features.n_frames, model.topology.n_classes)
        assert (info.mixer_lanes, info.dw_lanes, info.max_chunk, info.mixer) == (
            config.mixer_lanes, config.dw_lanes, 20, "ternary")
        assert info.clk_freq == CLK
        assert len(dut.link.identity) == struct.calcsize(IDENTIFY_FORMAT)

    tb.run(main)


@pytest.mark.parametrize("case", [1, 4])
def test_classify_equals_golden(case):
    """RESET, FEATURES in random chunks, RUN, RESULT (twice) on two windows, under random tx back-pressure
    and rx gaps; the next window's features may arrive while the previous one is being classified."""
    model, config, windows = random_case(case)
    windows = [windows[0], windows[-1][::-1].copy()]
    dut = _core(model, config, max_chunk=7)
    tb = TB(dut, seed=case, stall=0.3)
    W = dut.link.window

    async def main(ctx):
        assert await tb.ok(ctx, Command.RESET) == b""
        early, cycles = None, []
        for n, window in enumerate(windows):
            data = _window_bytes(window)
            pos = 0
            if early is not None:
                pos = early
            while pos < W:
                step = min(tb.rng.randrange(1, 8), W - pos)
                reply = await tb.ok(ctx, Command.FEATURES, data[pos:pos + step])
                pos += step
                assert int.from_bytes(reply, "little") == pos
            status = Status.unpack(await tb.ok(ctx, Command.STATUS))
            assert status.window_complete and status.count == W and not status.running
            assert await tb.ok(ctx, Command.RUN) == b""
            early = None
            if n + 1 < len(windows):
                # Stream the first values of the next window while this one is classified.
                first = _window_bytes(windows[n + 1])[:3]
                assert int.from_bytes(await tb.ok(ctx, Command.FEATURES, first), "little") == 3
                early = 3
            reply = await tb.ok(ctx, Command.RESULT)
            cls, logits = reply[0], list(struct.unpack(f"<{model.topology.n_classes}i", reply[1:]))
            assert (cls, logits) == _golden(model, window)
            assert await tb.ok(ctx, Command.RESULT) == reply        # a result can be read again
            status = Status.unpack(await tb.ok(ctx, Command.STATUS))
            assert status.result_valid and status.count == (early or 0) and status.last_error == 0
            # The schedule does not depend on the data or on the host: equal cycle counts.
            cycles.append(status.cycles)
        assert cycles[0] > 0 and cycles[0] == cycles[1]

    tb.run(main)


def test_every_error_code_then_valid_requests():
    """Each error code from a crafted request; the window survives errors; RESET clears it."""
    model, config, windows = random_case(2)
    dut = _core(model, config, max_chunk=6)
    tb = TB(dut, seed=2)
    W = dut.link.window
    data = _window_bytes(windows[0])

    async def main(ctx):
        # Not ready: nothing to run, no result.
        assert _error(await tb.request(ctx, Command.RESULT)) == (ErrorCode.NOT_READY, Command.RESULT)
        assert _error(await tb.request(ctx, Command.RUN)) == (ErrorCode.NOT_READY, Command.RUN)
        # Part of a window, then every kind of bad request.
        assert int.from_bytes(await tb.ok(ctx, Command.FEATURES, data[:5]), "little") == 5
        bad = bytearray(encode_frame(Command.FEATURES, data[5:8]))
        bad[-1] ^= 0x40
        assert _error(await tb.request(ctx, Command.FEATURES, raw=bytes(bad))) == (ErrorCode.BAD_CRC, Command.FEATURES)
        assert _error(await tb.request(ctx, Command.FEATURES, bytes(7))) == (ErrorCode.BAD_LENGTH, Command.FEATURES)
        assert _error(await tb.request(ctx, Command.FEATURES, bytes(MAX_PAYLOAD))) == (ErrorCode.BAD_LENGTH, Command.FEATURES)
        assert _error(await tb.request(ctx, Command.FEATURES)) == (ErrorCode.BAD_LENGTH, Command.FEATURES)
        for cmd in (Command.IDENTIFY, Command.RUN, Command.RESULT, Command.RESET, Command.STATUS):
            assert _error(await tb.request(ctx, cmd, b"\x00")) == (ErrorCode.BAD_LENGTH, cmd)
        for cmd in (0x00, 0x07, 0x42, 0x81, 0xFF):
            assert _error(await tb.request(ctx, cmd)) == (ErrorCode.UNKNOWN_COMMAND, cmd)
        assert _error(await tb.request(ctx, Command.RUN)) == (ErrorCode.NOT_READY, Command.RUN)
        # Truncated frames: the gap ends them (command byte reported once it was received).
        frame = encode_frame(Command.FEATURES, data[5:8])
        assert _error(await tb.request(ctx, Command.FEATURES, raw=frame[:1])) == (ErrorCode.TIMEOUT, 0)
        assert _error(await tb.request(ctx, Command.FEATURES, raw=frame[:2])) == (ErrorCode.TIMEOUT, 0)
        assert _error(await tb.request(ctx, Command.FEATURES, raw=frame[:4])) == (ErrorCode.TIMEOUT, Command.FEATURES)
        assert _error(await tb.request(ctx, Command.FEATURES, raw=frame[:-1])) == (ErrorCode.TIMEOUT, Command.FEATURES)
        # Overflow: more values than the window has left; nothing of the chunk is taken.
        left = W - 5
        if left < 6:
            assert _error(await tb.request(ctx, Command.FEATURES, bytes(left + 1))) == (ErrorCode.OVERFLOW, Command.FEATURES)
        status = Status.unpack(await tb.ok(ctx, Command.STATUS))
        assert status.count == 5 and not status.window_complete
        assert status.last_error == (ErrorCode.OVERFLOW if left < 6 else ErrorCode.TIMEOUT)
        assert status.error_count == 21 + (left < 6)
        # The window is intact: finish it, overflow at the end, classify.
        pos = 5
        while pos < W:
            step = min(6, W - pos)
            await tb.ok(ctx, Command.FEATURES, data[pos:pos + step])
            pos += step
        assert _error(await tb.request(ctx, Command.FEATURES, b"\x01")) == (ErrorCode.OVERFLOW, Command.FEATURES)
        assert await tb.ok(ctx, Command.RUN) == b""
        reply = await tb.ok(ctx, Command.RESULT)
        assert (reply[0], list(struct.unpack(f"<{model.topology.n_classes}i", reply[1:]))) == _golden(model, windows[0])
        # RESET drops a partial window and the result.
        await tb.ok(ctx, Command.FEATURES, data[:3])
        assert await tb.ok(ctx, Command.RESET) == b""
        status = Status.unpack(await tb.ok(ctx, Command.STATUS))
        assert (status.count, status.result_valid, status.running) == (0, False, False)
        assert _error(await tb.request(ctx, Command.RESULT)) == (ErrorCode.NOT_READY, Command.RESULT)
        for pos in range(0, W, 6):
            await tb.ok(ctx, Command.FEATURES, data[pos:pos + 6])
        await tb.ok(ctx, Command.RUN)
        reply = await tb.ok(ctx, Command.RESULT)
        assert (reply[0], list(struct.unpack(f"<{model.topology.n_classes}i", reply[1:]))) == _golden(model, windows[0])

    tb.run(main)


def _fuzz(case, operations, seed):
    model, config, windows = random_case(case)
    max_chunk = 5
    dut = _core(model, config, max_chunk=max_chunk, timeout_cycles=200)
    tb = TB(dut, seed=seed, stall=0.2)
    rng = random.Random(seed)
    W = dut.link.window
    data = _window_bytes(windows[0])
    quiet = dut.link.timeout_cycles + 20
    counts = {}

    def valid_frame():
        cmd = rng.choice([Command.IDENTIFY, Command.STATUS, Command.FEATURES, Command.RUN])
        return encode_frame(cmd, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
                            if cmd == Command.FEATURES else b"")

    async def main(ctx):
        await tb.ok(ctx, Command.RESET)
        count = 0
        for _ in range(operations):
            kind = rng.choice(["garbage", "truncated", "bad_crc", "long_length", "oversized", "unknown",
                               "overflow", "wrong_length", "not_ready", "features", "status"])
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "garbage":
                junk = bytes(rng.choice([SYNC, rng.randrange(256)]) for _ in range(rng.randrange(1, 30)))
                await tb.send(ctx, junk)
                for reply in await tb.settle(ctx, quiet):
                    assert reply[2], "error reply with a bad CRC"
                    assert _error(reply[:2])[0] in (ErrorCode.BAD_CRC, ErrorCode.TIMEOUT)
            elif kind == "truncated":
                frame = valid_frame()
                cut = rng.randrange(1, len(frame))
                code, cmd = _error(await tb.request(ctx, None, raw=frame[:cut]))
                assert (code, cmd) == (ErrorCode.TIMEOUT, frame[2] if cut >= 3 else 0)
            elif kind == "bad_crc":
                frame = bytearray(valid_frame())
                frame[rng.randrange(2, len(frame))] ^= 1 << rng.randrange(8)     # not SYNC, not LEN
                assert _error(await tb.request(ctx, None, raw=bytes(frame)))[0] == ErrorCode.BAD_CRC
            elif kind == "long_length":
                frame = bytearray(valid_frame())
                frame[1] += rng.randrange(1, 20)       # claims more bytes than come: the gap ends it
                assert _error(await tb.request(ctx, None, raw=bytes(frame)))[0] == ErrorCode.TIMEOUT
            elif kind == "oversized":
                n = rng.randrange(max_chunk + 1, 40)
                assert _error(await tb.request(ctx, Command.FEATURES, bytes(n))) == (ErrorCode.BAD_LENGTH, Command.FEATURES)
            elif kind == "unknown":
                cmd = rng.choice([0x00, 0x07, 0x10, 0x7F, 0x82, 0xFE])
                assert _error(await tb.request(ctx, cmd, bytes(rng.randrange(3)))) == (ErrorCode.UNKNOWN_COMMAND, cmd)
            elif kind == "overflow":
                if W - count < max_chunk:
                    n = rng.randrange(W - count + 1, max_chunk + 1)
                    assert _error(await tb.request(ctx, Command.FEATURES, bytes(n)))[0] == ErrorCode.OVERFLOW
            elif kind == "wrong_length":
                cmd = rng.choice([Command.IDENTIFY, Command.RUN, Command.RESULT, Command.STATUS, Command.RESET])
                assert _error(await tb.request(ctx, cmd, bytes(rng.randrange(1, 4))))[0] == ErrorCode.BAD_LENGTH
            elif kind == "not_ready":
                if count < W:
                    assert _error(await tb.request(ctx, Command.RUN))[0] == ErrorCode.NOT_READY
            elif kind == "features" and count < W:
                step = min(rng.randrange(1, max_chunk + 1), W - count)
                reply = await tb.ok(ctx, Command.FEATURES, data[count:count + step])
                count += step
                assert int.from_bytes(reply, "little") == count
            # After anything: a valid request gets its one reply and the window is unchanged.
            status = Status.unpack(await tb.ok(ctx, Command.STATUS))
            assert status.count == count and not status.running
        while count < W:
            step = min(max_chunk, W - count)
            await tb.ok(ctx, Command.FEATURES, data[count:count + step])
            count += step
        await tb.ok(ctx, Command.RUN)
        reply = await tb.ok(ctx, Command.RESULT)
        assert (reply[0], list(struct.unpack(f"<{model.topology.n_classes}i", reply[1:]))) == _golden(model, windows[0])

    tb.run(main)
    return counts


def test_fuzz_malformed_traffic():
    counts = _fuzz(case=3, operations=60, seed=7)
    assert len(counts) >= 9        # most kinds of fault were exercised


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_fuzz_long(seed):
    _fuzz(case=20 + seed, operations=400, seed=100 + seed)


# -- BoardTop: UART pins and LEDs ----------------------------------------------------------------------

def test_board_top_over_uart_pins():
    """IDENTIFY and one classification bit-banged on the rx pin, replies read off the tx pin; the LEDs
    show busy, then the result and its class."""
    model, config, windows = random_case(5)
    divisor = 4
    top = BoardTop(model, config, CLK, CLK // divisor, timeout=400 / CLK, n_leds=6)
    assert top.divisor == divisor
    decoder, replies = FrameDecoder(), []
    busy_seen = []

    async def reader(ctx):
        # Sample the tx line at mid-bit after each falling edge.
        while True:
            _, _, tx = await ctx.tick().sample(top.tx)
            if tx:
                continue
            await ctx.tick().repeat(divisor // 2)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(top.tx) << i
            await ctx.tick().repeat(divisor)
            assert ctx.get(top.tx) == 1, "stop bit"
            replies.extend(decoder.feed(bytes([byte])))

    async def request(ctx, command, payload=b""):
        start = len(replies)
        for byte in encode_frame(command, payload):
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(top.rx, bit)
                await ctx.tick().repeat(divisor)
        for _ in range(20_000):
            if len(replies) > start:
                break
            _, _, leds = await ctx.tick().sample(top.leds)
            busy_seen.append(leds & 1)
        assert len(replies) == start + 1 and replies[-1][2]
        cmd, data, _ = replies[-1]
        assert cmd == int(command) | REPLY_FLAG, (cmd, data)
        return data

    async def main(ctx):
        info = Identity.unpack(await request(ctx, Command.IDENTIFY))
        assert info.model_id == model.model_id
        assert ctx.get(top.leds) == 0
        await request(ctx, Command.FEATURES, _window_bytes(windows[0]))
        await request(ctx, Command.RUN)
        reply = await request(ctx, Command.RESULT)
        cls, logits = _golden(model, windows[0])
        assert reply[0] == cls and list(struct.unpack(f"<{len(logits)}i", reply[1:])) == logits
        assert any(busy_seen)
        await ctx.tick().repeat(2 * divisor)
        assert ctx.get(top.leds) == 0b10 | (cls << 2), bin(ctx.get(top.leds))
        assert ctx.get(top.idle) == 1

    sim = Simulator(top)
    sim.add_clock(1 / CLK)
    sim.add_testbench(reader, background=True)
    sim.add_testbench(main)
    sim.run()


def test_bad_parameters():
    model, config, _ = random_case(1)
    with pytest.raises(ValueError, match="max_chunk"):
        HostLink(model, config, CLK, BAUD, timeout=0.001, max_chunk=0)
    with pytest.raises(ValueError, match="max_chunk"):
        HostLink(model, config, CLK, BAUD, timeout=0.001, max_chunk=225)
    with pytest.raises(ValueError, match="timeout"):
        HostLink(model, config, CLK, BAUD, timeout=100e-6)
    with pytest.raises(ValueError, match="clocks per bit"):
        BoardTop(model, config, 12_000_000, 6_000_000)
    with pytest.raises(ValueError, match="n_leds"):
        BoardTop(model, config, CLK, BAUD, n_leds=0)


@pytest.mark.slow
def test_host_link_alone_on_up5k():
    """HostLink for the bundled model (up5k configuration, 12 MHz, 115200 baud) placed alone on the UP5K in
    the scan-chain harness, harness subtracted: one EBR for chunk, IDENTIFY and RESULT, no DSP, and the
    logic of boards/PROTOCOL.md (Resources: 619 LC, 207 FF) within a margin for placement noise."""
    from ternkws.boards.toolchain import synthesize
    from ternkws.golden import checkpoint
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.hw.synth_harness import PassThrough, SerialHarness

    harness = SerialHarness(HostLink(checkpoint.load(), CONFIGS["up5k"], 12_000_000, 115_200))
    total = synthesize(harness, "up5k", timing_allow_fail=True)
    base = synthesize(SerialHarness(PassThrough(harness.in_width, harness.out_width)), "up5k",
                      timing_allow_fail=True)
    cost = {k: total[k] - base[k] for k in ("logic_cells", "ffs", "bram", "dsp")}
    print(f"\nHostLink alone on the UP5K, harness subtracted: {cost}")
    assert cost["bram"] == 1 and cost["dsp"] == 0
    assert cost["logic_cells"] <= 660 and cost["ffs"] <= 215, cost
