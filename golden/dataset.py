"""Synthesized 12-class keyword dataset: flite, festival and espeak-ng voices, augmented with sox.

No keyword audio can be downloaded on the machines this project is built on, so the training set is
synthesized. golden/DATA.md documents the voices, the speaker-held-out splits, the augmentation, the
non-speech sounds and the manifest format; this module is its implementation, golden/voices.py says who
speaks and how, and `ternkws dataset` is the command-line front end.

Pipeline (all deterministic for a seed):
1. plan: every clip index i gets its split, kind (a word, noise, a tone, babble...), voice, word and
   base variant from an RNG seeded (seed, i, 0);
2. bases: each distinct (voice, word, variant) utterance is synthesized once, its silence trimmed, and
   cached in a temporary folder (festival is batched: one `festival -b` process per voice/batch);
3. clips: each speech clip is one `sox` call on its cached base (speed/tempo/pitch/reverb/band/gain),
   then placed at a random offset in a 1-s window and mixed with a slice of a sox-synthesized noise bed
   at a random SNR; non-speech sounds (tones, chirps, music, clicks) are computed with NumPy, babble is
   several words mixed. The RNG of this step is seeded (seed, i, 1), so the number of workers changes
   nothing.
"""

import csv
import functools
import hashlib
import math
import os
import re
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
from .voices import (ALL_VOICES, ENGLISH_VOICES, ESPEAK_VOICES, FESTIVAL_PACKAGES, FOREIGN_PACKAGES,
                     FOLDS, FOREIGN_VOICES, GROUP_SHARE, RESERVED_VOICES, SPLIT_OF_SPEAKER,
                     UNKNOWN_WORDS, WORDS, Voice, split_of_speaker, weight)

__all__ = ["ALL_VOICES", "ENGLISH_VOICES", "ESPEAK_VOICES", "FOREIGN_VOICES", "RESERVED_VOICES",
           "FOLDS", "SPLIT_OF_SPEAKER", "UNKNOWN_WORDS", "WORDS", "Voice", "Base", "ClipPlan", "plan",
           "generate", "synthesize_bases", "format_summary", "draw_samples"]

CLIP_SAMPLES = SAMPLE_RATE           # every clip is exactly 1 s
DEFAULT_PER_CLASS = 1667             # 12 x 1667 = 20,004 clips
SPLITS = ("train", "val", "test")
SPLIT_SHARE = {"val": 0.1, "test": 0.1}   # of each class; train gets the rest
SOURCES = ("flite", "festival", "foreign", "espeak")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "word", "voice", "speaker", "split", "augment")

# Debian packages that provide each tool (named in the error when one is missing).
TOOL_PACKAGES = {
    "sox": "sox libsox-fmt-all",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-us-slt-hts festlex-cmu festlex-poslex",
    "espeak-ng": "espeak-ng",
}
SOURCE_TOOLS = {"flite": "flite", "festival": "festival", "foreign": "festival", "espeak": "espeak-ng"}

# espeak-ng: one fixed speed/pitch per voice (from a hash of its name).
ESPEAK_SPEEDS = (140, 160, 180)      # words per minute (espeak-ng default 175)
ESPEAK_PITCHES = (35, 50, 65)        # 0..99 (default 50)

# What a clip of `silence` or `unknown` holds, with its probability (keywords are always their word).
# silence: no speech, sustained over the window; unknown: another word, or a word-length sound that is
# not a keyword (a tone burst, a chirp, a chord or arpeggio, clicks, a reversed word, babble).
SILENCE_KINDS = {"noise": 0.62, "tone": 0.08, "chirp": 0.04, "music": 0.10, "clicks": 0.06,
                 "babble": 0.10}
UNKNOWN_KINDS = {"word": 0.76, "tone": 0.04, "chirp": 0.03, "music": 0.05, "clicks": 0.02,
                 "reversed": 0.06, "babble": 0.04}
SOUND_KINDS = ("tone", "chirp", "music", "clicks")     # computed with NumPy, no voice
BABBLE_PARTS = {"silence": (4, 7), "unknown": (3, 5)}   # words mixed, inclusive range

# Noise beds: one long sox-synthesized bed per colour, cut into disjoint train/val/test regions so no
# noise sample is shared between splits.
NOISE_COLORS = ("whitenoise", "pinknoise", "brownnoise")
NOISE_BED_SECONDS = 40
SPEECH_NOISE_COLOR_P = (0.25, 0.4, 0.35)     # white, pink, brown behind speech
NOISE_REGION = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}

FESTIVAL_BATCH = 60                  # bases per `festival -b` process (at most)

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
    word: str            # the word spoken; "" for anything else
    base: Base | None    # the utterance of a "word" or "reversed" clip
    file: str            # relative to the output folder
    kind: str = "word"   # "word", "noise", "tone", "chirp", "music", "clicks", "reversed", "babble"
    parts: tuple = ()    # babble: the utterances mixed

    @property
    def bases(self):
        return ((self.base,) if self.base is not None else ()) + self.parts

    @property
    def voice_name(self):
        if self.kind == "babble":
            return "mix:babble"
        if self.base is not None:
            return self.base.voice.name
        return "sox:noise" if self.kind == "noise" else f"synth:{self.kind}"

    @property
    def speaker(self):
        if self.kind == "babble":
            return f"babble-{self.split}"
        if self.base is not None:
            return self.base.voice.speaker
        return f"noise-{self.split}"


def source_of(voice):
    """The --sources name that selects `voice`: flite, festival (English), foreign or espeak."""
    return "foreign" if voice.group == "foreign" else voice.engine


def check_sources(sources):
    sources = tuple(sources)
    if not sources:
        raise UserError("no speech sources selected; use --sources with some of " + ",".join(SOURCES))
    for s in sources:
        if s not in SOURCES:
            raise UserError(f"unknown speech source '{s}'; choose from {','.join(SOURCES)}")
    return tuple(s for s in SOURCES if s in sources)


def festival_voices():
    """The festival voices installed here (festival's `voice.list`); () without festival."""
    path = shutil.which("festival")
    return _festival_voices(path) if path else ()


@functools.lru_cache(maxsize=4)
def _festival_voices(path):
    with tempfile.TemporaryDirectory(prefix="ternkws-festival-") as tmp:
        script = Path(tmp) / "list.scm"
        script.write_text("(print (voice.list))\n")
        r = subprocess.run([path, "-b", str(script)], capture_output=True, text=True)
    return tuple(r.stdout.strip().strip("()").split())


def missing_voices(voices):
    """The festival voices among `voices` that are not installed here."""
    installed = set(festival_voices())
    return [v for v in voices if v.engine == "festival" and v.ident not in installed]


def check_tools(sources):
    """Raise a UserError naming the Debian package of the first missing tool or festival voice."""
    for tool in ("sox",) + tuple(dict.fromkeys(SOURCE_TOOLS[s] for s in sources)):
        if shutil.which(tool) is None:
            packages = TOOL_PACKAGES[tool]
            if tool == "festival" and "foreign" in sources:
                packages += " " + FOREIGN_PACKAGES
            raise UserError(f"'{tool}' not found on PATH; install it with "
                            f"'sudo apt-get install -y --no-install-recommends {packages}'")
    wanted = [v for v in ALL_VOICES if source_of(v) in sources and weight(v) > 0]
    missing = missing_voices(wanted)
    if missing:
        packages = " ".join(dict.fromkeys(FESTIVAL_PACKAGES[v.ident] for v in missing))
        hint = " (or leave out --sources foreign)" if any(v.group == "foreign" for v in missing) else ""
        raise UserError(f"festival voice {missing[0].ident} is not installed; install it with "
                        f"'sudo apt-get install -y --no-install-recommends {packages}'{hint}")


def voices_by_split(sources, fold=0):
    split_of = split_of_speaker(fold)
    pools = {}
    for split in SPLITS:
        pool = [v for v in ALL_VOICES if source_of(v) in sources and weight(v) > 0
                and split_of[v.speaker] == split]
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


def _choose(rng, weights):
    """Index drawn with probability proportional to `weights` (one uniform draw)."""
    c = np.cumsum(np.asarray(weights, dtype=np.float64))
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), len(c) - 1)


def group_shares(pool):
    """{group: share of the speech clips} for the groups present in `pool` (GROUP_SHARE renormalized)."""
    groups = [g for g in GROUP_SHARE if any(v.group == g for v in pool)]
    total = sum(GROUP_SHARE[g] for g in groups)
    return {g: GROUP_SHARE[g] / total for g in groups}


def voice_shares(pool):
    """{voice: probability that a speech clip of this split comes from it}."""
    shares = {}
    for g, share in group_shares(pool).items():
        members = [v for v in pool if v.group == g]
        w = sum(weight(v) for v in members)
        shares.update({v: share * weight(v) / w for v in members})
    return shares


def _pick_voice(rng, pool):
    groups = list(group_shares(pool).items())
    g = groups[_choose(rng, [s for _, s in groups])][0]
    members = [v for v in pool if v.group == g]
    return members[_choose(rng, [weight(v) for v in members])]


def _pick_variant(rng, voice):
    if voice.recorded:
        return (voice.stretches[rng.integers(len(voice.stretches))],
                voice.punctuation[rng.integers(len(voice.punctuation))])
    return espeak_variant(voice)


def espeak_variant(voice):
    """espeak-ng: one speed/pitch per voice; variety comes from the voices and the sox step."""
    h = int(hashlib.sha256(voice.ident.encode()).hexdigest(), 16)
    return (ESPEAK_SPEEDS[h % 3], ESPEAK_PITCHES[(h // 3) % 3])


def base_variants(voice):
    """Every base variant the plan can give `voice`."""
    if voice.recorded:
        return [(s, p) for s in voice.stretches for p in voice.punctuation]
    return [espeak_variant(voice)]


def _pick_kind(rng, kinds):
    names = list(kinds)
    return names[_choose(rng, [kinds[k] for k in names])]


def _stem(voice):
    return f"{voice.engine}-{voice.ident.replace('+', '-')}"


def plan(per_class, seed, sources, fold=0):
    """Every clip's label, split, kind, word and base utterances; a pure function of its arguments.
    `fold` picks the speaker fold (voices.FOLDS): only which people each split's clips come from."""
    if per_class < 1:
        raise UserError(f"--per-class must be at least 1 (got {per_class})")
    pools = voices_by_split(sources, fold)
    counts = split_counts(per_class)
    clips = []
    for ci, label in enumerate(LABELS):
        splits = [s for s in SPLITS for _ in range(counts[s])]
        for k, split in enumerate(splits):
            index = ci * per_class + k
            rng = np.random.default_rng([seed, index, 0])
            pool = pools[split]
            word, base, parts = "", None, ()
            if label == "silence":
                kind = _pick_kind(rng, SILENCE_KINDS)
            elif label == "unknown":
                kind = _pick_kind(rng, UNKNOWN_KINDS)
            else:
                kind = "word"
            if kind == "word":
                word = label if label in KEYWORDS else UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))]
                voice = _pick_voice(rng, pool)
                base = Base(voice, word, _pick_variant(rng, voice))
                stem = f"{index:05d}-{_stem(voice)}"
            elif kind == "reversed":
                voice = _pick_voice(rng, pool)
                base = Base(voice, WORDS[rng.integers(len(WORDS))], _pick_variant(rng, voice))
                stem = f"{index:05d}-{_stem(voice)}-reversed"
            elif kind == "babble":
                lo, hi = BABBLE_PARTS[label]
                n = int(rng.integers(lo, hi + 1))
                voices = [_pick_voice(rng, pool) for _ in range(n)]
                parts = tuple(Base(v, WORDS[rng.integers(len(WORDS))], _pick_variant(rng, v))
                              for v in voices)
                stem = f"{index:05d}-babble"
            else:
                stem = f"{index:05d}-{kind}"
            clips.append(ClipPlan(index, label, split, word, base, f"{label}/{stem}.wav", kind, parts))
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


def _finish_base(raw_path, out_path, what, tool, floor_db=-40.0):
    """Trim the synthesizer's leading/trailing silence and store the base at its native rate."""
    if not raw_path.exists() or raw_path.stat().st_size <= 44:
        raise UserError(f"{tool} wrote no audio for {what}; check its installation with "
                        f"'sudo apt-get install -y --no-install-recommends {TOOL_PACKAGES[tool]}'")
    x, rate = _read_any_wav(raw_path)
    a, b = active_region(x, rate, floor_db=floor_db)
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
        cmd = ["espeak-ng", *espeak_deterministic(), "-v", v.ident, "-s", str(speed), "-p", str(pitch),
               "-w", str(raw), base.word]
    else:
        raise AssertionError(v.engine)
    _run(cmd, f"{v.name} '{base.word}'")
    return base.key, _finish_base(raw, cache / f"{base.key}.wav", f"{v.name} '{base.word}'", cmd[0],
                                  v.trim_db)


def espeak_deterministic():
    """["-D"] where espeak-ng has it (1.52 on: it seeds its random numbers, which it otherwise takes from
    the clock), [] for 1.51 (Debian 12: rand() unseeded, the same in every process)."""
    path = shutil.which("espeak-ng")
    return _espeak_deterministic(path) if path else []


@functools.lru_cache(maxsize=4)
def _espeak_deterministic(path):
    r = subprocess.run([path, "--version"], capture_output=True, text=True)
    m = re.search(r"(\d+)\.(\d+)", r.stdout)
    return ["-D"] if m and (int(m.group(1)), int(m.group(2))) >= (1, 52) else []


def _festival_select(voice, stretch):
    ident = voice.ident
    if ident.endswith("_hts"):
        # The HTS engine ignores Duration_Stretch; its speech rate is the engine option -r.
        select = (f"(voice_{ident})\n(set! hts_engine_params (append {ident}::hts_engine_params "
                  f"'((\"-r\" {1 / stretch:.4f}))))\n")
    else:
        select = f"(voice_{ident})\n(Parameter.set 'Duration_Stretch {stretch})\n"
    if voice.lang == "cs":
        # festival-czech randomizes (rand); the first call scales by the largest of 100 draws (always
        # 1 for draws in [0, 1)): set it here so that no utterance's draws depend on its batch.
        select += "(set! czech-rand-range 1)\n"
    return select


def _festival_seed(base):
    """The seed festival's (rand) gets before `base` (a hash of its key): the same utterance whatever
    batch it is synthesized in (festival-czech draws random numbers)."""
    return int(hashlib.sha256(base.key.encode()).hexdigest()[:6], 16)


def _synth_festival(job):
    """One `festival -b` process for a batch of bases of one voice (its script in the voice's
    encoding; a foreign voice says each word's respelling, golden/voices.py)."""
    bases, cache = job
    cache = Path(cache)
    voice = bases[0].voice
    ident = voice.ident
    if ident in RESERVED_VOICES:
        raise AssertionError(f"{ident} is reserved for independent evaluation")
    lines = []
    current = None
    for b in bases:
        stretch, punct = b.variant
        if stretch != current:
            lines.append(_festival_select(voice, stretch))
            current = stretch
        raw = cache / f"{b.key}.raw.wav"
        lines.append(f"(srand {_festival_seed(b)})\n")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{voice.text(b.word)}{punct}")) '
                     f'"{raw}" \'riff)\n')
    script = cache / f"festival-{bases[0].key}.scm"
    script.write_bytes("".join(lines).encode(voice.encoding))
    package = " ".join(dict.fromkeys((TOOL_PACKAGES["festival"] + " " +
                                      FESTIVAL_PACKAGES.get(ident, "")).split()))
    try:
        r = subprocess.run(["festival", "-b", str(script)], capture_output=True)
    except OSError as e:
        raise UserError(f"cannot run festival ({e}); install it with 'sudo apt-get install -y "
                        f"--no-install-recommends {TOOL_PACKAGES['festival']}'") from None
    if r.returncode != 0:
        if r.returncode < 0 and len(bases) > 1:
            # festival crashed (a signal) on some utterance: find it, one process per utterance.
            for b in bases:
                _synth_festival(([b], cache))
        lines = [x for x in r.stderr.decode(errors="replace").strip().splitlines()
                 if "default diphone" not in x]
        lines = [x for x in lines if "error" in x.lower()] or lines
        why = (f"crashed (signal {-r.returncode})" if r.returncode < 0
               else f"exit status {r.returncode}" + (f": {lines[-1].strip()}" if lines else ""))
        what = (f" on '{voice.text(bases[0].word)}{bases[0].variant[1]}' (the word '{bases[0].word}', "
                f"stretch {bases[0].variant[0]})" if len(bases) == 1 else "")
        raise UserError(f"festival voice {ident} failed{what}: {why}; is everything of "
                        f"'sudo apt-get install -y --no-install-recommends {package}' installed?")
    return [(b.key, _finish_base(cache / f"{b.key}.raw.wav", cache / f"{b.key}.wav",
                                 f"festival:{ident} '{b.word}'", "festival", voice.trim_db))
            for b in bases]


def _synth_job(job):
    kind, payload, cache = job
    if kind == "festival":
        return dict(_synth_festival((payload, cache)))
    return dict([_synth_single((payload, cache))])


def festival_batches(bases):
    """The `festival -b` batches for the festival bases among `bases`: per voice, ceil(n / 60) batches
    (every k-th base by key), each sorted by stretch then key (fewer voice re-selections).

    They depend on the bases only, never on the number of workers: festival's diphone voices (Italian
    pc, Finnish mv, the Czech voices) leave different garbage (up to -18 dB) in the final pause of some
    utterances depending on what the process synthesized before (the same for the same batch in any
    process), so a base is only reproducible within the same batch.
    """
    batches = []
    for voice in sorted({b.voice for b in bases if b.voice.engine == "festival"}, key=lambda v: v.ident):
        mine = sorted((b for b in bases if b.voice == voice), key=lambda b: b.key)
        n_batch = math.ceil(len(mine) / FESTIVAL_BATCH)
        for i in range(n_batch):
            batches.append(sorted(mine[i::n_batch], key=lambda b: (b.variant[0], b.key)))
    return batches


def synthesize_bases(bases, cache, jobs=1, progress=False):
    """Synthesize every Base into `cache`/<key>.wav (trimmed, native rate); {key: seconds}.

    Festival: per voice, batches of at most FESTIVAL_BATCH bases (one process each, fixed whatever
    `jobs` is); flite and espeak-ng: one process per base.
    """
    bases = sorted(set(bases), key=lambda b: b.key)
    items = [(len(chunk), ("festival", chunk, str(cache))) for chunk in festival_batches(bases)]
    items += [(1, ("single", b, str(cache))) for b in bases if b.voice.engine != "festival"]
    durations = {}
    for result in _pool_map(_synth_job, items, jobs, "synthesizing words", progress):
        durations.update(result)
    return durations


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


def _rms(x):
    return float(np.sqrt((x ** 2).mean())) if len(x) else 0.0


def _sox_float(args, what):
    out = _run(["sox", "-R", "-V1", *args], what).stdout
    return np.frombuffer(out, dtype="<f4").astype(np.float64)


def _voice_effects(plan_, rng, base, base_seconds):
    """sox effects on a cached base: (trimmed 16-kHz audio at its drawn peak level, notes)."""
    effects, notes = ["rate", str(SAMPLE_RATE)], []    # first, so filters see 16 kHz (kal is 8 kHz)
    # speed scales every frequency (formants and F0: a longer or shorter vocal tract) and the duration;
    # tempo changes only the duration, pitch only F0. Drawn independently, so formants and F0 vary
    # separately.
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
    base_path = _worker["cache"] / f"{base.key}.wav"
    y = _sox_float([str(base_path), *SOX_FLOAT_OUT, "-", *effects], plan_.file)
    a, b = active_region(y, SAMPLE_RATE, floor_db=-45.0)
    return y[a: b][:CLIP_SAMPLES], notes


def _place(y, rng, notes):
    """`y` at a uniformly random offset in a zero 1-s window."""
    x = np.zeros(CLIP_SAMPLES)
    y = y[:CLIP_SAMPLES]
    offset = int(rng.integers(CLIP_SAMPLES - len(y) + 1))
    x[offset: offset + len(y)] = y
    notes.append(f"shift={offset / SAMPLE_RATE:.3f}s")
    return x


def _background(x, rng, split, signal_rms, notes):
    """Noise behind a word-like sound: p = 0.85 noise at an SNR of 5-30 dB, p = 0.05 mains hum."""
    if rng.random() < 0.85:
        # White noise masks the most (flat up to 8 kHz, where these voices have little energy), so it
        # is drawn less often; SNR 5-30 dB with more weight on the cleaner end (median 22.7 dB).
        color = NOISE_COLORS[rng.choice(len(NOISE_COLORS), p=SPEECH_NOISE_COLOR_P)]
        snr = 5 + 25 * np.sqrt(rng.random())
        x = x + _noise(rng, color, split) * signal_rms * _db(-snr)
        notes.append(f"noise={color[:-5]}@{snr:.1f}dB")
    if rng.random() < 0.05:
        snr = rng.uniform(15, 35)
        x = x + _hum(rng) * signal_rms * _db(-snr)
        notes.append(f"hum@{snr:.1f}dB")
    return x


def _speech_clip(plan_, rng, base_seconds, reverse=False):
    """sox effects on the base, then shift in the 1-s window, then noise. Returns (audio, augment)."""
    y, notes = _voice_effects(plan_, rng, plan_.base, base_seconds)
    if reverse:
        y = y[::-1].copy()
        notes.insert(0, f"reversed={plan_.base.word}")
    x = _place(y, rng, notes)
    x = _background(x, rng, plan_.split, _rms(y), notes)
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
        x = x / max(_rms(x), 1e-12)
        notes.append(note)
    x = x * _db(level)
    if rng.random() < 0.2:
        hum = rng.uniform(-60, -30)
        x = x + _hum(rng) * _db(hum)
        notes.append(f"hum@{hum:.1f}dBFS")
    return x, " ".join(notes)


# ----------------------------------------------------------------------------- non-speech sounds
# Each returns (signal, notes): unit peak, `n` samples long (a sustained sound fills them; a burst has
# its own length and is placed in the window later).

def _envelope(n, rng, attack=(0.002, 0.03), release=(0.01, 0.12)):
    a = max(1, int(rng.uniform(*attack) * SAMPLE_RATE))
    r = max(1, int(rng.uniform(*release) * SAMPLE_RATE))
    env = np.ones(n)
    a, r = min(a, n // 2), min(r, n // 2)
    env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    env[n - r:] = np.linspace(1.0, 0.0, r)
    return env


def _harmonics(rng):
    """Amplitudes of the partials of a tone: pure, or a few harmonics falling off as 1/k^r."""
    if rng.random() < 0.5:
        return [1.0]
    count, roll = int(rng.integers(2, 9)), rng.uniform(0.7, 2.0)
    return [1.0 / k ** roll for k in range(1, count + 1)]


def _partials(freq, amps, t, rng):
    """Sum of harmonics of `freq` (an array or a number) below 7.5 kHz, with random phases."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(freq, t.shape)) / SAMPLE_RATE
    y = np.zeros_like(t)
    fmax = float(np.max(freq))
    for k, a in enumerate(amps, start=1):
        if k * fmax < 7500:
            y += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return y


def _peak1(y):
    p = np.abs(y).max()
    return y / p if p > 0 else y


def _tone(rng, sustained):
    f = 440.0 if rng.random() < 0.3 else float(np.exp(rng.uniform(np.log(80), np.log(6000))))
    amps = _harmonics(rng)
    n = CLIP_SAMPLES if sustained else int(rng.uniform(0.08, 0.9) * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float64)
    freq = np.full(n, f)
    notes = [f"tone={f:.0f}Hz", f"partials={len(amps)}"]
    if rng.random() < 0.2:
        rate, depth = rng.uniform(3, 7), rng.uniform(0.002, 0.01)
        freq = f * (1 + depth * np.sin(2 * np.pi * rate * t / SAMPLE_RATE))
        notes.append("vibrato")
    y = _partials(freq, amps, t, rng)
    if sustained and rng.random() < 0.3:          # a beeping tone: on/off at 1-8 Hz
        rate, duty = rng.uniform(1, 8), rng.uniform(0.2, 0.8)
        gate = ((t / SAMPLE_RATE * rate + rng.random()) % 1.0) < duty
        y = y * np.convolve(gate.astype(np.float64), np.ones(80) / 80, mode="same")
        notes.append(f"beep={rate:.1f}Hz")
    if not sustained:
        y = y * _envelope(n, rng)
    return _peak1(y), notes


def _chirp(rng, sustained):
    lo, hi = np.log(100), np.log(6000)
    n = CLIP_SAMPLES if sustained else int(rng.uniform(0.08, 0.8) * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    amps = _harmonics(rng) if rng.random() < 0.5 else [1.0]
    if sustained and rng.random() < 0.5:          # a siren: the frequency swings around a centre
        fc, rate, depth = np.exp(rng.uniform(np.log(300), np.log(3000))), rng.uniform(0.5, 4), rng.uniform(0.1, 0.5)
        freq = fc * (1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
        notes = [f"siren={fc:.0f}Hz/{rate:.1f}Hz"]
    else:
        f0, f1 = np.exp(rng.uniform(lo, hi)), np.exp(rng.uniform(lo, hi))
        u = t / t[-1] if n > 1 else t
        freq = f0 * (f1 / f0) ** u if rng.random() < 0.5 else f0 + (f1 - f0) * u
        notes = [f"chirp={f0:.0f}-{f1:.0f}Hz"]
    y = _partials(freq, amps, t * SAMPLE_RATE, rng)
    if not sustained:
        y = y * _envelope(n, rng)
    return _peak1(y), notes


CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7), "seventh": (0, 4, 7, 10), "minor7": (0, 3, 7, 10),
          "sus4": (0, 5, 7), "power": (0, 7, 12)}


def _note(midi, n, rng, amps, decay):
    f = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(n, dtype=np.float64)
    y = _partials(f, amps, t, rng)
    env = np.exp(-t / (decay * SAMPLE_RATE)) if decay else np.ones(n)
    return y * env * _envelope(n, rng, attack=(0.001, 0.02), release=(0.005, 0.03))


def _music(rng, sustained):
    """A chord (notes together) or an arpeggio (chord notes in turn), piano-like (decaying) or
    organ-like (held) notes with a few harmonics."""
    name = list(CHORDS)[rng.integers(len(CHORDS))]
    root = int(rng.integers(45, 77))
    notes_ = [root + i for i in CHORDS[name]]
    amps = _harmonics(rng)
    decay = float(rng.uniform(0.08, 0.8)) if rng.random() < 0.6 else 0.0
    total = CLIP_SAMPLES if sustained else int(rng.uniform(0.15, 0.9) * SAMPLE_RATE)
    y = np.zeros(total)
    if rng.random() < 0.5:
        style = "chord"
        # Sustained and decaying: struck again every 0.15-0.6 s, so the window never falls silent.
        every = int(rng.uniform(0.15, 0.6) * SAMPLE_RATE) if sustained and decay else total
        for start in range(0, total, every):
            for m in notes_:
                y[start:] += _note(m, total - start, rng, amps, decay)
    else:
        style = "arpeggio"
        step = int(rng.uniform(0.06, 0.25) * SAMPLE_RATE)
        pool = notes_ + [m + 12 for m in notes_]
        pos = 0
        while pos < total:
            m = pool[rng.integers(len(pool))]
            length = min(total - pos, int(step * rng.uniform(1.0, 2.5)))
            y[pos: pos + length] += _note(m, length, rng, amps, decay)
            pos += step
    if not sustained:
        y = y * _envelope(total, rng, attack=(0.001, 0.01), release=(0.01, 0.08))
    return _peak1(y), [f"{style}={name}@{root}", f"partials={len(amps)}",
                       f"decay={decay:.2f}s" if decay else "held"]


def _clicks(rng, sustained):
    """Clicks: a regular tick (a clock), random clicks (crackle, typing) or a short burst."""
    n = CLIP_SAMPLES if sustained else int(rng.uniform(0.05, 0.6) * SAMPLE_RATE)
    if sustained and rng.random() < 0.5:
        rate = rng.uniform(1, 12)
        times = np.arange(rng.random() / rate, n / SAMPLE_RATE, 1 / rate)
        what = f"tick={rate:.1f}/s"
    else:
        count = int(rng.integers(2, 25)) if sustained else int(rng.integers(1, 6))
        times = np.sort(rng.uniform(0, n / SAMPLE_RATE, count))
        what = f"clicks={count}"
    y = np.zeros(n)
    f = rng.uniform(800, 6000)
    tau = rng.uniform(0.0005, 0.006)
    length = int(6 * tau * SAMPLE_RATE) + 1
    t = np.arange(length) / SAMPLE_RATE
    shape = np.exp(-t / tau) * (np.sin(2 * np.pi * f * t) if rng.random() < 0.5
                                else rng.standard_normal(length))
    for s in times:
        i = int(s * SAMPLE_RATE)
        m = min(length, n - i)
        if m > 0:
            y[i: i + m] += shape[:m] * rng.uniform(0.5, 1.0)
    return _peak1(y), [what, f"click={f:.0f}Hz/{tau * 1000:.1f}ms"]


SOUNDS = {"tone": _tone, "chirp": _chirp, "music": _music, "clicks": _clicks}


def _sound_clip(plan_, rng):
    """A tone, chirp, music or clicks: sustained over the window (silence) or a word-like burst
    at a speech level with noise behind it (unknown)."""
    sustained = plan_.label == "silence"
    y, notes = SOUNDS[plan_.kind](rng, sustained)
    if sustained:
        level = rng.uniform(-50, -15)
        x = y / max(_rms(y), 1e-12) * _db(level)
        if np.abs(x).max() > 0.9:       # sparse clicks: their RMS is far below their peak
            x *= 0.9 / np.abs(x).max()
            level = 20 * np.log10(_rms(x))
        notes.append(f"level={level:.1f}dBFS")
        if rng.random() < 0.7:
            color = NOISE_COLORS[rng.integers(len(NOISE_COLORS))]
            noise = rng.uniform(-75, -40)
            x = x + _noise(rng, color, plan_.split) * _db(noise)
            notes.append(f"noise={color[:-5]}@{noise:.1f}dBFS")
        return x, " ".join(notes)
    level = rng.uniform(-24, -1)
    y = y * _db(level)
    notes.append(f"gain={level:.1f}dB")
    x = _place(y, rng, notes)
    return _background(x, rng, plan_.split, _rms(y), notes), " ".join(notes)


def _babble_clip(plan_, rng):
    """Several words of several voices of the split, overlapped. silence: 4-7 words spread over the
    window at a low level (-55 to -30 dBFS RMS); unknown: 3-5 words, each reversed with p = 0.5,
    within 0.95 s at a speech level, with noise behind."""
    quiet = plan_.label == "silence"
    span = CLIP_SAMPLES if quiet else int(0.95 * SAMPLE_RATE)
    mix = np.zeros(span)
    reversed_ = 0
    for part in plan_.parts:
        effects = ["rate", str(SAMPLE_RATE)]
        s = rng.uniform(0.85, 1.15)
        effects += ["speed", f"{s:.4f}", "rate", str(SAMPLE_RATE), "gain", "-n", "-1"]
        y = _sox_float([str(_worker["cache"] / f"{part.key}.wav"), *SOX_FLOAT_OUT, "-", *effects],
                       plan_.file)
        a, b = active_region(y, SAMPLE_RATE, floor_db=-45.0)
        y = y[a: b][:span]
        if not quiet and rng.random() < 0.5:
            y = y[::-1]
            reversed_ += 1
        y = y / max(_rms(y), 1e-12) * _db(rng.uniform(-6, 0))
        offset = int(rng.integers(span - len(y) + 1))
        mix[offset: offset + len(y)] += y
    notes = [f"babble={len(plan_.parts)}"] + ([f"reversed={reversed_}"] if reversed_ else [])
    if quiet:
        level = rng.uniform(-55, -30)
        x = mix / max(_rms(mix), 1e-12) * _db(level)
        notes.append(f"level={level:.1f}dBFS")
        if rng.random() < 0.7:
            color = NOISE_COLORS[rng.integers(len(NOISE_COLORS))]
            noise = level - rng.uniform(0, 20)
            x = x + _noise(rng, color, plan_.split) * _db(noise)
            notes.append(f"noise={color[:-5]}@{noise:.1f}dBFS")
        return x, " ".join(notes)
    level = rng.uniform(-24, -1)
    a, b = active_region(mix, SAMPLE_RATE, floor_db=-45.0)
    y = mix[a: b]
    y = y / max(np.abs(y).max(), 1e-12) * _db(level)
    notes.append(f"gain={level:.1f}dB")
    x = _place(y, rng, notes)
    return _background(x, rng, plan_.split, _rms(y), notes), " ".join(notes)


def _make_clip(plan_):
    rng = np.random.default_rng([_worker["seed"], plan_.index, 1])
    if plan_.kind == "noise":
        x, augment = _silence_clip(plan_, rng)
    elif plan_.kind in SOUNDS:
        x, augment = _sound_clip(plan_, rng)
    elif plan_.kind == "babble":
        x, augment = _babble_clip(plan_, rng)
    else:
        x, augment = _speech_clip(plan_, rng, _worker["durations"][plan_.base.key],
                                  reverse=plan_.kind == "reversed")
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
             progress=True, fold=0):
    """Synthesize the dataset into `out_dir`; return a summary dict (counts, seconds, bases).
    `fold` is the speaker fold (voices.FOLDS; 0, the default, is SPLIT_OF_SPEAKER)."""
    t0 = time.monotonic()
    split_of_speaker(fold)      # refuse an unknown fold before any work
    sources = check_sources(sources)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    check_tools(sources)
    clips = plan(per_class, seed, sources, fold)
    out_dir = _prepare_out(out_dir, force)

    bases = sorted({b for c in clips for b in c.bases}, key=lambda b: b.key)
    with tempfile.TemporaryDirectory(prefix="ternkws-dataset-") as cache:
        make_noise_beds(cache)
        durations = synthesize_bases(bases, cache, jobs, progress)
        # Clips go to the workers in small batches, each with the durations of its own bases.
        batch = 16
        items = []
        for i in range(0, len(clips), batch):
            chunk = clips[i: i + batch]
            d = {b.key: durations[b.key] for c in chunk for b in c.bases}
            items.append((len(chunk), (d, chunk)))
        augments = {}
        for result in _pool_map(_make_clip_batch, items, jobs, "augmenting clips", progress,
                                initargs=(cache, str(out_dir), seed)):
            augments.update(result)

    rows = [{"file": c.file, "label": c.label, "word": c.word, "voice": c.voice_name,
             "speaker": c.speaker, "split": c.split, "augment": augments[c.index]} for c in clips]
    tmp = out_dir / (MANIFEST + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out_dir / MANIFEST)
    counts = Counter((r["split"], r["label"]) for r in rows)
    return {
        "out_dir": str(out_dir),
        "clips": len(rows),
        "fold": fold,
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
    with open(manifest, newline="", encoding="utf-8") as f:
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
