"""Ternary mixer: a 1x1 convolution whose weights an LFSR regenerates on chip (twin: golden/ternary_mixer.py).

acc[o] = sum_i w[o, i] * x[i] over one time frame x (c_in int8 channels), w = ternary_matrix(seed, c_out,
c_in, density). Each lane picks +x, -x or 0 by its ternary entry and an adder tree sums the lanes: no
multiplier and no weight memory. The only memory is the double-buffered input frame.

Ports
-----
layer : In(range(len(layers)))
    The layer (c_in, c_out, seed) of the frames that follow; change it only while `idle` is high.
i : In(stream.Signature(data.ArrayLayout(signed(8), lanes)))
    One input frame is c_in / lanes beats; beat j carries channels j*lanes .. j*lanes+lanes-1 in lanes
    0 .. lanes-1.
o : Out(stream.Signature(signed(acc_width)))
    Per frame c_out beats: output channel 0 .. c_out-1 in order. acc_width is the widest
    golden.ternary_mixer.acc_bits(c_in) over the layers.
idle : Out(1)
    High when no input beat of a frame is held, no frame is buffered or being computed and every output of
    the accepted frames has been delivered.

Schedule
--------
The frame buffer holds two frames (c_in/lanes words of `lanes` int8 each): the next frame loads while
the current one computes. Per frame the generator restarts (1 cycle) and then, one word per cycle, the
mixer reads x[j*lanes .. +lanes) and takes the `lanes` entries w[o, j*lanes .. +lanes) that the
generator emits in the same (row-major) order. A two-stage pipeline (buffer read, then select + adder
tree + accumulate) produces output channel o after c_in/lanes cycles. With input always valid and output
always ready a frame takes c_out * c_in / lanes + 1 cycles in steady state; output back-pressure stalls
the whole pipeline (including the generator), so results are exact under any stalls.

Cycles per frame in steady state (measured in the Amaranth simulator: distance between the first
outputs of consecutive frames, input always valid, output always ready; the same rule is asserted in
tests/test_ternary_mixer.py), for the default network's 1x1 shapes. Nonzero entries: the default
checkpoint's ternary layers (topology seed 1, density 1/3 -> threshold 43, realised density 43/128):

| c_in x c_out | lanes 1 | lanes 2 | lanes 4 | lanes 8 | lanes 16 | layers (nonzero / entries)                 |
|--------------|--------:|--------:|--------:|--------:|---------:|--------------------------------------------|
| 64 x 128     |    8193 |    4097 |    2049 |    1025 |      513 | prologue 2735, epilogue 2776 / 8192        |
| 128 x 64     |    8193 |    4097 |    2049 |    1025 |      513 | block1 pw 2667, block1 res 2803 / 8192     |
| 64 x 64      |    4097 |    2049 |    1025 |     513 |      257 | block2/3 pw, res 1357..1418 / 4096         |
| 128 x 128    |   16385 |    8193 |    4097 |    2049 |     1025 | final 5468 / 16384                         |

Rule: c_out * c_in / lanes + 1 (the +1 is the generator's restart cycle). Latency from a frame's last
input beat to its first output: c_in / lanes + 4 cycles when the unit was idle. The schedule is dense:
a cycle per `lanes` entries whether they are zero or not, so cycles do not depend on the nonzero count
(about a third of the entries). All nine ternary 1x1s of the default network take 65,545 cycles per
time frame at 1 lane and 4,105 at 16 lanes (8.4 M and 0.53 M cycles for a 128-frame window).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternkws.golden.ternary_mixer import acc_bits
from ternkws.hw.params import check_lanes, check_positive, check_sequence
from ternkws.hw.ternary_generator import TernaryGenerator, check_density, check_seed

__all__ = ["TernaryMixer", "cycles_per_frame"]


def cycles_per_frame(c_in, c_out, lanes):
    """Steady-state cycles per frame of this design (input always valid, output always ready)."""
    return c_out * (c_in // lanes) + 1


def _check_layers(layers, lanes):
    layers = check_sequence(layers, "layers", "(c_in, c_out, seed) tuple")
    checked = []
    for n, layer in enumerate(layers):
        try:
            c_in, c_out, seed = layer
        except (TypeError, ValueError):
            raise TypeError(f"layer {n} must be a (c_in, c_out, seed) tuple, not {layer!r}") from None
        c_in = check_positive(c_in, f"layer {n}: c_in")
        c_out = check_positive(c_out, f"layer {n}: c_out")
        seed = check_seed(seed, f"layer {n}: seed")
        if c_in % lanes:
            raise ValueError(
                f"layer {n}: lanes={lanes} does not divide c_in={c_in}; choose lanes among the divisors "
                f"of every layer's c_in")
        checked.append((c_in, c_out, seed))
    return tuple(checked)


def _adder_tree(values):
    # Balanced pairwise sum: depth ceil(log2(lanes)); Amaranth widens each sum by one bit.
    while len(values) > 1:
        pairs = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            pairs.append(values[-1])
        values = pairs
    return values[0]


class TernaryMixer(wiring.Component):
    """Streaming ternary 1x1 convolution serving one or more layers.

    Parameters
    ----------
    layers : sequence of (c_in, c_out, seed)
        One tuple per layer; `lanes` must divide every c_in.
    density : float
        In (0, 1], shared by all layers.
    lanes : int
        Input channels consumed per cycle (>= 1).
    """

    def __init__(self, layers, density, lanes):
        self._lanes = check_lanes(lanes)
        self._density = check_density(density)
        self._layers = _check_layers(layers, self._lanes)
        self._acc_width = max(self._acc_bits(c_in) for c_in, _, _ in self._layers)
        super().__init__({
            "layer": In(range(len(self._layers))),
            "i": In(stream.Signature(data.ArrayLayout(signed(8), self._lanes))),
            "o": Out(stream.Signature(signed(self._acc_width))),
            "idle": Out(1),
        })

    @property
    def layers(self):
        return self._layers

    @property
    def density(self):
        return self._density

    @property
    def lanes(self):
        return self._lanes

    @property
    def acc_width(self):
        return self._acc_width

    @property
    def words(self):
        """Frame-buffer words (beats) per input frame of each layer: c_in / lanes."""
        return tuple(c_in // self._lanes for c_in, _, _ in self._layers)

    # Hooks: the stored-weights baseline (hw/stored_mixer.py) reuses this schedule with other entries.
    def _acc_bits(self, c_in):
        return acc_bits(c_in)

    def _entry_source(self):
        """A component with ports layer, restart, o (lanes entries per beat, row-major)."""
        return TernaryGenerator([seed for _, _, seed in self._layers], self._density, self._lanes)

    def _lane_term(self, m, lane, x, entry):
        # entry = +1 (0b01), -1 (0b11) or 0 (0b00): bit 0 = nonzero, bit 1 = negative.
        term = Signal(signed(9), name=f"term{lane}")
        m.d.comb += term.eq(Mux(entry[0], Mux(entry[1], -x, x), 0))
        return term

    def cycles_per_frame(self, layer=0):
        c_in, c_out, _ = self._layers[layer]
        return cycles_per_frame(c_in, c_out, self._lanes)

    def elaborate(self, platform):
        m = Module()
        lanes = self._lanes
        words_of = self.words
        c_outs = tuple(c_out for _, c_out, _ in self._layers)
        max_words, max_c_out = max(words_of), max(c_outs)

        m.submodules.generator = generator = self._entry_source()
        m.d.comb += generator.layer.eq(self.layer)

        # Per-layer sizes as constants muxed by `layer` (stable while frames are in flight).
        last_word = Signal(range(max_words))
        last_row = Signal(range(max_c_out))
        if len(self._layers) == 1:
            m.d.comb += [last_word.eq(words_of[0] - 1), last_row.eq(c_outs[0] - 1)]
        else:
            with m.Switch(self.layer):
                for n in range(len(self._layers)):
                    with m.Case(n):
                        m.d.comb += [last_word.eq(words_of[n] - 1), last_row.eq(c_outs[n] - 1)]

        # Frame buffer: two halves of 2^word_bits words; address = Cat(word, half).
        word_bits = (max_words - 1).bit_length()
        m.submodules.frames = frames = Memory(
            shape=data.ArrayLayout(signed(8), lanes), depth=2 << word_bits, init=[])
        write = frames.write_port()
        read = frames.read_port()

        # --- input: fill half `write_half`, one word per accepted beat ---------------------------
        full = Signal(2)             # full[h]: half h holds a complete frame not yet fully read
        write_half = Signal()
        write_word = Signal(range(max_words))
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(write_half, 1)),
            write.addr.eq(Cat(write_word[:word_bits], write_half)),
            write.data.eq(self.i.payload),
            write.en.eq(self.i.valid & self.i.ready),
        ]
        frame_loaded = Signal()
        with m.If(self.i.valid & self.i.ready):
            with m.If(write_word == last_word):
                m.d.sync += [write_word.eq(0), write_half.eq(~write_half)]
                m.d.comb += frame_loaded.eq(1)
            with m.Else():
                m.d.sync += write_word.eq(write_word + 1)

        # --- pipeline control: output back-pressure freezes every stage ---------------------------
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # --- stage 0: issue (read word, take entries) ---------------------------------------------
        read_half = Signal()
        read_word = Signal(range(max_words))
        row = Signal(range(max_c_out))
        issue = Signal()
        frame_issued = Signal()
        running = Signal()
        m.d.comb += [
            read.addr.eq(Cat(read_word[:word_bits], read_half)),
            read.en.eq(advance),
            generator.o.ready.eq(issue),
        ]
        with m.FSM(name="schedule"):
            with m.State("WAIT"):
                # Restart the generator as soon as a frame is complete.
                with m.If(full.bit_select(read_half, 1)):
                    m.d.comb += generator.restart.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [running.eq(1), issue.eq(advance & generator.o.valid)]
                with m.If(issue):
                    with m.If(read_word == last_word):
                        m.d.sync += read_word.eq(0)
                        with m.If(row == last_row):
                            m.d.sync += [row.eq(0), read_half.eq(~read_half)]
                            m.d.comb += frame_issued.eq(1)
                            m.next = "WAIT"
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += read_word.eq(read_word + 1)

        # The read of a frame's last word is issued with frame_issued: its half can be refilled next.
        for half in range(2):
            with m.If(frame_loaded & (write_half == half)):
                m.d.sync += full[half].eq(1)
            with m.Elif(frame_issued & (read_half == half)):
                m.d.sync += full[half].eq(0)

        # --- stage 1: select +x / -x / 0 per lane, adder tree, accumulate ---------------------------
        stage1_valid = Signal()
        stage1_first = Signal()      # first word of an output channel: start a new sum
        stage1_last = Signal()       # last word: the sum is output channel `row`
        stage1_entries = Signal(generator.o.payload.shape())
        with m.If(advance):
            m.d.sync += [
                stage1_valid.eq(issue),
                stage1_first.eq(read_word == 0),
                stage1_last.eq(read_word == last_word),
                stage1_entries.eq(generator.o.payload),
            ]

        terms = [self._lane_term(m, lane, read.data[lane], stage1_entries[lane]) for lane in range(lanes)]
        lane_sum = Signal(signed(self._acc_bits(lanes)))
        m.d.comb += lane_sum.eq(_adder_tree(terms))

        # --- stage 2: accumulate (the adder tree's sum is registered first: it keeps the RAM ->
        # select -> tree -> accumulator path out of one cycle, for Fmax on the iCE40) ----------------
        stage2_valid, stage2_first, stage2_last = Signal(), Signal(), Signal()
        stage2_sum = Signal(signed(self._acc_bits(lanes)))
        with m.If(advance):
            m.d.sync += [stage2_valid.eq(stage1_valid), stage2_first.eq(stage1_first),
                         stage2_last.eq(stage1_last), stage2_sum.eq(lane_sum)]
        acc = Signal(signed(self._acc_width))
        total = Signal(signed(self._acc_width))
        m.d.comb += total.eq(Mux(stage2_first, stage2_sum, acc + stage2_sum))
        with m.If(advance & stage2_valid):
            m.d.sync += acc.eq(total)

        # --- output register ---------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += self.o.valid.eq(stage2_valid & stage2_last)
            with m.If(stage2_valid & stage2_last):
                m.d.sync += self.o.payload.eq(total)

        m.d.comb += self.idle.eq(
            (write_word == 0) & (full == 0) & ~running & ~stage1_valid & ~stage2_valid & ~self.o.valid)
        return m

