"""The augmentation's settings and its named presets (--augment full|light|off), without torch.

golden/train/augment.py applies them; this module only holds the numbers, so that readers of a checkpoint's
meta (sim/checkpoints.py, the reports) can name the preset a model was trained with without importing the
trainer.
"""

from dataclasses import asdict, dataclass

from ternkws.golden.errors import UserError


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
    warp: float = 0.15        # VTLP: frequency warp factor in [1 - warp, 1 + warp]
    eq: float = 8.0           # std (input LSB) of per-clip offsets of the first eq_coeffs MFCCs
    eq_coeffs: int = 6

    @classmethod
    def off(cls):
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0)

    @classmethod
    def light(cls):
        """The speaker augmentation, shift and noise kept; SpecAugment cut to one narrow mask per axis
        and no cutout rectangles (for small models that underfit the full recipe)."""
        return cls(freq_masks=1, freq_width=8, time_masks=1, time_width=10, rect_masks=0)

    @classmethod
    def named(cls, name):
        """One of AUGMENT_PRESETS by name."""
        if name not in AUGMENT_PRESETS:
            raise UserError(f"unknown augmentation '{name}'; choose one of {', '.join(AUGMENT_PRESETS)}")
        return {"full": cls, "light": cls.light, "off": cls.off}[name]()


# --augment names: "full" is the default recipe above (NeMo's SpecAugment + the speaker augmentation).
AUGMENT_PRESETS = ("full", "light", "off")


def preset_name(values):
    """The preset whose settings are `values` (a checkpoint's meta["augment"] dict), or None for settings
    that match no preset (or no record)."""
    if not isinstance(values, dict):
        return None
    for name in AUGMENT_PRESETS:
        if asdict(AugmentConfig.named(name)) == values:
            return name
    return None
