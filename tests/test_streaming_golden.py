"""The streaming golden model (golden/streaming.py, golden/SPEC.md section 6): the vectorised engine
against the frame-by-frame reference for every chunking, its relation to the window model (where equal,
where not), the receptive field / delay, widths, the detection rule, streaming features, the listener
and the benchmark."""

import numpy as np
import pytest

from ternkws.golden import stream_bench, streaming
from ternkws.golden.audio import read_wav
from ternkws.golden.checkpoint import load, make_model
from ternkws.golden.classifier import classifier
from ternkws.golden.evaluate import cached_ternary
from ternkws.golden.features import FeatureConfig, fit_length, mfcc, quantize
from ternkws.golden.network import forward_int, init_random
from ternkws.golden.streaming import (Decisions, Detector, DetectorConfig, FeatureStream, FrameStream, Listener,
                                      StreamingNetwork, fire, scores, stream_layout, stream_mfcc, total_delay)
from ternkws.golden.topology import Block, Topology

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "golden" / "samples"

# Two blocks of two sub-blocks (a residual FIFO longer than one line buffer), dilation, odd kernels.
SMALL = Topology(n_mfcc=8, n_classes=4, prologue_channels=12, prologue_kernel=5,
                 blocks=(Block(8, 3, 2), Block(10, 5, 1, 2)), epilogue_channels=12, epilogue_kernel=5,
                 epilogue_dilation=2, final_channels=12)
T_SMALL = 16


def _random_net(mixer="ternary", seed=0, top=SMALL, frames=T_SMALL):
    top = Topology(**{**top.to_dict(), "mixer": mixer, "seed": seed + 1})
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0, 40, (12, frames, top.n_mfcc)), -128, 127)
    arrays = init_random(top, rng, x)
    model = make_model(top, arrays, x, np.zeros(top.n_mfcc), np.ones(top.n_mfcc), {"trained": False},
                       FeatureConfig(n_mfcc=top.n_mfcc, n_mels=16, n_frames=frames),
                       labels=("yes", "no", "silence", "unknown")[:top.n_classes])
    return model


def _frames(rng, n, c, scale=50):
    return np.clip(np.round(rng.normal(0, scale, (n, c))), -128, 127).astype(np.int8)


@pytest.fixture(scope="module")
def default():
    return load("default")


# --- layout ---------------------------------------------------------------------------------------------

def test_default_layout_delays_and_state(default):
    lay = stream_layout(default.topology)
    assert [(t.name, t.pad, t.line_frames, t.delay, t.res_delay) for t in lay] == [
        ("prologue", 5, 10, 5, 0), ("block1.0", 6, 12, 11, 6), ("block2.0", 7, 14, 18, 7),
        ("block3.0", 8, 16, 26, 8), ("epilogue", 28, 56, 54, 0), ("final", 0, 0, 54, 0)]
    assert total_delay(default.topology) == 54
    # line buffers: 10x64 + 12x128 + 14x64 + 16x64 + 56x64 bytes; residual FIFOs 6x128 + 7x64 + 8x64
    assert sum(t.line_frames * t.c_in for t in lay) == 7680
    assert sum(t.res_delay * t.res_c_in for t in lay) == 1728
    s = streaming.state_summary(default.topology, 128)
    assert s["pool ring (T final frames, 7 bits in 8)"] == 128 * 128
    causal = stream_layout(default.topology, causal=True)
    assert all(t.delay == 0 and t.res_delay == 0 for t in causal)


def test_small_layout_residual_spans_the_block():
    lay = {t.name: t for t in stream_layout(SMALL)}
    # block 1 = two sub-blocks of K=3 (p=1 each): the residual waits for both
    assert lay["block1.1"].res_delay == 2 and lay["block1.0"].res_delay == 0
    assert lay["block2.0"].pad == 4 and lay["block2.0"].res_delay == 4
    assert total_delay(SMALL) == 2 + 1 + 1 + 4 + 4


# --- the engine: chunk invariance and the frame-by-frame reference ----------------------------------------

@pytest.mark.parametrize("mixer", ["ternary", "learned"])
@pytest.mark.parametrize("causal", [False, True])
def test_chunked_engine_equals_frame_by_frame_reference(mixer, causal):
    model = _random_net(mixer, seed=2)
    rng = np.random.default_rng(7)
    x = _frames(rng, 150, SMALL.n_mfcc)
    for hop in (1, 3, 10):
        ref = FrameStream(model.topology, model.int_arrays, T_SMALL, hop, causal)
        want = [r for r in (ref.step(f) for f in x) if r is not None]
        assert len(want) > 5
        for chunk in (1, 4, 29, 150):
            net = StreamingNetwork.from_model(model, hop, causal)
            d = net.run(x, chunk=chunk)
            assert d.index.tolist() == [k for k, _ in want]
            assert np.array_equal(d.logits, np.stack([lg for _, lg in want]))
            assert np.array_equal(d.frame, d.index * hop + T_SMALL - 1)
            assert np.array_equal(d.ready, d.frame + net.delay)


def test_chunk_sizes_agree_on_the_default_model(default):
    rng = np.random.default_rng(3)
    x = _frames(rng, 420, 64)
    whole = StreamingNetwork.from_model(default).push(x)
    assert len(whole) == (420 - 54 - 128) // 10 + 1
    with cached_ternary():
        ref = FrameStream(default.topology, default.int_arrays, 128)
        want = [r for r in (ref.step(f) for f in x) if r is not None]
    assert np.array_equal(whole.logits, np.stack([lg for _, lg in want]))
    for sizes in ([1] * 40 + [380], [7, 100, 13, 300], [128, 128, 128, 36]):
        net = StreamingNetwork.from_model(default)
        parts, a = [], 0
        for n in sizes:
            parts.append(net.push(x[a:a + n]))
            a += n
        d = Decisions.concat(parts, 12)
        assert np.array_equal(d.logits, whole.logits) and np.array_equal(d.index, whole.index)
    net = StreamingNetwork.from_model(default)
    net.push(x)
    net.reset()
    assert np.array_equal(net.push(x).logits, whole.logits)


def test_perturbed_state_changes_the_result():
    """The line buffers are state: changing one stored value changes later outputs (so the equality
    tests above could fail)."""
    model = _random_net(seed=4)
    rng = np.random.default_rng(1)
    x = _frames(rng, 80, SMALL.n_mfcc)
    a = StreamingNetwork.from_model(model, hop=1)
    b = StreamingNetwork.from_model(model, hop=1)
    a.push(x[:40])
    b.push(x[:40])
    b._line[0][-1, 0] = 127 if b._line[0][-1, 0] != 127 else -128
    da, db = a.push(x[40:]), b.push(x[40:])
    assert not np.array_equal(da.logits, db.logits)


# --- relation to the window model ---------------------------------------------------------------------------

@pytest.mark.parametrize("mixer", ["ternary", "learned"])
def test_prefix_of_every_layer_equals_the_window_model(mixer):
    """From reset the stream equals the window model on frames [0, T - delay_l) of layer l (the window's
    left zero padding is the reset state) and no further: the window pads zeros on the right where the
    stream has the next frames."""
    model = _random_net(mixer, seed=5)
    top, t = model.topology, T_SMALL
    rng = np.random.default_rng(9)
    x = _frames(rng, 3 * t, top.n_mfcc)
    trace, stream = {}, {}
    forward_int(top, model.int_arrays, x[:t], trace)
    StreamingNetwork.from_model(model).push(x, trace=stream)
    differs = 0
    for lay in stream_layout(top):
        got = np.concatenate(stream[lay.name + ".out"])
        want = trace[lay.name + ".out"]
        n = t - lay.delay
        assert n > 0 and np.array_equal(got[:n], want[:n]), lay.name
        differs += not np.array_equal(got[n:t], want[n:t])
    assert differs >= 3          # where the window's right edge reaches, they differ


@pytest.mark.parametrize("mixer", ["ternary", "learned"])
def test_decision_equals_the_window_model_pooled_over_its_interior(mixer):
    """Decision k = the classifier of the window model run on input frames [kH - D, kH + T + D) (from 0
    when kH < D), pooled over the T central frames, whose receptive fields never reach the edge."""
    model = _random_net(mixer, seed=6)
    top, t = model.topology, T_SMALL
    d_ = total_delay(top)
    rng = np.random.default_rng(11)
    x = _frames(rng, 120, top.n_mfcc)
    hop = 3
    dec = StreamingNetwork.from_model(model, hop).push(x)
    checked = 0
    for k, lg in zip(dec.index, dec.logits):
        s = k * hop
        lo = max(0, s - d_)
        trace = {}
        forward_int(top, model.int_arrays, x[lo:s + t + d_], trace)
        pool_frames = trace["final.out"][s - lo:s - lo + t]
        want = classifier(pool_frames, model.int_arrays["classifier.q.weight"], model.int_arrays["classifier.q.bias"])
        assert np.array_equal(lg, want)
        checked += 1
        # the window model on the T frames alone is a different function (edge padding)
        if s >= d_ and checked < 6:
            assert not np.array_equal(lg, forward_int(top, model.int_arrays, x[s:s + t]))
    assert checked >= 20


def test_kernel_one_network_equals_the_window_model_on_every_window():
    """With every kernel 1 (no padding, D = 0) decision k is exactly forward_int of frames [kH, kH + T)."""
    top = Topology(n_mfcc=8, n_classes=4, prologue_channels=8, prologue_kernel=1, blocks=(Block(8, 1),),
                   epilogue_channels=8, epilogue_kernel=1, epilogue_dilation=1, final_channels=8)
    model = _random_net(seed=8, top=top)
    top = model.topology
    x = _frames(np.random.default_rng(2), 60, 8)
    dec = StreamingNetwork.from_model(model, hop=4).push(x)
    assert total_delay(top) == 0 and len(dec) == (60 - T_SMALL) // 4 + 1
    for k, lg in zip(dec.index, dec.logits):
        assert np.array_equal(lg, forward_int(top, model.int_arrays, x[k * 4:k * 4 + T_SMALL]))


def test_receptive_field_is_the_delay_on_both_sides():
    """A change of input frame t0 changes final frames within [t0 - D, t0 + D] only (the delay is the
    reach of the receptive field), hence only decisions whose window meets that range."""
    model = _random_net(seed=3)
    top = model.topology
    d_ = total_delay(top)
    rng = np.random.default_rng(4)
    x = _frames(rng, 100, top.n_mfcc)
    y = x.copy()
    t0 = 50
    y[t0] = np.where(x[t0] > 0, -128, 127)
    ta, tb = {}, {}
    StreamingNetwork.from_model(model, hop=1).push(x, trace=ta)
    StreamingNetwork.from_model(model, hop=1).push(y, trace=tb)
    fa, fb = np.concatenate(ta["final.out"]), np.concatenate(tb["final.out"])
    changed = np.flatnonzero((fa != fb).any(axis=1))
    assert len(changed) and changed.min() >= t0 - d_ and changed.max() <= t0 + d_
    assert not np.array_equal(fa[t0], fb[t0])


# --- widths -------------------------------------------------------------------------------------------------

def test_worst_case_inputs_fit_and_a_broken_constant_is_caught(default):
    x = np.full((300, 64), -128, np.int8)
    x[::3] = 127
    d = StreamingNetwork.from_model(default).push(x)
    assert np.abs(d.logits).max() < 2 ** 31
    model = _random_net(seed=1)
    q = dict(model.int_arrays)
    q["prologue.q.bias"] = np.full_like(q["prologue.q.bias"], 2 ** 47)     # beyond the 48-bit z
    net = StreamingNetwork(model.topology, q, T_SMALL)
    with pytest.raises(AssertionError, match="post-op z"):
        net.push(np.full((20, 8), 100, np.int8))
    with pytest.raises(ValueError, match="frames must be"):
        StreamingNetwork.from_model(model).push(np.zeros((3, 5), np.int8))


# --- detection rule -----------------------------------------------------------------------------------------

def _decisions(logits):
    logits = np.asarray(logits, np.int64)
    k = np.arange(len(logits))
    return Decisions(k, k * 10 + 127, k * 10 + 181, logits)


def test_scores_smooth_and_margin():
    cfg = DetectorConfig(threshold=5, keywords=(0, 1), smooth=2, refractory=3)
    lg = [[10, 0, 3, 0], [10, 0, 12, 0], [0, 9, 0, 1]]
    s, best, margin = scores(np.array(lg), cfg)
    assert s.tolist() == [[10, 0, 3, 0], [20, 0, 15, 0], [10, 9, 12, 1]]
    assert best.tolist() == [0, 0, 0]          # the first keyword argmax (silence / unknown never best)
    assert margin.tolist() == [7, 5, -2]       # against the largest other class, keywords or not


def test_detector_threshold_refractory_and_rearm():
    cfg = DetectorConfig(threshold=5, keywords=(0, 1), smooth=1, refractory=2)
    up = [9, 0, 0, 0]        # class 0 over the threshold (margin 9)
    other = [0, 9, 0, 0]     # class 1
    low = [1, 0, 0, 0]       # margin 1: under
    seq = [up, up, up, low, up, other, up, low, low, up]
    ev = Detector(cfg, 4).update(_decisions(seq))
    # 0: fires; 1, 2: disarmed; 3 re-arms; 4: 4 - 0 >= 2 -> fires; 5: another class on top re-arms but
    # 5 - 4 < 2 (refractory); 6: still armed, 6 - 4 >= 2 -> fires; 9: re-armed by 7 -> fires
    assert [(e.index, e.cls) for e in ev] == [(0, 0), (4, 0), (6, 0), (9, 0)]
    assert all(e.margin >= 5 for e in ev)
    # a batch split anywhere gives the same events (state carried)
    for cut in range(1, len(seq)):
        det = Detector(cfg, 4)
        d = _decisions(seq)
        a = Decisions(d.index[:cut], d.frame[:cut], d.ready[:cut], d.logits[:cut])
        b = Decisions(d.index[cut:], d.frame[cut:], d.ready[cut:], d.logits[cut:])
        assert [(e.index, e.cls) for e in det.update(a) + det.update(b)] == [(0, 0), (4, 0), (6, 0), (9, 0)]


def test_fire_against_a_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        margin = rng.integers(-3, 6, n)
        best = rng.integers(0, 3, n)
        theta, refr = int(rng.integers(0, 4)), int(rng.integers(1, 5))
        want, last, last_c, armed = [], None, None, True
        for j in range(n):
            if margin[j] < theta:
                armed = True
                continue
            if best[j] != last_c:
                armed = True
            if armed and (last is None or j - last >= refr):
                want.append(j)
                last, last_c, armed = j, best[j], False
        got, _ = fire(np.arange(n), margin, best, theta, refr)
        assert got == want


def test_threshold_conversion(default):
    cfg = streaming.detector_config(default, threshold=2.0, smooth=5)
    assert cfg.threshold == int(np.ceil(2.0 * 5 / default.scales["logit"]))
    assert [default.labels[i] for i in cfg.keywords] == list(streaming.KEYWORDS)
    assert streaming.threshold_int(-1, 5, 1e-5) == 0
    with pytest.raises(ValueError, match="smooth"):
        DetectorConfig(1, (0,), smooth=17)


# --- features of unbounded audio ------------------------------------------------------------------------------

def test_feature_stream_chunks_equal_the_whole():
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    whole = stream_mfcc(x, cfg)
    assert whole.shape == ((len(x) - 400) // 160 + 1, 64)
    mean, scale = np.zeros(64, np.float32), np.full(64, 0.5, np.float32)
    for sizes in ([1, 399, 1, 159, 160, 161], [16000], [7919, 2, 3]):
        fs = FeatureStream(cfg, mean, scale)
        got, a, i = [], 0, 0
        while a < len(x):
            n = sizes[i % len(sizes)]
            got.append(fs.push_mfcc(x[a:a + n]))
            a, i = a + n, i + 1
        got = np.concatenate(got)
        assert np.array_equal(got, whole)
    assert np.array_equal(FeatureStream(cfg, mean, scale).push(x), quantize(whole, mean, scale))


def test_stream_features_match_the_window_features_on_the_samples(default):
    """A clip fitted to the window as section 3 does, then streamed, gives the window's int8 features
    (the float MFCCs agree to rounding: the window path sums with BLAS, the stream in a fixed order)."""
    cfg = default.features
    for wav in sorted(SAMPLES.glob("*.wav")):
        y = read_wav(wav)
        c_window = mfcc(y, cfg)
        c_stream = stream_mfcc(fit_length(y, cfg.n_samples), cfg)
        assert c_stream.shape == c_window.shape
        assert np.allclose(c_stream, c_window, rtol=0, atol=1e-4)
        assert np.array_equal(quantize(c_stream, default.feature_mean, default.feature_scale),
                              quantize(c_window, default.feature_mean, default.feature_scale)), wav.name


# --- the listener -----------------------------------------------------------------------------------------------

def test_listener_finds_a_keyword_in_a_long_recording(default):
    """yes.wav (which the window model gets right) in 6 s of near-silence: one 'yes' event, at a time
    after the word, whatever the chunking."""
    y = read_wav(SAMPLES / "yes.wav")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 6) * 1e-3).astype(np.float32)
    x[32000:48000] += y
    runs = []
    for chunk in (None, 0.37, 1.0):
        lst = Listener(default, record=True)
        dets = lst.listen(x, chunk_seconds=chunk)
        runs.append([(d.label, d.time, d.margin) for d in dets])
    assert runs[0] == runs[1] == runs[2]
    labels = [r[0] for r in runs[0]]
    assert labels == ["yes"], runs[0]
    t = runs[0][0][1]
    assert 2.0 < t < 2.0 + 1.0 + 0.54 + 1.3 + 0.5
    frames = (len(x) + len(lst.tail_samples()) - 400) // 160 + 1
    assert len(lst.decisions) == (frames - 54 - 128) // 10 + 1


def test_listener_matches_engine_on_its_features(default):
    """Listener = FeatureStream + StreamingNetwork + Detector (no hidden step)."""
    y = np.concatenate([read_wav(SAMPLES / n) for n in ("no.wav", "stop.wav", "silence.wav")])
    lst = Listener(default, record=True, tail=False)
    lst.push(y)
    fq = stream_mfcc(y, default.features)
    d = StreamingNetwork.from_model(default).push(quantize(fq, default.feature_mean, default.feature_scale))
    assert np.array_equal(lst.decisions.logits, d.logits)


# --- the benchmark ------------------------------------------------------------------------------------------------

@pytest.fixture
def sample_set(tmp_path):
    """A plain DIR/<label>/*.wav set of the bundled samples (one clip per class)."""
    for wav in SAMPLES.glob("*.wav"):
        (tmp_path / wav.stem).mkdir()
        (tmp_path / wav.stem / "0.wav").write_bytes(wav.read_bytes())
    return tmp_path


def test_benchmark_recordings_are_deterministic_and_scored(default, sample_set, tmp_path):
    recs = stream_bench.assemble(sample_set, "test", minutes=1.0, seed=0, recording_minutes=0.5)
    again = stream_bench.assemble(sample_set, "test", minutes=1.0, seed=0, recording_minutes=0.5)
    assert len(recs) == 2 and all(abs(r.seconds - 30) < 0.01 for r in recs)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(recs, again))
    assert all(len(r.keywords) >= 3 for r in recs)
    for r in recs:
        for k in r.keywords:
            assert 0 <= k.onset < k.end <= r.seconds and k.label in streaming.KEYWORDS
    # a saved recording is what the benchmark streams: same decisions from the WAV
    files = stream_bench.write_recordings(recs[:1], tmp_path / "rec")
    assert np.array_equal(read_wav(files[0]), recs[0].samples)
    result = stream_bench.benchmark(default, sample_set, "test", minutes=1.0, recordings=recs)
    a = result["results"]["aligned"]
    f = a["at_default"]
    assert f["keywords"] == sum(len(r.keywords) for r in recs)
    assert 0 <= f["hits"] <= f["keywords"] and f["fa_per_hour"] >= 0
    miss = [p["miss_rate"] for p in sorted(a["det"], key=lambda p: p["threshold"])]
    # misses grow with the threshold, roughly: the re-arm and refractory rules make the curve not strictly
    # monotone; with 8 keywords a step is 1/8, and a dip of more than two keywords would be a bug
    assert miss == sorted(miss) or max(np.diff(miss)) <= 0.25
    files = stream_bench.write_report(result, tmp_path / "reports", "ternkws eval --stream ...")
    assert all(p.is_file() and p.stat().st_size for p in files)


def test_scoring_counts_hits_false_alarms_and_latency(default):
    """score() on hand-made decisions: one right event over a word, one wrong one elsewhere."""
    t, h = 128, 10
    n = 60
    logits = np.zeros((n, 12), np.int64)
    yes, no = default.labels.index("yes"), default.labels.index("no")
    logits[10:13, yes] = 10 ** 7          # decisions 10-12: windows [100, 228) frames = 1.0-2.3 s
    logits[40, no] = 10 ** 7              # decision 40: 4.0-5.3 s, no word there
    k = np.arange(n)
    d = Decisions(k, k * h + t - 1, k * h + t - 1 + 54, logits)
    rec = stream_bench.Recording("r", np.zeros(16000 * 7, np.float32),
                                 [stream_bench.Keyword("yes", 1.5, 1.9, "x")])
    s = stream_bench.Stream(rec, d, 7.0)
    res = stream_bench.score(default, [s], 1000, 1, 10, h)
    assert (res["hits"], res["false_alarms"], res["substitutions"]) == (1, 1, 0)
    # event at decision 10: known at the end of input frame 10*10 + 127 + 54 = 281 -> 2.825 s
    assert res["latency"] == [pytest.approx(281 * 0.01 + 0.025 - 1.9)]
