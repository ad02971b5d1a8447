"""Board table, board wrapper, build reports (synthesis faked), `ternkws flash` with a fake programmer."""

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from ternkws.boards import build as board_build
from ternkws.boards import toolchain
from ternkws.boards.platforms import BOARDS, BoardWrapper, get_board
from ternkws.golden.placeholder import placeholder_model
from ternkws.golden.topology import Block, Topology, count_ternary_entries
from ternkws.cli import main
from ternkws.golden.errors import UserError
from ternkws.commands import flash as flash_cmd

# 64 channels everywhere: divisible by the ECP5 configuration's 64 mixer lanes; small kernels.
TINY = Topology(n_mfcc=64, prologue_channels=64, prologue_kernel=3, blocks=(Block(64, 3),), epilogue_channels=64,
                epilogue_kernel=3, epilogue_dilation=1, final_channels=64)


@pytest.fixture(scope="module")
def tiny_model():
    return placeholder_model(TINY)


# -- board table ----------------------------------------------------------------------------------

def test_board_table():
    assert set(BOARDS) == {"icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"}
    ice = get_board("icebreaker")
    assert (ice.device, ice.config, ice.family, ice.programmer, ice.bitstream_suffix) == \
        ("up5k", "up5k", "ice40", "iceprog", ".bin")
    assert ice.clk_freq == 12e6
    for size in (12, 25, 45, 85):
        b = get_board(f"ULX3S-{size}F")
        assert (b.device, b.config, b.programmer, b.bitstream_suffix) == (f"ecp5-{size}f", "ecp5", "openfpgaloader", ".bit")
        assert b.device in toolchain.DEVICES
        assert b.make_platform().device == f"LFE5U-{size}F"
        assert b.clk_freq == 25e6


def test_unknown_board():
    with pytest.raises(UserError, match=r"unknown board 'orangecrab'; choose one of icebreaker, ulx3s-85f"):
        get_board("orangecrab")
    assert main(["build", "--board", "nope"]) == 2


# -- wrapper --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cons, expect", [
    ("icebreaker", "top.pcf", ["set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9", "set_io led_0__io 11",
                               "set_io led_1__io 37", "set_io led_2__io 26", "set_io led_5__io 23",
                               "set_io clk12_0__io 35"]),
    ("ulx3s-85f", "top.lpf", ['LOCATE COMP "uart_0__rx__io" SITE "M1";', 'LOCATE COMP "uart_0__tx__io" SITE "L4";',
                              'LOCATE COMP "led_0__io" SITE "B2";', 'LOCATE COMP "led_5__io" SITE "E2";',
                              'LOCATE COMP "clk25_0__io" SITE "G2";']),
])
def test_wrapper_elaborates(tiny_model, name, cons, expect):
    board = get_board(name)
    wrapper = BoardWrapper(board, tiny_model)
    plan = board.make_platform().prepare(wrapper, name="top")
    text = plan.files[cons]
    for line in expect:
        assert line in text
    # 12 classes: 2 status LEDs + 4 class bits drive LEDs; further LEDs (iCEBreaker: 7, ULX3S: 8) stay off.
    assert len(wrapper.top.leds) == 6
    assert wrapper.top.divisor == round(board.clk_freq / 115200)
    assert "module \\top" in plan.files["top.il"]


def test_wrapper_rejects_lanes_not_dividing(tiny_model):
    small = placeholder_model(replace(TINY, n_mfcc=8, prologue_channels=8, blocks=(Block(8, 3),), epilogue_channels=8,
                                      final_channels=8))
    with pytest.raises(UserError, match="mixer_lanes=64 does not divide"):
        board_build.build_board("ulx3s-85f", small, "ternary", out=None, log=lambda m: None)


# -- figures --------------------------------------------------------------------------------------

def test_stored_weight_bits_default_topology():
    top = Topology()
    t = board_build.stored_weight_bits(top)
    s = board_build.stored_weight_bits(replace(top, mixer="learned"))
    assert t["pointwise"] == 0
    assert s["pointwise"] == count_ternary_entries(top) * 8
    assert s["total"] - t["total"] == s["pointwise"]
    assert t["depthwise"] == (64 * 11 + 128 * 13 + 64 * 15 + 64 * 17 + 64 * 29) * 8
    assert t["total"] <= 0.16 * s["total"]


def test_cycles_per_window():
    """The cycle model's figures (hw/cycles.py; tests/test_cycles.py checks them against the RTL count:
    up5k 1,075,255, ecp5 147,483 in the Amaranth simulator)."""
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.hw.cycles import cycles_per_window as model_cycles
    m = placeholder_model(Topology())
    cycles, source = board_build.cycles_per_window(m, "up5k")
    assert cycles == 1_075_255
    assert "cycle model hw/cycles.py" in source and "tests/test_cycles.py" in source
    assert board_build.cycles_per_window(m, CONFIGS["ecp5"])[0] == 147_483
    # neither the seed nor the mixer kind changes the schedule
    assert board_build.cycles_per_window(placeholder_model(Topology(seed=7)), "up5k")[0] == 1_075_255
    assert board_build.cycles_per_window(placeholder_model(Topology(mixer="learned", seed=7)), "up5k")[0] == 1_075_255
    # every topology gets a figure, the model's
    tiny = placeholder_model(TINY)
    cycles, _ = board_build.cycles_per_window(tiny, "up5k")
    assert cycles == model_cycles(tiny, CONFIGS["up5k"]) and cycles > 0


def test_load_model_variant_mismatch(tmp_path):
    from ternkws.golden import checkpoint
    with pytest.raises(UserError, match="needs a learned one; pass --variant ternary"):
        board_build.load_model("stored", checkpoint.DEFAULT_MODEL)
    with pytest.raises(UserError, match="unknown variant"):
        board_build.load_model("float")


# -- build reports with the tools faked -----------------------------------------------------------

def _fake_result(workdir, lc=2000, fmax=25.3, family="ice40"):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bit = workdir / ("top.bin" if family == "ice40" else "top.bit")
    bit.write_bytes(b"\x7e\xaa\x99\x7e")
    return {"logic_cells": lc, "ffs": 1200, "dsp": 5, "bram": 29, "spram": 4, "fmax_mhz": fmax,
            "timing_met": fmax >= 12, "critical_path": None, "memories": {}, "spram_memories": {},
            "tools": {}, "files": {"bitstream": str(bit)}}


def test_build_report_fits(tmp_path, monkeypatch, tiny_model):
    calls = []

    def fake_synthesize(design, device, top, cons, freq, workdir, **kw):
        calls.append((Path(design).name, device, top, freq, kw["synth_opts"], kw["bitstream"]))
        assert "set_io uart_0__rx__io 6" in cons
        return _fake_result(workdir)

    monkeypatch.setattr(toolchain, "synthesize", fake_synthesize)
    model = replace(placeholder_model(Topology()))
    r = board_build.build_board("icebreaker", model, "ternary", tmp_path / "b", log=lambda m: None)
    assert calls == [("top.il", "up5k", "top", 12.0, "-spram", True)]
    assert r["fits"] is True
    assert r["resources"]["logic_cells"] == {"used": 2000, "capacity": 5280, "percent": 37.9}
    assert r["windows_per_s_at_fmax"] == round(25.3e6 / 1_075_255, 2)
    assert r["cycles_per_window"] == 1_075_255 and "hw/cycles.py" in r["cycles_source"]
    assert (tmp_path / "b" / "top.bin").read_bytes() == b"\x7e\xaa\x99\x7e"
    on_disk = json.loads((tmp_path / "b" / "report.json").read_text())
    assert on_disk["fmax_mhz"] == 25.3
    checks = {c["check"]: c["pass"] for c in r["checks"]}
    assert checks["UP5K logic cells <= 50% of 5,280"] is True
    assert checks["UP5K Fmax >= 24 MHz"] is True
    assert checks["stored weight bits <= 16% of the learned-1x1 baseline"] is True
    md = (tmp_path / "b" / "report.md").read_text()
    assert "| logic_cells | 2,000 | 5,280 | 37.9 |" in md
    assert "| timing met at 12 MHz | yes |" in md
    assert "| cycles per window | 1,075,255 |" in md
    assert ("Cycles: cycle model hw/cycles.py, config up5k (checked against RTL simulation by "
            "tests/test_cycles.py).") in md


def test_build_report_does_not_fit(tmp_path, monkeypatch, tiny_model):
    def fake_synthesize(design, device, top, cons, freq, workdir, **kw):
        raise toolchain.ToolchainError("nextpnr-ice40", "failed (exit status 255): the design does not fit: "
                                       "ICESTORM_RAM 46/30", "ERROR: ...",
                                       {"overused": {"ICESTORM_RAM": [46, 30]}, "ffs": 1500, "memories": {"rom": 16}})

    monkeypatch.setattr(toolchain, "synthesize", fake_synthesize)
    model = placeholder_model(Topology(mixer="learned"))
    r = board_build.build_board("icebreaker", model, "stored", tmp_path / "s", log=lambda m: None)
    assert r["fits"] is False
    assert r["overflow"] == {"ICESTORM_RAM": {"used": 46, "available": 30, "over": 16, "percent": 153.3}}
    md = (tmp_path / "s" / "report.md").read_text()
    assert "**The design does not fit / did not build**" in md
    assert "- ICESTORM_RAM: 46 used of 30 (153%), 16 over" in md
    assert not (tmp_path / "s" / "top.bin").exists()


def test_ecp5_speedup_check(tmp_path, monkeypatch):
    (tmp_path / "icebreaker").mkdir()
    (tmp_path / "icebreaker" / "report.json").write_text(json.dumps({"windows_per_s_at_fmax": 20.0}))
    monkeypatch.setattr(toolchain, "synthesize",
                        lambda design, device, top, cons, freq, workdir, **kw: _fake_result(workdir, 20000, 50.0, "ecp5"))
    r = board_build.build_board("ulx3s-85f", placeholder_model(Topology()), "ternary", tmp_path / "ulx3s-85f",
                                log=lambda m: None)
    check = next(c for c in r["checks"] if c["check"].startswith("ECP5"))
    assert check["value"] == f"{50e6 / 147_483 / 20.0:.1f}x" and check["pass"] is True
    assert (tmp_path / "ulx3s-85f" / "top.bit").exists()


# -- flash ----------------------------------------------------------------------------------------

def _fake_programmer(path, log):
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > {log}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_flash_icebreaker_env_var(tmp_path, monkeypatch):
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\0")
    prog = _fake_programmer(tmp_path / "my-iceprog", tmp_path / "argv")
    monkeypatch.setenv("ICEPROG", str(prog))
    assert main(["flash", "--board", "icebreaker", "--bitstream", str(bit)]) == 0
    assert (tmp_path / "argv").read_text().splitlines() == [str(prog), str(bit)]


def test_flash_ulx3s_path(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_programmer(bindir / "openFPGALoader", tmp_path / "argv")
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build" / "ulx3s-85f").mkdir(parents=True)
    (tmp_path / "build" / "ulx3s-85f" / "top.bit").write_bytes(b"\0")
    assert main(["flash", "--board", "ulx3s-85f"]) == 0
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[1:] == ["-b", "ulx3s", "-m", "build/ulx3s-85f/top.bit"]


def test_flash_missing_bitstream(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["flash", "--board", "ulx3s-85f"]) == 2
    err = capsys.readouterr().err
    assert "build/ulx3s-85f/top.bit: no bitstream; run `make bitstream BOARD=ulx3s-85f`" in err


@pytest.mark.parametrize("board, suffix, package, var", [
    ("icebreaker", ".bin", "fpga-icestorm", "ICEPROG"),
    ("ulx3s-12f", ".bit", "openfpgaloader", "OPENFPGALOADER"),
])
def test_flash_missing_programmer(tmp_path, monkeypatch, capsys, board, suffix, package, var):
    bit = tmp_path / ("top" + suffix)
    bit.write_bytes(b"\0")
    monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["flash", "--board", board, "--bitstream", str(bit)]) == 2
    err = capsys.readouterr().err
    assert f"apt-get install --no-install-recommends {package}" in err
    assert f"${var}" in err


def test_flash_wrong_bitstream_kind(tmp_path, capsys):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\0")
    assert main(["flash", "--board", "icebreaker", "--bitstream", str(bit)]) == 2
    assert "icebreaker takes a .bin bitstream, not .bit" in capsys.readouterr().err


# -- a real build (minutes) -----------------------------------------------------------------------

@pytest.mark.slow
def test_real_icebreaker_build(tmp_path, tiny_model):
    r = board_build.build_board("icebreaker", tiny_model, "ternary", tmp_path, log=lambda m: None)
    assert r["fits"] is True
    assert (tmp_path / "top.bin").stat().st_size > 100_000
    assert r["resources"]["logic_cells"]["used"] > 0 and r["fmax_mhz"] > 12


def test_build_report_of_the_stream_board(tmp_path, monkeypatch, tiny_model):
    """`ternkws build --mode stream`: the stream board's design goes to the toolchain (its executor in the
    RTLIL), the UART at 1 Mbaud, and the report says stream mode with the streaming cycles per frame."""
    from ternkws.hw.streaming_cycles import stream_cycles

    seen = []

    def fake_synthesize(design, device, top, cons, freq, workdir, **kw):
        seen.append(Path(design).read_text())
        return _fake_result(workdir)

    monkeypatch.setattr(toolchain, "synthesize", fake_synthesize)
    r = board_build.build_board("icebreaker", tiny_model, "ternary", tmp_path / "s", log=lambda m: None, mode="stream")
    assert r["mode"] == "stream" and r["baud"] == 1_000_000
    assert "stream_executor" in seen[0] and "request_executor" not in seen[0]
    frame = stream_cycles(tiny_model, "up5k")["frame"]
    assert r["stream_cycles_per_frame"] == frame
    assert r["stream_real_time_factor_at_board_clock"] == round(0.01 * 12e6 / frame, 1)
    checks = {c["check"]: c["pass"] for c in r["checks"]}
    assert checks["UP5K streaming frame <= 4,000 cycles (DESIGN.md)"] == (frame <= 4000)
    assert "UP5K one window <= 1.5 M cycles" not in checks
    md = (tmp_path / "s" / "report.md").read_text()
    assert md.startswith("# icebreaker — ternary build (stream mode)") and "UART 1000000 baud" in md
    assert f"| streaming: cycles per frame | {frame:,} |" in md


def test_flash_mode_stream_takes_the_stream_build(tmp_path, monkeypatch):
    """--mode stream flashes build/<board>-stream/top.bin (ternkws build --mode stream), not the window
    board's build/<board>/top.bin; a missing one names the command that makes it."""
    monkeypatch.setenv("TERNKWS_BUILD_DIR", str(tmp_path / "build"))
    prog = _fake_programmer(tmp_path / "my-iceprog", tmp_path / "argv")
    monkeypatch.setenv("ICEPROG", str(prog))
    with pytest.raises(UserError, match="make bitstream BOARD=icebreaker MODE=stream"):
        flash_cmd.run(_flash_args("--mode", "stream"))
    (tmp_path / "build" / "icebreaker").mkdir(parents=True)
    (tmp_path / "build" / "icebreaker" / "top.bin").write_bytes(b"\0")
    stream_bit = tmp_path / "build" / "icebreaker-stream" / "top.bin"
    stream_bit.parent.mkdir()
    stream_bit.write_bytes(b"\1")
    assert main(["flash", "--board", "icebreaker", "--mode", "stream"]) == 0
    assert (tmp_path / "argv").read_text().splitlines() == [str(prog), str(stream_bit)]


def _flash_args(*argv):
    import argparse
    p = argparse.ArgumentParser()
    flash_cmd.configure(p)
    return p.parse_args(list(argv))
