"""An automatic intelligibility judge for the synthesized voices: pocketsphinx, forced choice.

Every voice says every keyword in every base variant the dataset can give it (clean: no sox effect,
no noise); pocketsphinx 5.1.1 (its bundled US-English acoustic model and dictionary) decodes each
utterance against a JSGF grammar that allows exactly one of the 10 keywords (or, with
`vocabulary=WORDS`, one of the 50 words, which also checks the respellings of the unknown words). A
voice's score is the fraction of its utterances decoded as the word it was given. The scores weight the
voices in golden/voices.py (INTELLIGIBILITY); golden/DATA.md has the table and this command:

    ternkws dataset --judge                       # every voice, keywords, Markdown table
    ternkws dataset --judge --voices foreign --words all --json

pocketsphinx is an optional dependency (`pip install -e '.[data]'`); nothing else in the dataset needs
it. Each utterance is scaled to a peak of -6 dBFS, padded with 0.3 s of silence on both sides and heard
twice: in digital silence and with white noise at -70 dBFS (a fixed seed) under it; the score is the
mean of both. Deterministic: the decoder has no dither, the audio is the cached bases resampled
by sox.
"""

import tempfile
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from .audio import SAMPLE_RATE
from .labels import KEYWORDS
from .voices import ALL_VOICES, SPLIT_OF_SPEAKER, VOICE_BY_NAME, WORDS

PAD_SECONDS = 0.3            # silence around each utterance (the decoder wants some before the word)
# Each utterance is heard twice: in digital silence, and with white noise at -70 dBFS under it (the
# decoder is sensitive to both: some words ending in a fricative are found in neither digital
# silence, and some voices lose half their words with the faint noise); the score averages both.
CONDITIONS = (None, -70.0)
PEAK = 0.5                   # each utterance is scaled to this peak (-6 dBFS) first
GROUPS = ("english", "foreign", "formant")


def pocketsphinx_missing():
    """None when pocketsphinx can be imported, else the reason (for messages and test skips)."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError as e:
        return (f"pocketsphinx is not installed ({e}); install it with "
                f"\"pip install 'pocketsphinx==5.1.1'\" or the project's extra: pip install -e '.[data]'")
    return None


def grammar(words):
    """A JSGF grammar whose only sentences are the single words `words`."""
    return "#JSGF V1.0;\ngrammar choice;\npublic <choice> = " + " | ".join(words) + " ;\n"


class Judge:
    """pocketsphinx with a forced-choice grammar over `words` (all in its dictionary)."""

    def __init__(self, words=KEYWORDS):
        why = pocketsphinx_missing()
        if why:
            raise UserError(why)
        from pocketsphinx import Decoder
        self.words = tuple(words)
        self.decoder = Decoder(lm=None, samprate=SAMPLE_RATE, loglevel="FATAL", dither=False)
        for w in self.words:
            if not self.decoder.lookup_word(w):
                raise UserError(f"'{w}' is not in pocketsphinx's dictionary")
        self.decoder.add_jsgf_string("choice", grammar(self.words))
        self.decoder.activate_search("choice")

    def recognize(self, samples, noise_db=None):
        """The word heard in float `samples` (16 kHz), or "" when the decoder found none. The clip
        is scaled to a peak of PEAK and padded with PAD_SECONDS of silence on both sides; with
        `noise_db`, white noise of that level (dBFS RMS, fixed seed) lies under it all."""
        x = np.asarray(samples, dtype=np.float64)
        x = x * (PEAK / max(np.abs(x).max(), 1e-9))       # the synthesizers' levels differ a lot
        pad = np.zeros(int(PAD_SECONDS * SAMPLE_RATE))
        x = np.concatenate([pad, x, pad])
        if noise_db is not None:
            x = x + np.random.default_rng(0).standard_normal(len(x)) * 10 ** (noise_db / 20)
        pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm.tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""


def select_voices(spec="all"):
    """Voices named by a comma-separated list of groups (english, foreign, formant or espeak, all) and
    voice names (e.g. festival:czech_dita)."""
    chosen = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "all":
            chosen += ALL_VOICES
        elif item in GROUPS or item == "espeak":
            group = "formant" if item == "espeak" else item
            chosen += [v for v in ALL_VOICES if v.group == group]
        elif item in VOICE_BY_NAME:
            chosen.append(VOICE_BY_NAME[item])
        else:
            raise UserError(f"unknown voice or group '{item}'; use all, {', '.join(GROUPS)}, espeak or a "
                            f"voice name such as {ALL_VOICES[0].name}")
    if not chosen:
        raise UserError("no voices selected")
    return list(dict.fromkeys(chosen))


_judge = {}


def _decode_job(job):
    """Decode the cached bases of one voice: [(word, variant, heard)]."""
    vocabulary, cache, items = job
    from .dataset import _sox_float
    judge = _judge.get(vocabulary)
    if judge is None:
        judge = _judge[vocabulary] = Judge(vocabulary)
    out = []
    for word, variant, key in items:
        x = _sox_float([str(Path(cache) / f"{key}.wav"), "-t", "raw", "-e", "floating-point", "-b", "32",
                        "-r", str(SAMPLE_RATE), "-c", "1", "-", "rate", str(SAMPLE_RATE)], key)
        for noise_db in CONDITIONS:
            out.append((word, variant, judge.recognize(x, noise_db)))
    return out


def judge_voices(voices, words=KEYWORDS, vocabulary=KEYWORDS, jobs=1, progress=False):
    """{voice name: [(word, variant, heard)]} for every word of `words` in every base variant of each
    voice, heard by a Judge over `vocabulary`."""
    from . import dataset
    why = pocketsphinx_missing()
    if why:
        raise UserError(why)
    sources = tuple(dict.fromkeys(dataset.source_of(v) for v in voices))
    dataset.check_tools([s for s in dataset.SOURCES if s in sources])
    missing = dataset.missing_voices(voices)
    if missing:
        raise UserError(f"festival voice {missing[0].ident} is not installed")
    bases = {v: [dataset.Base(v, w, var) for w in words for var in dataset.base_variants(v)]
             for v in voices}
    with tempfile.TemporaryDirectory(prefix="ternkws-judge-") as cache:
        dataset.synthesize_bases([b for bs in bases.values() for b in bs], cache, jobs, progress)
        items = [(len(bs), (tuple(vocabulary), cache, [(b.word, b.variant, b.key) for b in bs]))
                 for bs in bases.values()]
        results = dataset._pool_map(_decode_job, items, jobs, "judging words", progress)
    return {v.name: r for v, r in zip(bases, results)}


def scores(results):
    """{voice name: {"score": fraction right, "words": {word: fraction right}, "heard": {word: [..]}}}."""
    table = {}
    for name, rows in results.items():
        words = {}
        heard = {}
        for word, _, h in rows:
            words.setdefault(word, []).append(h == word)
            heard.setdefault(word, []).append(h or "-")
        table[name] = {"score": float(np.mean([ok for oks in words.values() for ok in oks])),
                       "words": {w: float(np.mean(oks)) for w, oks in words.items()},
                       "heard": heard}
    return table


def format_table(table, fail_below=0.5):
    """A Markdown table: voice, speaker, split, score, the words right less than `fail_below` of the
    time (with what was heard instead)."""
    lines = ["| voice | speaker | split | score | words below %.0f%% (heard) |" % (100 * fail_below),
             "|---|---|---|---|---|"]
    for name, s in table.items():
        v = VOICE_BY_NAME[name]
        bad = []
        for w, acc in s["words"].items():
            if acc < fail_below:
                wrong = [h for h in s["heard"][w] if h != w]
                common = max(set(wrong), key=wrong.count) if wrong else "-"
                bad.append(f"{w} {acc:.2f} ({common})")
        lines.append(f"| {name} | {v.speaker} | {SPLIT_OF_SPEAKER[v.speaker]} | {s['score']:.2f} | "
                     f"{', '.join(bad)} |")
    return "\n".join(lines)


def group_means(table):
    """{group: mean score of its voices}."""
    means = {}
    for g in GROUPS:
        vals = [s["score"] for n, s in table.items() if VOICE_BY_NAME[n].group == g]
        if vals:
            means[g] = float(np.mean(vals))
    return means


def vocabulary_of(name):
    """'keywords' -> the 10 keywords; 'all' -> the 50 words (keywords and unknown words)."""
    if name == "keywords":
        return KEYWORDS
    if name == "all":
        return WORDS
    raise UserError(f"--words must be keywords or all (got '{name}')")
