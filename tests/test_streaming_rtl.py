# amaranth: UnusedElaboratable=no
"""The streaming mode RTL (hw/streaming.py) against the golden streaming model (golden/streaming.py), bit
for bit on every logit, class and event, under random back-pressure: random small networks with the
dense ternary mixer and the stored-weights mixer here, the grouped mixer in test_streaming_rtl_grouped.py
(two files, so that `make test` runs them on both workers); the default model through Verilator (slow)."""

import numpy as np
import pytest

from ternkws.golden.checkpoint import load
from ternkws.golden.streaming import detector_config, total_delay
from ternkws.hw.layers import CONFIGS, AcceleratorConfig
from ternkws.hw.streaming import StreamingAccelerator, state_bits, stream_plan
from ternkws.sim.random_streams import random_stream_case, run_stream_case
from ternkws.sim.streaming_pysim import StreamResult, compare, golden_stream, run_stream_pysim

N_IID = 20
N_LEARNED = 8
STALLS = (0.0, 0.3, 0.6)


def check_case(seed, **kw):
    model, config, rtl, ref, diff = run_stream_case(seed, **kw)
    assert diff == []
    assert len(ref.logits) >= 3
    return model, rtl, ref


@pytest.mark.parametrize("case", range(N_IID))
def test_random_streaming_network_bit_exact(case):
    check_case(20_000 + case, stall=STALLS[case % 3])


@pytest.mark.parametrize("case", range(N_LEARNED))
def test_random_stored_weights_streaming_network_bit_exact(case):
    """The learned int8 1x1 (stored-weights mixer) through the same streaming engine."""
    check_case(22_000 + case, mixer="learned", stall=STALLS[case % 3])


def test_cases_fire_events():
    """The random cases draw their threshold from their own margins, so the detector path is exercised
    (events compared, not only logits)."""
    fired = 0
    for seed in range(20_000, 20_000 + N_IID):
        model, config, frames, det, hop = random_stream_case(seed)
        fired += len(golden_stream(model, frames, det, hop).events)
    assert fired >= N_IID // 2


def test_clear_returns_to_the_reset_state():
    model, config, frames, det, hop = random_stream_case(20_003)
    half = len(frames) // 2
    rtl = run_stream_pysim(model, config, np.concatenate([frames, frames]), detector=det, hop=hop,
                           clear_after=len(frames), stall=0.2, seed=1)
    ref = golden_stream(model, frames, det, hop)
    assert half and len(ref.logits)
    both = StreamResult(np.concatenate([ref.logits, ref.logits]), ref.classes * 2, ref.events + ref.events)
    assert compare(rtl, both) == []


def test_events_only_sends_no_decisions():
    model, config, frames, det, hop = random_stream_case(20_001)
    ref = golden_stream(model, frames, det, hop)
    rtl = run_stream_pysim(model, config, frames, detector=det, hop=hop, events_only=True)
    assert len(rtl.logits) == 0 and rtl.events == ref.events and ref.events


def test_compare_reports_differences():
    a = StreamResult(np.array([[1, 2]]), [1], [(0, 1, 5)])
    assert compare(a, StreamResult(np.array([[1, 3]]), [1], [(0, 1, 5)]))
    assert compare(a, StreamResult(np.array([[1, 2]]), [1], [(0, 1, 6)]))
    assert compare(a, StreamResult(np.zeros((0, 2)), [], []))
    assert compare(a, a) == []


def test_stream_plan_of_the_default_model():
    model = load()
    acc = StreamingAccelerator(model, CONFIGS["up5k"])
    sp = stream_plan(model, acc.plan)
    # rings: 2p + 1 frames of each layer's input (the residual block inputs are their centre taps), and
    # the final layer's input frame
    assert [(r.channels, r.span) for r in sp.rings] == [(64, 11), (128, 13), (64, 15), (64, 17), (64, 57), (128, 1)]
    assert sp.ring_words == (64 * 11 + 128 * 13 + 64 * 15 + 64 * 17 + 64 * 57 + 128) // 2
    assert [(j.ring, j.offset, j.dw) for j in sp.jobs] == [
        (0, 10, 0), (1, 6, -1), (1, 12, 1), (2, 7, -1), (2, 14, 2), (3, 8, -1), (3, 16, 3), (4, 56, 4), (5, 0, -1)]
    assert sp.delays == (5, 11, 18, 26, 54, 54) and acc.delay == total_delay(model.topology) == 54
    assert [sp.n_jobs(n) for n in (1, 6, 12, 19, 27, 55)] == [0, 1, 3, 5, 7, 9]
    assert [sp.n_recv(n) for n in (1, 6, 12, 19, 27, 55)] == [1, 2, 3, 4, 5, 6]
    bits = state_bits(model)
    # SPEC 6.1's 7,680 B of line buffers (2p frames each), the arriving frame of each ring (384 B) and the
    # final layer's input frame (128 B): 8 KiB, one 16 K x 16 SPRAM a quarter full
    assert bits["rings (line buffers, residual block inputs, final input)"] == (7680 + 384 + 128) * 8
    assert bits["pool ring (T final frames, 8 bits a value)"] == 128 * 128 * 8
    assert sum(bits.values()) == 207_856          # 25.4 KiB of streaming state and buffers


def test_a_block_of_several_sub_blocks_keeps_its_input_longer():
    """R = 2: the residual reaches P_b = p0 + p1 frames back, beyond the first sub-block's 2 p0."""
    from ternkws.golden.placeholder import placeholder_model
    from ternkws.golden.streaming import stream_layout
    from ternkws.golden.topology import Block, Topology
    top = Topology(n_mfcc=8, n_classes=3, prologue_channels=8, prologue_kernel=3, blocks=(Block(8, 3, 2),),
                   epilogue_channels=8, epilogue_kernel=3, final_channels=8)
    m = placeholder_model(top)
    sp = stream_plan(m, StreamingAccelerator(m, AcceleratorConfig("x", 2, 2)).plan)
    lay = stream_layout(top)
    assert lay[2].res_delay == 2 and sp.rings[1].span == 3          # max(2 p0 = 2, P_b = 2) + 1
    assert sp.jobs[2].ring == 1 and sp.jobs[2].offset == 2 and sp.jobs[2].dw == -1


def test_lanes_must_divide_every_ring():
    from ternkws.golden.placeholder import placeholder_model
    from ternkws.golden.topology import Block, Topology
    top = Topology(n_mfcc=8, n_classes=3, prologue_channels=8, prologue_kernel=3, blocks=(Block(8, 3),),
                   epilogue_channels=12, epilogue_kernel=3, final_channels=8)
    with pytest.raises(ValueError, match="dw_lanes=8 does not divide the 12 input channels of final"):
        StreamingAccelerator(placeholder_model(top), AcceleratorConfig("x", 4, 8))


def test_parameter_ports_default_to_the_golden_defaults():
    model = load()
    acc = StreamingAccelerator(model)
    det = detector_config(model)
    assert acc.threshold.init == det.threshold == 1_059_090      # the bundled default's logit scale
    assert acc.hop.init == 10 and acc.smooth.init == 5 and acc.refractory.init == 10
    assert acc.keywords.init == sum(1 << c for c in det.keywords)


# --- the default model through Verilator (slow) -----------------------------------------------------------

@pytest.mark.slow
def test_default_model_60_s_stream_verilator():
    """The default model on 61 s of stream (6,100 frames: feature frames of the bundled recordings laid
    end to end with noise between them) through Verilator: every logit and event equal to the golden
    streaming model. About 10 minutes on one core."""
    from ternkws.sim.streaming_verilator import run_stream_rtl
    model = load()
    frames = _recording_frames(model, 6100)
    det = detector_config(model)
    ref = golden_stream(model, frames, det)
    assert len(ref.events) >= 3
    rtl, _ = run_stream_rtl(model, CONFIGS["up5k"], frames, detector=det)
    assert compare(rtl, ref) == []
    assert len(rtl.logits) == (6100 - 54 - 128) // 10 + 1


def _recording_frames(model, n):
    """int8 feature frames of a long recording: the bundled samples with noise of varying level between."""
    from pathlib import Path

    from ternkws.golden.audio import read_wav
    from ternkws.golden.streaming import FeatureStream
    rng = np.random.default_rng(11)
    samples = sorted((Path(__file__).resolve().parents[1] / "golden" / "samples").glob("*.wav"))
    parts, total = [], 0
    while total < (n + 3) * 160:
        x = read_wav(samples[len(parts) % len(samples)], 16000)
        gap = rng.normal(0, 10 ** rng.uniform(-3.5, -1.5), int(rng.uniform(0.2, 1.5) * 16000)).astype(np.float32)
        parts += [x, gap]
        total += len(x) + len(gap)
    audio = np.concatenate(parts)
    fs = FeatureStream(model.features, model.feature_mean, model.feature_scale)
    return fs.push(audio)[:n]
