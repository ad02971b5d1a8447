"""Run the streaming accelerator (hw/streaming.py) with Verilator (or Icarus) through cocotb: a whole
stream at once (`run_stream_rtl`), or a session that stays open between chunks (`StreamSession`: the
simulator blocks on a named pipe until the next frames come, so `ternkws listen --sim` prints each
detection as its audio is heard)."""

import json
import os
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from ternkws.golden.progress import quiet as quiet_progress
from ternkws.golden.streaming import DEFAULT_HOP, total_delay
from ternkws.hw.streaming import StreamingAccelerator

from .accelerator_verilator import _quiet
from .cocotb_runner import run_cocotb
from .streaming_pysim import StreamResult, stream_params

__all__ = ["run_stream_rtl", "StreamSession", "result_of"]

TB = "ternkws.sim.tb_streaming"
NAME = "ternkws_streaming"


def _tb_params(model, detector, hop, stall, seed, frames_in, results_out):
    top = model.topology
    return {"frames_in": str(frames_in), "results_out": str(results_out), "n_mfcc": top.n_mfcc,
            "n_classes": top.n_classes, "delay": total_delay(top), "n_frames": model.features.n_frames,
            "stall": stall, "seed": seed, **stream_params(model, detector, hop)}


def _chunk(frames):
    frames = np.asarray(frames, np.int8)
    return struct.pack("<I", len(frames)) + frames.tobytes()


def result_of(lines, n_classes):
    """A StreamResult from the testbench's JSON lines."""
    logits, classes, events, starts, cur = [], [], [], [], []
    for r in lines:
        for value, last in r["beats"]:
            if last:
                if len(cur) != n_classes:
                    raise AssertionError(f"decision {len(logits)}: {len(cur)} logits before the class")
                logits.append(cur)
                classes.append(value)
                cur = []
            else:
                cur.append(value)
        events += [tuple(e) for e in r["events"]]
        starts += r["starts"]
    if cur:
        raise AssertionError(f"{len(cur)} logits without their class")
    return StreamResult(np.asarray(logits, np.int64).reshape(-1, n_classes), classes, events, starts)


def run_stream_rtl(model, config, frames, *, detector=None, hop=DEFAULT_HOP, simulator="verilator", stall=0.0,
                   seed=0, quiet=True, progress=None):
    """Stream int8 frames (n, n_mfcc) through the RTL from reset. Returns (StreamResult, timing) with
    timing `total_seconds` (build included) and `sim_seconds`."""
    progress = progress or quiet_progress()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ternkws-stream-") as tmp:
        tmp = Path(tmp)
        (tmp / "frames.bin").write_bytes(_chunk(frames) + struct.pack("<I", 0))
        out = tmp / "results.jsonl"
        p = _tb_params(model, detector, hop, stall, seed, tmp / "frames.bin", out)
        run = lambda: run_cocotb(StreamingAccelerator(model, config), TB, name=NAME, params=p,  # noqa: E731
                                 simulator=simulator, progress=progress)
        t1 = time.time()
        if quiet:
            with _quiet(tmp / "sim.log"):
                run()
        else:
            run()
        lines = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    timing = {"total_seconds": time.time() - t0, "sim_seconds": time.time() - t1}
    return result_of(lines, model.topology.n_classes), timing


def _session_main(model, config, simulator, params, log):
    """The simulator side of a StreamSession (in a child process, whose stdout and stderr go to `log`)."""
    with _quiet(log):
        run_cocotb(StreamingAccelerator(model, config), TB, name=NAME, params=params, simulator=simulator)


class StreamSession:
    """The RTL streaming mode kept running between chunks: `push(frames)` -> StreamResult of those
    frames; `clear()` starts a new stream; `close()` ends the simulation. The simulation runs in a child
    process (its output goes to a log file, so this process's stdout stays the caller's) and reads its
    frames from a named pipe (it blocks there between pushes)."""

    OPEN_TIMEOUT_S = 1800       # building the default model with Verilator takes minutes on a busy machine

    def __init__(self, model, config, *, detector=None, hop=DEFAULT_HOP, simulator="verilator", progress=None):
        import multiprocessing
        self.model = model
        self.progress = progress or quiet_progress()
        self._tmp = tempfile.TemporaryDirectory(prefix="ternkws-listen-")
        tmp = Path(self._tmp.name)
        self._in_path, self._out_path = tmp / "frames.fifo", tmp / "results.fifo"
        os.mkfifo(self._in_path)
        os.mkfifo(self._out_path)
        p = _tb_params(model, detector, hop, 0.0, 0, self._in_path, self._out_path)
        self._log = tmp / "sim.log"
        self._process = multiprocessing.get_context("spawn").Process(
            target=_session_main, args=(model, config, simulator, p, str(self._log)), name="ternkws-stream-sim",
            daemon=True)
        self._process.start()
        with self.progress.ticking(f"{NAME}: starting the {simulator} simulation (the first run builds it)"):
            self._in = os.fdopen(self._open_writer(self._in_path), "wb")
        # the testbench opens its results pipe right after the frames pipe: this open returns then
        self._out = open(self._out_path, "r")

    def _open_writer(self, path):
        """Open the frames pipe without blocking forever when the simulator dies before reading it."""
        t0 = time.monotonic()
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                return fd
            except OSError:             # ENXIO: no reader yet (the simulator is being built)
                pass
            self._check()
            if time.monotonic() - t0 > self.OPEN_TIMEOUT_S:
                raise RuntimeError("the streaming simulation did not start")
            time.sleep(0.1)

    def _check(self):
        if not self._process.is_alive():
            tail = self._log.read_text(errors="replace").splitlines()[-20:] if self._log.exists() else []
            raise RuntimeError("the streaming simulation ended early:\n" + "\n".join(tail))

    def push(self, frames):
        frames = np.asarray(frames, np.int8).reshape(-1, self.model.topology.n_mfcc)
        if not len(frames):
            return result_of([], self.model.topology.n_classes)
        self._check()
        self._in.write(_chunk(frames))
        self._in.flush()
        line = self._out.readline()
        if not line:
            self._process.join(timeout=5)
            self._check()
            raise RuntimeError("the streaming simulation gave no result")
        return result_of([json.loads(line)], self.model.topology.n_classes)

    def clear(self):
        """Pulse `clear`: the next frames start a new stream."""
        self._check()
        self._in.write(struct.pack("<I", 0xFFFFFFFF))
        self._in.flush()
        if not self._out.readline():
            self._check()
            raise RuntimeError("the streaming simulation gave no result")

    def close(self):
        if self._process.is_alive():
            try:
                self._in.write(struct.pack("<I", 0))
                self._in.flush()
            except OSError:
                pass
            self._process.join(timeout=60)
        for f in (self._in, self._out):
            try:
                f.close()
            except OSError:
                pass
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._tmp.cleanup()
