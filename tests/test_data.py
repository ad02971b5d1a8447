"""golden/data.py: one loading API over synthesized, Speech Commands and plain <label>/*.wav trees."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from ternkws.golden import data
from ternkws.golden.audio import read_wav, write_wav
from ternkws.golden.data import CLIP_SAMPLES, Example, fit_to_clip, list_examples, summarize
from ternkws.golden.labels import LABELS
from ternkws.golden.errors import UserError

GSC_MINI = Path(__file__).parent / "fixtures" / "gsc_mini"


def tone(seconds, freq=440.0):
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.25 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def by_source(examples):
    return {Path(e.source).relative_to(GSC_MINI).as_posix(): e for e in examples if e.start is None}


# ----------------------------------------------------------------------------------- Speech Commands

def test_gsc_layout_detected():
    assert data.detect_layout(GSC_MINI) == "gsc"


def test_gsc_labels_speakers_and_splits_from_the_lists():
    ex = by_source(list_examples(GSC_MINI))
    assert ex["yes/aaaa1111_nohash_0.wav"].label == "yes"
    assert ex["no/bbbb2222_nohash_0.wav"].label == "no"
    assert ex["bed/aaaa1111_nohash_0.wav"].label == "unknown"     # not a keyword
    assert ex["bed/cccc3333_nohash_0.wav"].label == "unknown"
    assert ex["yes/bbbb2222_nohash_0.wav"].speaker == "bbbb2222"
    splits = {k: e.split for k, e in ex.items()}
    assert splits == {
        "yes/aaaa1111_nohash_0.wav": "train", "no/aaaa1111_nohash_0.wav": "train",
        "no/aaaa1111_nohash_1.wav": "train", "bed/aaaa1111_nohash_0.wav": "train",
        "yes/bbbb2222_nohash_0.wav": "val", "no/bbbb2222_nohash_0.wav": "val",
        "yes/cccc3333_nohash_0.wav": "test", "bed/cccc3333_nohash_0.wav": "test",
    }


@pytest.mark.parametrize("split, files", [
    ("train", {"yes/aaaa1111_nohash_0.wav", "no/aaaa1111_nohash_0.wav", "no/aaaa1111_nohash_1.wav",
               "bed/aaaa1111_nohash_0.wav"}),
    ("val", {"yes/bbbb2222_nohash_0.wav", "no/bbbb2222_nohash_0.wav"}),
    ("test", {"yes/cccc3333_nohash_0.wav", "bed/cccc3333_nohash_0.wav"}),
])
def test_gsc_split_selects_its_files_plus_silence(split, files):
    ex = list_examples(GSC_MINI, split)
    assert set(by_source(ex)) == files
    assert {e.split for e in ex} == {split}
    silence = [e for e in ex if e.label == "silence"]
    assert len(silence) == 1          # max(1, round(n_speech / 11))


def test_gsc_silence_windows_come_from_disjoint_regions():
    noise = read_wav(GSC_MINI / "_background_noise_" / "hum.wav")     # 3 s
    starts = {}
    for split in ("train", "val", "test"):
        (e,) = [e for e in list_examples(GSC_MINI, split) if e.label == "silence"]
        starts[split] = e.start
        assert e.speaker == f"background-hum-{split}"
        assert e.gain == 1.0
        np.testing.assert_array_equal(e.audio(), noise[e.start: e.start + CLIP_SAMPLES])
    # 3 s file: train [0, 1 s), val [1 s, 2 s), test [2 s, 3 s); one window each.
    assert starts == {"train": 0, "val": 16000, "test": 32000}


def test_gsc_silence_spacing_and_gains(tmp_path):
    root = tmp_path / "gsc"
    shutil.copytree(GSC_MINI, root)
    write_wav(root / "_background_noise_" / "hum.wav", tone(20.0, 100))   # 20 s: train [0, 16 s)
    write_wav(root / "_background_noise_" / "white.wav", tone(20.0, 300))
    ex = data._gsc_silence(root, "train", 5)
    got = sorted((Path(e.path).stem, e.start, e.gain) for e in ex)
    # window j -> file j mod 2 (hum: j = 0, 2, 4; white: j = 1, 3), evenly spaced over [0, 16 s - 1 s].
    assert got == [("hum", 0, 1.0), ("hum", 120000, 0.25), ("hum", 240000, 1.0),
                   ("white", 0, 0.5), ("white", 240000, 0.1)]
    white = read_wav(root / "_background_noise_" / "white.wav")
    e = [e for e in ex if e.gain == 0.1][0]
    np.testing.assert_allclose(e.audio(), white[240000:256000] * np.float32(0.1), rtol=1e-6)
    test = data._gsc_silence(root, "test", 2)
    assert all(e.start >= 18 * 16000 for e in test)      # test region is the last 2 s


def test_silence_is_one_twelfth():
    assert data.silence_count(0) == 0
    assert data.silence_count(3) == 1
    assert data.silence_count(1100) == 100
    assert data.silence_count(51088) == 4644


def test_gsc_audio_padded_symmetric_and_trimmed_centred():
    ex = by_source(list_examples(GSC_MINI))
    short = ex["yes/aaaa1111_nohash_0.wav"]
    raw = read_wav(short.source)
    assert len(raw) == 3200
    x = short.audio()
    assert x.dtype == np.float32 and x.shape == (CLIP_SAMPLES,)
    np.testing.assert_array_equal(x[:6400], 0)
    np.testing.assert_array_equal(x[6400:9600], raw)
    np.testing.assert_array_equal(x[9600:], 0)
    long = ex["yes/cccc3333_nohash_0.wav"]
    raw = read_wav(long.source)
    assert len(raw) == 18000
    np.testing.assert_array_equal(long.audio(), raw[1000:17000])
    exact = ex["no/aaaa1111_nohash_1.wav"]
    np.testing.assert_array_equal(exact.audio(), read_wav(exact.source))


def test_fit_to_clip_odd_lengths():
    x = np.arange(1, 16002, dtype=np.float32)          # 16001 samples: drop the first
    np.testing.assert_array_equal(fit_to_clip(x), x[0:16000])
    y = fit_to_clip(np.ones(3, dtype=np.float32))
    assert y.shape == (16000,) and y[7998:8001].tolist() == [1, 1, 1] and y.sum() == 3


def test_gsc_kinds_name_the_unknown_word_and_the_noise():
    ex = list_examples(GSC_MINI)
    assert {e.subclass for e in ex if e.label == "unknown"} == {"unknown:bed"}     # the word folder
    assert {e.subclass for e in ex if e.label == "silence"} == {"silence:<noise>"}
    assert {e.subclass for e in ex if e.label == "yes"} == {"yes"} and all(
        e.kind is None for e in ex if e.label in ("yes", "no"))


def test_summarize_counts_every_label_in_order():
    counts = summarize(list_examples(GSC_MINI))
    assert list(counts) == list(LABELS)
    assert counts["yes"] == 3 and counts["no"] == 3 and counts["unknown"] == 2
    assert counts["silence"] == 3 and counts["up"] == 0


# ------------------------------------------------------------------------------------- synthesized

def make_synth_tree(root, rows, columns="file,label,word,voice,speaker,split,augment"):
    root.mkdir(parents=True, exist_ok=True)
    lines = [columns]
    for file, label, speaker, split in rows:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / file, tone(1.0))
        lines.append(f"{file},{label},{label},flite:x,{speaker},{split},gain=0")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def test_manifest_splits(tmp_path):
    root = make_synth_tree(tmp_path / "d", [
        ("yes/0.wav", "yes", "kal", "train"), ("go/1.wav", "go", "awb", "val"),
        ("silence/2.wav", "silence", "noise-test", "test"), ("unknown/3.wav", "unknown", "rms", "test"),
    ])
    assert data.detect_layout(root) == "synthesized"
    assert len(list_examples(root)) == 4
    test = list_examples(root, "test")
    assert [(e.label, e.speaker, e.split) for e in test] == [("silence", "noise-test", "test"),
                                                             ("unknown", "rms", "test")]
    assert test[0].source == str(root / "silence/2.wav")
    x = test[1].audio()
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_array_equal(x, read_wav(root / "unknown/3.wav"))


def test_manifest_problems(tmp_path):
    root = make_synth_tree(tmp_path / "a", [("yes/0.wav", "yes", "kal", "train")])
    with pytest.raises(UserError, match="no val examples"):
        list_examples(root, "val")
    (root / "yes/0.wav").unlink()
    with pytest.raises(UserError, match="does not exist"):
        list_examples(root)
    root = make_synth_tree(tmp_path / "b", [("yes/0.wav", "maybe", "kal", "train")])
    with pytest.raises(UserError, match="label 'maybe'"):
        list_examples(root)
    root = make_synth_tree(tmp_path / "c", [("yes/0.wav", "yes", "kal", "dev")])
    with pytest.raises(UserError, match="split 'dev'"):
        list_examples(root)
    root = make_synth_tree(tmp_path / "e", [], columns="file,label")
    with pytest.raises(UserError, match="missing column"):
        list_examples(root)


def test_manifest_kinds(tmp_path):
    """Example.kind: the unknown word, "<reversed>", else the sound's generator in brackets (the word "music"
    is a word, the sound <music> a sound); keywords have none, and a
    manifest without the word/voice columns gives none either."""
    root = tmp_path / "k"
    lines = ["file,label,word,voice,speaker,split,augment"]
    rows = [("unknown/1.wav", "unknown", "happy", "flite:rms", "tempo=0.9"),
            ("unknown/2.wav", "unknown", "", "flite:rms", "reversed=stop tempo=0.9"),
            ("unknown/3.wav", "unknown", "", "synth:tone", "tone=440Hz"),
            ("unknown/7.wav", "unknown", "music", "flite:rms", "tempo=0.9"),
            ("unknown/8.wav", "unknown", "", "synth:music", "chord=minor@53"),
            ("silence/4.wav", "silence", "", "sox:noise", "noise=pink"),
            ("silence/5.wav", "silence", "", "mix:babble", "babble=4"),
            ("yes/6.wav", "yes", "yes", "flite:rms", "")]
    for file, label, word, voice, aug in rows:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / file, tone(1.0))
        lines.append(f"{file},{label},{word},{voice},rms,train,{aug}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    got = [(e.kind, e.subclass) for e in list_examples(root)]
    assert [e.content for e in list_examples(root)] == ["unknown: word", "unknown: reversed word", "unknown: sound",
                                                        "unknown: word", "unknown: sound",
                                                        "silence: noise", "silence: sound", None]
    assert got == [("happy", "unknown:happy"), ("<reversed>", "unknown:<reversed>"), ("<tone>", "unknown:<tone>"),
                   ("music", "unknown:music"), ("<music>", "unknown:<music>"),
                   ("<noise>", "silence:<noise>"), ("<babble>", "silence:<babble>"),
                   (None, "yes")]
    bare = make_synth_tree(tmp_path / "bare", [("unknown/0.wav", "unknown", "rms", "train")],
                           columns="file,label,speaker,split")
    (bare / "manifest.csv").write_text("file,label,speaker,split\nunknown/0.wav,unknown,rms,train\n")
    assert [(e.kind, e.subclass) for e in list_examples(bare)] == [(None, "unknown")]


# ------------------------------------------------------------------------------------------ plain

def test_plain_tree(tmp_path):
    for rel in ("yes/a_nohash_0.wav", "unknown/b.wav", "silence/c.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(tmp_path / rel, tone(0.5))
    (tmp_path / "notes.txt").write_text("not a clip")
    assert data.detect_layout(tmp_path) == "plain"
    ex = list_examples(tmp_path)
    assert [(e.label, e.speaker) for e in ex] == [("silence", "c"), ("unknown", "b"), ("yes", "a")]
    assert len(list_examples(tmp_path, "test")) == 3
    assert ex[0].audio().shape == (16000,)
    with pytest.raises(UserError, match="no 'train' split"):
        list_examples(tmp_path, "train")


def test_plain_tree_unknown_label_folder_is_named(tmp_path):
    (tmp_path / "yes").mkdir()
    write_wav(tmp_path / "yes" / "a.wav", tone(0.5))
    (tmp_path / "maybe").mkdir()
    with pytest.raises(UserError, match="maybe"):
        list_examples(tmp_path)


# ------------------------------------------------------------------------------------- bad inputs

def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        list_examples(tmp_path / "nowhere")


def test_empty_directory(tmp_path):
    with pytest.raises(UserError, match="empty directory"):
        list_examples(tmp_path)


def test_label_folders_without_clips(tmp_path):
    (tmp_path / "yes").mkdir()
    with pytest.raises(UserError, match="no examples"):
        list_examples(tmp_path)


def test_file_instead_of_directory(tmp_path):
    write_wav(tmp_path / "a.wav", tone(1.0))
    with pytest.raises(UserError, match="not a directory"):
        list_examples(tmp_path / "a.wav")


def test_bad_split_name():
    with pytest.raises(UserError, match="unknown split 'dev'"):
        list_examples(GSC_MINI, "dev")


def test_example_is_a_small_value():
    e = Example("yes", "x.wav", "kal")
    assert (e.label, e.source, e.speaker, e.split) == ("yes", "x.wav", "kal", None)
