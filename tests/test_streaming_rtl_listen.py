# amaranth: UnusedElaboratable=no
"""`ternkws listen --sim`: the simulated stream board (BoardTop mode "stream": UART, host link,
streaming accelerator; boards/PROTOCOL.md "Streaming") behind the listen CLI prints the same detections
as `--golden`: a small random checkpoint on a short recording in the Amaranth simulator (the board's core
on byte streams) and in Verilator (the whole board behind the TCP bridge); the default model on
recordings of 3 s and 60 s (slow). RTLEngine (the accelerator driven directly) keeps its own checks."""

import numpy as np
import pytest

from ternkws.cli import main
from ternkws.golden.audio import read_wav, write_wav
from ternkws.golden.checkpoint import save
from ternkws.golden.streaming import FeatureStream, StreamingNetwork, scores, detector_config
from ternkws.sim.random_networks import random_case
from ternkws.sim.streaming_engine import SIMULATOR_ENV, RTLEngine

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "golden" / "samples"


def _recording(path, seconds, seed=0):
    """Bundled samples in faint noise: `seconds` of audio."""
    rng = np.random.default_rng(seed)
    names = sorted(SAMPLES.glob("*.wav"))
    parts, n = [], 0
    while n < seconds * 16000:
        x = read_wav(names[len(parts) % len(names)], 16000)
        gap = rng.normal(0, 3e-3, int(rng.uniform(0.1, 0.6) * 16000))
        parts += [gap, x]
        n += len(gap) + len(x)
    write_wav(path, np.concatenate(parts)[:int(seconds * 16000)])
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small random checkpoint (8 MFCC, T = 8 frames, 4 classes) and 2 s of audio, with the threshold
    (in float logit units) at the median margin of its decisions, so that it fires."""
    tmp = tmp_path_factory.mktemp("small")
    model, _, _ = random_case(20_004)
    path = tmp / "small.npz"
    save(model, path)
    wav = _recording(tmp / "speech.wav", 2.0)
    fs = FeatureStream(model.features, model.feature_mean, model.feature_scale)
    d = StreamingNetwork.from_model(model).run(fs.push(read_wav(wav, 16000)))
    det = detector_config(model)
    _, _, margin = scores(d.logits, det)
    tau = float(np.median(margin)) * float(model.scales.get("logit", 1.0)) / det.smooth
    return path, wav, f"{tau:.6g}"


def _detections(out):
    return [line for line in out.splitlines() if " score " in line or "of audio:" in line]


@pytest.mark.parametrize("simulator", ["amaranth", "verilator"])
def test_listen_sim_prints_the_golden_detections(small, simulator, capsys, monkeypatch):
    path, wav, tau = small
    assert main(["listen", "--golden", "--model", str(path), "--threshold", tau, str(wav)]) == 0
    golden = capsys.readouterr().out
    monkeypatch.setenv(SIMULATOR_ENV, simulator)
    assert main(["listen", "--sim", "--model", str(path), "--threshold", tau, str(wav)]) == 0
    sim = capsys.readouterr().out
    assert "simulated board" in sim.splitlines()[1]
    assert _detections(golden) and any(" score " in line for line in _detections(golden))
    assert _detections(sim) == _detections(golden)


@pytest.mark.parametrize("simulator", ["amaranth", "verilator"])
def test_listen_sim_json_decisions_equal_the_golden_ones(small, simulator, capsys, monkeypatch):
    """Every decision's logits (not only the detections) through the board's protocol."""
    import json
    path, wav, tau = small
    monkeypatch.setenv(SIMULATOR_ENV, simulator)
    args = ["--json", "--decisions", "--model", str(path), "--threshold", tau, str(wav)]
    assert main(["listen", "--golden"] + args) == 0
    golden = json.loads(capsys.readouterr().out)
    assert main(["listen", "--sim"] + args) == 0
    sim = json.loads(capsys.readouterr().out)
    assert sim["settings"]["source"] == "sim"
    assert sim["files"][0]["decisions"] == golden["files"][0]["decisions"]
    assert sim["files"][0]["detections"] == golden["files"][0]["detections"]


def test_engine_refuses_what_the_rtl_ports_cannot_hold():
    from ternkws.golden.streaming import DetectorConfig
    model, _, _ = random_case(20_004)
    with pytest.raises(ValueError, match="refractory must be in \\[1, 255\\]"):
        RTLEngine(model, DetectorConfig(0, (0,), 5, 300), simulator="amaranth")
    with pytest.raises(ValueError, match="hop must be in"):
        RTLEngine(model, None, 70000, simulator="amaranth")


@pytest.mark.slow
def test_listen_sim_default_model_equals_golden(tmp_path, capsys, monkeypatch):
    """The default model on 3 s of speech through Verilator behind `ternkws listen --sim` (a few minutes:
    the first run builds the Verilator model)."""
    wav = _recording(tmp_path / "speech.wav", 3.0, seed=3)
    assert main(["listen", "--golden", str(wav)]) == 0
    golden = capsys.readouterr().out
    monkeypatch.setenv(SIMULATOR_ENV, "verilator")
    assert main(["listen", "--sim", str(wav)]) == 0
    sim = capsys.readouterr().out
    assert _detections(sim) == _detections(golden) and len(_detections(golden)) >= 2


@pytest.mark.slow
def test_listen_sim_60_s_recording_equals_golden(tmp_path, capsys, monkeypatch):
    """Issue 11's acceptance: 60 s of speech, the default model, through the simulated stream board in
    Verilator (UART at 4 clocks a bit of 100 MHz, pipelined FRAMES): the same detections as --golden."""
    wav = _recording(tmp_path / "speech60.wav", 60.0, seed=60)
    assert main(["listen", "--golden", str(wav)]) == 0
    golden = capsys.readouterr().out
    monkeypatch.setenv(SIMULATOR_ENV, "verilator")
    assert main(["listen", "--sim", str(wav)]) == 0
    sim = capsys.readouterr().out
    assert _detections(sim) == _detections(golden) and len(_detections(golden)) >= 10


@pytest.mark.slow
def test_stream_link_bytes_per_second_of_audio(tmp_path):
    """boards/PROTOCOL.md "Baud budget", measured: 20 s of speech through the simulated stream board
    (default model, Verilator) as listen --sim sends it. Host -> board bytes per second of audio equal
    golden.protocol.stream_budget's for FRAMES of max_frames frames (to the byte, but for the tail
    request), board -> host stay within its worst case, and no request was refused."""
    from ternkws.boards.host import Device
    from ternkws.boards.stream_engine import DeviceEngine
    from ternkws.golden.checkpoint import load
    from ternkws.golden.protocol import FRAME_OVERHEAD, stream_budget
    from ternkws.sim.board_sim import BoardSim
    from ternkws.sim.streaming_engine import fit_config

    model = load()
    seconds = 20.0
    x = read_wav(_recording(tmp_path / "speech20.wav", seconds, seed=60), 16000)
    frames = FeatureStream(model.features, model.feature_mean, model.feature_scale).push(x)
    board = BoardSim(model, fit_config(model), mode="stream")
    with board as port:
        dev = Device(port, timeout=120, result_timeout=600)
        info = dev.identify()
        engine = DeviceEngine(dev, model, detector_config(model), 10)
        engine.reset()
        decisions, events = engine.push(frames)
        assert dev.stream_errors == []
    stats = board.stats
    n, k = len(frames), info.max_frames
    requests = -(-n // k)
    fixed = stats["bytes_from_host"] - n * info.n_mfcc - requests * FRAME_OVERHEAD   # IDENTIFY, START, POLLs
    assert 0 <= fixed <= 5 * (2 + 200)
    budget = stream_budget(info.n_mfcc, info.n_classes, frames_per_s=n / seconds, frames_per_request=k)
    assert abs(stats["bytes_from_host"] - fixed - budget["to_device"] * seconds) <= info.n_mfcc * k
    assert stats["bytes_to_host"] / seconds <= stream_budget(info.n_mfcc, info.n_classes, frames_per_s=n / seconds,
                                                             frames_per_request=1)["to_host"]
    assert len(decisions.index) == (n - info.n_frames - info.delay) // 10 + 1 and len(events) >= 3
