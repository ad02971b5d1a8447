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
