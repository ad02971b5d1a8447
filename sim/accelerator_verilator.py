"""Run the accelerator RTL on int8 windows with Verilator (or Icarus) through cocotb."""

import contextlib
import json
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

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


def run_rtl(model, config, windows, *, simulator="verilator", stall=0.0, seed=0, waves=None, quiet=True):
    """Simulate the accelerator on int8 windows (N, T, n_mfcc).

    Returns ([(logits int64 array, class, cycles)] per window, timing) where timing has `total_seconds`
    (build included) and `sim_seconds` (the cocotb test alone).
    """
    windows = np.asarray(windows, np.int8)
    if windows.ndim == 2:
        windows = windows[None]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ternkws-sim-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "windows.npy", windows)
        out = tmp / "results.json"
        run = lambda: run_cocotb(  # noqa: E731
            Accelerator(model, config), "ternkws.sim.tb_accelerator", name="ternkws_accelerator",
            params={"windows": str(tmp / "windows.npy"), "out": str(out), "n_classes": model.topology.n_classes,
                    "stall": stall, "seed": seed},
            simulator=simulator, waves=bool(waves))
        if quiet:
            with _quiet(tmp / "sim.log"):
                xml = run()
        else:
            xml = run()
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
    return [(np.array(r["logits"], np.int64), int(r["class"]), int(r["cycles"])) for r in results], timing
