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

After reset the unit holds the start state of seeds[0], so a user with one layer needs no restart before
the first frame (a restart is still needed before each later frame).
"""

import numbers

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ternkws.golden.ternary_generator import BITS_PER_ENTRY, WIDTH, bit_masks, seed_state, threshold
from ternkws.hw.params import check_int, check_lanes, check_sequence

__all__ = ["TernaryGenerator", "check_density", "check_seed", "check_seeds"]


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
        Entries per beat, >= 1.
    """

    def __init__(self, seeds, density, lanes):
        self._seeds = check_seeds(seeds)
        self._density = check_density(density)
        self._lanes = check_lanes(lanes)
        super().__init__({
            "layer": In(range(len(self._seeds))),
            "restart": In(1),
            "o": Out(stream.Signature(data.ArrayLayout(signed(2), self._lanes))),
        })

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
        return tuple(seed_state(s) for s in self._seeds)

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

        for lane in range(self._lanes):
            u = bits[lane * BITS_PER_ENTRY:(lane + 1) * BITS_PER_ENTRY]
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
            m.d.sync += state.eq(next_state)
        return m
