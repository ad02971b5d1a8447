"""A scan-chain wrapper that lets one unit be synthesized and placed alone on a real chip.

A unit has far more port bits than the chip has pins, and a port left unconnected lets yosys delete
the logic behind it. `SerialHarness(unit)` gives the unit five pins (clk, rst, sin, load, sout) and
keeps every one of its port bits alive:

    sin -> [ input chain, W_in flip-flops ] -> [ output chain, W_out flip-flops ] -> sout
                 |  drives every unit input          ^  parallel-loads every unit output
                 +---------> unit ------------------+

- every input port bit of the unit (stream payload and valid of its sinks, ready of its sources, plain
  `In` signals) is a bit of the input chain; every output port bit is a bit of the output chain;
- while `load` is low both chains shift by one bit per clock (sin enters the input chain at bit 0,
  the input chain's top bit enters the output chain, sout is the output chain's top bit);
- while `load` is high the input chain holds and the output chain captures the unit's outputs.

So the unit sits between real registers (a register-to-register path to time, both ways), and every
flip-flop of both chains is observable at sout. Values go in and come out most significant bit first:
after W_in shifts the first bit sent sits at the top of the input chain.

Port bits are laid out in the order of `unit.signature.flatten(unit)` (recursively through stream and
nested signatures); `inputs` / `outputs` list (path, offset, width) and `pack_inputs` /
`unpack_outputs` convert between a {path: int} dict and chain words. Constant members (e.g. the valid
of an `always_valid` stream) are not ports and are skipped.

The harness costs about one logic cell per port bit. `PassThrough(W_in, W_out)` is a unit of the same
widths that does nothing (output bit j is input bit j mod W_in): synthesizing the harness around it
measures that cost, which `ternkws synth` subtracts from the total.
"""

from amaranth import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialHarness", "PassThrough", "port_layout"]


def port_layout(component):
    """([(path, value, width)] of unit inputs, same of outputs) in signature order; paths are
    dotted names such as 'i.payload'. Constant members are skipped."""
    if not isinstance(component, wiring.Component):
        raise TypeError(f"the harness wraps an amaranth.lib.wiring.Component, not {type(component).__name__}")
    inputs, outputs = [], []
    for path, member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if isinstance(value, Const) or len(value) == 0:
            continue
        if not isinstance(value, Signal) and not hasattr(value, "eq"):
            raise TypeError(f"port {'.'.join(map(str, path))} of {type(component).__name__} is not a signal")
        name = ".".join(str(p) for p in path)
        (inputs if member.flow == In else outputs).append((name, value, len(value)))
    return inputs, outputs


def _offsets(ports):
    out, off = [], 0
    for name, _, width in ports:
        out.append((name, off, width))
        off += width
    return out, off


class SerialHarness(wiring.Component):
    """Five pins around `unit`: clk and rst (the sync domain), sin, load and sout (module docstring)."""

    sin: In(1)
    load: In(1)
    sout: Out(1)

    def __init__(self, unit):
        self._unit = unit
        self._in_ports, self._out_ports = port_layout(unit)
        self._inputs, self._in_width = _offsets(self._in_ports)
        self._outputs, self._out_width = _offsets(self._out_ports)
        if self._in_width + self._out_width == 0:
            raise ValueError(f"{type(unit).__name__} has no port bits to connect")
        super().__init__()

    @property
    def unit(self):
        return self._unit

    @property
    def in_width(self):
        """Bits of the input chain (all unit input port bits)."""
        return self._in_width

    @property
    def out_width(self):
        """Bits of the output chain (all unit output port bits)."""
        return self._out_width

    @property
    def inputs(self):
        """[(path, offset, width)] of the unit's input ports in the input chain word."""
        return list(self._inputs)

    @property
    def outputs(self):
        """[(path, offset, width)] of the unit's output ports in the output chain word."""
        return list(self._outputs)

    def pack_inputs(self, values):
        """Input chain word from {path: int}; missing ports are 0, unknown paths are an error."""
        known = {name: (off, width) for name, off, width in self._inputs}
        word = 0
        for name, v in values.items():
            if name not in known:
                raise KeyError(f"{name!r} is not an input port; inputs are {list(known)}")
            off, width = known[name]
            word |= (int(v) & ((1 << width) - 1)) << off
        return word

    def unpack_outputs(self, word):
        """{path: unsigned int} from an output chain word."""
        return {name: (word >> off) & ((1 << width) - 1) for name, off, width in self._outputs}

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self._unit
        in_chain = Signal(max(self._in_width, 1))
        out_chain = Signal(max(self._out_width, 1))
        chain_in = self.sin
        if self._in_width:
            with m.If(~self.load):
                m.d.sync += in_chain.eq(Cat(self.sin, in_chain[:-1]))
            for (_, value, width), (_, off, _) in zip(self._in_ports, self._inputs):
                m.d.comb += value.eq(in_chain[off:off + width])
            chain_in = in_chain[-1]
        if self._out_width:
            with m.If(self.load):
                m.d.sync += out_chain.eq(Cat(*(value for _, value, _ in self._out_ports)))
            with m.Else():
                m.d.sync += out_chain.eq(Cat(chain_in, out_chain[:-1]))
            m.d.comb += self.sout.eq(out_chain[-1])
        else:
            m.d.comb += self.sout.eq(chain_in)
        return m


class PassThrough(wiring.Component):
    """A unit that does nothing, of given port widths: output bit j = input bit (j mod W_in).

    Wrapped in a SerialHarness it has the same chains as the unit it stands for, so its synthesis
    gives the harness's own cost."""

    def __init__(self, in_width, out_width):
        self._in_width, self._out_width = int(in_width), int(out_width)
        members = {}
        if self._in_width:
            members["i"] = In(self._in_width)
        if self._out_width:
            members["o"] = Out(self._out_width)
        super().__init__(wiring.Signature(members))

    @classmethod
    def like(cls, unit):
        """A PassThrough with the port widths of `unit` (a Component or a SerialHarness)."""
        if isinstance(unit, SerialHarness):
            return cls(unit.in_width, unit.out_width)
        ins, outs = port_layout(unit)
        return cls(sum(w for *_, w in ins), sum(w for *_, w in outs))

    def elaborate(self, platform):
        m = Module()
        if self._out_width:
            if self._in_width:
                m.d.comb += self.o.eq(Cat(self.i[j % self._in_width] for j in range(self._out_width)))
            else:
                m.d.comb += self.o.eq(0)
        return m
