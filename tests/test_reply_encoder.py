"""hw/reply_encoder.py in the Amaranth simulator against golden.protocol.encode_frame: random replies
(every length 0..255 among them), the headers and the payload bytes from separate producers with random
gaps (the payload bytes of the next reply already waiting), random back-pressure on `tx`; the encoder
sends exactly encode_frame's bytes, takes exactly `length` payload bytes per reply, and accepts each
reply in the cycle its last byte goes out."""

import random

import pytest
from amaranth.sim import Simulator

from ternkws.golden.protocol import ERROR_REPLY, REPLY_FLAG, Command, encode_frame
from ternkws.hw.reply_encoder import ReplyEncoder
from ternkws.sim.pysim_streams import stream_put


def random_replies(rng, n):
    replies = [(Command.STATUS | REPLY_FLAG, b""), (ERROR_REPLY, b"\x01\x01"), (0x84, bytes(range(255)))]
    for _ in range(n):
        length = rng.choice([0, 1, 2, 9, 23, rng.randrange(256)])
        replies.append((rng.randrange(256), bytes(rng.randrange(256) for _ in range(length))))
    return replies


@pytest.mark.parametrize("seed, stall, gap", [(0, 0.0, 0.0), (1, 0.5, 0.3), (2, 0.8, 0.7)])
def test_encoder_equals_encode_frame(seed, stall, gap):
    rng = random.Random(seed)
    replies = random_replies(rng, 40)
    dut = ReplyEncoder()
    sent, accepted_at, last_byte_at = bytearray(), [], []
    cycle = [0]

    async def headers(ctx):
        for command, payload in replies:
            while rng.random() < gap:
                await ctx.tick()
            ctx.set(dut.reply.payload.command, command)
            ctx.set(dut.reply.payload.length, len(payload))
            ctx.set(dut.reply.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.reply.ready)
                if ready:
                    accepted_at.append(cycle[0])
                    break
            ctx.set(dut.reply.valid, 0)

    async def data(ctx):
        await stream_put(ctx, dut.data, b"".join(payload for _, payload in replies), rng=rng, stall=gap)

    async def consumer(ctx):
        held = None
        frame_end = len(encode_frame(*replies[0]))
        n = 0
        while True:
            ready = rng.random() >= stall
            ctx.set(dut.tx.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
            cycle[0] += 1
            if held is not None:        # a byte offered and not taken stays as it was
                assert valid and payload == held
            held = payload if valid and not ready else None
            if valid and ready:
                sent.append(payload)
                if len(sent) == frame_end:
                    last_byte_at.append(cycle[0])
                    n += 1
                    if n < len(replies):
                        frame_end += len(encode_frame(*replies[n]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(data, background=True)
    sim.add_testbench(headers)
    sim.run()
    assert bytes(sent) == b"".join(encode_frame(c, p) for c, p in replies)
    assert accepted_at == last_byte_at


def test_back_to_back_frames_take_one_cycle_a_byte():
    """With tx always ready and the data waiting, a frame of n payload bytes goes out in n + 5 cycles."""
    payload = bytes(range(10))
    dut = ReplyEncoder()
    cycles = []

    async def main(ctx):
        ctx.set(dut.tx.ready, 1)
        ctx.set(dut.reply.payload.command, 0x82)
        ctx.set(dut.reply.payload.length, len(payload))
        ctx.set(dut.reply.valid, 1)
        out, n = bytearray(), 0
        for cycle in range(100):
            ctx.set(dut.data.valid, n < len(payload))
            ctx.set(dut.data.payload, payload[n] if n < len(payload) else 0)
            _, _, valid, byte, taken, done = await ctx.tick().sample(
                dut.tx.valid, dut.tx.payload, dut.data.ready, dut.reply.ready)
            if valid:
                out.append(byte)
            n += bool(taken and n < len(payload))
            if done:
                cycles.append(cycle + 1)
                break
        assert bytes(out) == encode_frame(0x82, payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(main)
    sim.run()
    assert cycles == [len(payload) + 5]
