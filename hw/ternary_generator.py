"""LFSR ternary generator: the on-chip twin of golden/ternary_generator.py.

Emits the entries of a ternary 1x1 layer's matrix, row-major (entry m = o * c_in + i), `lanes` entries
per beat, regenerated from the layer's seed after every `restart`. Nothing of the matrix is stored: the
unit holds one 64-bit LFSR state and the start state of each layer is a constant of the netlist.

Ports
-----
layer : In(range(len(seeds)))
    Which seed the next `restart` loads.
restart : In(1)
    A cycle with `restart` high loads the start state of `seeds[layer]`; `o.valid` is low in that cycle.
o : Out(stream.Signature(data.ArrayLayout(signed(2), lanes)))
    Always valid outside restart cycles. Beat n after a restart carries entries n*lanes .. n*lanes+lanes-1
    in lanes 0 .. lanes-1, each -1, 0 or +1. The state leaps 8*lanes sequence bits on each accepted beat
    (valid & ready) through a constant XOR network (`golden.ternary_generator.bit_masks`).

Pattern "grouped" (golden/SPEC.md section 1): each beat carries `lanes` slots instead, lane r the slot
(position, sign) decoded from byte r of the same 8*lanes bits: `neg` = bit 0, `pos` = floor((byte >> 1) *
M / 128) with M = group_size(density). The grouped mixer (hw/grouped_mixer.py) takes 8 / lanes beats per
input group of its 8-row block, so the bytes are consumed in the contract's order.

After reset the unit holds the start state of seeds[0], so a user with one layer needs no restart before
the first frame (a restart is still needed before each later frame).
"""

import numbers

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.golden.ternary_generator import (BITS_PER_ENTRY, POSITION_BITS, WIDTH, advance, bit_masks,
                                              check_pattern, group_size, seed_state, threshold)
from ternkws.hw.params import check_int, check_lanes, check_sequence

__all__ = ["TernaryGenerator", "check_density", "check_pattern", "check_seed", "check_seeds", "slot_layout"]


def slot_layout(group):
    """One "grouped" slot: `pos` in [0, group) and `neg` (1: the entry is -1)."""
    return data.StructLayout({"pos": max(1, (group - 1).bit_length()), "neg": 1})


def check_density(density):
    """`density` as a float in (0, 1]; TypeError/ValueError otherwise."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TypeError(f"density must be a real number in (0, 1], not {density!r}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must be in (0, 1], not {density!r}")
    return float(density)


def check_seed(seed, what="seed"):
    """`seed` as an int in [0, 2^64); TypeError/ValueError otherwise."""
    return check_int(seed, what, low=0, high=(1 << 64) - 1, kind="an integer in [0, 2^64)", bounds="in [0, 2^64)")


def check_seeds(seeds):
    """`seeds` as a non-empty tuple of ints in [0, 2^64); TypeError/ValueError otherwise."""
    seeds = check_sequence(seeds, "seeds", "seed (one per layer)", "integers")
    return tuple(check_seed(s, f"seeds[{n}]") for n, s in enumerate(seeds))


class TernaryGenerator(wiring.Component):
    """Parallel (leap-forward) LFSR producing `lanes` ternary entries per cycle.

    Parameters
    ----------
    seeds : sequence of int
        One seed per layer served, each in [0, 2^64).
    density : float
        In (0, 1]; entries are +1 / -1 with probability threshold(density)/256 each.
    lanes : int
        Entries (or "grouped" slots) per beat, >= 1.
    pattern : str
        "iid" (ternary entries) or "grouped" (position + sign slots).
    offsets : sequence of int, optional
        Per layer, how many sequence bits the start state lies past the seed's (a generator that serves
        a later part of the matrix; the grouped mixer's parallel row blocks). Default 0.
    skips : sequence of int, optional
        Per layer, extra sequence bits a beat skips when the `skip` input is high with it (the grouped
        mixer jumps over the row blocks its other generators serve). Default none (no `skip` port).
    """

    def __init__(self, seeds, density, lanes, pattern="iid", offsets=None, skips=None):
        self._seeds = check_seeds(seeds)
        n = len(self._seeds)
        self._offsets = tuple(int(v) for v in (offsets or (0,) * n))
        self._skips = tuple(int(v) for v in skips) if skips is not None else None
        for name, values in (("offsets", self._offsets), ("skips", self._skips or ())):
            if len(values) not in (0, n) or any(v < 0 for v in values):
                raise ValueError(f"{name} must be one non-negative integer per seed")
        self._density = check_density(density)
        self._lanes = check_lanes(lanes)
        try:
            self._pattern = check_pattern(pattern)
        except ValueError as e:
            raise ValueError(str(e)) from None
        lane = signed(2) if self._pattern == "iid" else slot_layout(group_size(self._density))
        ports = {
            "layer": In(range(len(self._seeds))),
            "restart": In(1),
            "o": Out(stream.Signature(data.ArrayLayout(lane, self._lanes))),
        }
        if self._skips is not None:
            ports["skip"] = In(1)
        super().__init__(ports)

    @property
    def pattern(self):
        return self._pattern

    @property
    def seeds(self):
        return self._seeds

    @property
    def density(self):
        return self._density

    @property
    def lanes(self):
        return self._lanes

    @property
    def threshold(self):
        """Integer threshold t: byte u < t -> +1, t <= u < 2t -> -1, else 0."""
        return threshold(self._density)

    @property
    def start_states(self):
        """The LFSR start state of each seed (the constants the restart mux selects from)."""
        return tuple(advance(seed_state(s), off) if off else seed_state(s)
                     for s, off in zip(self._seeds, self._offsets))

    def elaborate(self, platform):
        m = Module()
        step = BITS_PER_ENTRY * self._lanes
        masks = bit_masks(step + WIDTH)
        starts = self.start_states
        t = self.threshold

        state = Signal(WIDTH, init=starts[0])

        def xor_of(mask):
            # b[k] = XOR of the state bits in its mask: a plain wire for k < WIDTH, else a reduce-XOR
            # (a balanced tree after synthesis) of a few to a few dozen taps.
            if mask & (mask - 1) == 0:
                return state[mask.bit_length() - 1]
            return (state & mask).xor()

        bits = Signal(step)
        for k in range(step):
            m.d.comb += bits[k].eq(xor_of(masks[k]))
        next_state = Signal(WIDTH)
        for j in range(WIDTH):
            m.d.comb += next_state[j].eq(xor_of(masks[step + j]))
        skip_state = None
        if self._skips is not None and any(self._skips):
            # One leap network per distinct skip (8 * lanes + skip bits), selected by the layer.
            skip_state = Signal(WIDTH)
            nets = {}
            for s in sorted(set(self._skips)):
                net = Signal(WIDTH, name=f"skip_{s}")
                far = bit_masks(step + s + WIDTH)[step + s:]
                for j in range(WIDTH):
                    m.d.comb += net[j].eq(xor_of(far[j]))
                nets[s] = net
            with m.Switch(self.layer):
                for n, s in enumerate(self._skips):
                    with m.Case(n):
                        m.d.comb += skip_state.eq(nets[s])

        for lane in range(self._lanes):
            u = bits[lane * BITS_PER_ENTRY:(lane + 1) * BITS_PER_ENTRY]
            if self._pattern == "grouped":
                group = group_size(self._density)
                slot = self.o.payload[lane]
                w = u[1:]
                if group <= 16:
                    # floor(w * M / 128) as a count of thresholds ceil(128 k / M): M - 1 comparators.
                    steps = [w >= -(-(k << POSITION_BITS) // group) for k in range(1, group)]
                    pos = sum(steps[1:], steps[0]) if steps else 0
                else:
                    pos = (w * group) >> POSITION_BITS   # a constant multiply: shifts and adds
                m.d.comb += [slot.neg.eq(u[0]), slot.pos.eq(pos)]
                continue
            with m.If(u < t):
                m.d.comb += self.o.payload[lane].eq(1)
            with m.Elif(u < 2 * t):
                m.d.comb += self.o.payload[lane].eq(-1)
            with m.Else():
                m.d.comb += self.o.payload[lane].eq(0)

        m.d.comb += self.o.valid.eq(~self.restart)
        with m.If(self.restart):
            if len(starts) == 1:
                m.d.sync += state.eq(starts[0])
            else:
                with m.Switch(self.layer):
                    for n, start in enumerate(starts):
                        with m.Case(n):
                            m.d.sync += state.eq(start)
        with m.Elif(self.o.ready):
            if skip_state is not None:
                m.d.sync += state.eq(Mux(self.skip, skip_state, next_state))
            else:
                m.d.sync += state.eq(next_state)
        return m
