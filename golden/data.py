"""Keyword examples for training and evaluation, from any of the three dataset layouts.

`list_examples(data_dir, split)` detects the layout of `data_dir`:

(a) synthesized (`ternkws dataset`): `manifest.csv` is present; its `split` column is used.
(b) Google Speech Commands v1/v2: `validation_list.txt` and `testing_list.txt` are present. The 10
    keywords map to themselves and every other word folder to `unknown`; files in the lists are val/test,
    the rest train. `_background_noise_/*.wav` is cut into 1-s `silence` examples (see `_gsc_silence`).
(c) a plain tree `DIR/<label>/*.wav` with label in LABELS: every clip, no splits (split None or "test").

Every `Example.audio()` is float32, exactly 16000 samples (1 s at 16 kHz): shorter clips are padded
with zeros on both sides, longer ones trimmed around their centre.
"""

import csv
import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from .audio import SAMPLE_RATE, read_wav
from .labels import KEYWORDS, LABELS

CLIP_SAMPLES = SAMPLE_RATE
SPLITS = ("train", "val", "test")
MANIFEST = "manifest.csv"
GSC_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
GSC_NOISE_DIR = "_background_noise_"
# Silence examples cut from GSC background noise: each noise file's timeline is cut into disjoint
# regions, val and test at its end (10% each, at least 1 s), train the rest; within a region the
# windows are evenly spaced, and their gains cycle through GSC_SILENCE_GAINS (the raw files are loud:
# white noise at full scale).
GSC_SILENCE_SHARE = 0.1
GSC_SILENCE_GAINS = (1.0, 0.5, 0.25, 0.1)


def fit_to_clip(x, n=CLIP_SAMPLES):
    """Pad with zeros (symmetrically) or trim (centred) to exactly `n` samples."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) < n:
        left = (n - len(x)) // 2
        return np.pad(x, (left, n - len(x) - left))
    start = (len(x) - n) // 2
    return x[start: start + n]


@functools.lru_cache(maxsize=16)
def _read_cached(path):
    x = read_wav(path)
    x.flags.writeable = False
    return x


@dataclass(frozen=True)
class Example:
    """One 1-s example: its label, where it comes from, who speaks it, and its audio on demand."""
    label: str              # one of LABELS
    source: str             # file path, or "path[start:stop]*gain" for a slice of a noise file
    speaker: str            # speaker id; speaker-held-out splits never share one
    split: str | None = None
    path: Path | None = None
    start: int | None = None   # set for slices: first sample of the 1-s window in `path`
    gain: float = 1.0
    kind: str | None = None    # what an unknown or silence clip holds (a word, "<tone>", "<noise>"...), if known

    @property
    def subclass(self):
        """The label, refined by `kind` for unknown and silence ("unknown:happy", "silence:<noise>"): the
        classes of the trainer's auxiliary head (TrainConfig.aux_weight). Keywords are their label."""
        return f"{self.label}:{self.kind}" if self.kind and self.label not in KEYWORDS else self.label

    @property
    def content(self):
        """What a non-keyword clip holds, coarsely (the rows of the accuracy report's unknown/silence
        table): "unknown: word", "unknown: reversed word", "unknown: sound", "silence: noise",
        "silence: sound"; None for keywords and for clips whose kind is not known."""
        if self.label in KEYWORDS or not self.kind:
            return None
        if self.label == "silence":
            return "silence: noise" if self.kind == "<noise>" else "silence: sound"
        if self.kind == "<reversed>":
            return "unknown: reversed word"
        return "unknown: sound" if self.kind.startswith("<") else "unknown: word"

    def audio(self):
        """float32 samples, exactly CLIP_SAMPLES long."""
        if self.start is None:
            return fit_to_clip(read_wav(self.path))
        x = _read_cached(str(self.path))[self.start: self.start + CLIP_SAMPLES]
        return fit_to_clip(x * np.float32(self.gain))


def summarize(examples):
    """{label: count} in LABELS order (zeros included)."""
    counts = Counter(e.label for e in examples)
    return {label: counts[label] for label in LABELS}


def detect_layout(data_dir):
    """"synthesized", "gsc" or "plain" (raises UserError for a missing or empty folder)."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise UserError(f"{data_dir}: no such directory; create a dataset with "
                        f"'ternkws dataset --out {data_dir}' or point to a Speech Commands folder")
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: not a directory; expected a dataset folder")
    if (data_dir / MANIFEST).is_file():
        return "synthesized"
    if all((data_dir / name).is_file() for name in GSC_LISTS.values()):
        return "gsc"
    if not any(data_dir.iterdir()):
        raise UserError(f"{data_dir}: empty directory; create a dataset with "
                        f"'ternkws dataset --out {data_dir}'")
    return "plain"


def list_examples(data_dir, split=None):
    """Examples of `split` ("train", "val", "test", or None for all) in `data_dir`, in a fixed order."""
    if split not in (None,) + SPLITS:
        raise UserError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)} (or all)")
    data_dir = Path(data_dir)
    layout = detect_layout(data_dir)
    examples = {"synthesized": _synthesized, "gsc": _gsc, "plain": _plain}[layout](data_dir, split)
    if not examples:
        what = f"no {split} examples" if split else "no examples"
        raise UserError(f"{data_dir}: {what} found ({layout} layout)")
    return examples


# ------------------------------------------------------------------------------------------ layouts

def _synthesized(data_dir, split):
    path = data_dir / MANIFEST
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "label", "speaker", "split"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))}; regenerate it "
                            f"with 'ternkws dataset --out {data_dir} --force'")
        rows = list(reader)
    examples = []
    for line, row in enumerate(rows, start=2):
        if row["label"] not in LABELS:
            raise UserError(f"{path}:{line}: label '{row['label']}' is not one of {', '.join(LABELS)}")
        if row["split"] not in SPLITS:
            raise UserError(f"{path}:{line}: split '{row['split']}' is not one of {', '.join(SPLITS)}")
        if split is not None and row["split"] != split:
            continue
        file = data_dir / row["file"]
        if not file.is_file():
            raise UserError(f"{path}:{line}: {file} does not exist; the dataset is incomplete, "
                            f"regenerate it with 'ternkws dataset --out {data_dir} --force'")
        examples.append(Example(row["label"], str(file), row["speaker"], row["split"], file,
                                kind=_manifest_kind(row)))
    return examples


def _manifest_kind(row):
    """Example.kind of a manifest row: the word (an unknown word), "<reversed>" (a word played backwards),
    else the sound's generator in angle brackets ("<tone>", "<chirp>", "<music>", "<clicks>", "<babble>",
    "<noise>": never a word, so the word "music" stays a word); None for keywords and for manifests
    without the columns."""
    if row["label"] in KEYWORDS:
        return None
    if row.get("word"):
        return row["word"]
    if "reversed=" in (row.get("augment") or ""):
        return "<reversed>"
    voice = row.get("voice") or ""
    return f"<{voice.split(':', 1)[1]}>" if voice.startswith(("synth:", "sox:", "mix:")) else None


def gsc_speaker(path):
    """Speech Commands names files <speaker>_nohash_<n>.wav."""
    name = Path(path).name
    return name.split("_nohash_")[0] if "_nohash_" in name else Path(path).stem


def _read_list(path):
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _gsc(data_dir, split):
    lists = {s: _read_list(data_dir / name) for s, name in GSC_LISTS.items()}
    words = sorted(p for p in data_dir.iterdir()
                   if p.is_dir() and not p.name.startswith(("_", ".")))
    if not words:
        raise UserError(f"{data_dir}: has the Speech Commands lists but no word folders")
    by_split = {s: [] for s in SPLITS}
    for folder in words:
        label = folder.name if folder.name in KEYWORDS else "unknown"
        for file in sorted(folder.glob("*.wav")):
            rel = f"{folder.name}/{file.name}"
            s = "test" if rel in lists["test"] else "val" if rel in lists["val"] else "train"
            by_split[s].append(Example(label, str(file), gsc_speaker(file), s, file,
                                       kind=None if label in KEYWORDS else folder.name))
    examples = []
    for s in SPLITS if split is None else (split,):
        speech = by_split[s]
        examples += speech + _gsc_silence(data_dir, s, silence_count(len(speech)))
    return examples


def silence_count(n_speech):
    """Silence examples that make silence 1/12 of a split (at least one when the split has speech)."""
    return max(1, round(n_speech / (len(LABELS) - 1))) if n_speech else 0


def silence_regions(length):
    """{split: (start, stop)} sample ranges of a background-noise file of `length` samples."""
    part = max(round(length * GSC_SILENCE_SHARE), CLIP_SAMPLES)
    return {"train": (0, max(0, length - 2 * part)),
            "val": (max(0, length - 2 * part), max(0, length - part)),
            "test": (max(0, length - part), length)}


def _gsc_silence(data_dir, split, n):
    """`n` deterministic 1-s windows of the background noise files, from this split's region only.

    Window j goes to file j mod F; the windows of one file are evenly spaced over its region, and
    window j's gain is GSC_SILENCE_GAINS[j mod 4].
    """
    files = sorted((data_dir / GSC_NOISE_DIR).glob("*.wav"))
    if n == 0 or not files:
        return []
    regions = []
    for f in files:
        start, stop = silence_regions(len(_read_cached(str(f))))[split]
        regions.append((start, stop) if stop - start >= CLIP_SAMPLES else None)
    usable = [i for i, r in enumerate(regions) if r is not None]
    if not usable:
        raise UserError(f"{data_dir / GSC_NOISE_DIR}: noise files too short to cut {split} silence "
                        f"from (need one of at least 3 s)")
    per_file = {i: [] for i in usable}
    for j in range(n):
        per_file[usable[j % len(usable)]].append(j)
    examples = []
    for i, js in per_file.items():
        a, b = regions[i]
        span = b - a - CLIP_SAMPLES
        for k, j in enumerate(js):
            start = a + (round(k * span / (len(js) - 1)) if len(js) > 1 else span // 2)
            gain = GSC_SILENCE_GAINS[j % len(GSC_SILENCE_GAINS)]
            examples.append(Example("silence", f"{files[i]}[{start}:{start + CLIP_SAMPLES}]*{gain}",
                                    f"background-{files[i].stem}-{split}", split, files[i],
                                    start, gain, kind="<noise>"))
    return examples


def _plain(data_dir, split):
    if split not in (None, "test"):
        raise UserError(f"{data_dir}: a plain <label>/*.wav folder has no '{split}' split; use all "
                        f"of it (or split 'test'), or make a dataset with a manifest")
    examples = []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        if folder.name not in LABELS:
            raise UserError(f"{folder}: folder name '{folder.name}' is not a label; rename it to one "
                            f"of {', '.join(LABELS)} (or move it out of {data_dir})")
        for file in sorted(folder.glob("*.wav")):
            examples.append(Example(folder.name, str(file), gsc_speaker(file), split, file))
    return examples


def expected_label(path, labels):
    """The label a clip should get, when its name says it: the file's stem (golden/samples/yes.wav) or
    its folder (data/synth/yes/00001.wav, a Speech Commands layout), if that is one of `labels`; else None."""
    p = Path(path)
    for name in (p.stem, p.parent.name):
        if name in labels:
            return name
    return None
