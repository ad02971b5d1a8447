"""Synthesized 12-class keyword dataset: flite, festival and espeak-ng voices, augmented with sox.

No keyword audio can be downloaded on the machines this project is built on, so the training set is
synthesized. golden/DATA.md documents the voices, the speaker-held-out splits, the augmentation and the
manifest format; this module is its implementation. `ternkws dataset` is the command-line front end.

Pipeline (all deterministic for a seed):
1. plan: every clip index i gets its split, voice, word and base variant from an RNG seeded (seed, i, 0);
2. bases: each distinct (voice, word, variant) utterance is synthesized once, its silence trimmed, and
   cached in a temporary folder (festival is batched: one `festival -b` process per voice/batch);
3. clips: each clip is one `sox` call on its cached base (speed/tempo/pitch/reverb/band/gain), then
   placed at a random offset in a 1-s window and mixed with a slice of a sox-synthesized noise bed at a
   random SNR; the RNG of this step is seeded (seed, i, 1), so the number of workers changes nothing.
"""

import csv
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from .audio import SAMPLE_RATE, write_wav
from .labels import KEYWORDS, LABELS

CLIP_SAMPLES = SAMPLE_RATE           # every clip is exactly 1 s
DEFAULT_PER_CLASS = 1667             # 12 x 1667 = 20,004 clips
SPLITS = ("train", "val", "test")
SPLIT_SHARE = {"val": 0.1, "test": 0.1}   # of each class; train gets the rest
SOURCES = ("flite", "festival", "espeak")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "word", "voice", "speaker", "split", "augment")

# Reserved as an independent evaluation set (TOOLCHAIN.md): never synthesized here.
RESERVED_VOICES = ("ked_diphone",)

# `unknown`: the 20 other words of Google Speech Commands v1, the 5 words v2 added, and a few more.
GSC_OTHER_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
                   "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero")
GSC_V2_EXTRA_WORDS = ("backward", "forward", "follow", "learn", "visual")
EXTRA_UNKNOWN_WORDS = ("hello", "okay", "music", "light", "water", "today", "number", "please",
                       "again", "under", "open", "yellow", "window", "apple", "money")
UNKNOWN_WORDS = GSC_OTHER_WORDS + GSC_V2_EXTRA_WORDS + EXTRA_UNKNOWN_WORDS

# Debian packages that provide each tool (named in the error when one is missing).
TOOL_PACKAGES = {
    "sox": "sox libsox-fmt-all",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-us-slt-hts festlex-cmu festlex-poslex",
    "espeak-ng": "espeak-ng",
}
SOURCE_TOOLS = {"flite": "flite", "festival": "festival", "espeak": "espeak-ng"}


@dataclass(frozen=True)
class Voice:
    """One synthesizer voice. `name` goes to the manifest's `voice` column."""
    engine: str      # flite | festival | espeak
    ident: str       # the engine's own voice name
    speaker: str     # the human (or accent) behind it: the unit of the speaker-held-out split
    group: str       # "natural" (recorded speaker) or "formant" (espeak-ng)

    @property
    def name(self):
        return f"{self.engine}:{self.ident}"


# Natural voices: 4 recorded speakers. flite kal/kal16 and festival kal_diphone are one speaker (kal),
# flite slt and festival's slt HTS voice another (slt).
NATURAL_VOICES = (
    Voice("flite", "kal", "kal", "natural"),
    Voice("flite", "kal16", "kal", "natural"),
    Voice("flite", "awb", "awb", "natural"),
    Voice("flite", "rms", "rms", "natural"),
    Voice("flite", "slt", "slt", "natural"),
    Voice("festival", "kal_diphone", "kal", "natural"),
    Voice("festival", "cmu_us_slt_arctic_hts", "slt", "natural"),
)

# espeak-ng: 8 English accents x 13 variants. Its formant speech is less intelligible than the recorded
# voices, so only the plain male/female variants and the Klatt ones are used (no whisper, croak, robot
# or novelty variants), and the whole espeak-ng group gets ESPEAK_SHARE of each split's speech clips.
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-us-nyc", "en-gb-x-gbcwmd", "en-gb-scotland", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt3")
ESPEAK_SPEEDS = (140, 160, 180)      # words per minute (espeak-ng default 175)
ESPEAK_PITCHES = (35, 50, 65)        # 0..99 (default 50)
ESPEAK_SHARE = 0.4
ESPEAK_VOICES = tuple(Voice("espeak", f"{a}+{v}", f"espeak-{a}", "formant")
                      for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS)
ALL_VOICES = NATURAL_VOICES + ESPEAK_VOICES

# Speaker-held-out splits: every speaker belongs to exactly one split. Test and val each get one recorded
# speaker (rms, awb: flite only) and two espeak-ng accents; train keeps kal and slt (through 5 voices)
# and 4 accents. Every voice says every word, so every split has every class.
SPLIT_OF_SPEAKER = {
    "rms": "test", "espeak-en-us-nyc": "test", "espeak-en-gb-x-gbcwmd": "test",
    "awb": "val", "espeak-en-gb-scotland": "val", "espeak-en-029": "val",
    "kal": "train", "slt": "train", "espeak-en-us": "train", "espeak-en-gb": "train",
    "espeak-en-gb-x-rp": "train", "espeak-en-gb-x-gbclan": "train",
}

# Base-utterance variants of the natural voices: duration stretch x final punctuation (statement,
# exclamation, question give three intonation contours).
NATURAL_STRETCHES = (0.9, 1.0, 1.15)
NATURAL_PUNCTUATION = (".", "!", "?")

# Noise beds: one long sox-synthesized bed per colour, cut into disjoint train/val/test regions so no
# noise sample is shared between splits.
NOISE_COLORS = ("whitenoise", "pinknoise", "brownnoise")
NOISE_BED_SECONDS = 40
SPEECH_NOISE_COLOR_P = (0.25, 0.4, 0.35)     # white, pink, brown behind speech
NOISE_REGION = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}

SOX_FLOAT_OUT = ["-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SAMPLE_RATE), "-c", "1"]


# ------------------------------------------------------------------------------------------------ plan

@dataclass(frozen=True)
class Base:
    """One synthesized utterance, shared by every clip that augments it."""
    voice: Voice
    word: str
    variant: tuple   # engine-specific: (stretch, punctuation) or (speed, pitch)

    @property
    def key(self):
        variant = "_".join(str(v) for v in self.variant)
        variant = variant.replace(".", "p").replace("!", "x").replace("?", "q")
        return f"{self.voice.engine}-{self.voice.ident.replace('+', '-')}-{self.word}-{variant}"


@dataclass(frozen=True)
class ClipPlan:
    index: int
    label: str
    split: str
    word: str            # "" for silence
    base: Base | None    # None for silence
    file: str            # relative to the output folder


def check_sources(sources):
    sources = tuple(sources)
    if not sources:
        raise UserError("no speech sources selected; use --sources with some of " + ",".join(SOURCES))
    for s in sources:
        if s not in SOURCES:
            raise UserError(f"unknown speech source '{s}'; choose from {','.join(SOURCES)}")
    return tuple(s for s in SOURCES if s in sources)


def check_tools(sources):
    """Raise a UserError naming the Debian package of the first missing tool."""
    for tool in ("sox",) + tuple(SOURCE_TOOLS[s] for s in sources):
        if shutil.which(tool) is None:
            raise UserError(f"'{tool}' not found on PATH; install it with "
                            f"'sudo apt-get install -y --no-install-recommends {TOOL_PACKAGES[tool]}'")


def voices_by_split(sources):
    pools = {}
    for split in SPLITS:
        pool = [v for v in ALL_VOICES if v.engine in sources and SPLIT_OF_SPEAKER[v.speaker] == split]
        if not pool:
            raise UserError(f"sources {','.join(sources)} have no {split} speaker (speakers are split "
                            f"by person: see golden/DATA.md); add flite or espeak to --sources")
        pools[split] = pool
    return pools


def split_counts(per_class):
    """Clips of one class per split: 10% val, 10% test (at least one each once per_class >= 3)."""
    n = {}
    for split, share in SPLIT_SHARE.items():
        n[split] = round(per_class * share)
        if per_class >= 3:
            n[split] = max(1, n[split])
    n["train"] = per_class - sum(n.values())
    return n


def _pick_voice(rng, pool):
    natural = [v for v in pool if v.group == "natural"]
    formant = [v for v in pool if v.group == "formant"]
    if natural and formant:
        group = formant if rng.random() < ESPEAK_SHARE else natural
    else:
        group = natural or formant
    return group[rng.integers(len(group))]


def _pick_variant(rng, voice):
    if voice.group == "natural":
        return (NATURAL_STRETCHES[rng.integers(len(NATURAL_STRETCHES))],
                NATURAL_PUNCTUATION[rng.integers(len(NATURAL_PUNCTUATION))])
    # espeak-ng: one speed/pitch per (voice, word); variety comes from the voices and the sox step.
    h = int(hashlib.sha256(voice.ident.encode()).hexdigest(), 16)
    return (ESPEAK_SPEEDS[h % 3], ESPEAK_PITCHES[(h // 3) % 3])


def plan(per_class, seed, sources):
    """Every clip's label, split, word and base utterance; a pure function of its arguments."""
    if per_class < 1:
        raise UserError(f"--per-class must be at least 1 (got {per_class})")
    pools = voices_by_split(sources)
    counts = split_counts(per_class)
    clips = []
    for ci, label in enumerate(LABELS):
        splits = [s for s in SPLITS for _ in range(counts[s])]
        for k, split in enumerate(splits):
            index = ci * per_class + k
            rng = np.random.default_rng([seed, index, 0])
            if label == "silence":
                word, base = "", None
                stem = f"{index:05d}-noise"
            else:
                word = label if label in KEYWORDS else UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))]
                voice = _pick_voice(rng, pools[split])
                base = Base(voice, word, _pick_variant(rng, voice))
                stem = f"{index:05d}-{voice.engine}-{voice.ident.replace('+', '-')}"
            clips.append(ClipPlan(index, label, split, word, base, f"{label}/{stem}.wav"))
    return clips


# ------------------------------------------------------------------------------------- synthesis

def _run(cmd, what, **kw):
    install = (f"'sudo apt-get install -y --no-install-recommends "
               f"{TOOL_PACKAGES.get(cmd[0], cmd[0])}'")
    try:
        r = subprocess.run(cmd, capture_output=True, **kw)
    except OSError as e:
        raise UserError(f"cannot run {cmd[0]} ({e}); install it with {install}") from None
    if r.returncode != 0:
        lines = r.stderr.decode(errors="replace").strip().splitlines()
        errors = [line for line in lines if "error" in line.lower()] or lines
        why = errors[-1].strip() if errors else f"exit status {r.returncode}"
        raise UserError(f"{cmd[0]} failed on {what}: {why} (is everything of {install} installed?)")
    return r


def _read_any_wav(path):
    """(float32 samples, rate) of a mono 16-bit WAV at any rate (synthesizer output)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise UserError(f"{path}: synthesizer wrote an unexpected WAV format")
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, rate


def active_region(x, rate, floor_db=-40.0, margin_s=0.02):
    """(start, stop) of the part of `x` louder than `floor_db` below its loudest 10-ms frame."""
    frame = max(1, rate // 100)
    n = len(x) // frame
    if n == 0:
        return 0, len(x)
    energy = (x[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1)
    peak = energy.max()
    if peak <= 0:
        return 0, 0
    loud = np.flatnonzero(energy >= peak * 10 ** (floor_db / 10))
    margin = int(margin_s * rate)
    return max(0, loud[0] * frame - margin), min(len(x), (loud[-1] + 1) * frame + margin)


def _finish_base(raw_path, out_path, what, tool):
    """Trim the synthesizer's leading/trailing silence and store the base at its native rate."""
    if not raw_path.exists() or raw_path.stat().st_size <= 44:
        raise UserError(f"{tool} wrote no audio for {what}; check its installation with "
                        f"'sudo apt-get install -y --no-install-recommends {TOOL_PACKAGES[tool]}'")
    x, rate = _read_any_wav(raw_path)
    a, b = active_region(x, rate)
    if b - a < rate // 20:
        raise UserError(f"synthesizer produced silence for {what}")
    write_wav(out_path, x[a:b], sample_rate=rate)
    raw_path.unlink()
    return (b - a) / rate


def _synth_single(job):
    """flite or espeak-ng: one process per base. Returns (key, trimmed seconds)."""
    base, cache = job
    cache = Path(cache)
    raw = cache / f"{base.key}.raw.wav"
    v = base.voice
    if v.engine == "flite":
        stretch, punct = base.variant
        cmd = ["flite", "-voice", v.ident, "--setf", f"duration_stretch={stretch}",
               "-t", base.word + punct, "-o", str(raw)]
    elif v.engine == "espeak":
        speed, pitch = base.variant
        cmd = ["espeak-ng", "-v", v.ident, "-s", str(speed), "-p", str(pitch), "-w", str(raw), base.word]
    else:
        raise AssertionError(v.engine)
    _run(cmd, f"{v.name} '{base.word}'")
    return base.key, _finish_base(raw, cache / f"{base.key}.wav", f"{v.name} '{base.word}'", cmd[0])


def _festival_select(ident, stretch):
    if ident == "cmu_us_slt_arctic_hts":
        # The HTS engine ignores Duration_Stretch; its speech rate is the engine option -r.
        return (f"(voice_{ident})\n(set! hts_engine_params (append {ident}::hts_engine_params "
                f"'((\"-r\" {1 / stretch:.4f}))))\n")
    return f"(voice_{ident})\n(Parameter.set 'Duration_Stretch {stretch})\n"


def _synth_festival(job):
    """One `festival -b` process for a batch of bases of one voice."""
    bases, cache = job
    cache = Path(cache)
    ident = bases[0].voice.ident
    if ident in RESERVED_VOICES:
        raise AssertionError(f"{ident} is reserved for independent evaluation")
    lines = []
    current = None
    for b in bases:
        stretch, punct = b.variant
        if stretch != current:
            lines.append(_festival_select(ident, stretch))
            current = stretch
        raw = cache / f"{b.key}.raw.wav"
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{b.word}{punct}")) "{raw}" \'riff)\n')
    script = cache / f"festival-{bases[0].key}.scm"
    script.write_text("".join(lines))
    _run(["festival", "-b", str(script)], f"festival voice {ident}")
    return [(b.key, _finish_base(cache / f"{b.key}.raw.wav", cache / f"{b.key}.wav",
                                 f"festival:{ident} '{b.word}'", "festival"))
            for b in bases]


def _synth_job(job):
    kind, payload, cache = job
    if kind == "festival":
        return dict(_synth_festival((payload, cache)))
    return dict([_synth_single((payload, cache))])


def make_noise_beds(cache):
    """One NOISE_BED_SECONDS bed per colour, synthesized by sox with its repeatable RNG (-R)."""
    for color in NOISE_COLORS:
        _run(["sox", "-R", "-n", *SOX_FLOAT_OUT, str(Path(cache) / f"{color}.raw"),
              "synth", str(NOISE_BED_SECONDS), color], f"noise bed {color}")


# ----------------------------------------------------------------------------------- augmentation

_worker = {}


def _init_worker(cache, out_dir, seed):
    cache = Path(cache)
    _worker.update(cache=cache, out_dir=Path(out_dir), seed=seed, durations={}, beds={})
    for color in NOISE_COLORS:
        bed = np.fromfile(cache / f"{color}.raw", dtype="<f4").astype(np.float64)
        bed -= bed.mean()
        bed /= np.sqrt((bed ** 2).mean())           # unit RMS; levels are set per clip
        n = len(bed)
        _worker["beds"][color] = {s: bed[int(a * n): int(b * n)] for s, (a, b) in NOISE_REGION.items()}


def _noise(rng, color, split, n=CLIP_SAMPLES):
    region = _worker["beds"][color][split]
    start = rng.integers(len(region) - n + 1)
    return region[start: start + n]


def _hum(rng, n=CLIP_SAMPLES):
    f0 = (50.0, 60.0)[rng.integers(2)]
    t = np.arange(n) / SAMPLE_RATE
    h = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
            for k in (1, 2, 3, 5))
    return h / np.sqrt((h ** 2).mean())


def _db(level):
    return 10 ** (level / 20)


def _sox_float(args, what):
    out = _run(["sox", "-R", "-V1", *args], what).stdout
    return np.frombuffer(out, dtype="<f4").astype(np.float64)


def _speech_clip(plan_, rng, base_seconds):
    """sox effects on the base, then shift in the 1-s window, then noise. Returns (audio, augment)."""
    effects, notes = ["rate", str(SAMPLE_RATE)], []    # first, so filters see 16 kHz (kal is 8 kHz)
    # speed scales every frequency (formants and F0: a longer or shorter vocal tract, the strongest
    # speaker cue there is to vary with only 4 recorded people) and the duration; tempo changes only the
    # duration, pitch only F0. Drawn independently, so formants and F0 vary separately.
    factor = 1.0
    if rng.random() < 0.6:
        s = rng.uniform(0.85, 1.15)
        effects += ["speed", f"{s:.4f}"]
        notes.append(f"speed={s:.3f}")
        factor *= s
    if rng.random() < 0.4:
        t = rng.uniform(0.85, 1.15)
        effects += ["tempo", "-s", f"{t:.4f}"]
        notes.append(f"tempo={t:.3f}")
        factor *= t
    if rng.random() < 0.5:
        c = rng.uniform(-300, 300)
        effects += ["pitch", f"{c:.0f}"]
        notes.append(f"pitch={c:+.0f}c")
    if base_seconds / factor > 0.92:      # make the word fit the window with a little room
        fit = base_seconds / factor / 0.92
        effects += ["tempo", "-s", f"{fit:.4f}"]
        notes.append(f"fit={fit:.3f}")
    if rng.random() < 0.25:
        rev, room = rng.uniform(10, 60), rng.uniform(10, 80)
        effects += ["pad", "0", "0.3", "reverb", f"{rev:.0f}", "50", f"{room:.0f}"]
        notes.append(f"reverb={rev:.0f}/{room:.0f}")
    effects += ["rate", str(SAMPLE_RATE)]   # speed and pitch change sox's internal rate: back to 16 kHz
    band = rng.random()
    if band < 0.1:
        effects += ["sinc", "300-3400"]
        notes.append("band=300-3400")
    elif band < 0.2:
        lp = rng.uniform(2500, 6000)
        effects += ["lowpass", f"{lp:.0f}"]
        notes.append(f"lowpass={lp:.0f}")
    level = rng.uniform(-24, -1)
    effects += ["gain", "-n", f"{level:.1f}"]
    notes.append(f"gain={level:.1f}dB")
    base_path = _worker["cache"] / f"{plan_.base.key}.wav"
    y = _sox_float([str(base_path), *SOX_FLOAT_OUT, "-", *effects], plan_.file)
    a, b = active_region(y, SAMPLE_RATE, floor_db=-45.0)
    y = y[a: b][:CLIP_SAMPLES]
    x = np.zeros(CLIP_SAMPLES)
    offset = int(rng.integers(CLIP_SAMPLES - len(y) + 1))
    x[offset: offset + len(y)] = y
    notes.append(f"shift={offset / SAMPLE_RATE:.3f}s")
    speech_rms = np.sqrt((y ** 2).mean()) if len(y) else 0.0
    if rng.random() < 0.85:
        # White noise masks the most (flat up to 8 kHz, where these voices have little energy), so it
        # is drawn less often; SNR 5-30 dB with more weight on the cleaner end (median 22.7 dB).
        color = NOISE_COLORS[rng.choice(len(NOISE_COLORS), p=SPEECH_NOISE_COLOR_P)]
        snr = 5 + 25 * np.sqrt(rng.random())
        x += _noise(rng, color, plan_.split) * speech_rms * _db(-snr)
        notes.append(f"noise={color[:-5]}@{snr:.1f}dB")
    if rng.random() < 0.05:
        snr = rng.uniform(15, 35)
        x += _hum(rng) * speech_rms * _db(-snr)
        notes.append(f"hum@{snr:.1f}dB")
    return x, " ".join(notes)


def _silence_clip(plan_, rng):
    kind = rng.random()
    if kind < 0.03:
        return np.zeros(CLIP_SAMPLES), "digital-zero"
    color = NOISE_COLORS[rng.integers(len(NOISE_COLORS))]
    if kind < 0.13:
        level = rng.uniform(-85, -65)          # near-silence: a few LSBs of noise
        return _noise(rng, color, plan_.split) * _db(level), f"noise={color[:-5]}@{level:.1f}dBFS"
    level = rng.uniform(-60, -20)
    x = _noise(rng, color, plan_.split)
    notes = [f"noise={color[:-5]}@{level:.1f}dBFS"]
    r = rng.random()
    if r < 0.3:
        # Colour the noise further with sox (the bed slice goes through stdin).
        if r < 0.15:
            f = rng.uniform(300, 4000)
            effects, note = ["lowpass", f"{f:.0f}"], f"lowpass={f:.0f}"
        else:
            f = rng.uniform(100, 2000)
            effects, note = ["highpass", f"{f:.0f}"], f"highpass={f:.0f}"
        y = _run(["sox", "-R", "-V1", *SOX_FLOAT_OUT, "-", *SOX_FLOAT_OUT, "-", *effects], plan_.file,
                 input=x.astype("<f4").tobytes()).stdout
        x = np.frombuffer(y, dtype="<f4").astype(np.float64)[:CLIP_SAMPLES]
        x = x / max(np.sqrt((x ** 2).mean()), 1e-12)
        notes.append(note)
    x = x * _db(level)
    if rng.random() < 0.2:
        hum = rng.uniform(-60, -30)
        x = x + _hum(rng) * _db(hum)
        notes.append(f"hum@{hum:.1f}dBFS")
    return x, " ".join(notes)


def _make_clip(plan_):
    rng = np.random.default_rng([_worker["seed"], plan_.index, 1])
    if plan_.base is None:
        x, augment = _silence_clip(plan_, rng)
    else:
        x, augment = _speech_clip(plan_, rng, _worker["durations"][plan_.base.key])
    peak = np.abs(x).max()
    if peak > 0.99:           # noise pushed the mix over full scale: scale down, do not clip
        x *= 0.99 / peak
        augment += " limit"
    write_wav(_worker["out_dir"] / plan_.file, x)
    return plan_.index, augment


def _make_clip_batch(args):
    durations, plans = args
    _worker["durations"].update(durations)
    return [_make_clip(p) for p in plans]


# ------------------------------------------------------------------------------------------ driver

def _prepare_out(out_dir, force):
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")
    existing = [p for p in ([out_dir / MANIFEST] + [out_dir / lab for lab in LABELS]) if p.exists()]
    if existing and not force:
        raise UserError(f"{out_dir} already holds a dataset ({existing[0].name}); pass --force to "
                        f"replace it or choose another --out")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    for label in LABELS:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
    return out_dir


def _pool_map(fn, items, workers, desc, progress, initargs=None):
    """Map `fn` over `items` with `workers` processes (in order); tqdm progress in items."""
    from tqdm import tqdm
    bar = tqdm(total=sum(n for n, _ in items), desc=desc, unit="clip" if "clip" in desc else "utt",
               disable=not progress, smoothing=0.05)
    results = []
    if workers <= 1:
        if initargs is not None:
            _init_worker(*initargs)
        for n, job in items:
            results.append(fn(job))
            bar.update(n)
    else:
        import multiprocessing as mp
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        kw = dict(initializer=_init_worker, initargs=initargs) if initargs is not None else {}
        with ctx.Pool(workers, **kw) as pool:
            for (n, _), r in zip(items, pool.imap(fn, [job for _, job in items])):
                results.append(r)
                bar.update(n)
    bar.close()
    return results


def generate(out_dir, per_class=DEFAULT_PER_CLASS, seed=0, jobs=None, sources=SOURCES, force=False,
             progress=True):
    """Synthesize the dataset into `out_dir`; return a summary dict (counts, seconds, bases)."""
    t0 = time.monotonic()
    sources = check_sources(sources)
    check_tools(sources)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    clips = plan(per_class, seed, sources)
    out_dir = _prepare_out(out_dir, force)

    bases = sorted({c.base for c in clips if c.base is not None}, key=lambda b: b.key)
    with tempfile.TemporaryDirectory(prefix="ternkws-dataset-") as cache:
        make_noise_beds(cache)
        # Festival: per voice, a few batches (one process each) so that workers share the work.
        items = []
        for voice in [v for v in NATURAL_VOICES if v.engine == "festival"]:
            mine = [b for b in bases if b.voice == voice]
            mine.sort(key=lambda b: (b.variant[0], b.key))    # fewer voice re-selections per batch
            n_batch = max(1, min(jobs, math.ceil(len(mine) / 50)))
            for i in range(n_batch):
                chunk = mine[i::n_batch]
                if chunk:
                    chunk.sort(key=lambda b: (b.variant[0], b.key))
                    items.append((len(chunk), ("festival", chunk, cache)))
        items += [(1, ("single", b, cache)) for b in bases if b.voice.engine != "festival"]
        durations = {}
        for result in _pool_map(_synth_job, items, jobs, "synthesizing words", progress):
            durations.update(result)

        # Clips go to the workers in small batches, each with the durations of its own bases.
        batch = 16
        items = []
        for i in range(0, len(clips), batch):
            chunk = clips[i: i + batch]
            d = {c.base.key: durations[c.base.key] for c in chunk if c.base is not None}
            items.append((len(chunk), (d, chunk)))
        augments = {}
        for result in _pool_map(_make_clip_batch, items, jobs, "augmenting clips", progress,
                                initargs=(cache, str(out_dir), seed)):
            augments.update(result)

    rows = [{"file": c.file, "label": c.label, "word": c.word,
             "voice": c.base.voice.name if c.base else "sox:noise",
             "speaker": c.base.voice.speaker if c.base else f"noise-{c.split}",
             "split": c.split, "augment": augments[c.index]} for c in clips]
    tmp = out_dir / (MANIFEST + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out_dir / MANIFEST)
    counts = Counter((r["split"], r["label"]) for r in rows)
    return {
        "out_dir": str(out_dir),
        "clips": len(rows),
        "bases": len(bases),
        "counts": {s: {lab: counts[(s, lab)] for lab in LABELS} for s in SPLITS},
        "speakers": {s: sorted({r["speaker"] for r in rows if r["split"] == s}) for s in SPLITS},
        "seconds": time.monotonic() - t0,
    }


def format_summary(summary):
    """Counts per split and class as a small text table."""
    width = max(len(lab) for lab in LABELS)
    lines = [f"{'':{width}}  " + "  ".join(f"{s:>6}" for s in SPLITS) + "   total"]
    for lab in LABELS:
        row = [summary["counts"][s][lab] for s in SPLITS]
        lines.append(f"{lab:{width}}  " + "  ".join(f"{n:6d}" for n in row) + f"  {sum(row):6d}")
    tot = [sum(summary["counts"][s].values()) for s in SPLITS]
    lines.append(f"{'total':{width}}  " + "  ".join(f"{n:6d}" for n in tot) + f"  {sum(tot):6d}")
    for s in SPLITS:
        lines.append(f"{s} speakers: {', '.join(summary['speakers'][s])}")
    return "\n".join(lines)


def draw_samples(data_dir, dest, split="test"):
    """The bundled sample clips, by a written rule (golden/DATA.md): for each label, the first clip of
    `split` in the manifest's order (sorted by file name), copied to dest/<label>.wav. Returns
    [(label, source file)] in LABELS order; UserError if the manifest lacks a label in that split."""
    data_dir, dest = Path(data_dir), Path(dest)
    manifest = data_dir / MANIFEST
    if not manifest.is_file():
        raise UserError(f"{manifest} does not exist: generate the set first (`ternkws dataset --out {data_dir}`)")
    with open(manifest, newline="") as f:
        rows = sorted((r for r in csv.DictReader(f) if r["split"] == split), key=lambda r: r["file"])
    chosen = []
    for label in LABELS:
        row = next((r for r in rows if r["label"] == label), None)
        if row is None:
            raise UserError(f"{manifest}: no {label!r} clip in the {split} split")
        chosen.append((label, row["file"]))
    dest.mkdir(parents=True, exist_ok=True)
    for label, file in chosen:
        shutil.copyfile(data_dir / file, dest / f"{label}.wav")
    return chosen
