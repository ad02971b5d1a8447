"""hw/frame_crc.py: the hand-written CRC network against golden.protocol.crc16 and amaranth.lib.crc's
Processor for the same parameters (byte by byte, every register value they pass through), and, marked
slow, the measurement that chose it: both variants behind the same ports placed alone on the iCE40 UP5K
(hw/synth_harness.py, harness subtracted); the network kept is the smaller.

    .venv/bin/python -m pytest -m slow -s tests/test_frame_crc.py     # prints the logic cells of each
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import crc, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from ternkws.golden.protocol import (CRC_CHECK, CRC_INITIAL, CRC_POLYNOMIAL, CRC_REFLECT_INPUT, CRC_REFLECT_OUTPUT,
                                     CRC_RESIDUE, CRC_WIDTH, CRC_XOR_OUTPUT, crc16, encode_frame)
from ternkws.hw.frame_crc import crc16_update


def _parameters():
    return crc.Algorithm(crc_width=CRC_WIDTH, polynomial=CRC_POLYNOMIAL, initial_crc=CRC_INITIAL,
                         reflect_input=CRC_REFLECT_INPUT, reflect_output=CRC_REFLECT_OUTPUT,
                         xor_output=CRC_XOR_OUTPUT)(8)


class CrcUnit(wiring.Component):
    """One CRC register behind the ports the parser and the encoder use: `start` loads CRC_INITIAL,
    `valid` adds `data`; `crc` is the register, `match` says it holds CRC_RESIDUE (a good frame).
    variant "network": hw/frame_crc.crc16_update (what the link uses); "lib": amaranth.lib.crc.Processor."""

    start: In(1)
    valid: In(1)
    data: In(8)
    crc: Out(CRC_WIDTH)
    match: Out(1)

    def __init__(self, variant):
        self._variant = variant
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        if self._variant == "network":
            register = Signal(CRC_WIDTH, init=CRC_INITIAL)
            with m.If(self.start):
                m.d.sync += register.eq(CRC_INITIAL)
            with m.Elif(self.valid):
                m.d.sync += register.eq(crc16_update(register, self.data))
            m.d.comb += [self.crc.eq(register), self.match.eq(register == CRC_RESIDUE)]
        else:
            m.submodules.processor = processor = _parameters().create()
            m.d.comb += [processor.start.eq(self.start), processor.valid.eq(self.valid),
                         processor.data.eq(self.data), self.crc.eq(processor.crc),
                         self.match.eq(processor.match_detected)]
        return m


def test_parameters_check_value_and_residue():
    params = _parameters()
    assert params.compute(b"123456789") == crc16(b"123456789") == CRC_CHECK
    assert params.residue() == CRC_RESIDUE


def test_network_equals_processor_and_reference():
    """Frames (good and damaged) through both variants side by side, one byte a cycle with random idle
    cycles: the registers agree after every byte, with golden.protocol.crc16 of the bytes so far, and
    `match` is high exactly after a good frame's last CRC byte."""
    rng = random.Random(0)
    m = Module()
    m.submodules.network = network = CrcUnit("network")
    m.submodules.lib = lib = CrcUnit("lib")
    frames = [b"123456789"] + [encode_frame(rng.randrange(256), bytes(rng.randrange(256) for _ in range(n)))[1:]
                               for n in (0, 1, 7, 64, 255)]
    frames += [bytes([f[0] ^ 1]) + f[1:] for f in frames[1:3]]      # damaged

    async def tb(ctx):
        for body in frames:
            for unit in (network, lib):
                ctx.set(unit.start, 1)
            await ctx.tick()
            for unit in (network, lib):
                ctx.set(unit.start, 0)
            for n, byte in enumerate(body):
                while rng.random() < 0.3:
                    await ctx.tick()
                for unit in (network, lib):
                    ctx.set(unit.data, byte)
                    ctx.set(unit.valid, 1)
                await ctx.tick()
                for unit in (network, lib):
                    ctx.set(unit.valid, 0)
                assert ctx.get(network.crc) == ctx.get(lib.crc) == crc16(body[:n + 1])
            good = crc16(body[:-2]) == int.from_bytes(body[-2:], "big")
            assert ctx.get(network.match) == ctx.get(lib.match) == good

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.slow
def test_network_is_the_smaller_on_up5k():
    from ternkws.boards.toolchain import synthesize
    from ternkws.hw.synth_harness import PassThrough, SerialHarness

    cells = {}
    harness = None
    for variant in ("network", "lib"):
        wrapped = SerialHarness(CrcUnit(variant))
        total = synthesize(wrapped, "up5k", timing_allow_fail=True)
        if harness is None:
            harness = synthesize(SerialHarness(PassThrough(wrapped.in_width, wrapped.out_width)), "up5k",
                                 timing_allow_fail=True)
        cells[variant] = (total["logic_cells"] - harness["logic_cells"], total["ffs"] - harness["ffs"])
    print(f"\nCRC alone on the UP5K (LC, FF), harness subtracted: {cells}")
    assert cells["network"][0] <= cells["lib"][0], cells
    assert cells["network"][1] == cells["lib"][1] == CRC_WIDTH
