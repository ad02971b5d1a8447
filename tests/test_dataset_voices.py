"""golden/voices.py, the foreign festival voices, the non-speech sounds and the pocketsphinx judge."""

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from ternkws.cli import main
from ternkws.golden import dataset, intelligibility, voices
from ternkws.golden.errors import UserError
from ternkws.golden.labels import KEYWORDS

TOOLS_MISSING = [t for t in ("sox", "festival") if shutil.which(t) is None]
MISSING_VOICES = [] if TOOLS_MISSING else [v.ident for v in dataset.missing_voices(voices.FOREIGN_VOICES)]
needs_foreign = pytest.mark.skipif(
    bool(TOOLS_MISSING or MISSING_VOICES),
    reason=f"sox/festival or festival voices not installed ({', '.join(TOOLS_MISSING + MISSING_VOICES)}); "
           f"install with apt-get install --no-install-recommends sox festival {voices.FOREIGN_PACKAGES}")
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (apt-get install sox)")
NO_SPHINX = intelligibility.pocketsphinx_missing()
needs_sphinx = pytest.mark.skipif(
    bool(NO_SPHINX) or shutil.which("flite") is None or shutil.which("sox") is None,
    reason=NO_SPHINX or "flite/sox not installed (apt-get install flite sox)")


# ------------------------------------------------------------------------------------ the tables

def test_every_language_respells_every_word_in_its_voices_encoding():
    langs = {v.lang for v in voices.FOREIGN_VOICES}
    assert langs == set(voices.RESPELLINGS)
    for lang, table in voices.RESPELLINGS.items():
        assert set(table) == set(voices.WORDS), lang
        for v in [v for v in voices.FOREIGN_VOICES if v.lang == lang]:
            for w in voices.WORDS:
                text = v.text(w)
                assert text and '"' not in text and "\\" not in text, (v.ident, w)
                text.encode(v.encoding)
    for ident, table in voices.OVERRIDES.items():
        assert ident in {v.ident for v in voices.FOREIGN_VOICES} and set(table) <= set(voices.WORDS)


def test_hindi_and_russian_texts_hold_no_latin_letters():
    """NSK crashes festival on Latin text (and on the nukta of "ऑफ़"): VOICES.md."""
    for v in voices.FOREIGN_VOICES:
        if v.lang in ("hi", "ru"):
            for w in voices.WORDS:
                text = v.text(w)
                assert not re.search("[A-Za-z]", text), (v.ident, w, text)
                assert "\u093c" not in text, (v.ident, w)          # Devanagari nukta
    nsk = voices.VOICE_BY_NAME["festival:hindi_NSK_diphone"]
    assert nsk.punctuation == ("",) and nsk.trim_db == -14.0


def test_every_voice_has_a_judged_score_and_the_reserved_voice_none():
    assert set(voices.INTELLIGIBILITY) == {v.name for v in voices.ALL_VOICES}
    assert all(0 <= s <= 1 for s in voices.INTELLIGIBILITY.values())
    assert not [n for n in voices.INTELLIGIBILITY if "ked" in n]
    assert all(voices.weight(v) > 0 for v in voices.ENGLISH_VOICES + voices.FOREIGN_VOICES)


def test_foreign_voices_are_a_source_of_their_own():
    assert {dataset.source_of(v) for v in voices.FOREIGN_VOICES} == {"foreign"}
    p = dataset.plan(30, 0, ("flite", "festival", "espeak"))
    assert not [b for c in p for b in c.bases if b.voice.group == "foreign"]
    p = dataset.plan(30, 0, ("foreign",))
    assert {b.voice.group for c in p for b in c.bases} == {"foreign"}


def test_a_missing_foreign_voice_names_its_packages(monkeypatch, tmp_path):
    if TOOLS_MISSING:
        pytest.skip(f"tools not installed: {', '.join(TOOLS_MISSING)}")
    english = tuple(v.ident for v in voices.ENGLISH_VOICES if v.engine == "festival")
    monkeypatch.setattr(dataset, "festival_voices", lambda: english)
    with pytest.raises(UserError, match=r"czech_dita is not installed.*festvox-czech-dita.*--sources"):
        dataset.check_tools(("festival", "foreign"))
    dataset.check_tools(("festival",))      # the English festival voices alone are enough


# ------------------------------------------------------------------------------- foreign voices

@needs_foreign
def test_each_foreign_voice_says_every_word(tmp_path):
    """One festival batch per voice with every word (NSK would crash the whole batch on a bad one)."""
    for v in voices.FOREIGN_VOICES:
        bases = [dataset.Base(v, w, (1.0, v.punctuation[0])) for w in voices.WORDS]
        got = dict(dataset._synth_festival((bases, str(tmp_path))))
        assert set(got) == {b.key for b in bases}
        seconds = np.array(list(got.values()))
        assert 0.1 < seconds.min() and seconds.max() < 2.0, (v.ident, seconds.min(), seconds.max())


@pytest.mark.slow
@needs_foreign
def test_each_foreign_voice_says_every_word_in_every_variant(tmp_path):
    """Every base the plan can ask for (about 4,500 utterances, a minute or two): a crash of festival
    on one of them would stop `ternkws dataset`."""
    for v in voices.FOREIGN_VOICES:
        bases = [dataset.Base(v, w, var) for w in voices.WORDS for var in dataset.base_variants(v)]
        assert len(dict(dataset._synth_festival((bases, str(tmp_path))))) == len(bases)


def test_a_festival_crash_names_the_utterance(tmp_path, monkeypatch):
    if TOOLS_MISSING:
        pytest.skip(f"tools not installed: {', '.join(TOOLS_MISSING)}")
    fake = tmp_path / "bin"
    fake.mkdir()
    real = shutil.which("festival")
    (fake / "festival").write_text(f"#!/bin/sh\ngrep -q sheila \"$2\" && kill -SEGV $$\nexec {real} \"$@\"\n")
    (fake / "festival").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    v = voices.VOICE_BY_NAME["festival:kal_diphone"]
    bases = [dataset.Base(v, w, (1.0, ".")) for w in ("yes", "sheila")]
    with pytest.raises(UserError, match=r"festival voice kal_diphone failed on 'sheila\.' \(the word "
                                        r"'sheila', stretch 1.0\): crashed \(signal 11\)"):
        dataset._synth_festival((bases, str(tmp_path)))


def test_festival_batches_do_not_depend_on_the_workers():
    """A festival base is reproducible only within the same batch (garbage in some final pauses), so
    the batches are a function of the bases alone; synthesize_bases takes them as they are."""
    import inspect
    assert "jobs" not in inspect.signature(dataset.festival_batches).parameters
    bases = sorted({b for c in dataset.plan(400, 0, dataset.SOURCES) for b in c.bases}, key=lambda b: b.key)
    batches = dataset.festival_batches(bases)
    assert batches == dataset.festival_batches(bases[::-1])
    assert all(0 < len(b) <= dataset.FESTIVAL_BATCH and len({x.voice for x in b}) == 1 for b in batches)
    assert sorted(x.key for b in batches for x in b) == [b.key for b in bases if b.voice.engine == "festival"]


@needs_foreign
def test_a_festival_utterance_does_not_depend_on_its_batch(tmp_path):
    """festival-czech draws random numbers: each utterance is seeded, so its (rand) draws do not
    depend on what came before it in its batch."""
    for ident in ("czech_ph", "hy_fi_mv_diphone"):
        v = voices.VOICE_BY_NAME[f"festival:{ident}"]
        bases = [dataset.Base(v, w, var) for w in ("down", "marvin") for var in dataset.base_variants(v)]
        sums = []
        for batches in ([bases], [bases[::-1]], [[b] for b in bases[:4]]):
            out = tmp_path / f"{ident}-{len(sums)}"
            out.mkdir()
            for batch in batches:
                dataset._synth_festival((batch, str(out)))
            sums.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*.wav")})
        assert sums[0] == sums[1]
        assert all(sums[0][k] == h for k, h in sums[2].items())


# ---------------------------------------------------------------------------- non-speech sounds

@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    if shutil.which("sox") is None:
        pytest.skip("sox not installed (apt-get install sox)")
    cache = tmp_path_factory.mktemp("beds")
    dataset.make_noise_beds(cache)
    dataset._init_worker(cache, cache, 0)
    return cache


def _frames_db(x):
    e = (np.asarray(x).reshape(100, 160) ** 2).mean(axis=1)
    return 10 * np.log10(e + 1e-20)


@needs_sox
@pytest.mark.parametrize("kind", dataset.SOUND_KINDS)
def test_sounds_sustained_in_silence_bursts_in_unknown(worker, kind):
    for i in range(12):
        for label in ("silence", "unknown"):
            p = dataset.ClipPlan(i, label, "train", "", None, f"{label}/x.wav", kind)
            x, notes = dataset._sound_clip(p, np.random.default_rng([7, i]))
            y, notes2 = dataset._sound_clip(p, np.random.default_rng([7, i]))
            assert np.array_equal(x, y) and notes == notes2          # a pure function of the RNG
            assert x.shape == (16000,) and np.isfinite(x).all() and np.abs(x).max() < 1.0
            db = _frames_db(x)
            if label == "unknown":      # a word-like burst over its noise floor
                assert db.max() - db.min() > 10, (kind, i, notes)
            assert notes.startswith(("tone=", "chirp=", "siren=", "chord=", "arpeggio=", "tick=",
                                     "clicks=")), notes


@needs_sox
def test_a_440_hz_tone_is_planned_in_both_classes(worker):
    p = dataset.plan(600, 0, dataset.SOURCES)
    tones = [c for c in p if c.kind == "tone"]
    assert {c.label for c in tones} == {"silence", "unknown"}
    seen = set()
    for c in tones[:40]:
        _, notes = dataset._sound_clip(c, np.random.default_rng([0, c.index, 1]))
        seen.add(notes.split()[0])
    assert "tone=440Hz" in seen and len(seen) > 5


# -------------------------------------------------------------------------------------- the judge

def test_grammar_is_a_forced_choice():
    g = intelligibility.grammar(KEYWORDS)
    assert g.startswith("#JSGF V1.0;") and "public <choice> = yes | no | up" in g
    assert [v.name for v in intelligibility.select_voices("english")] == \
        [v.name for v in voices.ENGLISH_VOICES]
    assert len(intelligibility.select_voices("espeak,flite:rms")) == len(voices.ESPEAK_VOICES) + 1
    with pytest.raises(UserError, match="unknown voice or group 'klingon'"):
        intelligibility.select_voices("klingon")


@needs_sphinx
def test_judge_hears_a_recorded_voice(tmp_path):
    v = voices.VOICE_BY_NAME["flite:awb"]
    results = intelligibility.judge_voices([v], words=("yes", "stop", "left"), vocabulary=KEYWORDS)
    table = intelligibility.scores(results)
    assert list(table) == ["flite:awb"]
    # 3 words x 9 variants x 2 conditions
    assert len(results["flite:awb"]) == 3 * 9 * len(intelligibility.CONDITIONS)
    assert table["flite:awb"]["score"] > 0.7
    assert {h for _, _, h in results["flite:awb"]} <= set(KEYWORDS) | {""}
    assert intelligibility.Judge(KEYWORDS).recognize(np.zeros(8000)) in set(KEYWORDS) | {""}


@needs_sphinx
def test_cli_judge_prints_json(capsys):
    assert main(["dataset", "--judge", "--voices", "flite:rms", "--jobs", "1", "--quiet", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["words"] == "keywords" and set(doc["voices"]) == {"flite:rms"}
    assert 0.5 < doc["voices"]["flite:rms"]["score"] <= 1.0


def test_cli_judge_without_pocketsphinx_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setattr(intelligibility, "pocketsphinx_missing", lambda: "pocketsphinx is not installed")
    assert main(["dataset", "--judge", "--voices", "flite:rms", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pocketsphinx is not installed" in err


def test_cli_needs_out_or_judge(capsys):
    assert main(["dataset"]) == 2
    assert "one of the arguments --out --judge is required" in capsys.readouterr().err
