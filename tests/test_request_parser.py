# amaranth: UnusedElaboratable=no
"""hw/request_parser.py in the Amaranth simulator against a plain-Python reference built on
golden/protocol.py (encode_frame, FrameDecoder): good frames, bad CRCs, truncated frames that end by the
gap, garbage between frames, and bytes sent while a request waits (dropped), under random back-pressure
on the request stream and random gaps between received bytes. (First line: test_bad_timeout creates
refused parsers on purpose.)"""

import random

import pytest
from amaranth.sim import Simulator

from ternkws.golden.protocol import SYNC, Command, ErrorCode, FrameDecoder, encode_frame
from ternkws.hw.request_parser import RequestParser

TIMEOUT = 24


def ref_request(item):
    """(expected request (command, length, error) or None, expected payload stream [(index, byte)]) of one
    item of traffic, from the host side's reference."""
    kind, data = item
    if kind == "garbage":
        return None, []
    if kind == "frame":
        ((command, payload, ok),) = FrameDecoder().feed(data)
        return (command, len(payload), 0 if ok else ErrorCode.BAD_CRC), list(enumerate(payload))
    # truncated: the gap ends it; the command is known once CMD arrived, the length once LEN did
    command = data[2] if len(data) >= 3 else 0
    length = data[1] if len(data) >= 2 else None
    return (command, length, ErrorCode.TIMEOUT), list(enumerate(data[3:3 + (length or 0)]))


def random_items(rng, n):
    items = []
    for _ in range(n):
        kind = rng.choice(["frame", "frame", "bad_crc", "truncated", "long_length", "garbage"])
        command = rng.choice([*Command, 0x00, 0x7F, 0xFF])
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 8, 20])))
        frame = bytearray(encode_frame(command, payload))
        if kind == "bad_crc":
            frame[rng.randrange(2, len(frame))] ^= 1 << rng.randrange(8)    # not SYNC, not LEN
            kind = "frame"
        elif kind == "truncated":
            frame = frame[:rng.randrange(1, len(frame))]
        elif kind == "long_length":
            frame[1] = (frame[1] + rng.randrange(1, 9)) & 0xFF             # claims more bytes than come
            kind = "truncated" if frame[1] + 5 > len(frame) else "frame"
        elif kind == "garbage":
            frame = bytes(rng.choice([0x00, 0x5A, 0xFF, rng.randrange(256)]) for _ in range(rng.randrange(1, 12)))
            frame = bytes(b for b in frame if b != SYNC) or b"\x00"
        items.append((kind, bytes(frame)))
    items.append(("frame", encode_frame(Command.STATUS)))
    return items


class TB:
    """Drives `rx` (random gaps), collects `payload`, and takes requests after a random delay."""

    def __init__(self, dut, rng, *, gap=0.3, stall=0.5):
        self.dut, self.rng, self.gap, self.stall = dut, rng, gap, stall
        self.requests, self.payload = [], []
        self.cycle = 0

    async def consumer(self, ctx):
        dut = self.dut
        while True:
            ready = self.rng.random() >= self.stall
            ctx.set(dut.request.ready, ready)
            _, _, valid, request, p_valid, p = await ctx.tick().sample(
                dut.request.valid, dut.request.payload, dut.payload.valid, dut.payload.payload)
            self.cycle += 1
            if valid and ready:
                self.requests.append((request.command, request.length, request.error))
            if p_valid:
                self.payload.append((p.index, p.data))

    async def send(self, ctx, data, *, spacing=None):
        for byte in data:
            if spacing is not None:
                await ctx.tick().repeat(spacing - 1)
            else:
                while self.rng.random() < self.gap:
                    await ctx.tick()
            ctx.set(self.dut.rx.payload, byte)
            ctx.set(self.dut.rx.valid, 1)
            await ctx.tick()
            ctx.set(self.dut.rx.valid, 0)

    async def serve(self, ctx, max_cycles=10 * TIMEOUT):
        """Wait for the request (the gap may have to end the frame), sending junk while it waits:
        the parser must drop it."""
        for _ in range(max_cycles):
            if ctx.get(self.dut.request.valid):
                break
            await ctx.tick()
        else:
            raise AssertionError("no request")
        while ctx.get(self.dut.request.valid):
            if self.rng.random() < 0.5:
                ctx.set(self.dut.rx.payload, self.rng.choice([SYNC, 0x00, 0x03, self.rng.randrange(256)]))
                ctx.set(self.dut.rx.valid, 1)
            await ctx.tick()
            ctx.set(self.dut.rx.valid, 0)


@pytest.mark.parametrize("seed, stall", [(0, 0.0), (1, 0.5), (2, 0.9)])
def test_parser_equals_reference(seed, stall):
    rng = random.Random(seed)
    items = random_items(rng, 80)
    dut = RequestParser(TIMEOUT)
    tb = TB(dut, rng, stall=stall)
    expected_requests, expected_payload = [], []
    for item in items:
        request, payload = ref_request(item)
        if request is not None:
            expected_requests.append(request)
        expected_payload += payload

    async def main(ctx):
        for item in items:
            assert ctx.get(dut.idle)
            await tb.send(ctx, item[1])
            if item[0] != "garbage":
                assert not ctx.get(dut.idle)
                await tb.serve(ctx)
            await ctx.tick()
        await ctx.tick().repeat(3)
        assert ctx.get(dut.idle)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb.consumer, background=True)
    sim.add_testbench(main)
    sim.run()

    assert len(tb.requests) == len(expected_requests)
    for got, want in zip(tb.requests, expected_requests):
        if want[1] is None:           # a TIMEOUT before LEN: the length field means nothing
            got, want = (got[0], got[2]), (want[0], want[2])
        assert got == want
    assert tb.payload == expected_payload
    kinds = {ErrorCode(e) if e else 0 for _, _, e in tb.requests}
    assert kinds == {0, ErrorCode.BAD_CRC, ErrorCode.TIMEOUT}


def test_timeout_is_a_gap_of_more_than_timeout_cycles():
    """Bytes `TIMEOUT` cycles apart make a frame; one cycle more ends it with TIMEOUT (the contract of
    the `timeout` parameter of HostLink: clk_freq * timeout cycles between two bytes)."""
    frame = encode_frame(Command.FEATURES, b"\x01\x02")
    dut = RequestParser(TIMEOUT)
    tb = TB(dut, random.Random(3), stall=0.0)

    async def main(ctx):
        await tb.send(ctx, frame, spacing=TIMEOUT)
        await tb.serve(ctx)
        await tb.send(ctx, frame[:4], spacing=TIMEOUT)
        await tb.send(ctx, frame[4:5], spacing=TIMEOUT + 1)     # too late: the frame has ended
        await ctx.tick().repeat(2 * TIMEOUT)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb.consumer, background=True)
    sim.add_testbench(main)
    sim.run()
    assert tb.requests == [(Command.FEATURES, 2, 0), (Command.FEATURES, 2, ErrorCode.TIMEOUT)]
    assert tb.payload == [(0, 1), (1, 2), (0, 1)]       # the late byte was not taken


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_timeout(bad):
    with pytest.raises(ValueError, match="timeout_cycles must be a positive integer"):
        RequestParser(bad)
