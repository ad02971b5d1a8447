"""golden/dataset.py and `ternkws dataset`: layout, format, determinism, speaker-held-out splits."""

import csv
import shutil
import wave

import numpy as np
import pytest

from ternkws.golden import dataset, voices
from ternkws.golden.audio import read_wav
from ternkws.golden.data import list_examples, summarize
from ternkws.golden.labels import KEYWORDS, LABELS
from ternkws.cli import main
from ternkws.golden.errors import UserError

TOOLS = ("sox", "flite", "festival", "espeak-ng")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
needs_tools = pytest.mark.skipif(
    bool(MISSING), reason=f"speech tools not installed ({', '.join(MISSING)}); install with "
                          f"apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts "
                          f"festlex-cmu festlex-poslex sox libsox-fmt-all")
# The non-English festival voices (golden/voices.py): the generated set leaves them out when they are
# missing, and the tests that need them are skipped.
MISSING_VOICES = [] if MISSING else [v.ident for v in dataset.missing_voices(voices.FOREIGN_VOICES)]
FOREIGN_REASON = (f"festival voices not installed ({', '.join(MISSING_VOICES)}); install with apt-get "
                  f"install --no-install-recommends {voices.FOREIGN_PACKAGES}")
needs_foreign = pytest.mark.skipif(bool(MISSING or MISSING_VOICES), reason=FOREIGN_REASON)
SOURCES = tuple(s for s in dataset.SOURCES if s != "foreign" or not MISSING_VOICES)
NON_SPEECH_VOICES = ("sox:noise", "mix:babble") + tuple(f"synth:{k}" for k in dataset.SOUND_KINDS)

PER_CLASS = 3


def read_manifest(root):
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Seed 0 with 2 workers through the CLI, seed 0 with 1 worker, seed 1 with 2 workers."""
    if MISSING:
        pytest.skip(f"speech tools not installed: {', '.join(MISSING)}")
    base = tmp_path_factory.mktemp("synth")
    a, b, c = base / "a", base / "b", base / "c"
    assert main(["dataset", "--out", str(a), "--per-class", str(PER_CLASS), "--seed", "0",
                 "--jobs", "2", "--quiet", "--sources", ",".join(SOURCES)]) == 0
    dataset.generate(b, per_class=PER_CLASS, seed=0, jobs=1, progress=False, sources=SOURCES)
    dataset.generate(c, per_class=PER_CLASS, seed=1, jobs=2, progress=False, sources=SOURCES)
    return a, b, c


# ------------------------------------------------------------------------------ generated dataset

@needs_tools
def test_layout_and_manifest(generated):
    root = generated[0]
    rows = read_manifest(root)
    assert len(rows) == PER_CLASS * len(LABELS)
    assert set(dataset.MANIFEST_COLUMNS) >= {"file", "label", "voice", "speaker", "split", "augment"}
    assert list(rows[0]) == list(dataset.MANIFEST_COLUMNS)
    wavs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert wavs == sorted(r["file"] for r in rows)
    for r in rows:
        assert r["file"].startswith(r["label"] + "/")
        assert r["split"] in ("train", "val", "test")
        assert r["augment"]
        if r["label"] in KEYWORDS:
            assert r["word"] == r["label"]
        elif r["label"] == "unknown" and r["word"]:
            assert r["word"] in dataset.UNKNOWN_WORDS and r["word"] not in KEYWORDS
        elif r["label"] == "unknown":      # a non-speech sound, babble or a reversed word
            assert r["voice"] in NON_SPEECH_VOICES or r["augment"].startswith("reversed="), r
        else:
            assert r["word"] == "" and r["voice"] in NON_SPEECH_VOICES, r


@needs_tools
def test_every_clip_is_one_second_16k_mono_16bit(generated):
    for p in generated[0].rglob("*.wav"):
        with wave.open(str(p), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
                   (1, 2, 16000, 16000), p


@needs_tools
def test_speech_clips_hold_speech(generated):
    """The loudest 10-ms frame stands well above the quietest (the word over its noise floor)."""
    root = generated[0]
    for r in read_manifest(root):
        if r["label"] == "silence":
            continue
        x = read_wav(root / r["file"]).astype(np.float64)
        energy = (x.reshape(100, 160) ** 2).mean(axis=1)
        assert energy.max() > 1e-6, r
        assert energy.max() > 10 * np.median(energy), r


@needs_tools
def test_same_seed_same_bytes_whatever_the_workers(generated):
    a, b, _ = generated
    assert tree_bytes(a) == tree_bytes(b)


@needs_tools
def test_other_seed_other_clips(generated):
    a, _, c = generated
    ta, tc = tree_bytes(a), tree_bytes(c)
    assert ta["manifest.csv"] != tc["manifest.csv"]
    wa = [v for k, v in sorted(ta.items()) if k.endswith(".wav")]
    wc = [v for k, v in sorted(tc.items()) if k.endswith(".wav")]
    assert len(wa) == len(wc)
    assert sum(x != y for x, y in zip(wa, wc)) == len(wa)


@needs_tools
def test_splits_are_speaker_disjoint_and_complete(generated):
    rows = read_manifest(generated[0])
    speakers = {s: {r["speaker"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    for s in ("train", "val", "test"):
        assert {r["label"] for r in rows if r["split"] == s} == set(LABELS), s
    assert {r["speaker"] for r in rows if r["split"] == "test" and r["voice"].startswith("flite")} \
        <= {"rms"}
    for r in rows:
        if r["voice"] in voices.VOICE_BY_NAME:
            assert voices.SPLIT_OF_SPEAKER[r["speaker"]] == r["split"], r
        else:
            assert r["speaker"] in (f"noise-{r['split']}", f"babble-{r['split']}"), r


@needs_tools
def test_no_clip_uses_the_reserved_voice(generated):
    for root in generated:
        for r in read_manifest(root):
            assert "ked" not in r["voice"] and "ked" not in r["speaker"]


@needs_tools
def test_loader_reads_the_generated_dataset(generated):
    root = generated[0]
    assert len(list_examples(root)) == PER_CLASS * len(LABELS)
    test = list_examples(root, "test")
    assert summarize(test) == {label: 1 for label in LABELS}
    x = test[0].audio()
    assert x.dtype == np.float32 and x.shape == (16000,)


@needs_tools
def test_existing_output_needs_force(generated, tmp_path, capsys):
    out = tmp_path / "d"
    shutil.copytree(generated[0], out)
    assert main(["dataset", "--out", str(out), "--per-class", "1", "--quiet",
                 "--sources", ",".join(SOURCES)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["dataset", "--out", str(out), "--per-class", "1", "--quiet", "--sources", "flite",
                 "--force"]) == 0
    printed = capsys.readouterr().out
    assert "total" in printed and "test speakers" in printed
    assert len(read_manifest(out)) == len(LABELS)
    assert len(list(out.rglob("*.wav"))) == len(LABELS)     # the old clips are gone


@needs_tools
def test_festival_batch_synthesizes_both_voices(tmp_path):
    for voice in [v for v in dataset.ENGLISH_VOICES if v.engine == "festival"]:
        bases = [dataset.Base(voice, "yes", (1.0, ".")), dataset.Base(voice, "backward", (1.15, "?"))]
        got = dataset._synth_festival((bases, str(tmp_path)))
        assert [k for k, _ in got] == [b.key for b in bases]
        short, long = [d for _, d in got]
        assert 0.2 < short < long < 1.5, (voice, got)


@needs_tools
def test_festival_without_the_voice_names_the_packages(tmp_path):
    voice = dataset.Voice("festival", "no_such_voice", "kal", "natural")
    with pytest.raises(UserError, match="voice_no_such_voice.*apt-get install.*festvox-kallpc16k"):
        dataset._synth_festival(([dataset.Base(voice, "yes", (1.0, "."))], str(tmp_path)))


# ------------------------------------------------------------------------ plan and configuration

def test_voices_and_splits_are_consistent():
    names = [v.name for v in dataset.ALL_VOICES]
    assert len(names) == len(set(names))
    assert not [n for n in names if "ked" in n]
    assert {v.speaker for v in dataset.ALL_VOICES} == set(dataset.SPLIT_OF_SPEAKER)
    english = {s: {v.speaker for v in dataset.ENGLISH_VOICES if dataset.SPLIT_OF_SPEAKER[v.speaker] == s}
               for s in ("train", "val", "test")}
    assert english == {"train": {"kal", "slt"}, "val": {"awb"}, "test": {"rms"}}
    # festival's English voices are the flite speakers kal and slt, so they stay in train with them.
    assert {v.speaker for v in dataset.ENGLISH_VOICES if v.engine == "festival"} == {"kal", "slt"}
    # val and test each hold several people: an English speaker, two foreign ones, two accents.
    for split in ("val", "test"):
        used = [v for v in dataset.ALL_VOICES if dataset.SPLIT_OF_SPEAKER[v.speaker] == split
                and voices.weight(v) > 0]
        people = {g: {v.speaker for v in used if v.group == g} for g in ("english", "foreign", "formant")}
        assert [len(people[g]) for g in ("english", "foreign", "formant")] == [1, 2, 2], (split, people)


def test_split_counts():
    assert dataset.split_counts(1667) == {"val": 167, "test": 167, "train": 1333}
    assert dataset.split_counts(3) == {"val": 1, "test": 1, "train": 1}
    assert 12 * dataset.DEFAULT_PER_CLASS == pytest.approx(20000, abs=100)


def test_plan_is_a_pure_function_of_its_arguments():
    p = dataset.plan(20, 0, dataset.SOURCES)
    assert p == dataset.plan(20, 0, dataset.SOURCES)
    assert p != dataset.plan(20, 1, dataset.SOURCES)
    assert len(p) == 20 * 12 and len({c.file for c in p}) == len(p)
    for c in p:
        if c.base is not None:
            assert dataset.SPLIT_OF_SPEAKER[c.base.voice.speaker] == c.split
    # A clip's plan depends on (seed, index) only, not on other clips.
    assert dataset.plan(20, 0, dataset.SOURCES)[5] == p[5]


def test_group_shares_roughly_as_documented():
    p = [c for c in dataset.plan(500, 0, dataset.SOURCES) if c.kind == "word"]
    for split in ("train", "test"):
        mine = [c for c in p if c.split == split]
        for group, share in dataset.GROUP_SHARE.items():
            got = sum(c.base.voice.group == group for c in mine) / len(mine)
            assert abs(got - share) < (0.03 if split == "train" else 0.07), (split, group, got)


def test_voices_below_the_intelligibility_floor_are_never_planned():
    dropped = {v for v in dataset.ALL_VOICES if voices.weight(v) == 0}
    assert dropped and all(v.group == "formant" for v in dropped)
    p = dataset.plan(300, 0, dataset.SOURCES)
    used = {b.voice for c in p for b in c.bases}
    assert not used & dropped
    assert set(voices.FOREIGN_VOICES) <= used


def test_non_speech_kinds_as_documented():
    assert sum(dataset.SILENCE_KINDS.values()) == pytest.approx(1)
    assert sum(dataset.UNKNOWN_KINDS.values()) == pytest.approx(1)
    p = dataset.plan(1000, 0, dataset.SOURCES)
    for label, kinds in (("silence", dataset.SILENCE_KINDS), ("unknown", dataset.UNKNOWN_KINDS)):
        mine = [c for c in p if c.label == label]
        for kind, share in kinds.items():
            got = sum(c.kind == kind for c in mine) / len(mine)
            assert abs(got - share) < 0.04, (label, kind, got)
    for c in p:
        if c.kind == "babble":
            lo, hi = dataset.BABBLE_PARTS[c.label]
            assert lo <= len(c.parts) <= hi
            assert {dataset.SPLIT_OF_SPEAKER[b.voice.speaker] for b in c.parts} == {c.split}
        if c.label in KEYWORDS:
            assert c.kind == "word" and c.word == c.label


@pytest.mark.parametrize("kwargs, message", [
    ({"per_class": 0}, "--per-class"),
    ({"sources": ("festival",)}, "no val speaker"),
    ({"sources": ("flite", "say")}, "unknown speech source 'say'"),
    ({"sources": ()}, "no speech sources"),
    ({"jobs": 0}, "--jobs"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    if MISSING:
        pytest.skip(f"speech tools not installed: {', '.join(MISSING)}")
    with pytest.raises(UserError, match=message):
        dataset.generate(tmp_path / "d", progress=False, **{"sources": SOURCES, **kwargs})


def test_output_path_is_a_file(tmp_path):
    if MISSING:
        pytest.skip(f"speech tools not installed: {', '.join(MISSING)}")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        dataset.generate(tmp_path / "f", per_class=1, progress=False, sources=SOURCES)


@pytest.mark.parametrize("present, missing, package", [
    ((), "sox", "sox libsox-fmt-all"),
    (("sox",), "flite", "flite"),
    (("sox", "flite"), "festival", "festvox-kallpc16k"),
    (("sox", "flite", "festival"), "espeak-ng", "espeak-ng"),
])
def test_missing_tool_names_the_debian_package(tmp_path, monkeypatch, capsys, present, missing,
                                               package):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in present:
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(UserError, match=f"'{missing}' not found.*apt-get install.*{package}"):
        dataset.generate(tmp_path / "d", per_class=1, progress=False)
    assert not (tmp_path / "d").exists()       # fails before writing anything
    assert main(["dataset", "--out", str(tmp_path / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install" in err


def test_cli_default_size_is_the_documented_one():
    import argparse
    from ternkws.commands import dataset as command
    parser = argparse.ArgumentParser()
    command.configure(parser)
    args = parser.parse_args(["--out", "x"])
    assert args.per_class == dataset.DEFAULT_PER_CLASS
    assert args.sources.split(",") == list(dataset.SOURCES)
    assert not args.judge


def _fake_set(root, rows):
    root.mkdir()
    with open(root / dataset.MANIFEST, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "word", "voice", "speaker", "split", "augment"])
        for file, label, split in rows:
            w.writerow([file, label, label, "v", "s", split, ""])
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_bytes(f"{file}".encode())


def test_draw_samples_takes_the_first_test_clip_of_each_class(tmp_path):
    rows = []
    for n, label in enumerate(LABELS):
        rows += [(f"{label}/{n:05d}-b.wav", label, "test"), (f"{label}/{n:05d}-a.wav", label, "test"),
                 (f"{label}/{n:05d}-0.wav", label, "train")]
    _fake_set(tmp_path / "set", rows)
    chosen = dataset.draw_samples(tmp_path / "set", tmp_path / "samples")
    assert chosen == [(label, f"{label}/{n:05d}-a.wav") for n, label in enumerate(LABELS)]
    for label, file in chosen:
        assert (tmp_path / "samples" / f"{label}.wav").read_bytes() == file.encode()


def test_draw_samples_refuses_a_set_without_a_class(tmp_path):
    _fake_set(tmp_path / "set", [("yes/0.wav", "yes", "test")])
    with pytest.raises(UserError, match="no 'no' clip in the test split"):
        dataset.draw_samples(tmp_path / "set", tmp_path / "samples")


def test_bundled_samples_follow_the_rule():
    """When the default set data/synth2 (seed 0) is here, golden/samples/ is exactly what the rule draws from it."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    full = root / "data" / "synth2"     # the project default set (Makefile DATA)
    if not (full / dataset.MANIFEST).is_file():
        pytest.skip("data/synth2 not generated (make dataset)")
    for label, file in dataset.draw_samples(full, root / "build" / "samples-check"):
        assert (full / file).read_bytes() == (root / "golden" / "samples" / f"{label}.wav").read_bytes(), label
