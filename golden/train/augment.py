"""Training-time augmentation on normalized features (N, T, F), after NeMo's MatchboxNet recipe.

NeMo matchboxnet_3x1x64_v1.yaml: waveform shift +-5 ms and white noise at -90..-46 dB, then
SpectrogramAugmentation (2 frequency masks of width < 15, 2 time masks of width < 25, 5 rectangles
of < 25 frames x < 15 coefficients), masks filled with 0. Here, on the cached MFCCs:

- time shift: roll by up to +-`shift` frames with zero fill (the synthesized dataset already places each
  word at a random offset, so this mostly adds sub-window jitter; NeMo's +-5 ms is below one frame);
- SpecAugment frequency and time masks and SpecCutout rectangles, filled with 0 (= the train mean,
  since features are normalized);
- speaker augmentation (not in NeMo's recipe; the synthesized set has only a few voices, so the network
  must not learn their timbre): a vocal-tract-length warp (VTLP, Jaitly & Hinton 2013) of the log-mel
  spectrum by a random factor in [1 - warp, 1 + warp] per clip, and a random smooth spectral tilt/EQ
  (per-clip offsets of the first `eq_coeffs` cepstral coefficients, std `eq` in input LSB). Both are
  linear maps of the MFCC frame (the 64 x 64 DCT is orthonormal, so log-mel = MFCC @ D^T), applied as one
  batched matmul on the normalized features;
- noise: Gaussian noise of `noise` LSB (std, int8 input units) on the features. The dataset already
  mixes white/pink/brown noise at 5-30 dB SNR into 85% of the clips at the waveform level, so more
  waveform noise would buy little and cost a fresh MFCC per clip per epoch (about +60% epoch time on 2
  cores); the small feature noise stands in for NeMo's -90..-46 dB white noise and makes the network
  tolerant of the +-0.5 LSB rounding of its int8 input.
"""

import torch

from .augment_presets import AUGMENT_PRESETS, AugmentConfig, preset_name  # noqa: F401 (re-exported)


WARP_BANK = 21   # warp factors precomputed, evenly spaced in [1 - warp, 1 + warp]


def warp_matrices(factors, fcfg):
    """(len(factors), n_mels, n_mels) linear interpolation matrices M: warped log-mel = logmel @ M.

    Warping by a: the output bin at frequency f takes the input at f / a (formants move up for a > 1).
    """
    import numpy as np

    from ternkws.golden.features import hz_to_mel, mel_to_hz
    mel_pts = np.linspace(hz_to_mel(fcfg.f_min), hz_to_mel(fcfg.f_max), fcfg.n_mels + 2)[1:-1]
    centres = mel_to_hz(mel_pts)
    out = np.zeros((len(factors), fcfg.n_mels, fcfg.n_mels))
    idx = np.arange(fcfg.n_mels)
    for n, a in enumerate(factors):
        pos = np.interp(hz_to_mel(centres / a), mel_pts, idx)    # clamps at the edges
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, fcfg.n_mels - 1)
        w = pos - lo
        out[n, lo, idx] += 1 - w
        out[n, hi, idx] += w
    return out


class Augmenter:
    """augment() plus the speaker augmentation, which needs the feature map (mean, scale)."""

    def __init__(self, cfg: AugmentConfig, mean, scale, fcfg=None):
        import numpy as np

        from ternkws.golden.features import FeatureConfig, dct_matrix
        self.cfg = cfg
        fcfg = fcfg or FeatureConfig()
        self.maps = None
        if cfg.warp and fcfg.n_mfcc == fcfg.n_mels:
            d = dct_matrix(fcfg.n_mels, fcfg.n_mfcc)                    # c = logmel @ d, d orthonormal
            m = warp_matrices(np.linspace(1 - cfg.warp, 1 + cfg.warp, WARP_BANK), fcfg)
            mean = np.asarray(mean, np.float64)
            scale = np.asarray(scale, np.float64)
            # x' = ((x / scale + mean) @ d.T @ M @ d - mean) * scale = x @ A + b
            a = (1 / scale)[None, :, None] * (d.T @ m @ d) * scale[None, None, :]
            b = (mean @ (d.T @ m @ d) - mean) * scale
            self.maps = (torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))

    def __call__(self, x, gen=None):
        n = x.shape[0]
        if self.maps is not None:
            k = torch.randint(0, WARP_BANK, (n,), generator=gen)
            x = torch.bmm(x, self.maps[0][k]) + self.maps[1][k][:, None, :]
        if self.cfg.eq:
            off = torch.zeros(n, 1, x.shape[2])
            c = min(self.cfg.eq_coeffs, x.shape[2])
            off[:, 0, :c] = self.cfg.eq * torch.randn(n, c, generator=gen)
            x = x + off
        return augment(x, self.cfg, gen)


def _band_mask(n, length, count, width, gen):
    """(n, length) bool: `count` bands of width uniform in [0, width) at uniform starts."""
    pos = torch.arange(length)
    mask = torch.zeros(n, length, dtype=torch.bool)
    for _ in range(count):
        w = torch.randint(0, max(width, 1), (n, 1), generator=gen)
        start = (torch.rand(n, 1, generator=gen) * (length - w + 1)).long()
        mask |= (pos >= start) & (pos < start + w)
    return mask


def augment(x, cfg: AugmentConfig, gen=None):
    """x (N, T, F) normalized features -> augmented copy."""
    n, t, f = x.shape
    x = x.clone()
    if cfg.shift:
        s = torch.randint(-cfg.shift, cfg.shift + 1, (n,), generator=gen)
        src = torch.arange(t)[None, :] - s[:, None]                       # (N, T)
        valid = (src >= 0) & (src < t)
        x = torch.gather(x, 1, src.clamp(0, t - 1)[:, :, None].expand(n, t, f))
        x = x * valid[:, :, None]
    if cfg.noise:
        x = x + cfg.noise * torch.randn(x.shape, generator=gen)
    keep = torch.ones(n, t, f, dtype=torch.bool)
    if cfg.freq_masks:
        keep &= ~_band_mask(n, f, cfg.freq_masks, cfg.freq_width, gen)[:, None, :]
    if cfg.time_masks:
        keep &= ~_band_mask(n, t, cfg.time_masks, cfg.time_width, gen)[:, :, None]
    for _ in range(cfg.rect_masks):
        keep &= ~(_band_mask(n, t, 1, cfg.rect_time, gen)[:, :, None] & _band_mask(n, f, 1, cfg.rect_freq, gen)[:, None, :])
    return (x * keep).clamp_(-128.0, 127.0)
