"""Progress of the long steps: golden/progress.py (plain lines and the in-place status line), the yosys /
nextpnr phase parser on recorded logs (tests/fixtures/*_counter_*.log: a 24-bit counter synthesized with
boards/toolchain.synthesize), the tools' logs streamed while they run, the sweep's "[n/N]" lines, and
`ternkws sim`'s per-window lines (stderr) with its JSON alone on stdout."""

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ternkws.boards import toolchain
from ternkws.boards.toolchain import LogPhases
from ternkws.cli import main
from ternkws.golden.progress import LogTail, Progress, format_seconds, pinned

FIXTURES = Path(__file__).parent / "fixtures"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _plain(interval=5.0):
    clock, stream = Clock(), io.StringIO()
    return Progress(stream, prefix="p: ", interval=interval, tty=False, enabled=True, clock=clock), clock, stream


# -- golden/progress.py ----------------------------------------------------------------------------------

def test_format_seconds():
    assert [format_seconds(s) for s in (0.04, 9.94, 12.4, 59.4, 138, 598, 3725)] == \
        ["0.0 s", "9.9 s", "12 s", "59 s", "2 min 18 s", "9 min 58 s", "1 h 02 min"]


def test_plain_status_is_throttled_except_on_a_new_phase():
    progress, clock, stream = _plain(interval=5.0)
    progress.status("placing 1", key="placing")       # first: shown
    clock.t = 1.0
    progress.status("placing 2", key="placing")       # same phase, 1 s later: not shown
    clock.t = 2.0
    progress.status("routing 1", key="routing")       # a new phase: shown at once
    clock.t = 6.0
    progress.status("routing 2", key="routing")       # 4 s later: not yet
    clock.t = 7.5
    progress.status("routing 3", key="routing")       # 5.5 s later: shown
    progress.line("done")                             # permanent lines always
    assert stream.getvalue().splitlines() == ["p: placing 1", "p: routing 1", "p: routing 3", "p: done"]


def test_tty_status_is_one_line_rewritten_in_place():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(stream, tty=True, enabled=True, clock=clock)
    progress.status("a (1 s)", key="k")
    clock.t = 0.1
    progress.status("a (1.1 s)", key="k")              # within the redraw interval: skipped
    clock.t = 0.5
    progress.status("a (1.5 s)", key="k")
    progress.line("result")                            # erases the status line first
    text = stream.getvalue()
    assert text == "\ra (1 s)\x1b[K\ra (1.5 s)\x1b[K\r\x1b[Kresult\n"


def test_out_goes_to_stdout_and_erases_the_status_line(capsys):
    stream = io.StringIO()
    progress = Progress(stream, tty=True, enabled=True)
    progress.status("working")
    progress.out("a.wav: yes")
    assert capsys.readouterr().out == "a.wav: yes\n"
    assert stream.getvalue().endswith("\r\x1b[K")


def test_disabled_by_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("TERNKWS_PROGRESS", "0")
    progress = Progress()
    progress.status("x")
    progress.line("y")
    with progress.ticking("z", first_after=0.0, every=0.01):
        pass
    progress.out("result")                             # results are not progress: still printed
    assert capsys.readouterr() == ("result\n", "")


def test_plain_when_asked_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERNKWS_PROGRESS", "plain")

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    progress = Progress(Terminal())
    assert not progress.tty


def test_ticking_shows_the_elapsed_time_and_a_done_line():
    import time
    stream = io.StringIO()
    progress = Progress(stream, tty=False, enabled=True)
    with progress.ticking("building", done="built in {elapsed}", first_after=0.02, every=0.02) as tick:
        time.sleep(0.2)
        tick.text = "linking"
        time.sleep(0.1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("building (") and any(l.startswith("linking (") for l in lines)
    assert lines[-1].startswith("built in ") and lines[-1].endswith(" s")


def test_pinned_keeps_writing_to_the_terminal_while_fd_2_is_redirected(tmp_path, capfd):
    import os
    progress = Progress(sys.stderr, tty=False, enabled=True)
    with progress.pinned():
        saved = os.dup(2)
        with open(tmp_path / "log", "w") as log:
            os.dup2(log.fileno(), 2)
            try:
                progress.line("seen")
                os.write(2, b"hidden\n")
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    assert "seen" in capfd.readouterr().err
    assert (tmp_path / "log").read_text() == "hidden\n"
    with pinned(io.StringIO()) as same:              # a stream without a descriptor is itself
        assert isinstance(same, io.StringIO)


def test_log_tail_gives_complete_lines_as_they_come(tmp_path):
    path = tmp_path / "x.log"
    tail = LogTail(path)
    assert tail.lines() == [] and not tail.exists()
    path.write_text("one\ntw")
    assert tail.lines() == ["one"]
    with open(path, "a") as f:
        f.write("o\nthree\n")
    assert tail.lines() == ["two", "three"]
    assert tail.lines() == []


# -- the phase parser on recorded logs ----------------------------------------------------------------------

def _phases(tool, path):
    parser, seen, details = LogPhases(tool), [], []
    seen.append(parser.phase)
    for line in Path(path).read_text().splitlines():
        parser.feed(line)
        if parser.phase != seen[-1]:
            seen.append(parser.phase)
        if parser.detail and (not details or details[-1] != parser.detail):
            details.append(parser.detail)
    return parser, seen, details


def test_yosys_phases_of_a_recorded_log():
    parser, seen, details = _phases("yosys", FIXTURES / "yosys_counter_up5k.log")
    assert seen == ["starting", "Verilog-2005 frontend", "SYNTH_ICE40", "JSON backend"]
    assert {"HIERARCHY", "PROC", "TECHMAP", "ABC9", "OPT_CLEAN"} <= set(details)
    assert details.index("ABC9") > details.index("PROC")
    parser = LogPhases("yosys")
    parser.feed("2. Executing SYNTH_ICE40 pass.")
    parser.feed("2.47. Executing ABC9 pass.")
    assert not parser.feed("2.47.3. Executing ABC9_OPS pass (helper functions for ABC9).")   # depth 3: kept
    assert parser.describe(125) == "yosys: SYNTH_ICE40, ABC9 (2 min 05 s)"


def test_nextpnr_phases_of_a_recorded_log():
    parser, seen, details = _phases("nextpnr-ecp5", FIXTURES / "nextpnr_counter_ecp5.log")
    assert seen == ["reading the netlist", "packing", "placing (analytic)", "placing (annealing)", "routing",
                    "timing analysis", "finished"]
    assert "initial iteration 3" in details and "iteration 6" in details     # analytic placer
    assert "iteration 3" in details                                             # annealing
    assert "99 arcs" in details and "0 of 99 arcs left" in details


def test_nextpnr_router_lines_and_first_call_notice():
    parser = LogPhases("nextpnr-ice40")
    parser.feed("Preparing to run nextpnr-ice40. This might take a while...")
    assert parser.phase.startswith("compiling the WebAssembly tool")
    for line in ("Info: Routing..", "Info: Routing 56789 arcs.",
                 "Info:       2000 |     1200       800 |  200   300 |     1234|       1.20      10.40|"):
        parser.feed(line)
    assert parser.describe() == "nextpnr-ice40: routing, 1,234 of 56,789 arcs left"
    parser.feed("Info:     iter=3 wires=1000 overused=42 overuse=50 archfail=NA")
    assert parser.detail == "iteration 3, 42 overused wires"
    assert LogPhases("ecppack").describe(3) == "ecppack: running (3.0 s)"


# -- tools streamed while they run ----------------------------------------------------------------------

FAKE_NEXTPNR = """
import sys, time
for line in ["Info: Packing constants..", "Info: Placed 3 cells based on constraints.",
             "Info: Running simulated annealing placer for refinement.", "Info: Routing..",
             "Info: Routing 10 arcs.", "Info:    11 |  1  9 |  1  9 |   4|  0.01  0.01|"]:
    time.sleep(0.6)               # (the log is polled every 0.25 s: each line is seen alone)
    print(line, file=sys.stderr, flush=True)
time.sleep(0.6)
"""


def test_run_streams_the_phases_from_the_log_as_the_tool_writes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "QUIET_START_S", 0.0)
    stream = io.StringIO()
    progress = Progress(stream, tty=False, interval=100.0, enabled=True)    # new phases only
    seconds = toolchain._run("nextpnr-ice40", [sys.executable, "-c", FAKE_NEXTPNR], tmp_path, "nextpnr.log", 60,
                             progress=progress)
    lines = stream.getvalue().splitlines()
    phases = [re.sub(r" \([^()]*\)$", "", l).split(": ", 1)[1].split(", ")[0] for l in lines]   # no time, detail
    assert phases == ["reading the netlist", "packing", "placing (analytic)", "placing (annealing)", "routing"]
    assert seconds > 3 and "Info: Routing.." in (tmp_path / "nextpnr.log").read_text()


def test_run_kills_a_tool_past_its_timeout(tmp_path):
    import time
    t0 = time.monotonic()
    with pytest.raises(toolchain.ToolchainError, match="did not finish within 1 s"):
        toolchain._run("yosys", [sys.executable, "-c", "import time; print('x', flush=True); time.sleep(60)"],
                       tmp_path, "yosys.log", 1, progress=Progress(io.StringIO(), enabled=True))
    assert time.monotonic() - t0 < 10


@pytest.mark.slow      # a real yosys + nextpnr run (the first YoWASP call compiles ~30 s); make verify-full
def test_synthesize_a_counter_with_progress(tmp_path):
    """The real tools (a few seconds): one closing line with the time of each tool; the full yosys log the
    phases are read from is kept beside the console log."""
    stream = io.StringIO()
    progress = Progress(stream, tty=False, enabled=True)
    r = toolchain.synthesize("module top(input clk, output [3:0] q); reg [23:0] c; always @(posedge clk) "
                             "c <= c + 1; assign q = c[23:20]; endmodule\n", "up5k", workdir=tmp_path,
                             timing_allow_fail=True, progress=progress)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("iCE40UP5K-SG48: yosys ") and ", nextpnr-ice40 " in last
    assert f"{r['logic_cells']:,} logic cells" in last
    assert "Executing SYNTH_ICE40 pass" in (tmp_path / "yosys-full.log").read_text()


# -- synth --sweep: n of N --------------------------------------------------------------------------------

def test_sweep_numbers_its_runs(monkeypatch):
    from ternkws.boards import units
    from ternkws.golden import checkpoint

    def fake_measure(name, lanes, device, **kw):
        return {"unit": name, "lanes": lanes, "device": device, "logic_cells": 10, "ffs": 5, "dsp": 0,
                "bram": 0, "spram": 0, "fmax_mhz": 99.0}
    monkeypatch.setattr(units, "measure", fake_measure)
    lines = []
    data = units.sweep(model=checkpoint.load(), units=["post_op", "ternary_mixer"], log=lines.append)
    n = len(data["runs"])
    assert n >= 3 and len(lines) == 2 * n
    assert lines[0].startswith(f"[1/{n}] post_op, lanes 1, up5k") and "so far" in lines[0]
    assert lines[-1].startswith(f"[{n}/{n}] ternary_mixer") and lines[-1].endswith(", done")
    assert f"[2/{n}]" in lines[2] and f"{n - 1} run(s) left" in lines[1]


# -- ternkws sim: a line per window on stderr, results as they come ------------------------------------------

@pytest.fixture
def random_network(tmp_path, tone_wav):
    """sim/random_networks.py's case 91: a 1x1x8 network of 8 frames x 8 MFCC that fits the up5k preset."""
    from ternkws.golden.checkpoint import save
    from ternkws.sim.random_networks import random_case
    model, _, _ = random_case(91)
    path = save(model, tmp_path / "random91.npz")
    return str(path), [str(tone_wav("a.wav", freq=300.0)), str(tone_wav("b.wav", freq=2500.0))]


@pytest.mark.cocotb
def test_sim_prints_a_line_per_window_and_json_alone_on_stdout(random_network, capsys):
    model, wavs = random_network
    assert main(["sim", "--model", model, "--json", wavs[0]]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)                        # stdout: the JSON document alone
    assert d["all_bit_exact"] and len(d["clips"]) == 1
    err = captured.err.splitlines()
    assert any(line.startswith("ternkws sim: window 1/1: ") and " cycles in " in line for line in err)
    assert any("cached verilator build" in line or "verilator model built in" in line for line in err)

    assert main(["sim", "--model", model, *wavs]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert [line.split(":")[0] for line in out[:2]] == wavs and all("bit-exact" in line for line in out[:2])
    assert out[2].startswith("2/2 clips bit-exact")
    assert "window 1/2" in captured.err and "window 2/2" in captured.err


@pytest.mark.cocotb
def test_run_rtl_reports_each_window_as_the_testbench_finishes_it():
    """on_window is called per window, before run_rtl returns, with the results run_rtl returns."""
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.sim.accelerator_verilator import run_rtl
    from ternkws.sim.random_networks import random_case
    model, _, windows = random_case(91)
    windows = np.concatenate([windows, windows[::-1]])
    seen = []
    stream = io.StringIO()
    results, _ = run_rtl(model, CONFIGS["up5k"], windows, progress=Progress(stream, tty=False, enabled=True),
                         on_window=lambda index, result, seconds: seen.append((index, result, seconds)))
    assert [i for i, _, _ in seen] == list(range(len(windows)))
    for (_, (logits, cls, cycles), seconds), (l2, c2, cy2) in zip(seen, results):
        assert np.array_equal(logits, l2) and (cls, cycles) == (c2, cy2) and seconds >= 0
    assert sum(line.startswith("window ") for line in stream.getvalue().splitlines()) == len(windows)
