# amaranth: UnusedElaboratable=no
"""hw/request_executor.py in the Amaranth simulator against a plain-Python reference of the device's side
of the protocol (boards/PROTOCOL.md: the checks in their order, the window, RUN, RESULT, RESET, STATUS,
IDENTIFY, error bookkeeping), with a fake accelerator that classifies on the window's last value when the
test lets it. Random requests (errors from the parser among them), random back-pressure on `features` and
on the reply streams, random gaps in `logits`; every reply compared byte for byte (STATUS's cycle count
exactly: from the RUN push to the class), every window the accelerator got compared with the reference.
(First line: test_bad_parameters creates refused executors on purpose.)"""

import random
import struct

import pytest
from amaranth.sim import Simulator

from ternkws.golden.protocol import (ERROR_COUNT_MAX, ERROR_REPLY, REPLY_FLAG, WINDOW_COMMANDS, Command, ErrorCode, Status,
                                     result_format)
from ternkws.hw.request_executor import MAX_CHUNK, RequestExecutor

IDENTITY = bytes(range(100, 123))


def classify(window, n_classes):
    """The fake accelerator's answer for a window: (class, logits)."""
    logits = [sum(v * (k + 1) * (1 if i % 2 else -1) for i, v in enumerate(window)) * 3001 - 70_000 * k
              for k in range(n_classes)]
    return max(range(n_classes), key=lambda k: (logits[k], -k)), logits


class Reference:
    """The executor's behaviour, request by request: execute() -> (reply command, reply payload)."""

    def __init__(self, window, n_classes, max_chunk, identity):
        self.W, self.N, self.MC, self.identity = window, n_classes, max_chunk, identity
        self.values = []            # the window so far
        self.result = None          # (class, logits)
        self.running = None         # the window being classified
        self.last_error = self.error_count = 0
        self.cycles = 0             # STATUS's cycle count: set by the test from the fake accelerator
        self.windows = []           # every window run (and not reset before its class)

    def fail(self, code, command):
        self.last_error = code
        self.error_count = min(self.error_count + 1, ERROR_COUNT_MAX)
        return ERROR_REPLY, bytes([code, command])

    def execute(self, command, payload=b"", error=0):
        length = len(payload)
        if error:
            return self.fail(error, command)
        if command not in set(WINDOW_COMMANDS):
            return self.fail(ErrorCode.UNKNOWN_COMMAND, command)
        if (length == 0 or length > self.MC) if command == Command.FEATURES else length != 0:
            return self.fail(ErrorCode.BAD_LENGTH, command)
        if command == Command.FEATURES and len(self.values) + length > self.W:
            return self.fail(ErrorCode.OVERFLOW, command)
        if command == Command.RUN and len(self.values) != self.W:
            return self.fail(ErrorCode.NOT_READY, command)
        ok = command | REPLY_FLAG
        if command == Command.IDENTIFY:
            return ok, self.identity
        if command == Command.FEATURES:
            self.values += [b - 256 if b > 127 else b for b in payload]
            return ok, struct.pack("<H", len(self.values))
        if command == Command.RUN:
            self.running, self.values, self.result = self.values, [], None
            self.windows.append(self.running)
            return ok, b""
        if command == Command.RESULT:
            if self.running is not None:
                self.result, self.running = classify(self.running, self.N), None     # RESULT waits for it
            if self.result is None:
                return self.fail(ErrorCode.NOT_READY, command)
            return ok, struct.pack(result_format(self.N), self.result[0], *self.result[1])
        if command == Command.RESET:
            if self.running is not None:
                self.windows.pop()          # the accelerator is reset: that window is never classified
            self.values, self.result, self.running = [], None, None
            return ok, b""
        return ok, Status(len(self.values) == self.W, self.running is not None, self.result is not None,
                          len(self.values), self.last_error, self.error_count, self.cycles).pack()

    def delivered(self):
        """The running classification delivered its class (before any request asked for it)."""
        self.result, self.running = classify(self.running, self.N), None


class TB:
    """Fake accelerator, fake reply encoder and the request producer around a RequestExecutor."""

    def __init__(self, dut, rng, *, window, n_classes, stall):
        self.dut, self.rng, self.stall = dut, rng, stall
        self.W, self.N = window, n_classes
        self.cycle = 0
        self.replies = []
        self.acc_window = []        # values taken for the next window
        self.pending = None         # (window, cycle its last value was taken) awaiting classification
        self.release_at = None      # the fake accelerator delivers from this cycle on (None: holds)
        self.windows = []           # windows the fake accelerator classified
        self.stopped = []           # cycles from the last value to the class (or to the reset)

    def ready(self):
        return self.rng.random() >= self.stall

    async def clock(self, ctx):
        async for _ in ctx.tick():
            self.cycle += 1

    async def accelerator_input(self, ctx):
        """Takes features with random ready; the window's last value makes it pending. accelerator_reset
        (the cycle after RESET is taken) drops the partial window and a pending one."""
        dut = self.dut
        while True:
            ready = self.ready()
            ctx.set(dut.features.ready, ready)
            _, _, valid, value, reset = await ctx.tick().sample(dut.features.valid, dut.features.payload,
                                                                 dut.accelerator_reset)
            if reset:
                # The pulse is a register: RESET was taken (and the cycle count stopped) a cycle before.
                if self.pending is not None:
                    self.stopped.append(self.cycle - 1 - self.pending[1])
                self.acc_window, self.pending = [], None
            elif valid and ready:
                self.acc_window.append(value)
                if len(self.acc_window) == self.W:
                    assert self.pending is None
                    self.pending, self.acc_window = (self.acc_window, self.cycle), []

    async def accelerator_output(self, ctx):
        """Once released, emits the pending window's logits and then the class (random gaps)."""
        dut = self.dut
        while True:
            await ctx.tick()
            if self.pending is None or self.release_at is None or self.cycle < self.release_at:
                continue
            window, start = self.pending
            self.windows.append(window)
            cls, logits = classify(window, self.N)
            for value, last in [(v, 0) for v in logits] + [(cls, 1)]:
                while self.rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.logits.payload.value, value)
                ctx.set(dut.logits.payload.last, last)
                ctx.set(dut.logits.valid, 1)
                while True:
                    _, _, taken = await ctx.tick().sample(dut.logits.ready)
                    if taken:
                        break
                ctx.set(dut.logits.valid, 0)
            self.stopped.append(self.cycle - start)
            self.pending = self.release_at = None

    async def encoder(self, ctx):
        """A fake reply encoder: takes `length` reply bytes (random ready), then the reply; the request
        must be accepted in that same cycle."""
        dut = self.dut
        while True:
            _, _, valid, header = await ctx.tick().sample(dut.reply.valid, dut.reply.payload)
            if not valid:
                continue
            data = bytearray()
            while len(data) < header.length:
                ready = self.ready()
                ctx.set(dut.reply_data.ready, ready)
                _, _, dvalid, byte, still = await ctx.tick().sample(dut.reply_data.valid, dut.reply_data.payload,
                                                                    dut.reply.valid)
                assert still, "reply withdrawn"
                if dvalid and ready:
                    data.append(byte)
            ctx.set(dut.reply_data.ready, 0)
            while not self.ready():
                await ctx.tick()
            ctx.set(dut.reply.ready, 1)
            _, _, taken, request_ready, again = await ctx.tick().sample(dut.reply.valid, dut.request.ready,
                                                                        dut.reply.payload)
            ctx.set(dut.reply.ready, 0)
            assert taken and request_ready, "the request is accepted with its reply"
            assert again == header, "reply header changed while offered"
            self.replies.append((header.command, bytes(data)))

    async def request(self, ctx, command, payload=b"", error=0):
        """Stream the payload bytes (as the parser does), then offer the request until it is served."""
        dut = self.dut
        for index, byte in enumerate(payload):
            while self.rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.payload.payload.index, index)
            ctx.set(dut.payload.payload.data, byte)
            ctx.set(dut.payload.valid, 1)
            await ctx.tick()
            ctx.set(dut.payload.valid, 0)
        ctx.set(dut.request.payload.command, command)
        ctx.set(dut.request.payload.length, len(payload) & 0xFF)
        ctx.set(dut.request.payload.error, error)
        ctx.set(dut.request.valid, 1)
        start = len(self.replies)
        for _ in range(100_000):
            _, _, taken = await ctx.tick().sample(dut.request.ready)
            if taken:
                break
        else:
            raise AssertionError(f"request {command:#x} not served")
        ctx.set(dut.request.valid, 0)
        await ctx.tick()
        assert len(self.replies) == start + 1
        return self.replies[-1]

    def run(self, main):
        sim = Simulator(self.dut)
        sim.add_clock(1e-6)
        for bench in (self.clock, self.accelerator_input, self.accelerator_output, self.encoder):
            sim.add_testbench(bench, background=True)
        sim.add_testbench(main)
        sim.run()


@pytest.mark.parametrize("seed, stall", [(0, 0.0), (1, 0.5), (2, 0.8)])
def test_executor_equals_reference(seed, stall):
    rng = random.Random(seed)
    W, N, MC = 23, 3, 6
    dut = RequestExecutor(window=W, n_classes=N, max_chunk=MC, identity=IDENTITY)
    tb = TB(dut, rng, window=W, n_classes=N, stall=stall)
    ref = Reference(W, N, MC, IDENTITY)
    seen = set()

    async def check(ctx, command, payload=b"", error=0):
        running = ref.running is not None
        want_cmd, want = ref.execute(command, payload, error)
        if command == Command.RESULT and running and want_cmd != ERROR_REPLY:
            tb.release_at = tb.cycle + rng.randrange(30)       # RESULT waits for the classification
        stopped = len(tb.stopped)
        cmd, data = await tb.request(ctx, command, payload, error)
        if len(tb.stopped) > stopped:              # RESULT waited, or RESET cancelled: STATUS shows it
            ref.cycles = tb.stopped[-1]
        assert cmd == want_cmd, (command, payload.hex(), error, cmd, data.hex())
        if command == Command.STATUS and running:
            data, want = data[:5], want[:5]        # the cycle counter is live while classifying
        assert data == want, (command, data.hex(), want.hex())
        seen.add(command if want_cmd != ERROR_REPLY else ErrorCode(data[0]))

    async def finish(ctx):
        """Let the running classification deliver its class, and wait for it."""
        n = len(tb.stopped)
        tb.release_at = tb.cycle
        for _ in range(10_000):
            if len(tb.stopped) > n:
                break
            await ctx.tick()
        else:
            raise AssertionError(f"no class delivered (pending: {tb.pending})")
        ref.delivered()
        ref.cycles = tb.stopped[-1]

    async def main(ctx):
        for _ in range(250):
            op = rng.choice(["features"] * 9 + ["run"] * 2 + ["result", "status", "identify", "reset",
                                                              "parser_error", "unknown", "bad_length", "overflow",
                                                              "finish"])
            if op == "features":
                n = min(rng.randrange(1, MC + 1), max(W - len(ref.values), 1))
                await check(ctx, Command.FEATURES, bytes(rng.randrange(256) for _ in range(n)))
            elif op == "run":
                if ref.running is not None and len(ref.values) == W:
                    await finish(ctx)              # the fake accelerator holds one window at a time
                await check(ctx, Command.RUN)
            elif op == "finish" and ref.running is not None:
                await finish(ctx)
            elif op in ("result", "status", "identify", "reset"):
                await check(ctx, Command[op.upper()])
            elif op == "parser_error":
                await check(ctx, rng.choice([0, *WINDOW_COMMANDS]), bytes(rng.randrange(3)),
                            rng.choice([ErrorCode.BAD_CRC, ErrorCode.TIMEOUT]))
            elif op == "unknown":
                await check(ctx, rng.choice([0x00, 0x07, 0x08, 0x09, 0x80, 0xFF]), bytes(rng.randrange(3)))
            elif op == "bad_length":
                command = rng.choice(list(WINDOW_COMMANDS))
                n = rng.choice([0, MC + 1, 40]) if command == Command.FEATURES else rng.randrange(1, 4)
                await check(ctx, command, bytes(n))
            elif op == "overflow" and W - len(ref.values) < MC:
                await check(ctx, Command.FEATURES, bytes(W - len(ref.values) + 1))
        if ref.running is not None:
            await finish(ctx)
        await check(ctx, Command.STATUS)

    tb.run(main)
    assert tb.windows == ref.windows and len(tb.windows) >= 3
    window_errors = set(ErrorCode) - {ErrorCode.LATE, ErrorCode.HALTED, ErrorCode.BAD_PARAMETER}     # the stream board's own
    assert seen >= set(WINDOW_COMMANDS) | window_errors, seen


def test_result_waits_for_the_classification():
    """RESULT during a classification is answered once the class arrives; STATUS meanwhile says running;
    the last value of the window reaches the accelerator only with RUN."""
    rng = random.Random(5)
    W, N = 4, 2
    dut = RequestExecutor(window=W, n_classes=N, max_chunk=4, identity=IDENTITY)
    tb = TB(dut, rng, window=W, n_classes=N, stall=0.3)

    async def main(ctx):
        assert (await tb.request(ctx, Command.FEATURES, bytes([1, 0xFF, 0x80, 0x7F])))[1] == struct.pack("<H", W)
        assert tb.acc_window == [1, -1, -128] and tb.pending is None
        assert await tb.request(ctx, Command.RUN) == (Command.RUN | REPLY_FLAG, b"")
        assert tb.pending is not None
        status = Status.unpack((await tb.request(ctx, Command.STATUS))[1])
        assert status.running and not status.result_valid and status.count == 0
        released = tb.release_at = tb.cycle + 50
        cmd, data = await tb.request(ctx, Command.RESULT)
        assert tb.cycle > released + N + 1
        cls, logits = classify([1, -1, -128, 127], N)
        assert (cmd, data) == (Command.RESULT | REPLY_FLAG, struct.pack(result_format(N), cls, *logits))
        status = Status.unpack((await tb.request(ctx, Command.STATUS))[1])
        assert status.result_valid and not status.running and status.cycles == tb.stopped[-1] > 50

    tb.run(main)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_chunk=0), "max_chunk"), (dict(max_chunk=MAX_CHUNK + 1), "max_chunk"),
    (dict(window=0x10000), "16-bit count"), (dict(n_classes=64), "result area"),
    (dict(identity=bytes(33)), "IDENTIFY payload"),
])
def test_bad_parameters(kwargs, match):
    args = dict(window=10, n_classes=2, max_chunk=4, identity=IDENTITY) | kwargs
    with pytest.raises(ValueError, match=match):
        RequestExecutor(**args)
