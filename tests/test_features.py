"""Features against a direct, loop-by-loop NumPy reference written from SPEC.md section 3."""

import math

import numpy as np
import pytest

from ternkws.golden import features as F


def reference_mfcc(x, sr=16000, n_fft=512, win=400, hop=160, n_mels=64, n_mfcc=64, frames=128):
    need = (frames - 1) * hop + win
    x = list(x)
    if len(x) >= need:
        s = (len(x) - need) // 2
        x = x[s:s + need]
    else:
        left = (need - len(x)) // 2
        x = [0.0] * left + x + [0.0] * (need - len(x) - left)
    x = np.array(x)
    mel = lambda f: 2595 * math.log10(1 + f / 700)
    imel = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = [imel(mel(0) + (mel(8000) - mel(0)) * j / (n_mels + 1)) for j in range(n_mels + 2)]
    out = np.zeros((frames, n_mfcc))
    for t in range(frames):
        seg = np.zeros(n_fft)
        for n in range(win):
            seg[n] = x[t * hop + n] * (0.5 - 0.5 * math.cos(2 * math.pi * n / win))
        spec = np.fft.fft(seg)[: n_fft // 2 + 1]
        power = np.abs(spec) ** 2
        logmel = []
        for j in range(n_mels):
            fl, fc, fr = edges[j], edges[j + 1], edges[j + 2]
            e = 0.0
            for k in range(n_fft // 2 + 1):
                f = k * sr / n_fft
                w = max(0.0, min((f - fl) / (fc - fl), (fr - f) / (fr - fc)))
                e += w * power[k]
            logmel.append(10 * math.log10(max(e, 1e-10)))
        for k in range(n_mfcc):
            s = sum(logmel[n] * math.cos(math.pi * k * (2 * n + 1) / (2 * n_mels)) for n in range(n_mels))
            out[t, k] = s * math.sqrt(2 / n_mels) * (math.sqrt(0.5) if k == 0 else 1.0)
    return out


def tone(freq=1000.0, seconds=1.0, amp=0.3, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mfcc_matches_direct_reference_on_a_tone():
    x = tone(1000.0) + 0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    cfg = F.FeatureConfig(n_frames=8)  # a short window keeps the pure-Python reference fast
    got = F.mfcc(x[:4000], cfg)
    ref = reference_mfcc(x[:4000], frames=8)
    assert got.shape == (8, 64)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_tone_energy_lands_in_the_right_mel_band():
    cfg = F.FeatureConfig()
    x = F.fit_length(tone(1000.0), cfg.n_samples)
    idx = np.arange(cfg.n_frames)[:, None] * cfg.hop_length + np.arange(cfg.win_length)[None, :]
    power = np.abs(np.fft.rfft(x[idx] * F.hann_periodic(cfg.win_length), n=cfg.n_fft)) ** 2
    mel = power @ F.mel_filterbank(cfg)
    band = int(np.argmax(mel[64]))
    centres = F.mel_to_hz(np.linspace(F.hz_to_mel(0), F.hz_to_mel(8000), cfg.n_mels + 2))[1:-1]
    assert abs(centres[band] - 1000.0) < 60


def test_shape_and_length_fitting():
    cfg = F.FeatureConfig()
    assert cfg.n_samples == 20720
    assert F.mfcc(tone(seconds=0.5), cfg).shape == (128, 64)
    assert F.mfcc(tone(seconds=2.0), cfg).shape == (128, 64)
    y = F.fit_length(np.arange(10.0), 15)
    assert y.tolist() == [0, 0] + list(range(10)) + [0, 0, 0]
    assert F.fit_length(np.arange(10.0), 4).tolist() == [3, 4, 5, 6]


def test_quantization_rule():
    mean = np.array([1.0, 0.0])
    scale = np.array([2.0, 1.0])
    c = np.array([[1.25, 127.6], [-100.0, -0.5], [1.0 + 63.75, 0.49]])
    q = F.quantize(c, mean, scale)
    assert q.dtype == np.int8
    assert q.tolist() == [[1, 127], [-128, 0], [127, 0]]  # floor(x + 1/2), saturating
    np.testing.assert_allclose(F.normalize(c, mean, scale), [[0.5, 127], [-128, -0.5], [127, 0.49]])


def test_silence_is_finite():
    c = F.mfcc(np.zeros(16000, np.float32))
    assert np.isfinite(c).all()
    assert c[0, 0] == pytest.approx(10 * np.log10(1e-10) * 64 / np.sqrt(64), rel=1e-5)
