"""Cycle model of the accelerator (hw/accelerator.py): the cycles of one window, computed from the
schedule and the configuration with each unit's rule, not measured and cached.

    cycles_per_window(model, config)  -> int
    cycle_breakdown(model, config)    -> [dict], one row for the load, one per pass, one for the classifier

`model` is a golden.checkpoint.Model: only its topology (channels, kernels, dilations, mixer kind,
pattern, and for the grouped pattern the density) and frame count matter; seeds and weights change no
cycle (both mixers' schedules are fixed: the dense one visits every entry, the grouped one every slot).
`config`
is an AcceleratorConfig or the name of one in CONFIGS (ValueError when its lanes do not fit the model).

Default model (3x1x64, T = 128): up5k 1,075,255 cycles, the mixer busy 97.6% of them, every pass bound
by the mixer except block3.0's main pass (depthwise: 17 taps + 1 write cycle over 2 lanes); ecp5 147,483
cycles, the mixer busy 89.7%, the feature load 5.6%. The learned baseline runs the same schedule.

What is counted
---------------
The figure the RTL simulations report (sim/accelerator_pysim.py `run_pysim`): input always valid, output
always ready, the cycle the class beat is taken minus the cycle `busy` rises (the one after the first
feature value is taken). tests/test_cycles.py checks the model against it, exactly, on random networks
(Amaranth simulator) and on the default model in both configurations (Verilator). Back-to-back windows
start every cycles_per_window + 2 cycles (the cycle that takes the first value, and the class cycle).

    cycles = (n_in - 1) + sum of the passes + classifier

each term the span from its first cycle to the next term's first cycle:

* Load: the n_in = T * n_mfcc feature values are taken one per cycle; START of pass 0 is the next cycle.
* A pass runs from its START cycle (the reader is started) to the START of the next one: the sequencer
  sees the pass's last write one cycle after it and starts the next pass the cycle after that. The last
  pass runs to the cycle in which the sequencer sees its last (pool) write and starts the classifier.
* Classifier (hw/classifier.py `cycles`, which counts both ends): from its start cycle to the class
  beat's, n_classes * (C + 2) + 1 cycles (C + 1 multiply-accumulate cycles and one emit cycle per
  class, then the class beat).

Rules inside a pass (cycle 0 = START, T frames, P = mixer_lanes, D = dw_lanes)
---------------------------------------------------------------------------------
Times are those of beats (valid and ready in the same cycle); each rule is the unit's documented
behaviour, and a unit that is not ready holds its input beat (back-pressure is modelled, not ignored).

* Reader + regroup(1 -> n) (hw/memory_reader.py, hw/regroup.py), n = D before the depthwise conv, P
  otherwise: the reader issues a read per cycle from cycle 1, words leave its FIFO from cycle 3; a
  gathering regroup takes a word per cycle and offers the full beat the cycle after its last word, taking
  the first word of the next beat in the cycle the full one leaves. Beat b is offered at
  max(x[b-1], 3 + b*n) + n (n > 1) or max(x[b-1] + 1, 3 + b) (n = 1), x = the cycle a beat is taken.
* Depthwise conv (hw/depthwise_conv.py; G = C / D beats per frame, pad p = dil * (K - 1) / 2): the first
  input beat is taken the cycle after it is offered (the run starts); a beat of input frame f >= p + 2
  waits for the last read of output frame f - p - 2. Output frame t starts after its last input frame
  min(t + p, T - 1) is complete and after frame t - 1's last read, and issues G * K reads, one per
  cycle, skipping the cycles in which an input beat is written (single-port line buffer:
  config.single_port_line_buffer) and the frozen cycles; a group's beat is offered 4 advancing cycles
  after its last read. The pipeline freezes (no read, nothing moves) while its output beat waits.
* Regroup(D -> P): gathering (P > D), a beat of the next group is taken no earlier than the cycle the
  full beat leaves, which is offered the cycle after its last piece; scattering (D > P), the pieces leave
  one per cycle from the cycle after the beat is taken, the next beat is taken with the last piece.
* Mixer (hw/ternary_mixer.py; words = c_in / P per frame): two frame buffers, so a beat of frame
  f >= 2 is taken no earlier than the cycle after frame f - 2's last issue. Frame f runs from
  R_f = max(L_f + 1, E_{f-1} + 1) + r (L_f: its last beat taken; E_f: its last issue) for
  c_out * words issue cycles, so c_out * c_in / P + r cycles per frame in steady state; r = 1, the
  WAIT cycle that restarts the entry source (ternary_mixer.cycles_per_frame), for the LFSR generator
  and the learned baseline's WeightRom alike (both valid the cycle after a restart). Output channel o
  leaves at R_f + (o + 1) * words + 2 (two stages and the output register).
* Grouped mixer (hw/grouped_mixer.py; pattern "grouped", adds = grouped_adds(config) rows per cycle,
  G = ceil(c_in / M) groups): input one channel per beat (regroups 1 -> 1 and D -> 1), the same two
  frame buffers and frame start rule (R_f as above, r = 1). Per frame, ceil(c_out / 8) row blocks of
  G * 8 / adds issue cycles; the last slot of a block issues no earlier than the cycle after the previous
  block's last value left the output register; the block's values are in the output register 3 cycles
  after that issue and leave one per cycle as they are taken (always, except into the pool: the post-op
  takes one when it advances). Default model: up5k 617,504 cycles (every main pass but the first bound
  by the 2-lane depthwise conv), ecp5 372,562 (8 rows per cycle: the mixer bounds every pass).
* Post-op (hw/post_op.py): 4 stages, one value per cycle. Residual pass: the mixer writes acc_res in
  the cycle a value leaves; main pass: the post-op writes the buffer in the cycle its value leaves.
* Pool (the last pass): a value is read in the cycle it leaves the post-op and the sum written the
  next, so at most one value every 2 cycles; the post-op then freezes while its output waits, and the
  mixer while its output waits for the post-op. This costs cycles only when the mixer can produce a
  value every cycle (c_in = P).
* Residual main pass: the acc_res reader has its words in its FIFO long before the mixer's first output
  and keeps up at one per cycle: it never delays a value.

So a pass costs about T times the per-frame cycles of its slowest unit (the `bound` of the breakdown:
reader T * c_in, depthwise T * C * K / D (T * C * (K + 1) / D single-port), mixer
T * (c_out * c_in / P + r), pool 2 * T * c_out) plus the fill and drain of the units before and after it.
A residual pass whose mixer is the slowest unit (P > 1) costs exactly T * (c_out * c_in / P + r) + c_in + 8
(frame 0 is in the mixer in cycle c_in + 3, its run starts r + 1 cycles later, the last value leaves 3
cycles after the last issue and the next pass starts 2 cycles after that).
"""

from bisect import bisect_right

from ternkws.golden.ternary_generator import GROUP_ROWS, groups_per_row, row_blocks
from ternkws.hw.accelerator import CONFIGS, AcceleratorConfig
from ternkws.hw.grouped_mixer import cycles_per_frame as grouped_cycles_per_frame, parallel_blocks
from ternkws.hw.layers import grouped_adds, hardware_plan
from ternkws.hw.classifier import cycles as classifier_cycles

__all__ = ["cycles_per_window", "cycle_breakdown", "pass_cycles", "unit_cycles"]

_NEVER = -(1 << 62)          # "no constraint" for a max()

READER_FIRST = 3             # the reader's first word leaves its FIFO in cycle 3 after START
DW_LATENCY = 4               # depthwise: read -> RAM data -> product -> accumulate -> output register
MIXER_LATENCY = 3            # mixer: last issue of a channel -> stage 1 -> stage 2 -> output register
POST_LATENCY = 4             # post-op: accept -> multiply -> add -> shift/clip into the output register


def _config(config):
    if isinstance(config, AcceleratorConfig):
        return config
    try:
        return CONFIGS[config]
    except (KeyError, TypeError):
        raise ValueError(f"unknown accelerator configuration {config!r}; choose one of "
                         f"{', '.join(CONFIGS)} or pass an AcceleratorConfig") from None


def _restart_cycles(mixer):
    """Cycles per frame the mixer spends on restarting its entry source: the WAIT cycle (the LFSR
    generator's entries, and the learned baseline's WeightRom words, are valid the next cycle)."""
    if mixer in ("ternary", "learned"):
        return 1
    raise ValueError(f"mixer must be 'ternary' or 'learned', not {mixer!r}")


def _offered(n, b, taken_before):
    """Reader + regroup(1 -> n): the cycle beat b is offered, given the cycle beat b - 1 was taken."""
    if n > 1:
        return max(taken_before, READER_FIRST + b * n) + n
    return max(taken_before + 1, READER_FIRST + b)


class _Frozen:
    """Sorted, disjoint intervals [start, end) of cycles in which a freezing pipeline does not advance."""

    def __init__(self):
        self.starts, self.ends = [], []

    def add(self, start, end):
        if end > start:
            self.starts.append(start)
            self.ends.append(end)

    def skip(self, c):
        """The first advancing cycle >= c."""
        k = bisect_right(self.starts, c) - 1
        if k >= 0 and c < self.ends[k]:
            return self.ends[k]
        return c

    def after(self, c, stages):
        """A value that enters a pipeline of `stages` registers in advancing cycle c is in its output
        register from this cycle on (each stage moves in an advancing cycle)."""
        for _ in range(stages - 1):
            c = self.skip(c + 1)
        return c + 1


class _Issue:
    """Issue slots of the depthwise unit: one read per cycle except in frozen cycles and, with a
    single-port line buffer, in cycles that write an input beat (`writes`, ascending)."""

    def __init__(self, writes, single_port, frozen):
        self.writes, self.single_port, self.frozen = writes, single_port, frozen
        self.w = 0                     # index of the first write not before the issue point

    def _first_blocked(self, c):
        """The first blocked cycle >= c, or None."""
        starts, ends = self.frozen.starts, self.frozen.ends
        k = bisect_right(starts, c) - 1
        first = c if k >= 0 and c < ends[k] else (starts[k + 1] if k + 1 < len(starts) else None)
        if self.single_port:
            while self.w < len(self.writes) and self.writes[self.w] < c:
                self.w += 1
            if self.w < len(self.writes) and (first is None or self.writes[self.w] < first):
                first = self.writes[self.w]
        return first

    def _free_from(self, c):
        """The first free cycle >= c."""
        while True:
            nxt = self.frozen.skip(c)
            if self.single_port:
                k = bisect_right(self.writes, nxt) - 1
                if k >= 0 and self.writes[k] == nxt:
                    nxt += 1
            if nxt == c:
                return c
            c = nxt

    def next(self, c, n):
        """The cycle of the n-th issue slot after cycle c."""
        pos = c
        while True:
            blocked = self._first_blocked(pos + 1)
            if blocked is None or blocked > pos + n:
                return pos + n
            n -= blocked - pos - 1
            pos = self._free_from(blocked) - 1


class _Mixer:
    """The mixer's frame schedule; outputs taken as they come (acc_res or a buffer). `restart`: cycles
    from the WAIT cycle that restarts the entry source to the first issue (1: the generator's entries
    and the weight ROM's words are valid the next cycle)."""

    def __init__(self, c_in, c_out, lanes, restart):
        self.words, self.c_out, self.restart = c_in // lanes, c_out, restart
        self.R, self.E = [], []

    def ready(self, f):
        """First cycle a beat of frame f may be taken (its frame buffer half is free)."""
        return self.E[f - 2] + 1 if f >= 2 else _NEVER

    def loaded(self, last_taken):
        f = len(self.R)
        run = max(last_taken + 1, self.E[f - 1] + 1 if f else _NEVER) + self.restart
        self.R.append(run)
        self.E.append(run + self.c_out * self.words - 1)

    def last_output(self):
        return self.E[-1] + MIXER_LATENCY


class _PoolMixer(_Mixer):
    """Mixer -> post-op -> pool: the pool takes a value at most every 2 cycles; both pipelines freeze
    while their output waits (the mixer's only while it holds a value the post-op cannot take)."""

    def __init__(self, c_in, c_out, lanes, restart):
        super().__init__(c_in, c_out, lanes, restart)
        self.mixer_frozen, self.post_frozen = _Frozen(), _Frozen()
        self.pool_taken = _NEVER

    def loaded(self, last_taken):
        f = len(self.R)
        run = max(last_taken + 1, self.E[f - 1] + 1 if f else _NEVER) + self.restart
        self.R.append(run)
        c = run - 1
        for _ in range(self.c_out):
            for _ in range(self.words):
                c = self.mixer_frozen.skip(c + 1)
            out = self.mixer_frozen.after(c, MIXER_LATENCY)      # in the mixer's output register
            accepted = self.post_frozen.skip(out)                # the post-op advances
            self.mixer_frozen.add(out, accepted)
            ready = self.post_frozen.after(accepted, POST_LATENCY)
            if ready == self.pool_taken + 1:                     # the pool is writing: wait a cycle
                self.post_frozen.add(ready, ready + 1)
            self.pool_taken = max(ready, self.pool_taken + 2)
        self.E.append(c)


class _GroupedMixer:
    """The grouped mixer's schedule (hw/grouped_mixer.py): one input channel per beat; per frame a
    restart cycle, then row blocks of G * 8 / adds issue cycles; the last slot of a block issues only
    once the output register is empty (the cycle after its previous block's last value left); the
    block's values are in the output register 3 cycles after that issue and leave one per cycle as they
    are taken. `post`: the values go through the post-op into the pool (a value every 2 cycles)."""

    def __init__(self, c_in, c_out, adds, density, post=None):
        k = parallel_blocks(adds)          # 8-row blocks served at once
        self.slots = groups_per_row(c_in, density) * max(1, GROUP_ROWS // adds)
        step = GROUP_ROWS * k
        self.rows = [min(step, c_out - step * b) for b in range(-(-row_blocks(c_out) // k))]
        self.R, self.E = [], []
        self.hold_empty = _NEVER      # first cycle the output register is empty after its last value
        self.last_take = _NEVER
        self.post = post

    def ready(self, f):
        return self.E[f - 2] + 1 if f >= 2 else _NEVER

    def loaded(self, last_taken):
        f = len(self.R)
        run = max(last_taken + 1, self.E[f - 1] + 1 if f else _NEVER) + 1
        self.R.append(run)
        prev = run - 1
        for n in self.rows:
            last = max(prev + self.slots, self.hold_empty)
            offered = last + 3
            for _ in range(n):
                take = self.post.take(offered) if self.post else offered
                offered = take + 1
            self.last_take = take
            self.hold_empty = take + 1
            prev = last
        self.E.append(prev)

    def last_output(self):
        return self.last_take

    @property
    def pool_taken(self):
        return self.post.pool_taken


class _PostToPool:
    """Post-op -> pool: the post-op takes a value when it advances; it freezes while its output waits
    for the pool, which takes a value at most every 2 cycles."""

    def __init__(self):
        self.frozen = _Frozen()
        self.pool_taken = _NEVER

    def take(self, offered):
        accepted = self.frozen.skip(offered)
        ready = self.frozen.after(accepted, POST_LATENCY)
        if ready == self.pool_taken + 1:                     # the pool is writing: wait a cycle
            self.frozen.add(ready, ready + 1)
        self.pool_taken = max(ready, self.pool_taken + 2)
        return accepted


def _plain_pass(frames, c_in, lanes, mixer):
    """Reader -> regroup(1 -> P) -> mixer."""
    words = c_in // lanes
    taken = _NEVER
    for b in range(frames * words):
        taken = max(_offered(lanes, b, taken), mixer.ready(b // words))
        if b % words == words - 1:
            mixer.loaded(taken)


def _depthwise_pass(frames, channels, kernel, dilation, dw_lanes, lanes, single_port, mixer):
    """Reader -> regroup(1 -> D) -> depthwise conv -> regroup(D -> P) -> mixer."""
    T, G, K = frames, channels // dw_lanes, kernel
    pad = dilation * (K - 1) // 2
    words = channels // lanes
    writes = []                  # cycle each input beat is written into the line buffer
    last_read = []               # cycle of each output frame's last read
    frozen = _Frozen()
    issue = _Issue(writes, single_port, frozen)
    to_mixer = []                # cycle each P-lane beat is taken by the mixer

    def take_inputs(upto):
        while len(writes) < min(upto, T) * G:
            b = len(writes)
            f = b // G
            offered = _offered(dw_lanes, b, writes[-1] if writes else _NEVER)
            if b == 0:
                writes.append(offered + 1)           # the run starts the cycle after valid is seen
            else:
                writes.append(max(offered, last_read[f - pad - 2] + 1 if f >= pad + 2 else _NEVER))

    def to_mixer_ready(m):
        return mixer.ready(m // words)

    for t in range(T):
        take_inputs(t + pad + 2)
        c = writes[(min(t + pad, T - 1) + 1) * G - 1]
        if t:
            c = max(c, last_read[-1])
        for j in range(G):
            c = issue.next(c, K)
            out = frozen.after(c, DW_LATENCY)        # the beat in the output register
            q = t * G + j
            if lanes == dw_lanes:                    # regroup passes beats through
                taken = max(out, to_mixer_ready(q))
                to_mixer.append(taken)
            elif lanes > dw_lanes:                   # gather k beats, offer the full one a cycle later
                k = lanes // dw_lanes
                taken = max(out, to_mixer[-1]) if q % k == 0 and to_mixer else out
                if q % k == k - 1:
                    to_mixer.append(max(taken + 1, to_mixer_ready(q // k)))
            else:                                    # scatter into k pieces, one per cycle
                k = dw_lanes // lanes
                taken = max(out, to_mixer[-1]) if to_mixer else out
                piece = taken
                for i in range(k):
                    piece = max(piece + 1, to_mixer_ready(q * k + i))
                    to_mixer.append(piece)
            frozen.add(out, taken)
            while len(mixer.R) < T and len(to_mixer) >= (len(mixer.R) + 1) * words:
                mixer.loaded(to_mixer[(len(mixer.R) + 1) * words - 1])
        last_read.append(c)


def pass_cycles(p, frames, config, mixer="ternary", pattern="iid", density=1 / 3):
    """Cycles of pass `p` (a hw.accelerator.Pass) from its START cycle to the next pass's START (for the
    last pass: to the cycle after the one that starts the classifier); `frames` T, `mixer` the
    topology's mixer kind ("ternary" or "learned"), `pattern` and `density` its ternary pattern."""
    config = _config(config)
    P, D = config.mixer_lanes, config.dw_lanes
    to_pool = p.kind == "main" and p.dst < 0
    if pattern == "grouped" and mixer == "ternary":
        mixer = _GroupedMixer(p.c_in, p.c_out, grouped_adds(config), density, _PostToPool() if to_pool else None)
        P = 1                                            # its input: one channel per beat
    else:
        mixer = (_PoolMixer if to_pool else _Mixer)(p.c_in, p.c_out, P, _restart_cycles(mixer))
    if p.kind == "main" and p.dw >= 0:
        _depthwise_pass(frames, p.c_in, p.layer.kernel, p.layer.dilation, D, P, config.single_port_line_buffer,
                        mixer)
    else:
        _plain_pass(frames, p.c_in, P, mixer)
    if p.kind == "res":
        last_write = mixer.last_output()                 # acc_res written as the value leaves
    elif to_pool:
        last_write = mixer.pool_taken + 1                # the sum is written the cycle after
    else:
        last_write = mixer.last_output() + POST_LATENCY  # the buffer written as the value leaves
    return last_write + 2


def unit_cycles(p, frames, config, mixer="ternary", pattern="iid", density=1 / 3):
    """Busy cycles of each unit in pass `p` on its own (its steady-state rule times T frames)."""
    config = _config(config)
    P, D = config.mixer_lanes, config.dw_lanes
    if pattern == "grouped" and mixer == "ternary":
        per_frame = grouped_cycles_per_frame(p.c_in, p.c_out, grouped_adds(config), density)
    else:
        per_frame = p.c_out * (p.c_in // P) + _restart_cycles(mixer)
    units = {"reader": frames * p.c_in, "mixer": frames * per_frame}
    if p.kind == "main" and p.dw >= 0:
        taps = p.layer.kernel + (1 if config.single_port_line_buffer else 0)
        units["depthwise"] = frames * (p.c_in // D) * taps
    if p.kind == "main" and p.dst < 0:
        units["pool"] = 2 * frames * p.c_out
    return units


def cycle_breakdown(model, config):
    """Rows {"pass", "kind", "layer", "c_in", "c_out", "cycles", "bound", "units", "overhead"}: the load
    (pass None), every pass in schedule order, the classifier (pass None); `bound` is the unit with the
    most busy cycles (`units`, see unit_cycles), `overhead` the pass's cycles beyond that unit's (fill,
    drain, restarts). The rows' cycles add up to cycles_per_window."""
    config = _config(config)
    plan = hardware_plan(model, config)      # the records the accelerator is built from (checks the lanes)
    top, T = model.topology, plan.frames
    n_in = T * plan.n_mfcc
    # the count starts the cycle after the first value is taken
    rows = [{"pass": None, "kind": "load", "layer": "features", "c_in": top.n_mfcc, "c_out": top.n_mfcc,
             "cycles": n_in - 1, "bound": "input", "units": {"input": n_in - 1}, "overhead": 0}]
    passes = plan.passes
    for n, p in enumerate(passes):
        cycles = pass_cycles(p, T, config, plan.mixer, plan.pattern, plan.density)
        if n == len(passes) - 1:
            cycles -= 1              # to the cycle that starts the classifier (it sees the last write)
        units = unit_cycles(p, T, config, plan.mixer, plan.pattern, plan.density)
        bound = max(units, key=units.get)
        rows.append({"pass": n, "kind": p.kind, "layer": p.layer.name, "c_in": p.c_in, "c_out": p.c_out,
                     "cycles": cycles, "bound": bound, "units": units, "overhead": cycles - units[bound]})
    C, K = plan.classifier.channels, plan.classifier.n_classes
    cls = classifier_cycles(C, K) - 1    # it counts both its start and the class beat cycle
    rows.append({"pass": None, "kind": "classifier", "layer": "classifier", "c_in": C, "c_out": K,
                 "cycles": cls, "bound": "classifier", "units": {"classifier": cls}, "overhead": 0})
    return rows


def cycles_per_window(model, config):
    """Cycles of one window (see the module docstring for what is counted)."""
    return sum(row["cycles"] for row in cycle_breakdown(model, config))
