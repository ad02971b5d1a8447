"""Run the accelerator RTL on int8 windows with Verilator (or Icarus) through cocotb."""

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hw.accelerator import Accelerator

from .cocotb_runner import run_cocotb


def run_rtl(model, config, windows, *, simulator="verilator", stall=0.0, seed=0, waves=None):
    """[(logits int64 array, class, cycles)] per window, plus (build+run seconds)."""
    windows = np.asarray(windows, np.int8)
    if windows.ndim == 2:
        windows = windows[None]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ternkws-sim-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "windows.npy", windows)
        out = tmp / "results.json"
        xml = run_cocotb(Accelerator(model, config), "sim.tb_accelerator", name="ternkws_accelerator",
                         params={"windows": str(tmp / "windows.npy"), "out": str(out),
                                 "n_classes": model.topology.n_classes, "stall": stall, "seed": seed},
                         simulator=simulator, waves=bool(waves))
        results = json.loads(out.read_text())
        if waves:
            dumps = sorted(Path(xml).parent.glob("*.fst")) + sorted(Path(xml).parent.glob("*.vcd")) \
                + sorted(Path(xml).parent.parent.glob("*.fst")) + sorted(Path(xml).parent.parent.glob("*.vcd"))
            if dumps:
                Path(waves).write_bytes(dumps[-1].read_bytes())
    return [(np.array(r["logits"], np.int64), int(r["class"]), int(r["cycles"])) for r in results], time.time() - t0
