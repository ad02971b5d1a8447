"""The host link: the UART protocol engine (boards/PROTOCOL.md) between byte streams and the accelerator.

    rx bytes -> parse frame (SYNC, LEN, CMD, payload -> chunk buffer, CRC) -> execute -> reply -> tx bytes
                                        FEATURES: chunk buffer -> features (accelerator `i`)
                                        accelerator `o` -> result collector (logits memory, class)

One request is handled at a time: while a request executes and its reply goes out, received bytes are
dropped (the host waits for each reply before it sends the next request). A FEATURES payload is kept in a
chunk buffer until its CRC has been checked, then committed to the accelerator, so a damaged frame never
reaches the window. The last value of a window is held back in a register until RUN, which pushes it and
so starts the classification (the accelerator starts by itself on its last input value). The logits and
the class are collected whenever the accelerator emits them (it is never back-pressured), so RESULT can
answer later, and more than once.

Ports
-----
rx : In(stream.Signature(8))                bytes from the UART receiver (always ready)
tx : Out(stream.Signature(8))               reply bytes to the UART transmitter
features : Out(stream.Signature(signed(8))) -> Accelerator.i
logits : In(stream.Signature(...))          <- Accelerator.o (n_classes logits, then the class with last)
accelerator_reset : Out(1)                  one-cycle pulse on RESET: drop the accelerator's partial window
idle : Out(1)                               hunting for a frame, no reply pending, not classifying
running : Out(1)                            a classification started by RUN has not delivered its class
result_valid, result_class : Out            the last result (for LEDs)

Timeout: inside a frame, a gap of more than `timeout` seconds (clk_freq * timeout cycles) between two
bytes ends the frame with a TIMEOUT error reply, and the parser hunts for SYNC again.
"""

import enum
import functools
import operator
import struct

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from boards.host import (ERROR_REPLY, IDENTIFY_FORMAT, MAX_PAYLOAD, PROTOCOL_VERSION, REPLY_FLAG, STATUS_FORMAT,
                         SYNC, Command, ErrorCode, crc16, version_bytes)

from .accelerator import LOGIT_BITS

__all__ = ["HostLink", "crc16_update", "DEFAULT_MAX_CHUNK", "DEFAULT_TIMEOUT"]

DEFAULT_MAX_CHUNK = 128
DEFAULT_TIMEOUT = 0.1      # seconds of silence inside a frame before it is dropped
CYCLE_BITS = 24            # the STATUS cycle counter saturates at 2**24 - 1
STATUS_SIZE = struct.calcsize(STATUS_FORMAT)


@functools.cache
def _crc_columns():
    # CRC-16/CCITT-FALSE of one byte is linear over GF(2) in (crc, byte): column i of each part is the
    # response to a single set bit.
    return ([crc16(b"\0", 1 << i) for i in range(16)], [crc16(bytes([1 << i]), 0) for i in range(8)])


def crc16_update(crc, byte):
    """Amaranth expression: the CRC-16/CCITT-FALSE register `crc` (16 bits) after one more `byte` (8 bits),
    as one XOR network (boards.host.crc16 is the reference)."""
    crc_cols, byte_cols = _crc_columns()
    bits = []
    for j in range(16):
        terms = ([crc[i] for i in range(16) if crc_cols[i] >> j & 1]
                 + [byte[i] for i in range(8) if byte_cols[i] >> j & 1])
        bits.append(functools.reduce(operator.xor, terms))
    return Cat(*bits)


class _Reply(enum.Enum):
    IDENTIFY = 0
    COUNT = 1       # FEATURES: count of values held (u16)
    EMPTY = 2       # RUN, RESET
    RESULT = 3
    STATUS = 4
    ERROR = 5


class HostLink(wiring.Component):
    """Protocol engine for `model` (its shape and id) on the accelerator configuration `config`.

    clk_freq: clock in Hz (reported by IDENTIFY; sets the timeout in cycles); baud: the UART rate (the
    timeout must span several bytes); timeout: seconds; max_chunk: most feature values per FEATURES frame
    (default max(128, n_mfcc), at most 255).
    """

    def __init__(self, model, config, clk_freq, baud, *, timeout=DEFAULT_TIMEOUT, max_chunk=None):
        try:
            self._setup(model, config, clk_freq, baud, timeout, max_chunk)
        except ValueError:
            self._MustUse__silence = True       # refused: no "created but never used" warning
            raise

    def _setup(self, model, config, clk_freq, baud, timeout, max_chunk):
        top = model.topology
        n_mfcc, n_frames, n_classes = top.n_mfcc, model.features.n_frames, top.n_classes
        if max_chunk is None:
            max_chunk = min(MAX_PAYLOAD, max(DEFAULT_MAX_CHUNK, n_mfcc))
        if not isinstance(max_chunk, int) or not 1 <= max_chunk <= MAX_PAYLOAD:
            raise ValueError(f"max_chunk must be an integer in 1..{MAX_PAYLOAD}, not {max_chunk!r}")
        if 1 + 4 * n_classes > MAX_PAYLOAD:
            raise ValueError(f"{n_classes} classes do not fit a RESULT reply (class + 4 bytes per logit in "
                             f"{MAX_PAYLOAD} bytes): the host link supports at most {(MAX_PAYLOAD - 1) // 4}")
        if n_mfcc * n_frames > 0xFFFF:
            raise ValueError(f"a window of {n_frames} x {n_mfcc} values does not fit the 16-bit count")
        for name, value in (("mixer_lanes", config.mixer_lanes), ("dw_lanes", config.dw_lanes)):
            if not 0 < value <= 0xFFFF:
                raise ValueError(f"{name}={value} does not fit IDENTIFY's 16-bit field")
        if not 0 < clk_freq < 2 ** 32 or baud <= 0:
            raise ValueError(f"clk_freq must be in 1..2**32-1 Hz and baud positive, not {clk_freq} / {baud}")
        timeout_cycles = int(round(timeout * clk_freq))
        byte_cycles = 10 * clk_freq / baud
        if timeout_cycles < 4 * byte_cycles:
            raise ValueError(f"timeout {timeout} s is {timeout_cycles} cycles, shorter than 4 bytes at {baud} "
                             f"baud ({4 * byte_cycles:.0f} cycles); use at least {4 * 10 / baud:.2g} s")
        self._n_mfcc, self._n_frames, self._n_classes = n_mfcc, n_frames, n_classes
        self._window = n_mfcc * n_frames
        self._max_chunk = max_chunk
        self._timeout_cycles = timeout_cycles
        from ternkws import __version__
        self._identity = struct.pack(
            IDENTIFY_FORMAT, PROTOCOL_VERSION, *version_bytes(__version__), bytes.fromhex(model.model_id),
            n_mfcc, n_frames, n_classes, max_chunk, config.mixer_lanes, config.dw_lanes,
            0 if top.mixer == "ternary" else 1, int(clk_freq))
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "logits": In(stream.Signature(data.StructLayout({"value": signed(LOGIT_BITS), "last": 1}))),
            "accelerator_reset": Out(1),
            "idle": Out(1),
            "running": Out(1),
            "result_valid": Out(1),
            "result_class": Out(range(max(n_classes, 2))),
        })

    @property
    def window(self):
        return self._window

    @property
    def max_chunk(self):
        return self._max_chunk

    @property
    def timeout_cycles(self):
        return self._timeout_cycles

    @property
    def identity(self):
        """The IDENTIFY reply payload (bytes)."""
        return self._identity

    def elaborate(self, platform):
        m = Module()
        W, N, MC = self._window, self._n_classes, self._max_chunk

        m.submodules.chunk = chunk = Memory(shape=8, depth=MC, init=[])
        chunk_w, chunk_r = chunk.write_port(), chunk.read_port()
        m.submodules.logit_mem = logit_mem = Memory(shape=signed(LOGIT_BITS), depth=N, init=[])
        logit_w, logit_r = logit_mem.write_port(), logit_mem.read_port()

        running, result_valid, result_class = self.running, Signal(), Signal.like(self.result_class)
        m.d.comb += [self.result_valid.eq(result_valid), self.result_class.eq(result_class)]

        # -- result collector: takes every beat of the accelerator's output ---------------------------
        collect = Signal(range(N + 1))
        m.d.comb += self.logits.ready.eq(1)
        with m.If(self.logits.valid):
            with m.If(self.logits.payload.last):
                m.d.sync += [result_class.eq(self.logits.payload.value), result_valid.eq(1), running.eq(0),
                             collect.eq(0)]
            with m.Else():
                m.d.comb += [logit_w.addr.eq(collect), logit_w.data.eq(self.logits.payload.value),
                             logit_w.en.eq(1)]
                m.d.sync += collect.eq(collect + 1)
        with m.If(self.accelerator_reset):
            m.d.sync += collect.eq(0)

        # -- request parser, executor and reply ----------------------------------------------------------
        byte, got = self.rx.payload, self.rx.valid
        m.d.comb += self.rx.ready.eq(1)
        length, command = Signal(8), Signal(8)
        index = Signal(8)
        crc = Signal(16, init=0xFFFF)
        crc_rx = crc16_update(crc, byte)
        count = Signal(range(W + 1))
        held = Signal(signed(8))
        timer = Signal(range(self._timeout_cycles))
        kind = Signal(_Reply)
        reply_len, reply_cmd, error_code = Signal(8), Signal(8), Signal(8)
        last_error, error_count = Signal(8), Signal(8)
        cycles = Signal(CYCLE_BITS)                  # cycles of the last classification, RUN to class
        k = Signal(range(MAX_PAYLOAD + 6))          # byte of the reply frame being sent

        def reply(reply_kind, size):
            m.d.sync += [kind.eq(reply_kind), reply_len.eq(size), reply_cmd.eq(command | REPLY_FLAG)]
            m.next = "REPLY_START"

        def error(code):
            m.d.sync += [kind.eq(_Reply.ERROR), reply_len.eq(2), reply_cmd.eq(ERROR_REPLY),
                         error_code.eq(code), last_error.eq(code),
                         error_count.eq(Mux(error_count == 0xFF, 0xFF, error_count + 1))]
            m.next = "REPLY_START"

        def receiving():
            # Inside a frame: restart the gap timer on each byte; a long gap ends the frame.
            m.d.sync += timer.eq(Mux(got, 0, timer + 1))
            with m.If(~got & (timer == self._timeout_cycles - 1)):
                error(int(ErrorCode.TIMEOUT))

        with m.FSM(name="link") as fsm:
            with m.State("HUNT"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(0xFFFF), command.eq(0), timer.eq(0)]
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                receiving()
                with m.If(got):
                    m.d.sync += [length.eq(byte), crc.eq(crc_rx)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                receiving()
                with m.If(got):
                    m.d.sync += [command.eq(byte), crc.eq(crc_rx), index.eq(0)]
                    with m.If(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receiving()
                with m.If(got):
                    # Bytes past max_chunk are only counted: such a frame ends in BAD_LENGTH.
                    m.d.comb += [chunk_w.addr.eq(index), chunk_w.data.eq(byte), chunk_w.en.eq(index < MC)]
                    m.d.sync += [crc.eq(crc_rx), index.eq(index + 1)]
                    with m.If(index == length - 1):
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                receiving()
                with m.If(got):
                    # Both CRC bytes go through the register: a correct frame leaves it at 0.
                    m.d.sync += [crc.eq(crc_rx), index.eq(index + 1)]
                    with m.If(index == 1):
                        m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.If(crc != 0):
                    error(int(ErrorCode.BAD_CRC))
                with m.Else():
                    with m.Switch(command):
                        with m.Case(int(Command.IDENTIFY)):
                            with m.If(length != 0):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Else():
                                reply(_Reply.IDENTIFY, len(self._identity))
                        with m.Case(int(Command.FEATURES)):
                            with m.If((length == 0) | (length > MC)):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Elif(count + length > W):
                                error(int(ErrorCode.OVERFLOW))
                            with m.Else():
                                m.d.sync += index.eq(0)
                                m.next = "COMMIT_READ"
                        with m.Case(int(Command.RUN)):
                            with m.If(length != 0):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Elif(count != W):
                                error(int(ErrorCode.NOT_READY))
                            with m.Else():
                                m.next = "RUN_PUSH"
                        with m.Case(int(Command.RESULT)):
                            with m.If(length != 0):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Else():
                                m.next = "WAIT_RESULT"
                        with m.Case(int(Command.RESET)):
                            with m.If(length != 0):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Else():
                                m.d.comb += self.accelerator_reset.eq(1)
                                m.d.sync += [count.eq(0), running.eq(0), result_valid.eq(0)]
                                reply(_Reply.EMPTY, 0)
                        with m.Case(int(Command.STATUS)):
                            with m.If(length != 0):
                                error(int(ErrorCode.BAD_LENGTH))
                            with m.Else():
                                reply(_Reply.STATUS, STATUS_SIZE)
                        with m.Default():
                            error(int(ErrorCode.UNKNOWN_COMMAND))
            with m.State("COMMIT_READ"):
                m.d.comb += [chunk_r.addr.eq(index), chunk_r.en.eq(1)]
                m.next = "COMMIT_PUSH"
            with m.State("COMMIT_PUSH"):
                m.d.comb += chunk_r.en.eq(0)
                value = chunk_r.data.as_signed()
                with m.If(count == W - 1):
                    # The last value of the window waits for RUN (it is the last of this chunk too).
                    m.d.sync += [held.eq(value), count.eq(count + 1)]
                    reply(_Reply.COUNT, 2)
                with m.Else():
                    m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(value)]
                    with m.If(self.features.ready):
                        m.d.sync += [count.eq(count + 1), index.eq(index + 1)]
                        with m.If(index == length - 1):
                            reply(_Reply.COUNT, 2)
                        with m.Else():
                            m.next = "COMMIT_READ"
            with m.State("RUN_PUSH"):
                m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(held)]
                with m.If(self.features.ready):
                    m.d.sync += [count.eq(0), running.eq(1), result_valid.eq(0), cycles.eq(0)]
                    reply(_Reply.EMPTY, 0)
            with m.State("WAIT_RESULT"):
                # A classification in progress is bounded: wait for it, then answer.
                with m.If(~running):
                    with m.If(result_valid):
                        reply(_Reply.RESULT, 1 + 4 * N)
                    with m.Else():
                        error(int(ErrorCode.NOT_READY))
            with m.State("REPLY_START"):
                m.d.sync += [crc.eq(0xFFFF), k.eq(0)]
                m.next = "REPLY_FETCH"
            with m.State("REPLY_FETCH"):
                m.next = "REPLY_SEND"          # the logit memory reads the word of byte k
            with m.State("REPLY_SEND"):
                out = Signal(8)
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(out)]
                self._reply_byte(m, out, k, kind, reply_len, reply_cmd, crc, count, running, result_valid,
                                 result_class, logit_r, error_code, command, last_error, error_count, cycles)
                with m.If(self.tx.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If((k >= 1) & (k < reply_len + 3)):
                        m.d.sync += crc.eq(crc16_update(crc, out))
                    with m.If(k == reply_len + 4):
                        m.next = "HUNT"
                    with m.Else():
                        m.next = "REPLY_FETCH"

        with m.If(running & (cycles != (1 << CYCLE_BITS) - 1)):
            m.d.sync += cycles.eq(cycles + 1)

        # Payload byte p = k - 3 of a RESULT is byte (p - 1) % 4 of logit (p - 1) // 4.
        m.d.comb += logit_r.addr.eq((k - 4) >> 2)
        m.d.comb += self.idle.eq(fsm.ongoing("HUNT") & ~running)
        return m

    def _reply_byte(self, m, out, k, kind, reply_len, reply_cmd, crc, count, running, result_valid,
                    result_class, logit_r, error_code, command, last_error, error_count, cycles):
        W = self._window
        p = Signal(range(MAX_PAYLOAD + 6))
        m.d.comb += p.eq(k - 3)
        with m.If(k == 0):
            m.d.comb += out.eq(SYNC)
        with m.Elif(k == 1):
            m.d.comb += out.eq(reply_len)
        with m.Elif(k == 2):
            m.d.comb += out.eq(reply_cmd)
        with m.Elif(k == reply_len + 3):
            m.d.comb += out.eq(crc[8:])
        with m.Elif(k == reply_len + 4):
            m.d.comb += out.eq(crc[:8])
        with m.Else():
            with m.Switch(kind):
                with m.Case(_Reply.IDENTIFY):
                    with m.Switch(p):
                        for n, value in enumerate(self._identity):
                            with m.Case(n):
                                m.d.comb += out.eq(value)
                with m.Case(_Reply.COUNT):
                    m.d.comb += out.eq(Mux(p == 0, count[:8], count[8:]))
                with m.Case(_Reply.RESULT):
                    with m.If(p == 0):
                        m.d.comb += out.eq(result_class)
                    with m.Else():
                        m.d.comb += out.eq(logit_r.data.word_select((p - 1)[:2], 8))
                with m.Case(_Reply.STATUS):
                    with m.Switch(p):
                        with m.Case(0):
                            m.d.comb += out.eq(Cat(count == W, running, result_valid))
                        with m.Case(1):
                            m.d.comb += out.eq(count[:8])
                        with m.Case(2):
                            m.d.comb += out.eq(count[8:])
                        with m.Case(3):
                            m.d.comb += out.eq(last_error)
                        with m.Case(4):
                            m.d.comb += out.eq(error_count)
                        for n in range(4):
                            with m.Case(5 + n):
                                m.d.comb += out.eq(cycles[8 * n:8 * n + 8])
                with m.Case(_Reply.ERROR):
                    m.d.comb += out.eq(Mux(p == 0, error_code, command))
