"""Request executor: what each request does (boards/PROTOCOL.md, "Commands" and "Errors"), between the
request parser, the accelerator and the reply encoder.

    request (command, length, error) --> checks --> FEATURES: chunk buffer -> features (accelerator `i`)
    payload (index, byte) -> chunk buffer            RUN: the held last value -> features
                                                     RESULT: wait for the result, RESET, STATUS, IDENTIFY
                                         --> reply (command, length) + reply data (payload bytes)
    logits (accelerator `o`) -> result collector (result area)

For each request it runs the checks in the documented order (the parser's error: BAD_CRC or TIMEOUT;
then command, length, state), acts, and offers one reply; it accepts the request once the reply encoder
has accepted the reply (the frame is out), which lets the parser hunt again. FEATURES payload bytes are
written to the chunk buffer as they arrive and committed to the accelerator only after the CRC has been
checked, so a damaged frame never reaches the window. The last value of a window is held back in a
register until RUN, which pushes it and so starts the classification (the accelerator starts by itself
on its last input value). The class and the logits are collected whenever the accelerator emits them
(4 cycles a logit, one byte a cycle; RESULT waits for them), so RESULT can answer later, and more than
once.

One 512 x 8 memory (a single iCE40 EBR) holds three byte areas, so that the reply payload of IDENTIFY and
RESULT is one memory read instead of a wide multiplexer:
    [0, 256)    RESULT payload: the logits as int32 little-endian from 0, the class at 255 (the collector
                writes; a RESULT reply reads from 255 on, its 8-bit byte index wrapping to 0)
    [256, 480)  the chunk buffer: a FEATURES payload until its CRC is checked (the payload stream writes)
    [480, 512)  the IDENTIFY payload (initial contents, never written)
STATUS, FEATURES' count and error replies come from registers; their bytes are read as they are sent
(a STATUS taken while a classification runs shows the cycle counter live).

Ports
-----
request : In(stream.Signature(REQUEST_LAYOUT))      from RequestParser; accepted when its reply is out
payload : In(stream.Signature(PAYLOAD_LAYOUT, always_ready=True))   from RequestParser
reply : Out(stream.Signature(REPLY_LAYOUT))         to ReplyEncoder: frame command and payload length
reply_data : Out(stream.Signature(8))               to ReplyEncoder: the payload bytes
features : Out(stream.Signature(signed(8)))         -> Accelerator.i
logits : In(stream.Signature(LOGITS_LAYOUT))        <- Accelerator.o (n_classes logits, then the class
                                                    with last)
accelerator_reset : Out(1)                          one-cycle pulse on RESET, from a register: high the cycle
                                                    after RESET is taken (no logit is taken then)
running : Out(1)                                    a classification started by RUN has not delivered its
                                                    class
result_valid, result_class : Out                    the last result
"""

import enum

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.protocol import (COUNT_SIZE, ERROR_COUNT_MAX, ERROR_REPLY, ERROR_SIZE, REPLY_FLAG,
                                     STATUS_CYCLES_MAX, STATUS_SIZE, WINDOW_COMMANDS, Command, ErrorCode,
                                     StatusFlag, result_size)

from .accelerator import LOGIT_BITS
from .reply_encoder import REPLY_LAYOUT
from .request_parser import PAYLOAD_LAYOUT, REQUEST_LAYOUT

__all__ = ["RequestExecutor", "LOGITS_LAYOUT", "MEMORY_DEPTH", "CHUNK_BASE", "IDENTIFY_BASE", "MAX_CHUNK"]

LOGITS_LAYOUT = data.StructLayout({"value": signed(LOGIT_BITS), "last": 1})
MEMORY_DEPTH = 512
CHUNK_BASE = 256
IDENTIFY_BASE = 480
MAX_CHUNK = IDENTIFY_BASE - CHUNK_BASE          # most FEATURES values a frame may carry
CYCLE_BITS = STATUS_CYCLES_MAX.bit_length()
assert STATUS_CYCLES_MAX == (1 << CYCLE_BITS) - 1      # saturates through the increment's carry out
RESULT_CLASS = CHUNK_BASE - 1                  # the class byte; logit k's bytes at 4k .. 4k + 3


class _Reply(enum.Enum):
    IDENTIFY = 0
    COUNT = 1       # FEATURES: count of values held (u16)
    EMPTY = 2       # RUN, RESET
    RESULT = 3
    STATUS = 4
    ERROR = 5


class RequestExecutor(wiring.Component):
    """Executes requests for a window of `window` values and `n_classes` classes; `max_chunk`: most values
    per FEATURES frame (1..MAX_CHUNK); `identity`: the IDENTIFY payload (bytes, at most 32)."""

    def __init__(self, *, window, n_classes, max_chunk, identity):
        if not isinstance(max_chunk, int) or isinstance(max_chunk, bool) or not 1 <= max_chunk <= MAX_CHUNK:
            raise ValueError(f"max_chunk must be an integer in 1..{MAX_CHUNK}, not {max_chunk!r}")
        if not 1 <= window <= 0xFFFF:
            raise ValueError(f"a window of {window} values does not fit the 16-bit count")
        if not 1 <= result_size(n_classes) <= CHUNK_BASE:
            raise ValueError(f"{n_classes} classes do not fit the result area of {CHUNK_BASE} bytes")
        if len(identity) > MEMORY_DEPTH - IDENTIFY_BASE:
            raise ValueError(f"an IDENTIFY payload of {len(identity)} bytes does not fit "
                             f"{MEMORY_DEPTH - IDENTIFY_BASE}")
        self._window, self._n_classes, self._max_chunk = window, n_classes, max_chunk
        self._identity = bytes(identity)
        super().__init__({
            "request": In(stream.Signature(REQUEST_LAYOUT)),
            "payload": In(stream.Signature(PAYLOAD_LAYOUT, always_ready=True)),
            "reply": Out(stream.Signature(REPLY_LAYOUT)),
            "reply_data": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "logits": In(stream.Signature(LOGITS_LAYOUT)),
            "accelerator_reset": Out(1),
            "running": Out(1),
            "result_valid": Out(1),
            "result_class": Out(range(max(n_classes, 2))),
        })

    def elaborate(self, platform):
        m = Module()
        W, N, MC = self._window, self._n_classes, self._max_chunk

        init = [0] * MEMORY_DEPTH
        init[IDENTIFY_BASE:IDENTIFY_BASE + len(self._identity)] = list(self._identity)
        m.submodules.memory = memory = Memory(shape=8, depth=MEMORY_DEPTH, init=init)
        mem_w, mem_r = memory.write_port(), memory.read_port()

        request = self.request.payload
        command, length = request.command, request.length     # stable until the request is accepted
        running, result_valid, result_class = self.running, self.result_valid, self.result_class
        # One byte counter serves both byte loops, which never overlap: the chunk value being committed
        # (FEATURES), then the reply payload byte handed to the encoder.
        index = Signal(8)
        count = Signal(range(W + 1))                 # values held in the window
        held = Signal(signed(8))                     # the window's last value, until RUN
        cycles = Signal(CYCLE_BITS)                  # cycles of the last classification, RUN to class
        kind = Signal(_Reply)
        error_code, last_error, error_count = Signal(8), Signal(8), Signal(8)
        fetched = Signal()                           # reply payload byte `index` is on the memory's output
        start_run = Signal()

        # -- chunk buffer writes (the payload stream cannot wait) and the result collector ---------------
        # Bytes past max_chunk are not stored: such a frame ends in BAD_LENGTH.
        chunk_write = self.payload.valid & (self.payload.payload.index < MC)
        with m.If(chunk_write):
            m.d.comb += [mem_w.addr.eq(CHUNK_BASE + self.payload.payload.index),
                         mem_w.data.eq(self.payload.payload.data), mem_w.en.eq(1)]

        # Logit k's bytes to addresses 4k .. 4k + 3, one a cycle (the pointer's two low bits pick the byte),
        # the class to RESULT_CLASS: a RESULT reply reads from RESULT_CLASS on, and its 8-bit index wraps
        # to 0 after the class byte.
        result_ptr = Signal(8)
        value = self.logits.payload.value
        # The accelerator's reset is a register (its fan-out to every accelerator flip-flop starts at a
        # flip-flop, off the critical path): high the cycle after RESET; no logit is taken in that cycle.
        reset_now = Signal()
        m.d.sync += self.accelerator_reset.eq(reset_now)
        with m.If(self.logits.valid & ~chunk_write & ~self.accelerator_reset):
            # (The class beat comes with the pointer's low bits at 0: its byte is value[:8] too.)
            m.d.comb += [mem_w.addr.eq(Mux(self.logits.payload.last, RESULT_CLASS, result_ptr)),
                         mem_w.data.eq(value.word_select(result_ptr[:2], 8)), mem_w.en.eq(1),
                         self.logits.ready.eq(self.logits.payload.last | (result_ptr[:2] == 3))]
            with m.If(self.logits.payload.last):
                m.d.sync += [result_class.eq(value), result_valid.eq(1), running.eq(0), result_ptr.eq(0)]
            with m.Else():
                m.d.sync += result_ptr.eq(result_ptr + 1)
        with m.If(reset_now | start_run):
            m.d.sync += result_ptr.eq(0)
        with m.If(start_run):
            m.d.sync += [running.eq(1), result_valid.eq(0), cycles.eq(0)]
        with m.Elif(running):
            # Saturating: the increment's carry out (all ones) holds the count.
            cycles_next = Signal(CYCLE_BITS + 1)
            m.d.comb += cycles_next.eq(cycles + 1)
            with m.If(~cycles_next[CYCLE_BITS]):
                m.d.sync += cycles.eq(cycles_next[:CYCLE_BITS])

        # -- replies: `fail` / `answer` set the reply in one place -----------------------------------------
        fail, fail_code = Signal(), Signal(8)
        answer, answer_kind = Signal(), Signal(_Reply)
        with m.If(fail):
            m.d.sync += [kind.eq(_Reply.ERROR), error_code.eq(fail_code), last_error.eq(fail_code),
                         error_count.eq(Mux(error_count == ERROR_COUNT_MAX, ERROR_COUNT_MAX, error_count + 1))]
        with m.Elif(answer):
            m.d.sync += kind.eq(answer_kind)

        def reply(reply_kind):
            m.d.comb += [answer.eq(1), answer_kind.eq(reply_kind)]
            m.d.sync += [index.eq(RESULT_CLASS if reply_kind == _Reply.RESULT else 0), fetched.eq(0)]
            m.next = "REPLY"

        def error(code):
            m.d.comb += [fail.eq(1), fail_code.eq(int(code) if isinstance(code, int) else code)]
            m.d.sync += [index.eq(0), fetched.eq(0)]
            m.next = "REPLY"

        reply_len = Signal(8)
        with m.Switch(kind):
            for reply_kind, size in ((_Reply.IDENTIFY, len(self._identity)), (_Reply.COUNT, COUNT_SIZE),
                                     (_Reply.EMPTY, 0), (_Reply.RESULT, result_size(N)),
                                     (_Reply.STATUS, STATUS_SIZE), (_Reply.ERROR, ERROR_SIZE)):
                with m.Case(reply_kind):
                    m.d.comb += reply_len.eq(size)
        from_memory = (kind == _Reply.IDENTIFY) | (kind == _Reply.RESULT)

        is_features = command == Command.FEATURES
        # the window commands are 1..6 (the streaming ones, 7.., are unknown to the window board)
        assert sorted(WINDOW_COMMANDS) == list(range(min(WINDOW_COMMANDS), max(WINDOW_COMMANDS) + 1))
        known = (command >= min(WINDOW_COMMANDS)) & (command <= max(WINDOW_COMMANDS))
        bad_length = Mux(is_features, (length == 0) | (length > MC), length != 0)

        with m.FSM(name="executor") as fsm:
            with m.State("IDLE"):
                with m.If(self.request.valid):
                    # Checks in the documented order: CRC (and TIMEOUT), command, length, state.
                    with m.If(request.error != 0):
                        error(request.error)
                    with m.Elif(~known):
                        error(ErrorCode.UNKNOWN_COMMAND)
                    with m.Elif(bad_length):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Elif(is_features & (count + length > W)):
                        error(ErrorCode.OVERFLOW)
                    with m.Elif((command == Command.RUN) & (count != W)):
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
                                m.d.comb += reset_now.eq(1)
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
            with m.State("REPLY"):
                # The encoder takes exactly reply_len bytes; a memory byte is read one cycle after its
                # address is set, so each byte is fetched first.
                m.d.comb += [self.reply.valid.eq(1), self.reply_data.valid.eq(fetched)]
                with m.If(self.reply_data.valid & self.reply_data.ready):
                    m.d.sync += [index.eq(index + 1), fetched.eq(0)]
                with m.Else():
                    m.d.sync += fetched.eq(1)
                with m.If(self.reply.ready):
                    m.d.comb += self.request.ready.eq(1)
                    m.next = "IDLE"

        m.d.comb += [
            self.reply.payload.command.eq(Mux(kind == _Reply.ERROR, ERROR_REPLY, command | REPLY_FLAG)),
            self.reply.payload.length.eq(reply_len),
        ]
        with m.If(from_memory):
            m.d.comb += self.reply_data.payload.eq(mem_r.data)
        with m.Else():
            self._register_byte(m, kind, index, count, error_code, command, last_error, error_count, cycles)

        # Read address: the chunk byte being committed, else the reply payload byte (IDENTIFY at 480 + i,
        # RESULT at i). An address set in cycle t is read in cycle t + 1.
        with m.If(fsm.ongoing("COMMIT_READ") | fsm.ongoing("COMMIT_PUSH")):
            m.d.comb += mem_r.addr.eq(CHUNK_BASE + index)
        with m.Elif(kind == _Reply.IDENTIFY):
            m.d.comb += mem_r.addr.eq(IDENTIFY_BASE + index[:5])
        with m.Else():
            m.d.comb += mem_r.addr.eq(index)
        return m

    def _register_byte(self, m, kind, i, count, error_code, command, last_error, error_count, cycles):
        """Payload byte `i` of the replies built from registers: COUNT, STATUS, ERROR (little-endian)."""
        out = self.reply_data.payload
        with m.Switch(kind):
            with m.Case(_Reply.COUNT):
                m.d.comb += out.eq(Mux(i[0], count[8:], count[:8]))
            with m.Case(_Reply.ERROR):
                m.d.comb += out.eq(Mux(i[0], command, error_code))
            with m.Case(_Reply.STATUS):
                flags = Signal(8)
                for flag, bit in ((StatusFlag.WINDOW_COMPLETE, count == self._window),
                                  (StatusFlag.RUNNING, self.running), (StatusFlag.RESULT_VALID, self.result_valid)):
                    m.d.comb += flags[flag.bit_length() - 1].eq(bit)
                fields = [flags, count[:8], count[8:], last_error, error_count] + [
                    cycles[8 * n:8 * n + 8] for n in range(4)]
                with m.Switch(i[:4]):
                    for n, field in enumerate(fields):
                        with m.Case(n):
                            m.d.comb += out.eq(field)
