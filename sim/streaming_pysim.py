"""Run the streaming accelerator (hw/streaming.py) in the Amaranth simulator, and compare it with the
golden streaming model (golden/streaming.py). Small networks; full models go through Verilator
(sim/streaming_verilator.py)."""

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from ternkws.golden.streaming import DEFAULT_HOP, Detector, StreamingNetwork, detector_config
from ternkws.hw.streaming import StreamingAccelerator

from .pysim_streams import stream_put

__all__ = ["StreamResult", "run_stream_pysim", "golden_stream", "compare", "stream_params"]


@dataclass
class StreamResult:
    """What the RTL (or the golden model) gave for a stream: per decision its logits and class; the
    events (decision index, class, margin); for the RTL, the cycle each frame's first value was taken."""
    logits: np.ndarray                         # (n_decisions, n_classes) int64
    classes: list
    events: list                               # [(index, cls, margin)]
    frame_cycles: list = field(default_factory=list)

    @property
    def cycles_per_frame(self):
        """Cycles between the first values of consecutive frames."""
        return np.diff(np.asarray(self.frame_cycles, np.int64))


def stream_params(model, detector=None, hop=DEFAULT_HOP):
    """The accelerator's parameter ports for a DetectorConfig (default: the checkpoint's) and hop."""
    det = detector or detector_config(model)
    if not 1 <= hop < 1 << 16:
        raise ValueError(f"hop must be in [1, 65535] for the RTL, not {hop}")
    if not 1 <= det.refractory <= 255:
        raise ValueError(f"refractory must be in [1, 255] for the RTL, not {det.refractory}")
    if any(not 0 <= c < model.topology.n_classes for c in det.keywords):
        raise ValueError(f"keyword classes {det.keywords} outside [0, {model.topology.n_classes})")
    return {"hop": int(hop), "smooth": int(det.smooth), "refractory": int(det.refractory),
            "threshold": int(det.threshold), "keywords": sum(1 << int(c) for c in set(det.keywords))}


def golden_stream(model, frames, detector=None, hop=DEFAULT_HOP):
    """The golden streaming model's StreamResult for int8 frames (n, n_mfcc) from reset."""
    det = detector or detector_config(model)
    d = StreamingNetwork.from_model(model, hop).run(np.asarray(frames))
    events = Detector(det, model.topology.n_classes).update(d)
    return StreamResult(np.asarray(d.logits, np.int64), [int(c) for c in d.cls],
                        [(e.index, e.cls, e.margin) for e in events])


def compare(rtl, ref):
    """[] when equal, else lines saying where they differ."""
    out = []
    if rtl.logits.shape != ref.logits.shape:
        out.append(f"{len(rtl.logits)} decisions from the RTL, {len(ref.logits)} from the golden model")
    n = min(len(rtl.logits), len(ref.logits))
    for k in range(n):
        if not np.array_equal(rtl.logits[k], ref.logits[k]) or rtl.classes[k] != ref.classes[k]:
            out.append(f"decision {k}: RTL {rtl.logits[k].tolist()} class {rtl.classes[k]}, golden "
                       f"{ref.logits[k].tolist()} class {ref.classes[k]}")
            break
    if rtl.events != ref.events:
        out.append(f"events: RTL {rtl.events[:8]}, golden {ref.events[:8]}")
    return out


def run_stream_pysim(model, config, frames, *, detector=None, hop=DEFAULT_HOP, seed=0, stall=0.0,
                     events_only=False, clear_after=None, vcd=None, dut=None):
    """Stream int8 frames (n, n_mfcc) through the RTL from reset; returns a StreamResult. `stall`: the
    chance of an idle input cycle and of a not-ready cycle on each output (random back-pressure).
    `clear_after`: pulse `clear` once that many frames are done (the rest is a new stream)."""
    dut = dut or StreamingAccelerator(model, config)
    params = stream_params(model, detector, hop)
    rng = np.random.default_rng(seed)
    nc = model.topology.n_classes
    frames = np.asarray(frames, np.int64)
    n_mfcc = frames.shape[1]
    values = [int(v) for v in frames.reshape(-1)]
    beats, events, starts = [], [], []

    async def producer(ctx):
        for name, v in params.items():
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.events_only, int(events_only))
        await ctx.tick()
        split = len(values) if clear_after is None else clear_after * n_mfcc
        await stream_put(ctx, dut.i, values[:split], rng=rng, stall=stall)
        await ctx.tick().until(dut.idle)
        if clear_after is not None:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            await stream_put(ctx, dut.i, values[split:], rng=rng, stall=stall)
            await ctx.tick().until(dut.idle)

    async def monitor(ctx):
        cycle, taken = 0, 0
        while True:
            o_ready = not (stall and rng.random() < stall)
            e_ready = not (stall and rng.random() < stall)
            ctx.set(dut.o.ready, o_ready)
            ctx.set(dut.e.ready, e_ready)
            _, _, iv, ir, ov, op, ev, ep = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.payload, dut.e.valid, dut.e.payload)
            if iv and ir:
                if taken % n_mfcc == 0:
                    starts.append(cycle)
                taken += 1
            if ov and o_ready:
                beats.append((int(op.value), int(op.last)))
            if ev and e_ready:
                events.append((int(ep.index), int(ep.cls), int(ep.margin)))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(producer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    logits, classes, cur = [], [], []
    for value, last in beats:
        if last:
            if len(cur) != nc:
                raise AssertionError(f"decision {len(logits)}: {len(cur)} logits before the class, expected {nc}")
            logits.append(cur)
            classes.append(value)
            cur = []
        else:
            cur.append(value)
    if cur:
        raise AssertionError(f"{len(cur)} logits without their class at the end of the stream")
    return StreamResult(np.asarray(logits, np.int64).reshape(-1, nc), classes, events, starts)
