"""`ternkws listen`, `ternkws infer` on a clip longer than the window, `ternkws eval --stream`: the CLI
around the streaming golden model (golden/streaming.py)."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from ternkws.cli import main
from ternkws.golden.audio import read_wav, write_wav
from ternkws.golden.checkpoint import load
from ternkws.golden.streaming import Listener, StreamingNetwork, stream_mfcc
from ternkws.golden.features import quantize

SAMPLES = Path(__file__).resolve().parents[1] / "golden" / "samples"


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    """yes, no and silence samples with 1.5 s of faint noise before each, 1 s of zeros after: 8.5 s."""
    rng = np.random.default_rng(0)
    parts = []
    for name in ("yes", "no", "silence"):
        parts += [rng.standard_normal(24000) * 1e-3, read_wav(SAMPLES / f"{name}.wav")]
    parts.append(np.zeros(16000))
    path = tmp_path_factory.mktemp("long") / "long.wav"
    write_wav(path, np.concatenate(parts))
    return path


def _one_error(err, command="listen"):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ternkws {command}: error: ") and "Traceback" not in err, err
    return lines[0]


def test_listen_golden_prints_each_detection_and_a_summary(long_wav, capsys):
    assert main(["listen", str(long_wav)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model ") and "golden streaming model" in out[1] and "0.54 s" in out[1]
    events = [line for line in out if " score " in line]
    assert [line.split()[3] for line in events] == ["yes", "no"], out
    # times: after each word (yes at 1.5-2.5 s, no at 4.0-5.0 s), known within ~2 s of it
    times = [float(line.split()[1]) for line in events]
    assert 2.0 < times[0] < 4.5 and 4.5 < times[1] < 7.0
    assert out[-1] == f"{long_wav}: 8.5 s of audio: 2 detection(s): yes, no"


def test_listen_json_is_pure_and_equals_the_golden_model(long_wav, capsys):
    assert main(["listen", "--golden", "--json", "--decisions", str(long_wav)]) == 0
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert d["settings"]["source"] == "golden" and d["settings"]["delay_frames"] == 54
    f = d["files"][0]
    assert [e["class"] for e in f["detections"]] == ["yes", "no"]
    assert all(e["window_s"][1] - e["window_s"][0] == pytest.approx(1.295) for e in f["detections"])
    # the decisions are those of the engine on the stream's features (file + tail of digital silence)
    model = load("default")
    x = np.concatenate([read_wav(long_wav), Listener(model).tail_samples()])
    xq = quantize(stream_mfcc(x, model.features), model.feature_mean, model.feature_scale)
    dec = StreamingNetwork.from_model(model).push(xq)
    assert [r["logits"] for r in f["decisions"]] == dec.logits.tolist()
    assert [r["decision"] for r in f["decisions"]] == dec.index.tolist()


def test_listen_threshold_changes_the_detections(long_wav, capsys):
    assert main(["listen", "--json", "--threshold", "50", str(long_wav)]) == 0
    assert json.loads(capsys.readouterr().out)["files"][0]["detections"] == []
    assert main(["listen", "--json", "--threshold", "-5", "--smooth", "1", str(long_wav)]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"][0]["detections"]) >= 2


@pytest.mark.parametrize("argv,message", [
    (["--port", "/dev/ttyUSB-none"], "no device at /dev/ttyUSB-none: is the board plugged in?"),
    (["--baud", "3000000"], "--baud goes with --port"),
    (["--smooth", "17"], "--smooth must be in [1, 16]"),
    (["--hop", "0"], "--hop must be at least 1"),
    (["--mic"], "WAV files or --mic, not both"),
])
def test_listen_user_errors(argv, message, capsys):
    assert main(["listen", *argv, str(SAMPLES / "yes.wav")]) == 2
    assert message in _one_error(capsys.readouterr().err)


def test_listen_needs_a_source_of_audio(capsys):
    assert main(["listen"]) == 2
    assert "give WAV files to listen to, or --mic" in _one_error(capsys.readouterr().err)
    assert main(["listen", "--sim", "--golden", str(SAMPLES / "yes.wav")]) == 2      # usage error
    assert "not allowed with" in capsys.readouterr().err


def test_listen_goes_on_past_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("hello")
    assert main(["listen", str(bad), str(SAMPLES / "yes.wav")]) == 2
    cap = capsys.readouterr()
    assert "yes.wav: 1.0 s of audio: 1 detection(s): yes" in cap.out
    err = cap.err.strip().splitlines()
    assert err[0].startswith("ternkws listen: error: ") and "notes.wav" in err[0]
    assert err[1] == "ternkws listen: 1 of 2 files refused (errors above)"


def test_mic_without_sounddevice_is_a_clear_user_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)       # import fails
    assert main(["listen", "--mic", "--seconds", "1"]) == 2
    assert "--mic: the sounddevice package is not installed" in _one_error(capsys.readouterr().err)


def test_mic_streams_from_the_input_device(monkeypatch, long_wav, capsys):
    """A fake sounddevice whose input stream plays the long WAV: the same detections as the file."""
    audio = read_wav(long_wav)

    class InputStream:
        def __init__(self, samplerate, channels, dtype, blocksize):
            assert (samplerate, channels, dtype) == (16000, 1, "float32")
            self.pos = 0

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self, n):
            block = audio[self.pos:self.pos + n]
            self.pos += n
            return np.pad(block, (0, n - len(block)))[:, None].astype(np.float32), False

    fake = types.SimpleNamespace(InputStream=InputStream, query_devices=lambda kind: {"name": "fake"})
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    assert main(["listen", "--mic", "--seconds", "8.5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["files"][0]["file"] == "mic" and d["files"][0]["seconds"] == pytest.approx(8.5)
    assert [e["class"] for e in d["files"][0]["detections"]] == ["yes", "no"]


def test_mic_without_an_input_device(monkeypatch, capsys):
    def none(kind):
        raise ValueError("No input device matching")
    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(query_devices=none, InputStream=None))
    assert main(["listen", "--mic"]) == 2
    assert "--mic: no usable audio input device" in _one_error(capsys.readouterr().err)


# --- infer on a long clip --------------------------------------------------------------------------------------

def test_infer_streams_a_clip_longer_than_the_window(long_wav, capsys):
    yes = str(SAMPLES / "yes.wav")
    assert main(["infer", yes, str(long_wav)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(f"{yes}: yes ")                      # a short clip: as before
    assert "longer than the 1.295-s window: streaming it" in out[2]
    assert any(" yes " in line and " score " in line for line in out)
    assert f"{long_wav}: 2 detection(s): yes, no" in out
    assert out[-1].startswith("1 clip(s) classified") and "1 long file(s) streamed, 2 detection(s)" in out[-1]
    assert main(["infer", "--json", yes, str(long_wav)]) == 0
    d = json.loads(capsys.readouterr().out)
    short, long = d["clips"]
    assert short["class"] == "yes" and "streamed" not in short
    assert long["streamed"] and long["seconds"] == pytest.approx(8.5)
    assert [e["class"] for e in long["detections"]] == ["yes", "no"]


def test_infer_keeps_the_window_for_a_clip_of_window_length(tmp_path, capsys):
    """Exactly 20,720 samples is still one window (fitted, not streamed)."""
    y = read_wav(SAMPLES / "yes.wav")
    path = tmp_path / "yes.wav"
    write_wav(path, np.pad(y, (2360, 2360)))
    assert len(read_wav(path)) == 20720
    assert main(["infer", "--json", str(path)]) == 0
    clip = json.loads(capsys.readouterr().out)["clips"][0]
    assert clip["class"] == "yes" and "streamed" not in clip


# --- eval --stream ---------------------------------------------------------------------------------------------

@pytest.fixture
def sample_set(tmp_path):
    for wav in SAMPLES.glob("*.wav"):
        (tmp_path / "set" / wav.stem).mkdir(parents=True)
        (tmp_path / "set" / wav.stem / "0.wav").write_bytes(wav.read_bytes())
    return tmp_path / "set"


def test_eval_stream_writes_the_report(sample_set, tmp_path, capsys):
    out = tmp_path / "rep"
    argv = ["eval", "--stream", "--data", str(sample_set), "--minutes", "0.5", "--out", str(out), "--quiet",
            "--write-recordings", str(tmp_path / "rec")]
    assert main(argv + ["--json"]) == 0
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert set(d["results"]) == {"aligned", "causal"}
    a = d["results"]["aligned"]
    assert a["delay_frames"] == 54 and a["at_default"]["keywords"] == sum(r["keywords"] for r in d["recordings"])
    assert d["command"].startswith("ternkws eval --stream --data ") and "--minutes 0.5" in d["command"]
    for name in ("streaming.json", "streaming.md", "streaming.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "streaming.json").read_text())["results"]["aligned"]["det"] == a["det"]
    # the saved recording gives the benchmark's events through `ternkws listen`
    wav = tmp_path / "rec" / "test-0-0.wav"
    assert (tmp_path / "rec" / "test-0-0.csv").read_text().startswith("label,onset_s,end_s,source")
    assert main(["listen", "--json", str(wav)]) == 0
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "aligned  hit rate" in text and "wrote " in text


@pytest.mark.parametrize("argv,message", [
    (["--stream", "--split", "all"], "--stream takes one split"),
    (["--stream", "--limit", "3"], "--limit does not go with --stream"),
    (["--stream", "--minutes", "0"], "--minutes must be positive"),
    (["--threshold", "3"], "--threshold goes with --stream"),
])
def test_eval_stream_user_errors(argv, message, sample_set, capsys):
    assert main(["eval", "--data", str(sample_set), *argv]) == 2
    assert message in _one_error(capsys.readouterr().err, "eval")


class _FakeDevice:
    """What `ternkws listen --port` sees of a board: its IDENTIFY reply."""

    def __init__(self, info):
        self.info, self.timeout = info, 1.0

    def identify(self):
        return self.info

    def retrying(self, call, *args, **kw):
        return call(*args)

    @property
    def identity(self):
        return self.info


@pytest.mark.parametrize("change,message", [
    ({"modes": 1}, "is a window board"),
    ({"model_id": "00000000"}, "model mismatch: DEV runs model 00000000"),
    ({"protocol": 1}, "speaks protocol version 1"),
])
def test_listen_port_refuses_the_wrong_board(change, message):
    """A board that is not a stream board of this checkpoint is refused with one sentence."""
    from dataclasses import replace as dc_replace

    from ternkws.commands import listen
    from ternkws.golden.errors import UserError
    from ternkws.golden.protocol import PROTOCOL_VERSION, Identity, Mode
    model = load("default")
    top = model.topology
    good = Identity(PROTOCOL_VERSION, "0.1.0", model.model_id, top.n_mfcc, model.features.n_frames, top.n_classes,
                    192, 8, 2, top.mixer, 12_000_000, Mode.STREAM, 3, 448, 54)
    args = types.SimpleNamespace(sim=False, port="DEV", hop=10)
    detector = listen.detector_of(types.SimpleNamespace(hop=10, smooth=5, refractory=10, threshold=2.0), model)
    stopped = []
    engine = listen._board_engine(_FakeDevice(good), model, detector, args, "DEV", "board", lambda: stopped.append(1))
    assert (engine.delay, engine.n_frames, engine.params.hop) == (54, 128, 10) and not stopped
    with pytest.raises(UserError, match=message):
        listen._board_engine(_FakeDevice(dc_replace(good, **change)), model, detector, args, "DEV", "board",
                             lambda: stopped.append(1))
    assert stopped == [1]
