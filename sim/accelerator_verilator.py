"""Run the accelerator RTL on int8 windows with Verilator (or Icarus) through cocotb."""

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from ternkws.golden.progress import LogTail, format_seconds
from ternkws.golden.progress import quiet as quiet_progress
from ternkws.hw.accelerator import Accelerator

from .cocotb_runner import run_cocotb


@contextlib.contextmanager
def _quiet(log_path):
    """Send this process's (and its children's) stdout/stderr to a log file; show its tail on failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            tail = Path(log_path).read_text(errors="replace").splitlines()[-40:]
            print("\n".join(tail), file=sys.stderr)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_rtl(model, config, windows, *, simulator="verilator", stall=0.0, seed=0, waves=None, quiet=True,
            progress=None, on_window=None):
    """Simulate the accelerator on int8 windows (N, T, n_mfcc).

    Returns ([(logits int64 array, class, cycles)] per window, timing) where timing has `total_seconds`
    (build included) and `sim_seconds` (the cocotb test alone).

    progress: a golden.progress.Progress: the Verilog conversion and the simulator build (or "cached
    build"), then a line per window as the testbench finishes it ("window 3/12: 1,075,255 cycles in
    9.5 s") and the elapsed time of the window in flight. on_window(index, (logits, class, cycles),
    seconds): called as each window finishes, from a helper thread, while this process's stdout and
    stderr go to the simulation log (quiet=True): write through golden.progress.pinned streams.
    """
    windows = np.asarray(windows, np.int8)
    if windows.ndim == 2:
        windows = windows[None]
    progress = progress or quiet_progress()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ternkws-sim-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "windows.npy", windows)
        out, lines = tmp / "results.json", tmp / "windows.jsonl"
        run = lambda: run_cocotb(  # noqa: E731
            Accelerator(model, config), "ternkws.sim.tb_accelerator", name="ternkws_accelerator",
            params={"windows": str(tmp / "windows.npy"), "out": str(out), "n_classes": model.topology.n_classes,
                    "stall": stall, "seed": seed, "lines": str(lines)},
            simulator=simulator, waves=bool(waves), progress=progress)
        watcher = _WindowWatcher(lines, len(windows), progress, on_window)
        with progress.pinned():
            watcher.start()
            try:
                if quiet:
                    with _quiet(tmp / "sim.log"):
                        xml = run()
                else:
                    xml = run()
            finally:
                watcher.stop()
        results = json.loads(out.read_text())
        case = ElementTree.parse(xml).getroot().find(".//testcase")
        sim_seconds = float(case.get("time", "nan")) if case is not None else float("nan")
        if waves:
            dumps = sorted(Path(xml).parent.glob("*.fst")) + sorted(Path(xml).parent.glob("*.vcd"))
            if not dumps:
                dumps = sorted(Path(xml).parent.parent.glob("*.fst")) + sorted(Path(xml).parent.parent.glob("*.vcd"))
            if dumps:
                Path(waves).write_bytes(dumps[-1].read_bytes())
    timing = {"total_seconds": time.time() - t0, "sim_seconds": sim_seconds}
    return [_result(r) for r in results], timing


def _result(r):
    return np.array(r["logits"], np.int64), int(r["class"]), int(r["cycles"])


class _WindowWatcher:
    """Tails the testbench's per-window JSON lines in a thread: a progress line and on_window() per
    finished window, the elapsed time of the one in flight in between. stop() joins the thread, takes
    the lines written last and re-raises an error of on_window()."""

    POLL_S = 0.25
    QUIET_S = 3.0       # a window in flight for less needs no status

    def __init__(self, path, n, progress, on_window):
        self.path, self.n, self.progress, self.on_window = Path(path), n, progress, on_window
        self.done, self.error = 0, None
        self._tail = LogTail(self.path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ternkws-sim-windows", daemon=True)
        self._t_last = time.monotonic()
        self._started = False

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self._take()
        self.progress.clear()
        if self.error is not None:
            raise self.error

    def _loop(self):
        while not self._stop.wait(self.POLL_S):
            self._take()
            busy = time.monotonic() - self._t_last
            if self._started and self.done < self.n and busy >= self.QUIET_S:
                self.progress.status(f"window {self.done + 1}/{self.n}: simulating ({format_seconds(busy)})",
                                     key="window")

    def _take(self):
        if self.error is not None:
            return
        if not self._started:
            if not self._tail.exists():
                return       # the testbench has not started yet
            self._started, self._t_last = True, time.monotonic()
        new = self._tail.lines()
        for text in new:
            if not text.strip():
                continue
            r = json.loads(text)
            self.done += 1
            self._t_last = time.monotonic()
            self.progress.line(f"window {r['index'] + 1}/{self.n}: {int(r['cycles']):,} cycles in "
                               f"{format_seconds(r['seconds'])}")
            if self.on_window is not None:
                try:
                    self.on_window(r["index"], _result(r), r["seconds"])
                except BaseException as e:      # raised again by stop(), in the caller's thread
                    self.error = e
                    return
