# amaranth: UnusedElaboratable=no
"""Synthesis flow (boards/toolchain.py), the scan-chain harness (hw/synth_harness.py), the unit registry
(hw/units.py) and `ternkws synth`.

Default tests parse saved tool reports, simulate the harness around toy units and drive the CLI's
error paths with fake tools; the real YoWASP runs are marked slow (a cold WASM cache costs a minute).
"""

import json
import stat
import sys
from pathlib import Path

import pytest
from amaranth import Fragment, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from ternkws.boards import toolchain
from ternkws.boards.toolchain import (DEVICES, ToolchainError, assign_pins, constraints, get_device,
                              parse_nextpnr_report, parse_yosys_stat)
from ternkws.hw.synth_harness import PassThrough, SerialHarness, port_layout
from ternkws.cli import main
from ternkws.golden.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"


def quiet(*elaboratables):
    """Elaborate designs built only to inspect their ports, so that Amaranth counts them as used."""
    for e in elaboratables:
        Fragment.get(e, None)
    return elaboratables[0]


# --------------------------------------------------------------------------------------------------
# Toy units

class StreamAdder(wiring.Component):
    """a + b of a stream of pairs, registered (one beat of skid-less buffering); y = x * x[0:2] registered."""

    i: In(stream.Signature(data.StructLayout({"a": 8, "b": 8})))
    o: Out(stream.Signature(9))
    x: In(3)
    y: Out(2)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid),
                         self.o.payload.eq(self.i.payload.a + self.i.payload.b)]
        m.d.sync += self.y.eq(self.x * self.x[:2])
        return m


class Nested(wiring.Component):
    """Nested signatures, a flipped member and an always-valid stream (whose valid is a constant)."""

    bus: Out(wiring.Signature({"addr": Out(4), "data": In(8)}))
    src: In(stream.Signature(6, always_valid=True))
    irq: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.bus.addr.eq(self.src.payload[:4]), self.irq.eq(self.bus.data.any())]
        return m


# --------------------------------------------------------------------------------------------------
# Reports

def test_parse_nextpnr_report_up5k():
    r = parse_nextpnr_report(FIXTURES / "nextpnr_report_up5k.json", "up5k")
    assert (r["logic_cells"], r["dsp"], r["bram"], r["spram"], r["lutram"], r["io"]) == (113, 0, 1, 0, 0, 4)
    assert r["fmax_mhz"] == 40.78
    assert list(r["fmax_by_clock"]) == ["clk$SB_IO_IN_$glb_clk"]
    assert r["fmax_by_clock"]["clk$SB_IO_IN_$glb_clk"]["constraint_mhz"] == 12.0
    cp = r["critical_path"]          # the register-to-register path, not the <async> one
    assert cp["from"] == "m.0.0_RAM" and cp["to"] == "sout_SB_DFF_Q_D_SB_LUT4_O_LC"
    assert cp["delay_ns"] == pytest.approx(1000 / 40.778045654296875, abs=1e-3)   # the path sets Fmax
    assert cp["logic_ns"] + cp["routing_ns"] == pytest.approx(cp["delay_ns"], abs=1e-3)
    assert cp["logic_steps"] == 7
    assert r["utilization"]["ICESTORM_LC"] == {"used": 113, "available": 5280}


def test_parse_nextpnr_report_ecp5():
    r = parse_nextpnr_report(FIXTURES / "nextpnr_report_ecp5_85f.json", "ecp5-85f")
    assert (r["logic_cells"], r["dsp"], r["bram"], r["spram"], r["lutram"], r["io"]) == (47, 1, 1, 0, 0, 4)
    assert r["ffs_placed"] == 30
    assert r["fmax_mhz"] == 66.71
    assert r["critical_path"]["delay_ns"] == pytest.approx(1000 / 66.71114349365234, abs=1e-3)


def test_report_without_clock_has_no_fmax():
    r = parse_nextpnr_report({"utilization": {"ICESTORM_LC": {"used": 3, "available": 5280}}}, "up5k")
    assert r["fmax_mhz"] is None and r["logic_cells"] == 3 and r["critical_path"] is None


def test_parse_yosys_stat():
    s = parse_yosys_stat(FIXTURES / "yosys_stat_up5k.json", "ice40")
    assert s["ffs"] == 22 + 8                        # SB_DFF + SB_DFFSR
    assert s["cells"]["SB_RAM40_4K"] == 1
    ecp5 = parse_yosys_stat({"modules": {"\\top": {"num_cells_by_type": {"TRELLIS_FF": 7, "LUT4": 9,
                                                                          "$scopeinfo": 2}}}}, "ecp5")
    assert ecp5 == {"ffs": 7, "cells": {"LUT4": 9, "TRELLIS_FF": 7}}


def test_capacity_is_what_nextpnr_reports_available():
    for name, fixture, cells in (("up5k", "nextpnr_report_up5k.json",
                                  {"logic_cells": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
                                   "spram": "ICESTORM_SPRAM", "io": "SB_IO"}),
                                 ("ecp5-85f", "nextpnr_report_ecp5_85f.json",
                                  {"logic_cells": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsp": "MULT18X18D",
                                   "bram": "DP16KD", "lutram": "TRELLIS_RAMW", "io": "TRELLIS_IO"})):
        util = json.loads((FIXTURES / fixture).read_text())["utilization"]
        for key, cell in cells.items():
            assert DEVICES[name].capacity[key] == util[cell]["available"], (name, key)
    up5k = DEVICES["up5k"].capacity
    assert (up5k["logic_cells"], up5k["bram"], up5k["dsp"], up5k["spram"]) == (5280, 30, 8, 4)
    e85 = DEVICES["ecp5-85f"].capacity
    assert (e85["logic_cells"], e85["bram"], e85["dsp"]) == (83640, 208, 156)


def test_devices_by_name_and_alias():
    assert get_device("UP5K").name == "up5k"
    assert get_device("85k").name == "ecp5-85f"
    assert get_device("ecp5-25k").nextpnr_args[0] == "--25k"
    assert get_device("ecp5-12f").nextpnr_args[:3] == ("--12k", "--package", "CABGA381")
    with pytest.raises(UserError, match="choose one of up5k, ecp5-12f, ecp5-25f, ecp5-45f, ecp5-85f"):
        get_device("xc7a35t")


# --------------------------------------------------------------------------------------------------
# Pin constraints

def test_assign_pins_puts_the_clock_on_a_clock_pin():
    pins = assign_pins("up5k", {"clk": 1, "rst": 1, "sin": 1, "bus": 3})
    assert pins == {"clk": "35", "rst": "4", "sin": "2", "bus": ["47", "45", "3"]}
    assert assign_pins("ecp5-85f", {"clk": 1, "sout": 1}) == {"clk": "G2", "sout": "B2"}
    with pytest.raises(UserError, match="do not fit"):
        assign_pins("up5k", {"wide": 100})


def test_constraints_text():
    pcf = constraints("up5k", {"clk": "35", "bus": ["4", "2"]}, {"clk": 12})
    assert pcf.splitlines()[1:] == ["set_io clk 35", "set_io bus[0] 4", "set_io bus[1] 2"]
    lpf = constraints("ecp5-85f", {"clk": "G2", "led": "B2"}, {"clk": 25})
    assert lpf.splitlines()[1:] == ['LOCATE COMP "clk" SITE "G2";', 'IOBUF PORT "clk" IO_TYPE=LVCMOS33;',
                                    'LOCATE COMP "led" SITE "B2";', 'IOBUF PORT "led" IO_TYPE=LVCMOS33;',
                                    'FREQUENCY PORT "clk" 25 MHZ;']


# --------------------------------------------------------------------------------------------------
# Tool failures, with fake tools

def _fake_tool(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_tool_failure_reports_the_last_lines(tmp_path, monkeypatch):
    yosys = _fake_tool(tmp_path, "yosys", "import sys\nprint('reading design')\n"
                       "print('ERROR: Module `\\\\nope` not found')\nsys.exit(1)")
    monkeypatch.setenv("YOSYS", yosys)
    with pytest.raises(ToolchainError) as e:
        toolchain.synthesize("module top(input a, output b); assign b = a; endmodule\n", "up5k",
                             workdir=tmp_path / "w")
    assert e.value.stage == "yosys"
    assert e.value.summary == ("yosys: failed (exit status 1): ERROR: Module `\\nope` not found "
                               f"(log: {tmp_path / 'w' / 'yosys.log'})")
    assert "exit status 1" in str(e.value) and "ERROR: Module `\\nope` not found" in str(e.value)
    assert (tmp_path / "w" / "yosys.log").exists()


def test_nextpnr_overuse_is_diagnosed(tmp_path):
    log = tmp_path / "nextpnr.log"
    log.write_text("Info: Device utilisation:\n"
                   "Info: \t        ICESTORM_LC:    1713/   5280    32%\n"
                   "Info: \t        ICESTORM_DSP:      16/      8   200%\n"
                   "ERROR: Unable to place cell 'x_DSP', no BELs remaining to implement cell type 'ICESTORM_DSP'\n"
                   "0 warnings, 1 error\n")
    what, partial = toolchain._diagnose(log)
    assert what == "the design does not fit: ICESTORM_DSP 16/8"
    assert partial == {"overused": {"ICESTORM_DSP": [16, 8]}}
    log.write_text("")
    assert "printed nothing" in toolchain._diagnose(log)[0]


def test_tool_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("YOSYS", _fake_tool(tmp_path, "yosys", "import time\nprint('busy', flush=True)\ntime.sleep(30)"))
    with pytest.raises(ToolchainError, match="did not finish within 1 s"):
        toolchain.synthesize("module top(input a, output b); assign b = a; endmodule\n", "up5k",
                             workdir=tmp_path / "w", timeout_s=1)


# --------------------------------------------------------------------------------------------------
# The harness, in the Amaranth simulator

def test_port_layout_walks_nested_signatures():
    ins, outs = port_layout(quiet(Nested()))
    assert [(p, w) for p, _, w in ins] == [("bus.data", 8), ("src.payload", 6)]   # src.valid is a constant
    assert [(p, w) for p, _, w in outs] == [("bus.addr", 4), ("src.ready", 1), ("irq", 1)]
    h = SerialHarness(quiet(StreamAdder()))
    quiet(h)
    assert h.inputs == [("i.payload", 0, 16), ("i.valid", 16, 1), ("o.ready", 17, 1), ("x", 18, 3)]
    assert h.outputs == [("i.ready", 0, 1), ("o.payload", 1, 9), ("o.valid", 10, 1), ("y", 11, 2)]
    assert (h.in_width, h.out_width) == (21, 13)
    with pytest.raises(KeyError, match="not an input port"):
        h.pack_inputs({"o.payload": 1})
    with pytest.raises(TypeError, match="wiring.Component"):
        port_layout(Module())


def _scan(harness, word, settle=1):
    """Shift `word` into the input chain (MSB first), hold `load` for `settle` cycles, shift the output
    chain out (MSB first); returns the output word and the bit stream seen at sout while shifting in."""
    result = {}

    async def bench(ctx):
        seen = []
        for n in reversed(range(harness.in_width)):
            ctx.set(harness.sin, (word >> n) & 1)
            seen.append(ctx.get(harness.sout))
            await ctx.tick()
        ctx.set(harness.load, 1)
        await ctx.tick().repeat(settle)
        ctx.set(harness.load, 0)
        out = 0
        for _ in range(harness.out_width):
            out = out << 1 | ctx.get(harness.sout)
            await ctx.tick()
        result.update(out=out, seen=seen)

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result["out"], result["seen"]


@pytest.mark.parametrize("a, b, x", [(0, 0, 0), (200, 100, 5), (255, 255, 7), (17, 3, 2)])
def test_harness_round_trip_through_a_stream_adder(a, b, x):
    h = SerialHarness(StreamAdder())
    word = h.pack_inputs({"i.payload": a | b << 8, "i.valid": 1, "o.ready": 1, "x": x})
    out, _ = _scan(h, word, settle=2)   # the adder registers its result: capture on the second load cycle
    assert h.unpack_outputs(out) == {"i.ready": 1, "o.payload": a + b, "o.valid": 1,
                                     "y": (x * (x & 3)) & 3}


def test_harness_round_trip_through_a_pass_through():
    h = SerialHarness(PassThrough(12, 20))
    for word in (0, 0xFFF, 0xA5C, 0x123):
        out, _ = _scan(h, word)
        assert out == sum(((word >> (j % 12)) & 1) << j for j in range(20))


def test_every_chain_bit_reaches_sout():
    # sin -> input chain -> output chain -> sout: a bit sent at cycle n leaves at cycle n + W_in + W_out.
    h = SerialHarness(PassThrough(5, 3))
    pattern = [1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1]
    seen = []

    async def bench(ctx):
        for bit in pattern:
            ctx.set(h.sin, bit)
            seen.append(ctx.get(h.sout))
            await ctx.tick()

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen[8:] == pattern[:-8]


def test_pass_through_like_a_unit():
    p = quiet(PassThrough.like(quiet(StreamAdder())))
    assert port_layout(p)[0][0][2] == 21 and port_layout(p)[1][0][2] == 13
    p2 = quiet(PassThrough.like(quiet(SerialHarness(quiet(Nested())))))
    h2 = quiet(SerialHarness(p2))
    assert (h2.in_width, h2.out_width) == (14, 6)


# --------------------------------------------------------------------------------------------------
# Units and the CLI

@pytest.fixture(scope="module")
def model():
    from ternkws.golden import checkpoint
    return checkpoint.load()


def test_accelerator_presets(model):
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.boards.units import config_of
    up5k = CONFIGS["up5k"]
    assert config_of("ternary_mixer", "up5k") == (up5k.mixer_lanes, {})
    assert config_of("depthwise_conv", "up5k") == (up5k.dw_lanes, {"single_port": up5k.single_port_line_buffer,
                                                                   "spram": up5k.spram})
    assert config_of("post_op", "ecp5") == (1, {})


def test_unit_registry_builds_every_unit(model):
    from ternkws.boards.units import UNITS, build, memories, valid_lanes
    assert set(UNITS) == {"ternary_generator", "ternary_mixer", "depthwise_conv", "post_op", "stored_mixer",
                          "grouped_mixer"}
    assert valid_lanes("ternary_mixer", model) == [1, 2, 4, 8, 16, 32, 64]
    assert valid_lanes("post_op", model) == [1]
    for name in UNITS:
        unit = build(name, 1, model)
        ins, outs = port_layout(unit)
        assert ins and outs
        mems = memories(unit)                    # elaborates the unit (no unused-elaboratable warning)
        if name == "ternary_generator":
            assert mems == {}                    # nothing of the matrix is stored
        if name == "ternary_mixer":
            # only the input frame buffer: two frames of the widest c_in (128) int8, no weight memory
            assert mems == {"unit.frames": {"width": 8, "depth": 256, "bits": 2048, "kind": "RAM",
                                            "read_ports": 1, "write_ports": 1}}
        if name == "stored_mixer":
            # the baseline stores every 1x1 weight: 65,536 int8 for the 3x1x64 model
            assert sum(m["bits"] for m in mems.values() if m["kind"] == "ROM") == 65536 * 8


@pytest.mark.parametrize("argv, message", [
    (["synth", "--unit", "nope"], "unknown unit 'nope'; choose one of ternary_generator, ternary_mixer, "
                                  "depthwise_conv, post_op"),
    (["synth", "--unit", "ternary_mixer", "--lanes", "3"], "valid: 1, 2, 4, 8, 16, 32, 64"),
    (["synth", "--unit", "depthwise_conv", "--lanes", "0"], "valid: 1, 2, 4"),
    (["synth", "--unit", "post_op", "--lanes", "4"], "one value per cycle; valid: 1"),
    (["synth", "--unit", "post_op", "--device", "xc7"], "unknown device 'xc7'; choose one of up5k"),
    (["synth"], "one of the arguments --unit --sweep --render is required"),   # argparse (usage shows it)
    (["synth", "--sweep", "--units", "ternary_mixer,fft"], "unknown unit(s) fft"),
    (["synth", "--unit", "post_op", "--freq", "0"], "--freq must be positive"),
    (["synth", "--unit", "depthwise_conv", "--config", "vu9p"], "unknown accelerator configuration 'vu9p'; "
                                                                 "choose one of up5k, ecp5"),
    (["synth", "--unit", "depthwise_conv", "--config", "up5k", "--lanes", "2"], "not both"),
])
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ternkws synth: error: ") and message in err


def test_cli_reports_a_tool_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YOSYS", _fake_tool(tmp_path, "yosys", "import sys\nprint('ERROR: out of memory')\nsys.exit(3)"))
    assert main(["synth", "--unit", "ternary_generator"]) == 2
    err = capsys.readouterr().err
    assert "yosys: failed (exit status 3)" in err and "ERROR: out of memory" in err


def test_format_result_table():
    from ternkws.commands.synth import format_result
    cap = dict(DEVICES["up5k"].capacity)
    fig = dict(logic_cells=100, ffs=50, dsp=0, bram=1, spram=0, lutram=0, fmax_mhz=50.0, critical_path=None)
    r = {"unit": "toy", "lanes": 2, "device": "up5k", "part": "iCE40UP5K-SG48",
         "model": {"topology": "3x1x64", "id": "0"}, "freq_mhz": 12.0, "capacity": cap,
         "logic_cells": 80, "ffs": 30, "dsp": 0, "bram": 1, "spram": 0, "lutram": 0, "fmax_mhz": 50.0,
         "ports": {"in_bits": 10, "out_bits": 10}, "memories": {},
         "total": fig, "harness": dict(fig, logic_cells=20, ffs=20, bram=0, fmax_mhz=200.0)}
    text = format_result(r)
    assert "logic cells         80   1.5%       20   0.4%      100   1.9%      5280" in text
    assert "meets the 12 MHz target" in text


# --------------------------------------------------------------------------------------------------
# Real synthesis (YoWASP)

@pytest.mark.slow
def test_real_up5k_synthesis_of_the_toy_harness(tmp_path):
    h = SerialHarness(StreamAdder())
    r = toolchain.synthesize(h, "up5k", workdir=tmp_path)
    assert r["io"] == 5                                   # clk, rst, sin, load, sout
    assert r["ffs"] >= h.in_width + h.out_width + 10      # both chains and the adder's registers
    assert r["logic_cells"] >= r["ffs"] and r["dsp"] == 0 and r["bram"] == 0
    assert r["fmax_mhz"] > 24 and r["timing_met"]
    assert r["capacity"]["logic_cells"] == 5280
    assert r["tools"]["nextpnr"].startswith("nextpnr-")
    pcf = Path(r["files"]["constraints"]).read_text()
    assert "set_io clk 35" in pcf and "set_io sout" in pcf
    # the per-module breakdown of the placed netlist adds up to nextpnr's totals
    bd = r["breakdown"]
    assert bd["check"]["rows_sum_equals_total"] and bd["total"]["logic_cells"] == r["logic_cells"]
    assert bd["total"]["ffs"] == r["ffs"]
    base = toolchain.synthesize(SerialHarness(PassThrough.like(h)), "up5k")
    assert base["ffs"] == h.in_width + h.out_width
    assert base["logic_cells"] < r["logic_cells"]


@pytest.mark.slow
def test_real_ecp5_synthesis_of_verilog_text():
    r = toolchain.synthesize("module top(input clk, input a, output reg q); always @(posedge clk) q <= ~q ^ a;"
                             " endmodule\n", "ecp5-85f")
    assert (r["ffs"], r["io"], r["dsp"]) == (1, 3, 0) and r["fmax_mhz"] > 100
    bd = r["breakdown"]
    assert bd["check"]["rows_sum_equals_total"] and bd["total"]["logic_cells"] == r["logic_cells"]


@pytest.mark.slow
def test_cli_json_real_run(capsys):
    assert main(["synth", "--unit", "ternary_generator", "--lanes", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("logic_cells", "ffs", "dsp", "bram", "spram", "fmax_mhz", "capacity", "harness", "total"):
        assert key in r
    assert r["dsp"] == 0 and r["bram"] == 0 and r["spram"] == 0
    assert r["logic_cells"] == r["total"]["logic_cells"] - r["harness"]["logic_cells"]


def test_report_markdown_from_results(tmp_path):
    from ternkws.boards.units import render_report
    cap = dict(DEVICES["up5k"].capacity)
    fig = dict(logic_cells=400, ffs=200, dsp=0, bram=8, spram=0, lutram=0, fmax_mhz=19.0,
               critical_path={"delay_ns": 52.6, "logic_ns": 20.0, "routing_ns": 32.6, "logic_steps": 23,
                              "from": "a", "to": "b"})
    frames = {"width": 128, "depth": 16, "bits": 2048, "kind": "RAM", "read_ports": 1, "write_ports": 1,
              "bram_cells": 8}
    ok = {"unit": "ternary_mixer", "lanes": 16, "device": "up5k", "capacity": cap, "logic_cells": 300,
          "ffs": 150, "dsp": 0, "bram": 8, "spram": 0, "lutram": 0, "fmax_mhz": 19.0,
          "ports": {"in_bits": 134, "out_bits": 19}, "memories": {"unit.frames": frames},
          "total": fig, "harness": dict(fig, logic_cells=100, ffs=50, bram=0, fmax_mhz=180.0),
          "tools": {"yosys": "Yosys 0.70", "nextpnr": "nextpnr-0.11.1"}}
    rom = {"width": 64, "depth": 8192, "bits": 524288, "kind": "ROM", "read_ports": 1, "write_ports": 0}
    bad = {"unit": "stored_mixer", "lanes": 16, "device": "up5k", "memories": {"unit.generator.rom": rom},
           "error": "nextpnr-ice40: failed (exit status 125): the design does not fit: ICESTORM_RAM 136/30",
           "partial": {"overused": {"ICESTORM_RAM": [136, 30]}, "yosys_cells": {"SB_RAM40_4K": 136}}}
    data = {"model": {"id": "x", "topology": "3x1x64", "path": "m.npz"}, "runs": [ok, bad]}
    (tmp_path / "units.json").write_text(json.dumps(data))
    render_report(tmp_path / "units.json", tmp_path / "units.md")
    md = (tmp_path / "units.md").read_text()
    assert "| ternary_mixer | 16 | up5k | 300 (5.7%) | 150 | 0/8 | 8/30 | 0/4 | 400 (7.6%) | 100 | 19.0 |" in md
    assert "ternary_mixer, lanes 16, up5k: 0 DSP, 0 weight (ROM) bits -> PASS" in md
    assert "| 16 | up5k | 300 | 0 | 8 | 0 | does not fit: ICESTORM_RAM 136/30 |  |  | 524,288 |" in md
    assert "Fmax 19.0 MHz is below the 24 MHz UP5K target" in md
    assert "takes 8 BRAM: the word width, not the size, sets the count" in md
    assert "input frame buffer" in md and "6% of their bits" in md


def _memory_design(init, huge=True):
    from amaranth.back import rtlil
    from amaranth.lib.memory import Memory
    m = Module()
    m.submodules.buf = buf = Memory(shape=16, depth=64, init=init, attrs={"ram_style": "huge"} if huge else None)
    m.submodules.rom = Memory(shape=8, depth=4, init=[0, 0, 0, 0])
    addr, data, we = Signal(6), Signal(16), Signal()
    wr, rd = buf.write_port(), buf.read_port()
    m.d.comb += [wr.addr.eq(addr), rd.addr.eq(addr), wr.data.eq(rd.data + 1), wr.en.eq(we), data.eq(rd.data),
                 rd.en.eq(~we)]   # SPRAM: one address, no read while writing
    return rtlil.convert(m, ports=[addr, we, data])


def test_zero_init_of_huge_memories_is_dropped():
    text, dropped = toolchain.drop_zero_init_of_huge_memories(_memory_design([]))
    assert [mem for _, mem in dropped] == ["\\buf"]
    assert text.count("cell $meminit_v2") == 1          # the (unmarked) ROM keeps its contents
    assert 'parameter \\MEMID "\\\\rom"' in text
    kept, dropped = toolchain.drop_zero_init_of_huge_memories(_memory_design([5]))
    assert dropped == [] and kept.count("cell $meminit_v2") == 2    # nonzero contents are never dropped
    plain = _memory_design([], huge=False)
    assert toolchain.drop_zero_init_of_huge_memories(plain) == (plain, [])


@pytest.mark.slow
def test_real_up5k_maps_a_huge_memory_to_spram(tmp_path):
    r = toolchain.synthesize(_memory_design([]), "up5k", workdir=tmp_path)
    assert r["spram"] == 1 and r["bram"] == 0
    assert r["huge_memories_uninitialized"] == ["top.buf"]


def test_merge_sweep_replaces_the_units_measured_again():
    from ternkws.boards.units import merge_sweep
    old = {"model": {"id": "a"}, "runs": [{"unit": "ternary_mixer", "lanes": 1}, {"unit": "post_op", "lanes": 1},
                                          {"unit": "ternary_generator", "lanes": 1}]}
    new = {"model": {"id": "a"}, "runs": [{"unit": "ternary_mixer", "lanes": 4}]}
    old["source"], new["source"] = {"commit": "c1"}, {"commit": "c2"}
    merged = merge_sweep(old, new)
    assert [(r["unit"], r["lanes"], r["source"]["commit"]) for r in merged["runs"]] == [
        ("ternary_generator", 1, "c1"), ("ternary_mixer", 4, "c2"), ("post_op", 1, "c1")]
    with pytest.raises(UserError, match="run the whole sweep"):
        merge_sweep(old, {"model": {"id": "b"}, "runs": []})
