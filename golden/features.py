"""Features: 16 kHz mono audio -> 64 MFCC x 128 frames -> int8 (golden/SPEC.md section 3).

NeMo's MatchboxNet recipe (25 ms Hann window, 10 ms hop, n_fft 512, 64 HTK mel bands 0-8 kHz, log,
DCT-II ortho, 64 coefficients) with two fixed choices that make it reproducible bit for bit on any host:
the clip is fitted to exactly (frames - 1) * hop + win samples (zero-padded symmetrically or trimmed
centrally; frames are not centre-padded), and the per-coefficient affine map to int8 is fixed by the
checkpoint (`feature_mean`, `feature_scale`): q = sat8(floor((c - mean) * scale + 0.5)).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400     # 25 ms
    hop_length: int = 160     # 10 ms
    n_mels: int = 64
    n_mfcc: int = 64
    n_frames: int = 128
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-10

    @property
    def n_samples(self):
        """Samples covered by one window of n_frames frames."""
        return (self.n_frames - 1) * self.hop_length + self.win_length

    def to_dict(self):
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def hann_periodic(n):
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float64)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg):
    """(n_fft/2 + 1, n_mels) triangular HTK filters, unnormalised (as torchaudio's melscale_fbanks)."""
    freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    down = (freqs[:, None] - f_pts[None, :-2]) / (f_pts[1:-1] - f_pts[:-2])[None, :]
    up = (f_pts[None, 2:] - freqs[:, None]) / (f_pts[2:] - f_pts[1:-1])[None, :]
    return np.maximum(0.0, np.minimum(down, up))


def dct_matrix(n_in, n_out):
    """(n_in, n_out) DCT-II with orthonormal scaling: c = logmel @ D."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    d = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    d[:, 0] *= np.sqrt(0.5)
    return d


def fit_length(x, n):
    """Zero-pad symmetrically (extra sample at the end) or trim centrally to exactly n samples."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) >= n:
        start = (len(x) - n) // 2
        return x[start:start + n]
    left = (n - len(x)) // 2
    return np.pad(x, (left, n - len(x) - left))


def mfcc(x, cfg=FeatureConfig()):
    """Float MFCC of one clip: (n_frames, n_mfcc), frame-major (one row per 10 ms frame)."""
    x = fit_length(x, cfg.n_samples)
    idx = np.arange(cfg.n_frames)[:, None] * cfg.hop_length + np.arange(cfg.win_length)[None, :]
    frames = x[idx] * hann_periodic(cfg.win_length)[None, :]
    spec = np.fft.rfft(frames, n=cfg.n_fft, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filterbank(cfg)
    logmel = 10.0 * np.log10(np.maximum(mel, cfg.log_floor))
    return (logmel @ dct_matrix(cfg.n_mels, cfg.n_mfcc)).astype(np.float32)


def normalize(c, mean, scale):
    """Float network input: (c - mean) * scale clipped to the int8 range (one unit = one int8 LSB)."""
    return np.clip((c - mean) * scale, -128.0, 127.0).astype(np.float32)


def quantize(c, mean, scale):
    """The int8 network input: sat8(floor((c - mean) * scale + 0.5))."""
    z = (np.asarray(c, dtype=np.float64) - mean) * scale
    return np.clip(np.floor(z + 0.5), -128, 127).astype(np.int8)


def feature_stats(mfccs, sigmas=4.0):
    """Per-coefficient mean and scale from a stack of MFCCs (N, T, n_mfcc): +-`sigmas` std -> +-128."""
    flat = np.asarray(mfccs, dtype=np.float64).reshape(-1, np.shape(mfccs)[-1])
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), 1e-3)
    return mean.astype(np.float32), (128.0 / (sigmas * std)).astype(np.float32)
