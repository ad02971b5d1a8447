"""Grouped ternary mixer: a 1x1 convolution at one add per nonzero (twin: golden/ternary_mixer.py with
pattern "grouped").

acc[o] = sum_i w[o, i] * x[i], w = ternary_matrix(seed, c_out, c_in, density, "grouped"): every group of
M = group_size(density) consecutive inputs of a row holds exactly one nonzero (golden/SPEC.md section
1), so the unit spends one add on each slot (row, group) and none on a zero. It serves the 8 rows of a
row block from one read of a group's M inputs: `adds` rows per cycle (1, 2, 4 or 8), each picking one
of the M inputs by its slot's position and adding or subtracting it. No multiplier and no weight
memory: the slots come from the LFSR generator (hw/ternary_generator.py, pattern "grouped").

Ports
-----
layer : In(range(len(layers)))
    The layer (c_in, c_out, seed) of the frames that follow; change it only while `idle` is high.
i : In(stream.Signature(data.ArrayLayout(signed(8), 1)))
    One channel per beat, c_in beats per frame in channel order.
o : Out(stream.Signature(signed(acc_width)))
    Per frame c_out beats: output channel 0 .. c_out-1 in order.
idle : Out(1)
    High when no input beat of a frame is held, no frame is buffered or being computed and every output
    has been delivered.

Schedule
--------
Input: each channel is written into its byte of a word of M int8 (the group; a byte-masked write, the
last group of a frame zero-padded, which makes its slots beyond c_in add 0, as the contract says) in
one of two frame buffers (G = ceil(c_in / M) words each), so the next frame loads while the current
one computes.

Compute, per frame: a restart cycle (the generator reloads the layer's seed), then for each row block
b (8 rows), each group g, each sub-step s < 8 / adds: one issue cycle that reads word g and takes
`adds` slots (rows 8b + s*adds ..) from the generator. Three stages: issue, select (x[pos] ^ sign,
registered), accumulate (acc + (x ^ sign) + sign, one adder per row). The 8 sums of a row block move to
an output shift register in the accumulate stage of its last slot, which also clears the accumulators;
the register shifts one value per accepted output beat (rows >= c_out of a partial last block are not
sent). The last slot of a row block is issued only when the output register is empty and no other last
slot is in flight: output back-pressure stalls nothing else.

More than 8 rows per cycle (adds = 8k, k = 2, 4, ... 16): k generators serve k blocks at once, each
from its own start state (generator j starts j blocks into the matrix, a constant of the netlist) and,
after each block, skipping the k - 1 blocks the others serve (a second constant XOR network per distinct
block length, `skips` of hw/ternary_generator.py); a step is G cycles for 8k consecutive rows, which
leave the output register in channel order. Its input is still one channel per beat and its output one
value per cycle, so a frame also takes at least c_in and c_out cycles (the ecp5 preset is bound by those,
not by its adds).

Cycles per frame in steady state (input always valid, output always ready): ceil(c_out / 8) * G * 8 /
adds + 1, that is slots / adds + 1 (slots = nonzeros plus the empty slots of partial groups) when
G * 8 / adds >= rows + 3 (the output register empties in time); smaller layers stall. Default network,
adds = 8: 64 -> 128: 16 * 22 + 1 = 353, 128 -> 64: 8 * 43 + 1 = 345, 64 -> 64: 177, 128 -> 128: 689.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.ternary_generator import GROUP_ROWS, group_size, groups_per_row, row_blocks
from ternkws.golden.ternary_mixer import acc_bits
from ternkws.hw.params import check_int
from ternkws.hw.ternary_generator import TernaryGenerator, check_density, slot_layout
from ternkws.hw.ternary_mixer import _check_layers

__all__ = ["GroupedMixer", "cycles_per_frame", "ADDS"]

# Rows served per cycle: a divisor of the contract's 8-row block, or k whole blocks at once (k generators).
ADDS = (1, 2, 4, 8, 16, 32, 64, 128)


def parallel_blocks(adds):
    """k: the 8-row blocks served at once (one generator each)."""
    return max(1, adds // GROUP_ROWS)


def cycles_per_frame(c_in, c_out, adds, density):
    """Steady-state cycles per frame (input always valid, output always ready, the output register
    emptied in time: G * 8 / adds >= rows per step + 3 for adds <= 8)."""
    k = parallel_blocks(adds)
    steps = -(-row_blocks(c_out) // k)
    return steps * groups_per_row(c_in, density) * max(1, GROUP_ROWS // adds) + 1


def check_adds(adds):
    adds = check_int(adds, "adds", low=1, kind="a positive integer", bounds=">= 1")
    if adds not in ADDS:
        raise ValueError(f"the grouped mixer serves {', '.join(map(str, ADDS))} rows per cycle (a divisor of "
                         f"its {GROUP_ROWS}-row block or whole blocks), not {adds}")
    return adds


class GroupedMixer(wiring.Component):
    """Streaming grouped-ternary 1x1 convolution serving one or more layers.

    Parameters
    ----------
    layers : sequence of (c_in, c_out, seed)
    density : float
        In [1/128, 1]: groups of M = round(1 / density) inputs.
    adds : int
        Rows served (adds) per cycle: 1, 2, 4, 8 (one generator), or 16 .. 128 (whole blocks in parallel).
    """

    def __init__(self, layers, density, adds):
        self._adds = check_adds(adds)
        self._density = check_density(density)
        try:
            self._group = group_size(self._density)
        except ValueError as e:
            raise ValueError(str(e)) from None
        self._layers = _check_layers(layers, 1)
        self._acc_width = max(acc_bits(c_in) for c_in, _, _ in self._layers)
        super().__init__({
            "layer": In(range(len(self._layers))),
            "i": In(stream.Signature(data.ArrayLayout(signed(8), 1))),
            "o": Out(stream.Signature(signed(self._acc_width))),
            "idle": Out(1),
        })

    layers = property(lambda self: self._layers)
    density = property(lambda self: self._density)
    adds = property(lambda self: self._adds)
    lanes = property(lambda self: self._adds)
    group = property(lambda self: self._group)
    acc_width = property(lambda self: self._acc_width)
    in_lanes = 1

    @property
    def groups(self):
        """Frame-buffer words (groups G) per input frame of each layer."""
        return tuple(groups_per_row(c_in, self._density) for c_in, _, _ in self._layers)

    def cycles_per_frame(self, layer=0):
        c_in, c_out, _ = self._layers[layer]
        return cycles_per_frame(c_in, c_out, self._adds, self._density)

    def elaborate(self, platform):
        m = Module()
        A, M = self._adds, self._group
        k = parallel_blocks(A)              # 8-row blocks served at once, one generator each
        L = min(A, GROUP_ROWS)              # slots per cycle of each generator
        rows = GROUP_ROWS * k               # rows per step (k blocks)
        subs = GROUP_ROWS // L
        groups = self.groups
        # Steps per frame: generator j serves blocks j, j + k, j + 2k, ... (its start state lies j blocks
        # into the matrix; after each block it skips the k - 1 blocks the others serve), so a step's
        # rows are consecutive channels and leave in channel order.
        blocks = tuple(-(-row_blocks(c_out) // k) for _, c_out, _ in self._layers)
        last_rows = tuple(c_out - rows * (b - 1) for (_, c_out, _), b in zip(self._layers, blocks))
        c_ins = tuple(c_in for c_in, _, _ in self._layers)

        seeds = [seed for _, _, seed in self._layers]
        block_bits = [g * GROUP_ROWS * 8 for g in groups]       # sequence bits of one block, per layer
        gens = []
        for j in range(k):
            gen = TernaryGenerator(seeds, self._density, L, pattern="grouped",
                                   offsets=[j * b for b in block_bits] if k > 1 else None,
                                   skips=[(k - 1) * b for b in block_bits] if k > 1 else None)
            m.submodules[f"generator{j}" if k > 1 else "generator"] = gen
            m.d.comb += gen.layer.eq(self.layer)
            gens.append(gen)
        generator = gens[0]                 # valid and restart are common to all

        last_chan = Signal(range(max(c_ins)))
        last_group = Signal(range(max(groups)))
        last_block = Signal(range(max(blocks)))
        rows_in_last = Signal(range(rows + 1))
        with m.Switch(self.layer):
            for n in range(len(self._layers)):
                with m.Case(n):
                    m.d.comb += [last_chan.eq(c_ins[n] - 1), last_group.eq(groups[n] - 1),
                                 last_block.eq(blocks[n] - 1), rows_in_last.eq(last_rows[n])]

        group_bits = (max(groups) - 1).bit_length()
        m.submodules.frames = frames = Memory(
            shape=data.ArrayLayout(signed(8), M), depth=2 << group_bits, init=[])
        write = frames.write_port(granularity=1)     # one enable per byte (element)
        read = frames.read_port()

        # --- input: each channel into its byte of word `in_group` of half `write_half` ----------------
        # A frame's last channel also writes 0 into the bytes after it: a partial last group is
        # zero-padded, so its slots past c_in add 0.
        full = Signal(2)
        write_half = Signal()
        in_chan = Signal(range(max(c_ins)))
        in_pos = Signal(range(M))
        in_group = Signal(range(max(groups)))
        take = Signal()
        last_in = Signal()
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(write_half, 1)),
            take.eq(self.i.valid & self.i.ready),
            last_in.eq(in_chan == last_chan),
            write.addr.eq(Cat(in_group[:group_bits], write_half)),
        ]
        for byte in range(M):
            m.d.comb += [write.data[byte].eq(Mux(in_pos == byte, self.i.payload[0], 0)),
                         write.en[byte].eq(take & ((in_pos == byte) | (last_in & (in_pos < byte))))]
        frame_loaded = Signal()
        with m.If(take):
            with m.If((in_pos == M - 1) | last_in):
                m.d.sync += [in_pos.eq(0), in_group.eq(in_group + 1)]
            with m.Else():
                m.d.sync += in_pos.eq(in_pos + 1)
            with m.If(last_in):
                m.d.sync += [in_chan.eq(0), in_group.eq(0), write_half.eq(~write_half)]
                m.d.comb += frame_loaded.eq(1)
            with m.Else():
                m.d.sync += in_chan.eq(in_chan + 1)

        # --- stage 0: issue ----------------------------------------------------------------------
        read_half = Signal()
        group = Signal(range(max(groups)))
        sub = Signal(range(subs))
        block = Signal(range(max(blocks)))
        running = Signal()
        issue = Signal()
        frame_issued = Signal()
        last_slot = Signal()
        out_count = Signal(range(rows + 1))     # values left in the output register
        s1_valid, s1_last, s2_valid, s2_last = Signal(), Signal(), Signal(), Signal()
        hold_free = Signal()
        m.d.comb += [
            read.addr.eq(Cat(group[:group_bits], read_half)),
            last_slot.eq((group == last_group) & (sub == subs - 1)),
            hold_free.eq((out_count == 0) & ~(s1_valid & s1_last) & ~(s2_valid & s2_last)),
        ]
        for gen in gens:
            m.d.comb += gen.o.ready.eq(issue)
            if k > 1:
                m.d.comb += gen.skip.eq(last_slot)
        with m.FSM(name="schedule"):
            with m.State("WAIT"):
                with m.If(full.bit_select(read_half, 1)):
                    m.d.comb += [gen.restart.eq(1) for gen in gens]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [running.eq(1), issue.eq(generator.o.valid & (~last_slot | hold_free))]
                with m.If(issue):
                    with m.If(sub == subs - 1):
                        m.d.sync += sub.eq(0)
                        with m.If(group == last_group):
                            m.d.sync += group.eq(0)
                            with m.If(block == last_block):
                                m.d.sync += [block.eq(0), read_half.eq(~read_half)]
                                m.d.comb += frame_issued.eq(1)
                                m.next = "WAIT"
                            with m.Else():
                                m.d.sync += block.eq(block + 1)
                        with m.Else():
                            m.d.sync += group.eq(group + 1)
                    with m.Else():
                        m.d.sync += sub.eq(sub + 1)

        for half in range(2):
            with m.If(frame_loaded & (write_half == half)):
                m.d.sync += full[half].eq(1)
            with m.Elif(frame_issued & (read_half == half)):
                m.d.sync += full[half].eq(0)

        # --- stage 1: select x[pos] and fold the sign in (x ^ -neg; the +neg goes to the adder) ---------
        s1_sub = Signal(range(subs))
        s1_rows = Signal(range(rows + 1))
        s1_slots = Signal(data.ArrayLayout(slot_layout(M), A))
        m.d.sync += [s1_valid.eq(issue), s1_last.eq(issue & last_slot)]
        with m.If(issue):
            m.d.sync += [s1_sub.eq(sub), s1_slots.eq(Cat(*(gen.o.payload for gen in gens))),
                         s1_rows.eq(Mux(block == last_block, rows_in_last, rows))]
        s2_sub = Signal(range(subs))
        s2_rows = Signal(range(rows + 1))
        s2_x = [Signal(signed(8), name=f"s2_x{r}") for r in range(A)]     # x or ~x (= -x - 1)
        s2_neg = Signal(A)
        m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_valid & s1_last), s2_sub.eq(s1_sub),
                     s2_rows.eq(s1_rows)]
        for r in range(A):
            slot = s1_slots[r]
            picked = Signal(signed(8), name=f"pick{r}")
            if M == 1:
                m.d.comb += picked.eq(read.data[0])
            else:
                with m.Switch(slot.pos):
                    for byte in range(M):
                        with m.Case(byte):
                            m.d.comb += picked.eq(read.data[byte])
            m.d.sync += [s2_x[r].eq(picked ^ slot.neg.as_signed()), s2_neg[r].eq(slot.neg)]

        # --- stage 2: accumulate; the last slot of a row block moves the sums to the output register -----
        width = self._acc_width
        acc = [Signal(signed(width), name=f"acc{j}") for j in range(rows)]
        acc_next = [Signal(signed(width), name=f"acc_next{j}") for j in range(rows)]
        hold = [Signal(signed(width), name=f"hold{j}") for j in range(rows)]
        for j in range(rows):
            rr = j % GROUP_ROWS                          # row within its block
            r, s = (j // GROUP_ROWS) * L + rr % L, rr // L     # its slot lane, its sub-step
            mine = s2_valid & (s2_sub == s) if subs > 1 else s2_valid
            # acc + (x ^ -neg) + neg in one adder: the carry-in rides on an extra low bit.
            wide = Signal(signed(width + 1), name=f"sum{j}")
            m.d.comb += wide.eq(Cat(Const(1, 1), acc[j]).as_signed() + Cat(s2_neg[r], s2_x[r]).as_signed())
            # The last slot of a block is sub-step subs - 1: those rows take the sum, the others are done.
            m.d.comb += acc_next[j].eq(wide[1:] if s == subs - 1 else acc[j])
            with m.If(s2_valid & s2_last):
                m.d.sync += acc[j].eq(0)
            with m.Elif(mine):
                m.d.sync += acc[j].eq(wide[1:])

        # --- output shift register ----------------------------------------------------------------
        out_take = self.o.valid & self.o.ready
        m.d.comb += [self.o.valid.eq(out_count != 0), self.o.payload.eq(hold[0])]
        with m.If(s2_valid & s2_last):
            m.d.sync += [hold[j].eq(acc_next[j]) for j in range(rows)]
            m.d.sync += out_count.eq(s2_rows)
        with m.Elif(out_take):
            m.d.sync += [hold[j].eq(hold[j + 1]) for j in range(rows - 1)]
            m.d.sync += out_count.eq(out_count - 1)

        m.d.comb += self.idle.eq((in_chan == 0) & (in_pos == 0) & (full == 0) & ~running & ~s1_valid
                                 & ~s2_valid & (out_count == 0))
        return m
