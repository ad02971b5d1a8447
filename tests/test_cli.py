"""The CLI: help, ternary, infer, and one-line errors (no traceback) for bad input."""

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from ternkws.golden.ternary_generator import ternary_matrix
from ternkws.cli import COMMANDS, main

SAMPLES = Path(__file__).resolve().parents[1] / "golden" / "samples"


def test_help_lists_every_present_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("infer", "ternary"):
        assert name in out


@pytest.mark.parametrize("cmd", ["infer", "ternary"])
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: ternkws " + cmd in capsys.readouterr().out


def test_ternary_json(capsys):
    assert main(["ternary", "--seed", "9", "--shape", "8x16", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["seed"] == 9 and d["shape"] == [8, 16] and d["density"] == pytest.approx(1 / 3)
    assert np.array_equal(np.array(d["matrix"]), ternary_matrix(9, 8, 16))
    assert d["nonzero"] == int((np.array(d["matrix"]) != 0).sum())


def test_ternary_table(capsys):
    assert main(["ternary", "--seed", "3", "--shape", "4x32", "--density", "0.5"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if not r.startswith("#")]
    m = ternary_matrix(3, 4, 32, 0.5)
    assert rows == ["".join({1: "+", -1: "-", 0: "."}[v] for v in row) for row in m.tolist()]


@pytest.mark.parametrize("args,message", [
    (["--shape", "4x"], "OUTxIN"),
    (["--shape", "0x4"], "OUTxIN"),
    (["--shape", "4x4", "--density", "0"], "density"),
    (["--shape", "4x4", "--seed", "-1"], "seed"),
])
def test_ternary_bad_args(args, message, capsys):
    argv = ["ternary"] + (["--seed", "1"] if "--seed" not in args else []) + args
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_infer_json(tone_wav, capsys):
    wav = tone_wav()
    assert main(["infer", "--json", str(wav)]) == 0
    d = json.loads(capsys.readouterr().out)
    clip = d["clips"][0]
    assert clip["class"] in ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "silence", "unknown")
    assert len(clip["logits_int8"]) == 12 and 0 < clip["confidence"] <= 1


def _wav(path, rate=16000, channels=1, width=2, n=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * (n * channels * width // 2))
    return path


@pytest.mark.parametrize("make,message", [
    (lambda p: (p.write_text("not audio"), p)[1], "not a readable PCM WAV"),
    (lambda p: _wav(p, rate=44100), "sample rate is 44100 Hz"),
    (lambda p: _wav(p, channels=2), "2 channels"),
    (lambda p: _wav(p, n=0), "no audio samples"),
    (lambda p: _wav(p, n=800), "only 50 ms"),
    (lambda p: p, "no such file"),
])
def test_infer_bad_wavs(tmp_path, make, message, capsys):
    path = make(tmp_path / "bad.wav")
    assert main(["infer", str(path)]) == 2          # a bad file is a user error (exit status 2)
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_infer_bad_model(tmp_path, tone_wav, capsys):
    bad = tmp_path / "m.npz"
    bad.write_bytes(b"junk")
    assert main(["infer", "--model", str(bad), str(tone_wav())]) == 2
    err = capsys.readouterr().err
    assert "not a ternkws checkpoint" in err and len(err.strip().splitlines()) == 1


def test_console_script_prints_no_traceback(tmp_path):
    p = _wav(tmp_path / "stereo.wav", channels=2)
    r = subprocess.run([sys.executable, "-m", "ternkws.cli", "infer", "--model", str(tmp_path / "none.npz"), str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "no such checkpoint" in r.stderr


def test_infer_shows_the_expected_label_and_the_accuracy_on_the_samples(capsys):
    """The demo's first step says which samples it gets wrong, not only that float and int8 agree."""
    import glob
    from ternkws.golden.checkpoint import load
    from ternkws.golden.pipeline import predict_wav
    wavs = sorted(glob.glob(str(SAMPLES / "*.wav")))
    assert main(["infer", *wavs]) == 0
    out = capsys.readouterr().out
    model = load()
    right = sum(predict_wav(model, w).label == Path(w).stem for w in wavs)
    assert f"{right}/{len(wavs)} right (expected label from the file or folder name)" in out
    assert ("WRONG" in out) == (right < len(wavs))
    assert main(["infer", "--json", wavs[0]]) == 0
    clip = json.loads(capsys.readouterr().out)["clips"][0]
    assert clip["expected"] == Path(wavs[0]).stem
