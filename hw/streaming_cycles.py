"""Cycle model of the streaming mode (hw/streaming.py): the cycles of every input frame, computed from the
streaming schedule and each unit's timing rules, not measured.

    frame_cycles(model, config, n_frames)   -> [cycles of frame 0, 1, ...] (first value to first value)
    stream_cycles(model, config)            -> {"warmup": [...], "frame": steady cycles, "bound": ...}

What is counted: the RTL simulations' figure (sim/streaming_pysim.py, sim/tb_streaming.py: input always
valid, outputs always ready): the cycle each frame's first feature value is taken; a frame's cycles are
the distance to the next frame's first value. tests/test_streaming_cycles.py requires equality on random
networks (Amaranth simulator) and on the default model (Verilator, slow).

How: a cycle-by-cycle walk of the datapath's control, one rule per unit, each the unit's documented
behaviour (no data: only valid/ready, counters and pipeline flags):

* input -> gather regroup (1 -> D) -> ring writes; writes take the ring memory's cycle (single port);
* depthwise jobs (hw/streaming_depthwise.py): a JOB cycle per job, then one read per cycle (not in write
  cycles with a single-port ring, not while its output waits for the FIFO), group j of a job on the
  newest frame only once that group is written; 4 stages to the output register;
* job FIFO (amaranth.lib.fifo.SyncFIFOBuffered: an entry is readable 2 cycles after it is written);
  regroup (D -> mixer input lanes);
* feeder: SWITCH (the mixer idle) -> LOAD -> FEED (the pass's beats); the mixers as in hw/cycles.py's
  rules, cycle by cycle: dense ternary / stored weights (hw/ternary_mixer.py: restart cycle, then
  c_out * c_in / P issues; 2 stages and the output register; frozen while its output waits) and grouped
  (hw/grouped_mixer.py: restart, slots / adds issues per row block, a block's last slot only once the
  output register is free);
* post-op: 4 stages, frozen while its output waits (only for the pool: a value every 2 cycles, none while
  a decision's classifier and detector run);
* back end: classifier n_classes * (C + 2) + 2 cycles (hw/classifier.py), detector n_classes * N + 3
  (+ 1 when it fires).

Default model (3x1x64, T = 128), cycles per input frame once every layer runs (decision frames alike:
a decision's classifier and detector overlap the next frame), equal to the Verilator measurement:

| configuration                     | dense ternary (default.npz) | grouped pattern, same shape |
|-----------------------------------|----------------------------:|----------------------------:|
| up5k (mixer 8 lanes, dw 2 lanes)  |                       9,004 |                       4,128 |
| up5k with dw_lanes = 4            |                       8,638 |                       3,833 |
| ecp5 (mixer 64, dw 16)            |                       1,218 |                       3,719 |

Warm-up (frames 0 .. D = 54, layers starting one by one), up5k dense: 67 (5 frames), 1,428 (6), 3,618
(7), 4,720 (8), 5,822 (28), 7,325 (1). Where the cycles go, up5k: the depthwise unit has 3,328 reads
(6,272 products over 2 lanes) plus 256 ring writes per frame, the mixer 8,201 issue cycles (dense) or
2,793 (grouped) plus, for the grouped mixer, its input one channel per beat (768 load cycles); the
depthwise of layer l + 1 follows the mixer of layer l, so the dense frame is bound by the mixer (9,004
= 8,201 + loads, switches and the prologue's depthwise before the first pass), the grouped one by the
chain depthwise -> mixer -> depthwise (the depthwise alone is 3,584 cycles at 2 lanes; it waits for
the mixer's first outputs of each layer, after the mixer has loaded that layer's input, one channel a
cycle). The final 1x1 of a frame runs in the next frame's step, before its epilogue, in the shadow of
the epilogue's depthwise (9,079 and 4,539 cycles without that).
"""

from ternkws.golden.streaming import DEFAULT_HOP, DEFAULT_SMOOTH
from ternkws.golden.ternary_generator import GROUP_ROWS, groups_per_row, row_blocks

from .grouped_mixer import parallel_blocks
from .layers import CONFIGS, AcceleratorConfig, grouped_adds, hardware_plan
from .streaming import _fifo_depth, packed_pool, stream_plan

__all__ = ["frame_cycles", "stream_cycles"]


def _config(config):
    if isinstance(config, AcceleratorConfig):
        return config
    try:
        return CONFIGS[config]
    except (KeyError, TypeError):
        raise ValueError(f"unknown accelerator configuration {config!r}; choose one of {', '.join(CONFIGS)} "
                         f"or pass an AcceleratorConfig") from None


class _Regroup:
    """hw/regroup.py's handshake: gather (n_out > n_in), scatter (n_out < n_in) or pass-through."""

    def __init__(self, n_in, n_out):
        self.k = max(n_in, n_out) // min(n_in, n_out)
        self.mode = "pass" if n_in == n_out else "gather" if n_out > n_in else "scatter"
        self.full = False
        self.cnt = 0

    def o_valid(self, i_valid):
        return i_valid if self.mode == "pass" else self.full

    def i_ready(self, o_ready):
        if self.mode == "pass":
            return o_ready
        if self.mode == "gather":
            return not self.full or o_ready
        return not self.full or (o_ready and self.cnt == self.k - 1)

    def tick(self, i_take, o_take):
        if self.mode == "gather":
            if self.full and o_take:
                self.full = False
            if i_take:
                if self.cnt == self.k - 1:
                    self.cnt, self.full = 0, True
                else:
                    self.cnt += 1
        elif self.mode == "scatter":
            if self.full and o_take:
                if self.cnt == self.k - 1:
                    self.cnt, self.full = 0, False
                else:
                    self.cnt += 1
            if i_take:
                self.full, self.cnt = True, 0


class _Fifo:
    """SyncFIFOBuffered (depth >= 2): inner memory of depth - 1 entries and an output register."""

    def __init__(self, depth):
        self.inner_depth = depth - 1
        self.inner = 0
        self.r_rdy = False

    @property
    def w_rdy(self):
        return self.inner != self.inner_depth

    def tick(self, w_en, r_en):
        do_write = self.w_rdy and w_en
        do_inner_read = self.inner != 0 and (not self.r_rdy or r_en)
        self.inner += int(do_write) - int(do_inner_read)
        if do_inner_read:
            self.r_rdy = True
        elif r_en:
            self.r_rdy = False


class _DenseMixer:
    """hw/ternary_mixer.py (and the stored-weights mixer): frame buffer halves, WAIT (restart) / RUN."""

    def __init__(self, layers, lanes):
        self.words = [c_in // lanes for c_in, _ in layers]
        self.c_out = [c_out for _, c_out in layers]
        self.layer = 0
        self.write_word = self.write_half = self.read_half = self.read_word = self.row = 0
        self.full = [False, False]
        self.run = False
        self.s1 = self.s1_last = self.s2 = self.s2_last = self.o_valid = False

    @property
    def i_ready(self):
        return not self.full[self.write_half]

    @property
    def idle(self):
        return (self.write_word == 0 and not any(self.full) and not self.run and not self.s1 and not self.s2
                and not self.o_valid)

    def tick(self, i_take, o_ready):
        words, c_out = self.words[self.layer], self.c_out[self.layer]
        advance = not self.o_valid or o_ready
        loaded = issued = False
        if i_take:
            if self.write_word == words - 1:
                self.write_word, loaded, half_loaded = 0, True, self.write_half
                self.write_half ^= 1
            else:
                self.write_word += 1
        issue = self.run and advance
        last_word = self.read_word == words - 1
        if not self.run:
            if self.full[self.read_half]:
                self.run = True
        elif issue:
            if last_word:
                self.read_word = 0
                if self.row == c_out - 1:
                    self.row, issued, half_issued = 0, True, self.read_half
                    self.read_half ^= 1
                    self.run = False
                else:
                    self.row += 1
            else:
                self.read_word += 1
        for h in range(2):
            if loaded and half_loaded == h:
                self.full[h] = True
            elif issued and half_issued == h:
                self.full[h] = False
        if advance:
            self.o_valid = self.s2 and self.s2_last
            self.s2, self.s2_last = self.s1, self.s1_last
            self.s1, self.s1_last = issue, last_word


class _GroupedMixer:
    """hw/grouped_mixer.py: one channel per input beat; row blocks of 8 rows, `adds` rows per issue; a
    block's last slot issues only once the output register is free."""

    def __init__(self, layers, adds, density):
        self.subs = max(1, GROUP_ROWS // adds)
        self.step = step = GROUP_ROWS * parallel_blocks(adds)     # rows of the 8-row blocks served at once
        self.c_in = [c_in for c_in, _ in layers]
        self.groups = [groups_per_row(c_in, density) for c_in, _ in layers]
        self.blocks = [-(-c_out // step) for _, c_out in layers]
        self.last_rows = [c_out - step * (b - 1) for (_, c_out), b in zip(layers, self.blocks)]
        self.layer = 0
        self.in_chan = 0
        self.write_half = self.read_half = 0
        self.full = [False, False]
        self.run = False
        self.group = self.sub = self.block = 0
        self.s1 = self.s1_last = self.s2 = self.s2_last = False
        self.s1_rows = self.s2_rows = 0
        self.out_count = 0

    @property
    def i_ready(self):
        return not self.full[self.write_half]

    @property
    def o_valid(self):
        return self.out_count != 0

    @property
    def idle(self):
        return (self.in_chan == 0 and not any(self.full) and not self.run and not self.s1 and not self.s2
                and self.out_count == 0)

    def tick(self, i_take, o_ready):
        n = self.layer
        loaded = issued = False
        if i_take:
            if self.in_chan == self.c_in[n] - 1:
                self.in_chan, loaded, half_loaded = 0, True, self.write_half
                self.write_half ^= 1
            else:
                self.in_chan += 1
        last_slot = self.group == self.groups[n] - 1 and self.sub == self.subs - 1
        hold_free = self.out_count == 0 and not (self.s1 and self.s1_last) and not (self.s2 and self.s2_last)
        issue = self.run and (not last_slot or hold_free)
        rows = self.last_rows[n] if self.block == self.blocks[n] - 1 else self.step
        if not self.run:
            if self.full[self.read_half]:
                self.run = True
        elif issue:
            if self.sub == self.subs - 1:
                self.sub = 0
                if self.group == self.groups[n] - 1:
                    self.group = 0
                    if self.block == self.blocks[n] - 1:
                        self.block, issued, half_issued = 0, True, self.read_half
                        self.read_half ^= 1
                        self.run = False
                    else:
                        self.block += 1
                else:
                    self.group += 1
            else:
                self.sub += 1
        for h in range(2):
            if loaded and half_loaded == h:
                self.full[h] = True
            elif issued and half_issued == h:
                self.full[h] = False
        o_take = self.o_valid and o_ready
        if self.s2 and self.s2_last:
            self.out_count = self.s2_rows
        elif o_take:
            self.out_count -= 1
        self.s2, self.s2_last, self.s2_rows = self.s1, self.s1 and self.s1_last, self.s1_rows
        self.s1, self.s1_last = issue, issue and last_slot
        if issue:
            self.s1_rows = rows


# a frame of the largest network the presets accept takes well under a million cycles
_STALL_CYCLES = 5_000_000


def frame_cycles(model, config, n_frames, *, hop=DEFAULT_HOP, smooth=DEFAULT_SMOOTH, fires=()):
    """Cycles of each of the first n_frames - 1 input frames of a stream from reset (a frame's first value
    to the next frame's first value), input always valid, outputs always ready. `fires`: the decision
    indices whose detector fires (one cycle more each: the event beat)."""
    config = _config(config)
    plan = hardware_plan(model, config)
    sp = stream_plan(model, plan)
    passes = plan.passes
    L, D = len(sp.rings), config.dw_lanes
    T, C, nc = plan.frames, plan.classifier.channels, plan.classifier.n_classes
    single_port = config.single_port_line_buffer
    n_mfcc = plan.n_mfcc
    fires = set(fires)
    layers = [(p.c_in, p.c_out) for p in passes]
    if plan.mixer == "ternary" and plan.pattern == "grouped":
        mixer, p_in = _GroupedMixer(layers, grouped_adds(config), plan.density), 1
    else:
        mixer, p_in = _DenseMixer(layers, config.mixer_lanes), config.mixer_lanes
    G = [r.channels // D for r in sp.rings]
    job_G = [G[j.ring] for j in sp.jobs]
    job_K = [plan.depthwise_layers[j.dw].kernel if j.dw >= 0 else 1 for j in sp.jobs]
    job_new = [j.dw >= 0 or j.offset == 0 for j in sp.jobs]
    job_ring = [j.ring for j in sp.jobs]
    kind_res = [p.kind == "res" for p in passes]
    words_d = [p.c_in // D for p in passes]
    beats_in = [p.c_in // p_in for p in passes]
    D_all, delays = sp.delay, sp.delays
    ch_out = [(sp.rings[k + 1].channels if k + 1 < L else C) for k in range(L)]
    jobs_at = [sum(1 for layer in sp.pass_layer if delays[layer] < v) for v in range(D_all + 2)]
    recv_at = [sum(1 for layer in range(L) if layer == 0 or delays[layer - 1] < v) for v in range(D_all + 2)]
    # the back end: classifier nc (C + 2) + 2 cycles and one more (the detector writes the last logit's
    # high half in the cycle the class beat is offered), detector 4 nc N + 5, idle the cycle after
    back_cycles = nc * (C + 2) + 4 * nc * smooth + 7     # from the cycle after the start
    pool_steps = 4 if packed_pool(plan) else 2          # cycles per final value in the pool

    gather, to_mixer, fifo = _Regroup(1, D), _Regroup(D, p_in), _Fifo(_fifo_depth(plan, sp))
    n = n_jobs = 0
    in_busy, in_c, final_pending, order = False, 0, False, 0
    queue, pv = [], 0                                    # the post writer's layers in flight
    pass_layer = [p.layer.index for p in passes]
    J = len(passes)

    def at(pos):
        """(job / pass at position pos of the step, deferred): hw/streaming_depthwise.py `order`."""
        if order == 2 or (order == 1 and pos == J - 2):
            return J - 1, True
        if order == 1 and pos == J - 1:
            return J - 2, False
        return pos, False
    ps, pc, fc, phase, decide = 0, 0, 0, 0, False
    mp = mlayer = fed = taken = 0
    front, feeder = "WAIT", "SWITCH"
    back_busy_until, k_decision = 0, 0
    dw_state, dw_recv, dw_jobs, wl, wg, jpos, dj, dk = "IDLE", 0, 0, 0, 0, 0, 0, 0
    v1 = last1 = v2 = last2 = done3 = dw_o_valid = False
    p1 = p2 = p3 = post_o_valid = False
    starts, frames_left, cycle = [], n_frames, 0
    while frames_left:
        # ---------- combinational: valids from the registers, readies from the sinks back -------------
        running = front == "RUN"
        pl = queue[0] if queue else None
        to_pool_now = pl == L - 1
        back_idle = cycle >= back_busy_until
        pool_free = back_idle and not decide and ps == 0
        dw_w_ready = wl < dw_recv
        g_i_valid = running if in_busy else (post_o_valid and pl is not None and not to_pool_now)
        g_i_ready = gather.i_ready(dw_w_ready)
        write_now = gather.o_valid(g_i_valid) and dw_w_ready
        post_o_ready = pool_free if to_pool_now else (pl is not None and not in_busy and g_i_ready)
        post_adv = not post_o_valid or post_o_ready
        i_take = running and in_busy and g_i_ready
        post_take = post_o_valid and post_o_ready
        pool_take = to_pool_now and pool_free and post_o_valid
        m_o_ready = kind_res[mlayer] or post_adv
        post_i_take = mixer.o_valid and not kind_res[mlayer] and post_adv
        feeding = feeder == "FEED"
        tm_i_valid = feeding and fifo.r_rdy and fed < words_d[mlayer]
        m_i_ready = mixer.i_ready
        m_i_take = to_mixer.o_valid(tm_i_valid) and m_i_ready
        tm_i_ready = to_mixer.i_ready(m_i_ready)
        fifo_r_en = feeding and tm_i_ready and fed < words_d[mlayer]
        tm_i_take = tm_i_valid and tm_i_ready
        dw_adv = not dw_o_valid or fifo.w_rdy
        issue = False
        jn, deferred = at(jpos)
        if dw_state == "RUN":
            r = job_ring[jn]
            ready_in = not job_new[jn] or deferred or wl > r or (wl == r and wg > dj)
            issue = dw_adv and ready_in and not (single_port and write_now)
        dw_idle = dw_state == "IDLE" and not (v1 or v2 or done3 or dw_o_valid) and wl == dw_recv
        step_done = not in_busy and dw_idle and mp == n_jobs
        start = front == "WAIT"
        pool_last = ps == pool_steps - 1

        # ---------- registers --------------------------------------------------------------------------
        if i_take and in_c == 0:
            starts.append(cycle)
        # input and post writers (the front end's start overrides the post writer's reset below)
        if i_take:
            if in_c == n_mfcc - 1:
                in_c, in_busy = 0, False
                frames_left -= 1
            else:
                in_c += 1
        if post_take:
            if pv == ch_out[pl] - 1:
                pv = 0
                queue.pop(0)
            else:
                pv += 1
        # pool and back end (the back end sees the decision the cycle after the pool's last write)
        if back_idle and decide:
            decide = False
            back_busy_until = cycle + 1 + back_cycles + (1 if k_decision in fires else 0)
            k_decision += 1
        if ps:
            ps = (ps + 1) % pool_steps
        if ps == 0 and pool_last:
            if pc == C - 1:
                pc = 0
                if fc >= T - 1:
                    decide = phase == 0
                    phase = 0 if phase >= hop - 1 else phase + 1
                fc = min(fc + 1, T)
            else:
                pc += 1
        if pool_take:
            ps = 1
        # feeder
        if tm_i_take:
            fed += 1
        if feeder == "SWITCH":
            if mp < n_jobs and mixer.idle:
                mlayer, fed, taken, feeder = at(mp)[0], 0, 0, "LOAD"
        elif feeder == "LOAD":
            if not kind_res[mlayer]:
                queue.append(pass_layer[mlayer])
            feeder = "FEED"
        elif m_i_take:
            taken += 1
            if taken == beats_in[mlayer]:
                mp, feeder = mp + 1, "SWITCH"
        # units
        mixer.tick(m_i_take, m_o_ready)
        gather.tick(g_i_valid and g_i_ready, write_now)
        to_mixer.tick(tm_i_take, m_i_take)
        fifo.tick(dw_o_valid, fifo_r_en)
        if post_adv:
            p1, p2, p3, post_o_valid = post_i_take, p1, p2, p3
        # depthwise unit
        if write_now:
            if wg == G[wl] - 1:
                wg, wl = 0, wl + 1
            else:
                wg += 1
        if dw_adv:
            v1, last1, v2, last2, done3, dw_o_valid = issue, dk == job_K[jn] - 1 if issue else False, v1, last1, \
                v2 and last2, done3
        if dw_state == "JOB":
            if jpos == dw_jobs:
                dw_state = "IDLE"
            else:
                dj = dk = 0
                dw_state = "RUN"
        elif dw_state == "RUN" and issue:
            if dk == job_K[jn] - 1:
                dk = 0
                if dj == job_G[jn] - 1:
                    jpos, dw_state = jpos + 1, "JOB"
                else:
                    dj += 1
            else:
                dk += 1
        # front end
        if start:
            # (the input is always valid here: no flush step; the final 1x1 of a frame runs in the next
            # frame's step, before its epilogue)
            v = n if n == D_all + 1 else n + 1
            if final_pending:
                jobs, order = J, 1
            else:
                jobs, order = (J - 1 if v > D_all else jobs_at[v]), 0
            final_pending = final_pending or v > D_all
            dw_state, dw_recv, dw_jobs, wl, wg, jpos = "JOB", recv_at[v], jobs, 0, 0, 0
            n, n_jobs, in_busy, mp, front = v, jobs, True, 0, "RUN"
        elif running and step_done:
            front = "WAIT"
        mixer.layer = mlayer
        cycle += 1
        if cycle - (starts[-1] if starts else 0) > _STALL_CYCLES:
            raise RuntimeError(f"the streaming cycle model made no progress for {_STALL_CYCLES:,} cycles at frame "
                               f"{len(starts)} (a schedule it does not model: {config})")
    return [b - a for a, b in zip(starts, starts[1:])]


def stream_cycles(model, config, *, hop=DEFAULT_HOP, smooth=DEFAULT_SMOOTH):
    """{"warmup": cycles of frames 0 .. D (layers starting one by one), "frame": the steady state's cycles
    per frame (every layer running, also on decision frames), "decision_overlap": True}: frame_cycles
    over D + 3 frames."""
    plan = hardware_plan(model, _config(config))
    d = stream_plan(model, plan).delay
    c = frame_cycles(model, config, d + 4, hop=hop, smooth=smooth)
    return {"warmup": c[:d + 1], "frame": c[-1], "frames": c}
