"""Stream executor: what each request does on the stream board (boards/PROTOCOL.md, "Streaming"), between
the request parser, the streaming accelerator (hw/streaming.py) and the reply encoder.

    payload (index, byte) -> frame buffer (a ring, written at a tentative pointer, committed after the CRC)
                                      |
                                      v features (accelerator `i`)
    request -> checks -> FRAMES: commit | POLL | STREAM_START / RESET: drain, load, clear | IDENTIFY
            -> one reply descriptor -> reply (command, length) + reply data
    decisions (accelerator `o`), events (`e`) -> the FRAMES / POLL reply that starts after they are ready

The frame buffer is a ring of BUFFER bytes in the one 512 x 8 memory (a single iCE40 EBR), beside the
IDENTIFY payload (initial contents) and the STREAM_START payload:
    [0, BUFFER)             the ring of feature values (BUFFER = 448)
    [448, 448 + 29)         IDENTIFY payload (never written)
    [480, 480 + 14)         the last STREAM_START payload, read into the parameter registers once its CRC
                            is checked
A FRAMES payload is written from the committed write pointer on, as it arrives, but only into free room
(a byte that finds none marks the request LATE); a good request commits it (the write pointer moves),
any other leaves the committed ring as it was. The feeder hands committed values to the accelerator,
one every three cycles, whenever it takes them, so frames queue here while the engine is busy.

Replies: a request is accepted (the parser hunts again) as soon as it is checked and its reply descriptor
is set; the encoder sends that reply while the next request arrives. One descriptor is held, so a host
may have MAX_OUTSTANDING (2) requests unanswered. A FRAMES / POLL reply takes its content when its
descriptor is set: the event waiting on `e` (if any), then the decision waiting on `o` (if any; none with
events_only), each passed byte by byte from the accelerator's stream to the encoder (no copy is stored).
After any error reply, FRAMES are refused (HALTED) until a POLL: pipelined frames sent after a failed
one never reach the engine out of order.

STREAM_START and RESET wait for the previous reply to go out, feed the frames still buffered, drop the
decisions and events still coming, wait for the engine to be idle, (START: load and check the
parameters), pulse the accelerator's `clear`, and answer.

Ports
-----
request, payload : In       from RequestParser; `command`: the parser's CMD byte of the frame in progress
reply, reply_data : Out     to ReplyEncoder
features : Out(stream.Signature(signed(8)))     -> StreamingAccelerator.i
decisions : In(stream ...)  <- StreamingAccelerator.o (n_classes logits, then the class with last)
events : In(stream ...)     <- StreamingAccelerator.e
hop, smooth, refractory, threshold, keywords, events_only, clear : Out    -> the accelerator's parameters
engine_idle : In(1)         <- StreamingAccelerator.idle
streaming : Out(1)          a stream is started (STREAM_START done, no RESET since)
idle : Out(1)               nothing buffered, no request in progress, no reply pending, engine idle
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.protocol import (ERROR_REPLY, ERROR_SIZE, EVENT_SIZE, MARGIN_BYTES, MAX_PAYLOAD, REPLY_FLAG,
                                     STREAM_COMMANDS, STREAM_PARAMS_SIZE, STREAM_REPLY_HEADER, Command, ErrorCode,
                                     StreamFlag, decision_size)

from .reply_encoder import REPLY_LAYOUT
from .request_parser import PAYLOAD_LAYOUT, REQUEST_LAYOUT
from .streaming import HOP_BITS
from .streaming_detector import INDEX_BITS, REFRACTORY_BITS, SMOOTH_BITS, THRESHOLD_BITS, event_layout

__all__ = ["StreamExecutor", "BUFFER", "IDENTIFY_BASE", "PARAMS_BASE", "MEMORY_DEPTH", "max_frames_for"]

MEMORY_DEPTH = 512
BUFFER = 448                 # bytes of the frame ring
IDENTIFY_BASE = 448
PARAMS_BASE = 480
assert STREAM_PARAMS_SIZE <= MEMORY_DEPTH - PARAMS_BASE
SMOOTH_MAX = 16

# reply kinds
_EMPTY, _IDENTIFY, _STREAM, _ERROR = range(4)
# sections of a stream reply
_HEADER, _EVENT, _DECISION = range(3)


def max_frames_for(n_mfcc, buffer=BUFFER):
    """Most whole frames one FRAMES request can carry: its payload fits a frame (255 bytes) and half the
    buffer (so that MAX_OUTSTANDING requests of it fit)."""
    return min(MAX_PAYLOAD, buffer // 2) // n_mfcc


class StreamExecutor(wiring.Component):
    """Executes the stream board's requests for `n_mfcc` values a frame and `n_classes` classes;
    `max_frames`: most frames per FRAMES (default max_frames_for(n_mfcc)); `identity`: the IDENTIFY payload
    (bytes, at most 32); `defaults`: the accelerator's parameter values at power-up ({hop, smooth,
    refractory, threshold, keywords}); `attrs`: attributes of the memory."""

    def __init__(self, *, n_mfcc, n_classes, identity, defaults, max_frames=None, attrs=None):
        if max_frames is None:
            max_frames = max_frames_for(n_mfcc)
        if not isinstance(n_mfcc, int) or not 1 <= n_mfcc <= max(MAX_PAYLOAD, 1) or max_frames_for(n_mfcc) < 1:
            raise ValueError(f"a frame of {n_mfcc} values does not fit a FRAMES request and half the "
                             f"{BUFFER}-byte buffer; the stream board takes at most {min(MAX_PAYLOAD, BUFFER // 2)}")
        if not isinstance(max_frames, int) or not 1 <= max_frames <= max_frames_for(n_mfcc):
            raise ValueError(f"max_frames must be an integer in 1..{max_frames_for(n_mfcc)} for {n_mfcc} values "
                             f"a frame, not {max_frames!r}")
        if not 2 <= n_classes <= 32:
            raise ValueError(f"{n_classes} classes: the stream board's keyword mask holds 2..32")
        if len(identity) > PARAMS_BASE - IDENTIFY_BASE:
            raise ValueError(f"an IDENTIFY payload of {len(identity)} bytes does not fit "
                             f"{PARAMS_BASE - IDENTIFY_BASE}")
        self._n_mfcc, self._n_classes, self._max_frames = n_mfcc, n_classes, max_frames
        self._identity = bytes(identity)
        self._defaults = dict(defaults)
        self._attrs = dict(attrs or {})
        super().__init__({
            "request": In(stream.Signature(REQUEST_LAYOUT)),
            "payload": In(stream.Signature(PAYLOAD_LAYOUT, always_ready=True)),
            "command": In(8),
            "reply": Out(stream.Signature(REPLY_LAYOUT)),
            "reply_data": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "decisions": In(stream.Signature(data.StructLayout({"value": signed(32), "last": 1}))),
            "events": In(stream.Signature(event_layout(n_classes))),
            "hop": Out(HOP_BITS, init=self._defaults["hop"]),
            "smooth": Out(SMOOTH_BITS, init=self._defaults["smooth"]),
            "refractory": Out(REFRACTORY_BITS, init=self._defaults["refractory"]),
            "threshold": Out(THRESHOLD_BITS, init=self._defaults["threshold"]),
            "keywords": Out(n_classes, init=self._defaults["keywords"]),
            "events_only": Out(1),
            "clear": Out(1),
            "engine_idle": In(1),
            "streaming": Out(1),
            "idle": Out(1),
        })

    max_frames = property(lambda self: self._max_frames)
    buffer = property(lambda self: BUFFER)

    def elaborate(self, platform):
        m = Module()
        F, N = self._n_mfcc, self._n_classes

        init = [0] * MEMORY_DEPTH
        init[IDENTIFY_BASE:IDENTIFY_BASE + len(self._identity)] = list(self._identity)
        m.submodules.memory = memory = Memory(shape=8, depth=MEMORY_DEPTH, init=init, attrs=self._attrs)
        mem_w, mem_r = memory.write_port(), memory.read_port()

        def wrap_inc(p):
            return Mux(p == BUFFER - 1, 0, p + 1)

        # -- the ring: committed write pointer, tentative write address, read pointer, values committed ----
        wp, wa, rp = Signal(range(BUFFER)), Signal(range(BUFFER)), Signal(range(BUFFER))
        used = Signal(range(BUFFER + 1))             # committed values not yet taken by the engine
        free = Signal(range(BUFFER + 1))
        m.d.comb += free.eq(BUFFER - used)
        overrun = Signal()                           # a byte of this FRAMES payload found no room
        pl = self.payload
        with m.If(pl.valid & (self.command == Command.FRAMES)):
            with m.If(pl.payload.index < free):
                m.d.comb += [mem_w.addr.eq(wa), mem_w.data.eq(pl.payload.data), mem_w.en.eq(1)]
                m.d.sync += wa.eq(wrap_inc(wa))
            with m.Else():
                m.d.sync += overrun.eq(1)
        with m.Elif(pl.valid & (self.command == Command.STREAM_START) & (pl.payload.index < 16)):
            m.d.comb += [mem_w.addr.eq(PARAMS_BASE + pl.payload.index[:4]), mem_w.data.eq(pl.payload.data),
                         mem_w.en.eq(1)]

        # -- the feeder: committed values -> features, when the memory's read port is free ---------------
        port_taken = Signal()                        # the reply (IDENTIFY) or the parameter load reads
        have, reading = Signal(), Signal()
        value = Signal(signed(8))
        take = self.features.valid & self.features.ready
        issue = ~have & ~reading & (used != 0) & ~port_taken
        m.d.sync += reading.eq(issue)
        with m.If(reading):
            m.d.sync += [value.eq(mem_r.data), have.eq(1), rp.eq(wrap_inc(rp))]
        with m.If(take):
            m.d.sync += have.eq(0)
        m.d.comb += [self.features.valid.eq(have), self.features.payload.eq(value)]

        commit, commit_length = Signal(), Signal(8)
        m.d.sync += used.eq(used + Mux(commit, commit_length, 0) - take)
        used_after = used + Mux(commit, commit_length, 0) - take

        # -- the reply descriptor: set when a request is served, cleared when its frame is out ------------
        pend, kind = Signal(), Signal(range(4))
        reply_cmd, error_code = Signal(8), Signal(8)
        has_event, has_decision, idle_flag = Signal(), Signal(), Signal()
        buffered = Signal(16)
        section, sub, index = Signal(range(3)), Signal(4), Signal(8)
        fetched = Signal()
        streaming, halted = self.streaming, Signal()

        request = self.request.payload
        command, length = request.command, request.length
        accept = Signal()
        m.d.comb += self.request.ready.eq(accept)
        set_reply, set_kind, set_code = Signal(), Signal(range(4)), Signal(8)
        with m.If(set_reply):
            m.d.sync += [pend.eq(1), kind.eq(set_kind), reply_cmd.eq(command), error_code.eq(set_code),
                         section.eq(_HEADER), sub.eq(0), index.eq(0), fetched.eq(0),
                         has_event.eq(self.events.valid),
                         has_decision.eq(self.decisions.valid & ~self.events_only),
                         idle_flag.eq((used_after == 0) & ~have & ~reading & self.engine_idle
                                      & ~self.events.valid & ~self.decisions.valid),
                         buffered.eq(used_after)]
            with m.If(set_kind == _ERROR):
                m.d.sync += halted.eq(1)
        with m.If(accept):
            # a request that did not commit leaves the ring's committed part as it was
            m.d.sync += [wa.eq(Mux(commit, wa, wp)), overrun.eq(0)]
            with m.If(commit):
                m.d.sync += wp.eq(wa)

        def serve(reply_kind, code=0):
            m.d.comb += [set_reply.eq(1), set_kind.eq(reply_kind), set_code.eq(code), accept.eq(1)]

        # -- checks in the documented order: the parser's error, command, length, state -------------------
        known = Signal()
        m.d.comb += known.eq(Cat(*[command == int(c) for c in STREAM_COMMANDS]).any())
        frames_ok = Cat(*[length == F * k for k in range(1, self._max_frames + 1)]).any()
        bad_length = Mux(command == Command.FRAMES, ~frames_ok,
                         Mux(command == Command.STREAM_START, length != STREAM_PARAMS_SIZE, length != 0))

        # parameter registers (the accelerator's ports)
        params = [self.hop, self.smooth, self.refractory, self.threshold, self.keywords, self.events_only]
        load_index = Signal(4)
        bad_param = Signal()
        stop_only = Signal()                         # RESET: drain and clear, no parameters

        with m.FSM(name="stream_executor") as fsm:
            with m.State("IDLE"):
                with m.If(self.request.valid & ~pend):
                    with m.If(request.error != 0):
                        serve(_ERROR, request.error)
                    with m.Elif(~known):
                        serve(_ERROR, ErrorCode.UNKNOWN_COMMAND)
                    with m.Elif(bad_length):
                        serve(_ERROR, ErrorCode.BAD_LENGTH)
                    with m.Elif(((command == Command.FRAMES) | (command == Command.POLL)) & ~streaming):
                        serve(_ERROR, ErrorCode.NOT_READY)
                    with m.Elif((command == Command.FRAMES) & halted):
                        serve(_ERROR, ErrorCode.HALTED)
                    with m.Elif((command == Command.FRAMES) & overrun):
                        serve(_ERROR, ErrorCode.LATE)
                    with m.Elif(command == Command.FRAMES):
                        m.d.comb += [commit.eq(1), commit_length.eq(length)]
                        serve(_STREAM)
                    with m.Elif(command == Command.POLL):
                        m.d.sync += halted.eq(0)
                        serve(_STREAM)
                    with m.Elif(command == Command.IDENTIFY):
                        serve(_IDENTIFY)
                    with m.Else():                   # STREAM_START or RESET
                        m.d.sync += [stop_only.eq(command == Command.RESET), streaming.eq(0)]
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                # the buffered frames go in; what the old stream still gives is dropped
                m.d.comb += [self.decisions.ready.eq(1), self.events.ready.eq(1)]
                with m.If((used == 0) & ~have & ~reading & self.engine_idle & ~self.decisions.valid
                          & ~self.events.valid):
                    m.d.sync += [load_index.eq(0), fetched.eq(0), bad_param.eq(0)]
                    m.next = "CHOOSE"
            with m.State("CHOOSE"):
                with m.If(stop_only):
                    m.next = "CLEAR"
                with m.Else():
                    m.next = "LOAD"
            with m.State("LOAD"):
                # one parameter byte every two cycles: address, then data
                m.d.sync += fetched.eq(~fetched)
                with m.If(fetched):
                    byte = mem_r.data
                    m.d.sync += load_index.eq(load_index + 1)
                    self._load_byte(m, load_index, byte, bad_param)
                    with m.If(load_index == STREAM_PARAMS_SIZE - 1):
                        m.next = "CLEAR"
            with m.State("CLEAR"):
                m.d.comb += self.clear.eq(1)
                m.d.sync += halted.eq(0)
                with m.If(stop_only):
                    serve(_EMPTY)
                with m.Elif(bad_param):
                    serve(_ERROR, ErrorCode.BAD_PARAMETER)
                with m.Else():
                    m.d.sync += streaming.eq(1)
                    serve(_EMPTY)
                # (an error reply sets `halted`; a refused START leaves the stream stopped)
                m.next = "IDLE"

        # -- reply payload bytes ------------------------------------------------------------------------
        stream_length = (STREAM_REPLY_HEADER + Mux(has_event, EVENT_SIZE, 0)
                         + Mux(has_decision, decision_size(N), 0))
        reply_length = Signal(8)
        with m.Switch(kind):
            with m.Case(_EMPTY):
                m.d.comb += reply_length.eq(0)
            with m.Case(_IDENTIFY):
                m.d.comb += reply_length.eq(len(self._identity))
            with m.Case(_STREAM):
                m.d.comb += reply_length.eq(stream_length)
            with m.Case(_ERROR):
                m.d.comb += reply_length.eq(ERROR_SIZE)
        m.d.comb += [
            self.reply.valid.eq(pend),
            self.reply.payload.command.eq(Mux(kind == _ERROR, ERROR_REPLY, reply_cmd | REPLY_FLAG)),
            self.reply.payload.length.eq(reply_length),
        ]
        with m.If(self.reply.valid & self.reply.ready):
            m.d.sync += pend.eq(0)

        out = self.reply_data.payload
        sent = self.reply_data.valid & self.reply_data.ready
        with m.If(sent):
            m.d.sync += index.eq(index + 1)
        with m.Switch(kind):
            with m.Case(_IDENTIFY):
                # a memory byte is read one cycle after its address is set: fetch, then offer
                m.d.comb += [self.reply_data.valid.eq(fetched), out.eq(mem_r.data)]
                with m.If(sent):
                    m.d.sync += fetched.eq(0)
                with m.Elif(pend):
                    m.d.sync += fetched.eq(1)
            with m.Case(_ERROR):
                m.d.comb += [self.reply_data.valid.eq(1), out.eq(Mux(index[0], reply_cmd, error_code))]
            with m.Case(_STREAM):
                self._stream_bytes(m, section, sub, has_event, has_decision, idle_flag, buffered, sent)
        # the read port: the parameter load, else an IDENTIFY reply, else the feeder
        loading = fsm.ongoing("LOAD")
        reply_reads = pend & (kind == _IDENTIFY)
        m.d.comb += [port_taken.eq(loading | reply_reads),
                     mem_r.addr.eq(Mux(loading, PARAMS_BASE + load_index,
                                       Mux(reply_reads, IDENTIFY_BASE + index[:5], rp)))]

        m.d.comb += self.idle.eq(~pend & ~self.request.valid & (used == 0) & ~have & ~reading & self.engine_idle)
        return m

    def _load_byte(self, m, j, byte, bad):
        """Parameter byte j of the STREAM_START payload (golden.protocol.STREAM_PARAMS_FORMAT) into its
        register; `bad` collects the range checks (StreamParams.pack's)."""
        with m.Switch(j):
            with m.Case(0):
                m.d.sync += self.hop[:8].eq(byte)
            with m.Case(1):
                m.d.sync += self.hop[8:].eq(byte)
                with m.If((byte == 0) & (self.hop[:8] == 0)):
                    m.d.sync += bad.eq(1)
            with m.Case(2):
                m.d.sync += self.smooth.eq(byte)
                with m.If((byte == 0) | (byte > SMOOTH_MAX)):
                    m.d.sync += bad.eq(1)
            with m.Case(3):
                m.d.sync += self.refractory.eq(byte)
                with m.If(byte == 0):
                    m.d.sync += bad.eq(1)
            for k in range(5):                       # threshold, 40 bits on the wire, 35 kept
                with m.Case(4 + k):
                    lo, hi = 8 * k, min(8 * k + 8, THRESHOLD_BITS)
                    if lo < THRESHOLD_BITS:
                        m.d.sync += self.threshold[lo:hi].eq(byte)
                    if 8 * k + 8 > THRESHOLD_BITS:
                        with m.If(byte[THRESHOLD_BITS - 8 * k:] != 0):
                            m.d.sync += bad.eq(1)
            for k in range(4):                       # keyword mask, 32 bits on the wire, n_classes kept
                lo = 8 * k
                if lo < self._n_classes:
                    with m.Case(9 + k):
                        m.d.sync += self.keywords[lo:min(lo + 8, self._n_classes)].eq(byte)
            with m.Case(13):
                m.d.sync += self.events_only.eq(byte[0])

    def _stream_bytes(self, m, section, sub, has_event, has_decision, idle_flag, buffered, sent):
        """The FRAMES / POLL reply payload: header, then the event from `events`, then the decision from
        `decisions` (each byte passed on as the encoder takes it; the streams' ready follows the last byte
        of each beat)."""
        out = self.reply_data.payload
        e, o = self.events.payload, self.decisions.payload
        flags = Cat(has_decision, has_event, idle_flag)
        assert [StreamFlag.DECISION, StreamFlag.EVENT, StreamFlag.IDLE] == [1, 2, 4]
        after_header = Mux(has_event, _EVENT, _DECISION)
        with m.Switch(section):
            with m.Case(_HEADER):
                m.d.comb += [self.reply_data.valid.eq(1),
                             out.eq(Mux(sub == 0, flags, Mux(sub == 1, buffered[:8], buffered[8:])))]
                with m.If(sent):
                    m.d.sync += sub.eq(sub + 1)
                    with m.If(sub == STREAM_REPLY_HEADER - 1):
                        m.d.sync += [section.eq(after_header), sub.eq(0)]
            with m.Case(_EVENT):
                margin = e.margin.as_signed()
                fields = ([e.index[8 * k:8 * k + 8] for k in range(INDEX_BITS // 8)] + [e.cls]
                          + [margin.shift_right(8 * k)[:8] if 8 * k < len(margin) else Mux(margin[-1], 0xFF, 0)
                             for k in range(MARGIN_BYTES)])
                assert len(fields) == EVENT_SIZE
                m.d.comb += self.reply_data.valid.eq(1)
                with m.Switch(sub):
                    for k, field in enumerate(fields):
                        with m.Case(k):
                            m.d.comb += out.eq(field)
                with m.If(sent):
                    m.d.sync += sub.eq(sub + 1)
                    with m.If(sub == EVENT_SIZE - 1):
                        m.d.comb += self.events.ready.eq(1)
                        m.d.sync += [section.eq(_DECISION), sub.eq(0)]
            with m.Case(_DECISION):
                m.d.comb += [self.reply_data.valid.eq(self.decisions.valid),
                             out.eq(o.value.word_select(sub[:2], 8))]
                with m.If(sent):
                    m.d.sync += sub.eq(Mux(o.last, 0, sub + 1))
                    with m.If(o.last | (sub[:2] == 3)):
                        m.d.comb += self.decisions.ready.eq(1)
