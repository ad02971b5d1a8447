"""A tiny, learnable stand-in dataset for tests: DIR/<label>/*.wav + manifest.csv (golden/DATA.md layout).

Each class is a distinct tone pattern (keywords: two tones whose frequencies depend on the class; silence:
low noise; unknown: a chirp) at a random offset, with noise. Speakers are fake ids, one set per split.
The manifest names two unknown "words" (bed, cat; the same chirp) and the silence as noise, so that the
clips have sub-classes (Example.subclass) like the synthesized set's.
"""

import csv
from pathlib import Path

import numpy as np

from ternkws.golden.audio import SAMPLE_RATE, write_wav
from ternkws.golden.labels import LABELS

COLUMNS = ("file", "label", "word", "voice", "speaker", "split", "augment")


def tiny_clip(label_index, rng, n=SAMPLE_RATE):
    t = np.arange(n) / SAMPLE_RATE
    x = rng.normal(0, 0.01, n)
    label = LABELS[label_index]
    if label == "silence":
        return x
    dur = int(0.4 * n)
    start = rng.integers(0, n - dur)
    seg = t[:dur]
    if label == "unknown":
        tone = np.sin(2 * np.pi * (300 + 3000 * seg) * seg)
    else:
        f1 = 300 + 150 * label_index
        f2 = 1200 + 250 * label_index
        tone = np.sin(2 * np.pi * f1 * seg) + 0.5 * np.sin(2 * np.pi * f2 * seg)
    x[start:start + dur] += 0.3 * rng.uniform(0.5, 1.0) * tone * np.hanning(dur)
    return x


def make_tiny_dataset(out, per_class=(6, 2, 2), seed=0):
    """Write per_class = (train, val, test) clips of every label to `out`; returns the folder."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows = []
    for k, label in enumerate(LABELS):
        (out / label).mkdir(parents=True, exist_ok=True)
        i = 0
        for split, count in zip(("train", "val", "test"), per_class):
            for _ in range(count):
                name = f"{label}/{k:02d}{i:04d}-tone.wav"
                write_wav(out / name, tiny_clip(k, rng))
                speaker = f"tone-{split}" if label != "silence" else f"noise-{split}"
                word = {"unknown": ("bed", "cat")[i % 2], "silence": ""}.get(label, label)
                voice = "sox:noise" if label == "silence" else "tone:sine"
                rows.append({"file": name, "label": label, "word": word, "voice": voice,
                             "speaker": speaker, "split": split, "augment": ""})
                i += 1
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return out
