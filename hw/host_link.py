"""The host link: the UART protocol engine (boards/PROTOCOL.md) between byte streams and the accelerator.

    rx bytes -> parse frame (SYNC, LEN, CMD, payload -> chunk area, CRC) -> execute -> reply -> tx bytes
                                        FEATURES: chunk area -> features (accelerator `i`)
                                        accelerator `o` -> result collector (result area)

One request is handled at a time: while a request executes and its reply goes out, received bytes are
dropped (the host waits for each reply before it sends the next request). A FEATURES payload is kept in
the chunk area until its CRC has been checked, then committed to the accelerator, so a damaged frame never
reaches the window. The last value of a window is held back in a register until RUN, which pushes it and
so starts the classification (the accelerator starts by itself on its last input value). The class and
the logits are collected whenever the accelerator emits them (4 cycles a logit, one byte a cycle; RESULT
waits for them), so RESULT can answer later, and more than once.

One 512 x 8 memory (a single iCE40 EBR) holds the chunk area, the IDENTIFY payload (initial contents) and
the RESULT payload, so those replies are read from memory rather than multiplexed from registers; STATUS,
FEATURES' count and error replies come from registers. One CRC network serves received and sent bytes.
Resources (UART included, default model, measured in a scan-chain harness, harness subtracted):
iCE40 UP5K 718 LC, 230 FF, 1 EBR, Fmax 35 MHz; ECP5-85F 956 LUT4, 233 FF, 1 DP16KD.

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

from ternkws.boards.host import (ERROR_REPLY, IDENTIFY_FORMAT, MAX_PAYLOAD, PROTOCOL_VERSION, REPLY_FLAG, STATUS_FORMAT,
                         SYNC, Command, ErrorCode, crc16, version_bytes)

from .accelerator import LOGIT_BITS

__all__ = ["HostLink", "crc16_update", "DEFAULT_MAX_CHUNK", "DEFAULT_TIMEOUT"]

DEFAULT_MAX_CHUNK = 128
DEFAULT_TIMEOUT = 0.1      # seconds of silence inside a frame before it is dropped
CYCLE_BITS = 24            # the STATUS cycle counter saturates at 2**24 - 1
MEMORY_DEPTH = 512         # [0, 256) RESULT payload, [256, 480) chunk, [480, 512) IDENTIFY payload
CHUNK_BASE = 256
IDENTIFY_BASE = 480
MAX_CHUNK = IDENTIFY_BASE - CHUNK_BASE
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
    (default max(128, n_mfcc), at most 224).
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
            max_chunk = min(MAX_CHUNK, max(DEFAULT_MAX_CHUNK, n_mfcc))
        if not isinstance(max_chunk, int) or not 1 <= max_chunk <= MAX_CHUNK:
            raise ValueError(f"max_chunk must be an integer in 1..{MAX_CHUNK}, not {max_chunk!r}")
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

        # One 512 x 8 memory (a single iCE40 EBR) holds the three byte areas, so that the reply payload of
        # IDENTIFY and RESULT is one memory read instead of a wide multiplexer:
        #   [0, 256)    RESULT payload: class, then the logits as int32 little-endian (the collector writes)
        #   [256, 480)  the chunk buffer: a FEATURES payload until its CRC is checked (the parser writes)
        #   [480, 512)  the IDENTIFY payload (initial contents, never written)
        init = [0] * MEMORY_DEPTH
        init[IDENTIFY_BASE:IDENTIFY_BASE + len(self._identity)] = list(self._identity)
        m.submodules.memory = memory = Memory(shape=8, depth=MEMORY_DEPTH, init=init)
        mem_w, mem_r = memory.write_port(), memory.read_port()

        running, result_valid, result_class = self.running, Signal(), Signal.like(self.result_class)
        m.d.comb += [self.result_valid.eq(result_valid), self.result_class.eq(result_class)]

        byte, got = self.rx.payload, self.rx.valid
        m.d.comb += self.rx.ready.eq(1)
        parser_write = Signal()          # the parser owns the write port this cycle
        length, command = Signal(8), Signal(8)
        index = Signal(8)
        crc = Signal(16, init=0xFFFF)
        count = Signal(range(W + 1))
        held = Signal(signed(8))
        timer = Signal(range(self._timeout_cycles))
        in_frame = Signal()
        cycles = Signal(CYCLE_BITS)                  # cycles of the last classification, RUN to class
        kind = Signal(_Reply)
        error_code, last_error, error_count = Signal(8), Signal(8), Signal(8)
        head = Signal(2)                             # header / CRC byte of the reply
        p = Signal(8)                                # reply payload byte
        out = Signal(8)
        sending = Signal()                           # `out` goes through the CRC this cycle
        start_run = Signal()

        # -- result collector: the class to address 0, logit bytes after it, 4 cycles per logit -------
        result_ptr = Signal(8, init=1)
        byte_sel = Signal(2)
        value = self.logits.payload.value
        with m.If(self.logits.valid & ~parser_write):
            with m.If(self.logits.payload.last):
                m.d.comb += [self.logits.ready.eq(1), mem_w.addr.eq(0), mem_w.data.eq(value[:8]),
                             mem_w.en.eq(1)]
                m.d.sync += [result_class.eq(value), result_valid.eq(1), running.eq(0), result_ptr.eq(1)]
            with m.Else():
                m.d.comb += [self.logits.ready.eq(byte_sel == 3), mem_w.addr.eq(result_ptr),
                             mem_w.data.eq(value.word_select(byte_sel, 8)), mem_w.en.eq(1)]
                m.d.sync += [result_ptr.eq(result_ptr + 1), byte_sel.eq(byte_sel + 1)]
        with m.If(self.accelerator_reset | start_run):
            m.d.sync += [result_ptr.eq(1), byte_sel.eq(0)]
        with m.If(start_run):
            m.d.sync += [running.eq(1), result_valid.eq(0), cycles.eq(0)]
        with m.Elif(running & (cycles != (1 << CYCLE_BITS) - 1)):
            m.d.sync += cycles.eq(cycles + 1)

        # -- one CRC network, for received and for sent bytes ---------------------------------------------
        crc_next = crc16_update(crc, Mux(sending, out, byte))

        # -- inter-byte timeout inside a frame -------------------------------------------------------------
        m.d.sync += timer.eq(Mux(got | ~in_frame, 0, timer + 1))
        timed_out = in_frame & ~got & (timer == self._timeout_cycles - 1)

        # -- replies: `fail` / `answer` set the reply in one place -----------------------------------------
        fail, fail_code = Signal(), Signal(8)
        answer, answer_kind = Signal(), Signal(_Reply)
        with m.If(fail):
            m.d.sync += [kind.eq(_Reply.ERROR), error_code.eq(fail_code), last_error.eq(fail_code),
                         error_count.eq(Mux(error_count == 0xFF, 0xFF, error_count + 1))]
        with m.Elif(answer):
            m.d.sync += kind.eq(answer_kind)

        def reply(reply_kind):
            m.d.comb += [answer.eq(1), answer_kind.eq(reply_kind)]
            m.next = "REPLY_HEAD"

        def error(code):
            m.d.comb += [fail.eq(1), fail_code.eq(int(code))]
            m.next = "REPLY_HEAD"

        reply_len = Signal(8)
        with m.Switch(kind):
            for reply_kind, size in ((_Reply.IDENTIFY, len(self._identity)), (_Reply.COUNT, 2),
                                     (_Reply.EMPTY, 0), (_Reply.RESULT, 1 + 4 * N),
                                     (_Reply.STATUS, STATUS_SIZE), (_Reply.ERROR, 2)):
                with m.Case(reply_kind):
                    m.d.comb += reply_len.eq(size)
        from_memory = (kind == _Reply.IDENTIFY) | (kind == _Reply.RESULT)

        is_features = command == int(Command.FEATURES)
        known = (command >= min(Command)) & (command <= max(Command))
        bad_length = Mux(is_features, (length == 0) | (length > MC), length != 0)

        with m.FSM(name="link") as fsm:
            with m.State("HUNT"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(0xFFFF), command.eq(0)]
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    error(ErrorCode.TIMEOUT)
                with m.If(got):
                    m.d.sync += [length.eq(byte), crc.eq(crc_next)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    error(ErrorCode.TIMEOUT)
                with m.If(got):
                    m.d.sync += [command.eq(byte), crc.eq(crc_next), index.eq(0)]
                    with m.If(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    error(ErrorCode.TIMEOUT)
                with m.If(got):
                    # Bytes past max_chunk are only counted: such a frame ends in BAD_LENGTH.
                    m.d.comb += [parser_write.eq(index < MC), mem_w.addr.eq(CHUNK_BASE + index),
                                 mem_w.data.eq(byte), mem_w.en.eq(index < MC)]
                    m.d.sync += [crc.eq(crc_next), index.eq(index + 1)]
                    with m.If(index == length - 1):
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    error(ErrorCode.TIMEOUT)
                with m.If(got):
                    # Both CRC bytes go through the register: a correct frame leaves it at 0.
                    m.d.sync += [crc.eq(crc_next), index.eq(index + 1)]
                    with m.If(index == 1):
                        m.next = "EXECUTE"
            with m.State("EXECUTE"):
                # Checks in the documented order: CRC, command, length, state.
                with m.If(crc != 0):
                    error(ErrorCode.BAD_CRC)
                with m.Elif(~known):
                    error(ErrorCode.UNKNOWN_COMMAND)
                with m.Elif(bad_length):
                    error(ErrorCode.BAD_LENGTH)
                with m.Elif(is_features & (count + length > W)):
                    error(ErrorCode.OVERFLOW)
                with m.Elif((command == int(Command.RUN)) & (count != W)):
                    error(ErrorCode.NOT_READY)
                with m.Else():
                    with m.Switch(command):
                        with m.Case(int(Command.IDENTIFY)):
                            reply(_Reply.IDENTIFY)
                        with m.Case(int(Command.FEATURES)):
                            m.d.sync += index.eq(0)
                            m.next = "COMMIT_READ"
                        with m.Case(int(Command.RUN)):
                            m.next = "RUN_PUSH"
                        with m.Case(int(Command.RESULT)):
                            m.next = "WAIT_RESULT"
                        with m.Case(int(Command.RESET)):
                            m.d.comb += self.accelerator_reset.eq(1)
                            m.d.sync += [count.eq(0), running.eq(0), result_valid.eq(0)]
                            reply(_Reply.EMPTY)
                        with m.Case(int(Command.STATUS)):
                            reply(_Reply.STATUS)
            with m.State("COMMIT_READ"):
                m.next = "COMMIT_PUSH"                    # the memory reads chunk byte `index`
            with m.State("COMMIT_PUSH"):
                chunk_value = mem_r.data.as_signed()
                with m.If(count == W - 1):
                    # The last value of the window waits for RUN (it is the last of this chunk too).
                    m.d.sync += [held.eq(chunk_value), count.eq(count + 1)]
                    reply(_Reply.COUNT)
                with m.Else():
                    m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(chunk_value)]
                    with m.If(self.features.ready):
                        m.d.sync += [count.eq(count + 1), index.eq(index + 1)]
                        with m.If(index == length - 1):
                            reply(_Reply.COUNT)
                        with m.Else():
                            m.next = "COMMIT_READ"
            with m.State("RUN_PUSH"):
                m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(held)]
                with m.If(self.features.ready):
                    m.d.comb += start_run.eq(1)
                    m.d.sync += count.eq(0)
                    reply(_Reply.EMPTY)
            with m.State("WAIT_RESULT"):
                # A classification in progress is bounded: wait for it, then answer.
                with m.If(~running):
                    with m.If(result_valid):
                        reply(_Reply.RESULT)
                    with m.Else():
                        error(ErrorCode.NOT_READY)
            with m.State("REPLY_HEAD"):
                # SYNC, LEN, CMD; LEN and CMD go through the CRC.
                m.d.comb += self.tx.valid.eq(1)
                with m.Switch(head):
                    with m.Case(0):
                        m.d.comb += out.eq(SYNC)
                    with m.Case(1):
                        m.d.comb += [out.eq(reply_len), sending.eq(1)]
                    with m.Default():
                        m.d.comb += [out.eq(Mux(kind == _Reply.ERROR, ERROR_REPLY, command | REPLY_FLAG)),
                                     sending.eq(1)]
                with m.If(head == 0):
                    m.d.sync += crc.eq(0xFFFF)
                with m.If(self.tx.ready):
                    with m.If(sending):
                        m.d.sync += crc.eq(crc_next)
                    m.d.sync += [head.eq(head + 1), p.eq(0)]
                    with m.If(head == 2):
                        m.d.sync += head.eq(0)
                        with m.If(reply_len == 0):
                            m.next = "REPLY_CRC"
                        with m.Else():
                            m.next = "REPLY_FETCH"
            with m.State("REPLY_FETCH"):
                m.next = "REPLY_BODY"                     # the memory reads payload byte `p`
            with m.State("REPLY_BODY"):
                m.d.comb += [self.tx.valid.eq(1), sending.eq(1)]
                with m.If(from_memory):
                    m.d.comb += out.eq(mem_r.data)
                with m.Else():
                    self._register_byte(m, out, kind, p, count, running, result_valid, error_code, command,
                                        last_error, error_count, cycles)
                with m.If(self.tx.ready):
                    m.d.sync += [crc.eq(crc_next), p.eq(p + 1)]
                    with m.If(p == reply_len - 1):
                        m.next = "REPLY_CRC"
                    with m.Else():
                        m.next = "REPLY_FETCH"
            with m.State("REPLY_CRC"):
                m.d.comb += [self.tx.valid.eq(1), out.eq(Mux(head[0], crc[:8], crc[8:]))]
                with m.If(self.tx.ready):
                    m.d.sync += head.eq(head + 1)
                    with m.If(head[0]):
                        m.d.sync += head.eq(0)
                        m.next = "HUNT"

        # Read address: the chunk byte being committed, else the reply payload byte (IDENTIFY at 480 + p,
        # RESULT at p). An address set in cycle t is read in cycle t + 1 (the *_FETCH / *_READ states).
        with m.If(fsm.ongoing("COMMIT_READ") | fsm.ongoing("COMMIT_PUSH")):
            m.d.comb += mem_r.addr.eq(CHUNK_BASE + index)
        with m.Elif(kind == _Reply.IDENTIFY):
            m.d.comb += mem_r.addr.eq(IDENTIFY_BASE + p[:5])
        with m.Else():
            m.d.comb += mem_r.addr.eq(p)
        m.d.comb += [self.tx.payload.eq(out), self.idle.eq(fsm.ongoing("HUNT") & ~running)]
        return m

    def _register_byte(self, m, out, kind, p, count, running, result_valid, error_code, command, last_error,
                       error_count, cycles):
        """Payload byte `p` of the replies built from registers: COUNT, STATUS, ERROR."""
        with m.Switch(kind):
            with m.Case(_Reply.COUNT):
                m.d.comb += out.eq(Mux(p[0], count[8:], count[:8]))
            with m.Case(_Reply.ERROR):
                m.d.comb += out.eq(Mux(p[0], command, error_code))
            with m.Case(_Reply.STATUS):
                fields = [Cat(count == self._window, running, result_valid), count[:8], count[8:], last_error,
                          error_count] + [cycles[8 * n:8 * n + 8] for n in range(4)]
                with m.Switch(p[:4]):
                    for n, field in enumerate(fields):
                        with m.Case(n):
                            m.d.comb += out.eq(field)
