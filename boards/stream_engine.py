"""A stream board (real, or simulated behind a serial-like port) as a `ternkws listen` engine: golden/streaming.py
`GoldenEngine`'s interface (push(frames) -> (Decisions, [Event]), reset(), delay, hop, n_frames, n_classes,
detector_cfg, name) over the version-2 protocol (boards/host.py Device: STREAM_START, pipelined FRAMES,
POLL).

Each push sends its frames and then polls until the board is idle, so it returns every decision and event
of the frames pushed so far, numbered from the stream's start like the golden model's.
"""

import numpy as np

from ternkws.golden.protocol import StreamParams
from ternkws.golden.streaming import Decisions, Event, detector_config

__all__ = ["DeviceEngine", "stream_params_of"]


def stream_params_of(model, detector, hop):
    """StreamParams for a DetectorConfig and hop; ValueError in words for what the board cannot hold."""
    nc = model.topology.n_classes
    if any(not 0 <= c < nc for c in detector.keywords):
        raise ValueError(f"keyword classes {detector.keywords} outside [0, {nc})")
    params = StreamParams(int(hop), int(detector.smooth), int(detector.refractory), int(detector.threshold),
                          sum(1 << int(c) for c in set(detector.keywords)))
    params.pack()           # ValueError for a field out of its range
    return params


class DeviceEngine:
    """int8 frames -> (Decisions, [Event]) from a stream board behind `device` (a boards.host.Device whose
    identity has been checked against `model`). `on_close`: called by close() (e.g. stops a simulation)."""

    def __init__(self, device, model, detector=None, hop=10, *, name="board", on_close=None):
        self.device, self.model = device, model
        self.detector_cfg = detector or detector_config(model)
        self.params = stream_params_of(model, self.detector_cfg, hop)
        info = device.identity
        self.name, self.hop = name, hop
        self.delay, self.n_frames, self.n_classes = info.delay, info.n_frames, info.n_classes
        self._on_close = on_close
        self._started = False
        self._k = 0

    def reset(self):
        self.device.start_stream(self.params)
        self._started, self._k = True, 0

    def push(self, frames):
        frames = np.asarray(frames)
        if not self._started:
            self.reset()
        if len(frames):
            r = self.device.stream(frames)
        else:
            r = None
        rest = self.device.drain()
        logits = (r.logits if r else []) + rest.logits
        events = (r.events if r else []) + rest.events
        n = len(logits)
        index = np.arange(self._k, self._k + n, dtype=np.int64)
        self._k += n
        frame = index * self.hop + self.n_frames - 1
        d = Decisions(index, frame, frame + self.delay, np.asarray(logits, np.int64).reshape(n, self.n_classes))
        out = []
        for e in events:
            u = e.index * self.hop + self.n_frames - 1
            out.append(Event(int(e.index), int(u), int(u + self.delay), int(e.cls), int(e.margin)))
        return d, out

    def close(self):
        if self._on_close is not None:
            close, self._on_close = self._on_close, None
            close()
