"""Training-time augmentation on normalized features (N, T, F), after NeMo's MatchboxNet recipe.

NeMo matchboxnet_3x1x64_v1.yaml: waveform shift +-5 ms and white noise at -90..-46 dB, then
SpectrogramAugmentation (2 frequency masks of width < 15, 2 time masks of width < 25, 5 rectangles
of < 25 frames x < 15 coefficients), masks filled with 0. Here, on the cached MFCCs:

- time shift: roll by up to +-`shift` frames with zero fill (the synthesized dataset already places each
  word at a random offset, so this mostly adds sub-window jitter; NeMo's +-5 ms is below one frame);
- SpecAugment frequency and time masks and SpecCutout rectangles, filled with 0 (= the train mean,
  since features are normalized);
- noise: Gaussian noise of `noise` LSB (std, int8 input units) on the features. The dataset already
  mixes white/pink/brown noise at 5-30 dB SNR into 85% of the clips at the waveform level, so more
  waveform noise would buy little and cost a fresh MFCC per clip per epoch (about +60% epoch time on 2
  cores); the small feature noise stands in for NeMo's -90..-46 dB white noise and makes the network
  tolerant of the +-0.5 LSB rounding of its int8 input.
"""

from dataclasses import dataclass

import torch


@dataclass
class AugmentConfig:
    shift: int = 5            # frames (10 ms each)
    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: int = 25
    rect_masks: int = 5
    rect_time: int = 25
    rect_freq: int = 15
    noise: float = 1.0        # std in input LSB

    @classmethod
    def off(cls):
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0.0)


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
