"""`ternkws run` and boards.host.Device: against a plain-Python twin of the board (fast: CLI paths and
errors), and end to end against the simulated board (BoardTop under Verilator behind a TCP socket)."""

import json
import struct
import time

import numpy as np
import pytest
import serial

from ternkws.golden.protocol import IDENTIFY_SIZE
from ternkws.boards.host import (ERROR_REPLY, IDENTIFY_FORMAT, PROTOCOL_VERSION, REPLY_FLAG, STATUS_FORMAT, Command,
                         Device, DeviceError, ErrorCode, FrameDecoder, LinkTimeout, PortError, encode_frame)
from ternkws.golden.audio import read_wav
from ternkws.golden.checkpoint import load, make_model, save
from ternkws.golden.features import FeatureConfig
from ternkws.golden.network import forward_int, init_random
from ternkws.golden.pipeline import clip_features
from ternkws.golden.topology import Block, Topology
from ternkws.cli import main


def _tiny_model(path, seed=3):
    """A random 3-class network that fits the up5k configuration (8 channels everywhere), 4 frames."""
    rng = np.random.default_rng(seed)
    top = Topology(n_mfcc=8, n_classes=3, prologue_channels=8, prologue_kernel=3, blocks=(Block(8, 3),),
                   epilogue_channels=8, epilogue_kernel=3, epilogue_dilation=1, final_channels=8, seed=seed)
    x = np.clip(rng.normal(0, 40, (6, 4, 8)), -128, 127)
    model = make_model(top, init_random(top, rng, x), x, np.zeros(8), np.full(8, 0.5), {"trained": False},
                       FeatureConfig(n_mfcc=8, n_mels=16, n_frames=4), labels=("a", "b", "c"))
    save(model, path)
    return load(path)


class PyBoard:
    """The device's protocol in plain Python (golden forward_int for the result), as a pyserial-like
    port: replies are ready as soon as a request is written. `model_id` overrides the id it reports;
    `silent` never answers. `faults` {reply number (1 = the first): fault} spoils replies as a noisy
    UART would: "corrupt" flips the CRC's last byte, "drop" loses the reply (the device did the work),
    "unplug" makes every read from then on fail as a pulled USB cable does."""

    def __init__(self, model, *, model_id=None, silent=False, faults=None, modes=1):
        self.model, self.silent, self.modes = model, silent, modes
        self.model_id = model_id or model.model_id
        self.timeout = None
        self.closed = False
        self.faults, self.replies, self.unplugged = dict(faults or {}), 0, False
        self._decoder, self._out = FrameDecoder(), bytearray()
        self._window, self._result = [], None
        self._size = model.features.n_frames * model.topology.n_mfcc

    def write(self, data):
        for command, payload, ok in self._decoder.feed(data):
            if not self.silent:
                reply = self._answer(command, payload, ok)
                self.replies += 1
                fault = self.faults.get(self.replies)
                if fault == "corrupt":
                    reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
                elif fault == "unplug":
                    self.unplugged = True
                if fault != "drop":
                    self._out += reply
        return len(data)

    def read(self, n):
        if self.unplugged:
            raise serial.SerialException("device disconnected")
        if not self._out:
            time.sleep(min(self.timeout or 0.01, 0.01))
            return b""
        data, self._out = bytes(self._out[:n]), self._out[n:]
        return data

    def reset_input_buffer(self):
        self._out.clear()

    def close(self):
        self.closed = True

    def _answer(self, command, payload, ok):
        def error(code):
            return encode_frame(ERROR_REPLY, bytes([code, command]))
        if not ok:
            return error(ErrorCode.BAD_CRC)
        top = self.model.topology
        if command == Command.IDENTIFY:
            return encode_frame(command | REPLY_FLAG, struct.pack(
                IDENTIFY_FORMAT, PROTOCOL_VERSION, 0, 1, 0, bytes.fromhex(self.model_id), top.n_mfcc,
                self.model.features.n_frames, top.n_classes, 16, 8, 2, 0, 12_000_000, self.modes, 0, 0, 0))
        if command == Command.FEATURES:
            if len(self._window) + len(payload) > self._size:
                return error(ErrorCode.OVERFLOW)
            self._window += [b - 256 if b > 127 else b for b in payload]
            return encode_frame(command | REPLY_FLAG, len(self._window).to_bytes(2, "little"))
        if command == Command.RUN:
            if len(self._window) != self._size:
                return error(ErrorCode.NOT_READY)
            w = np.array(self._window, np.int8).reshape(self.model.features.n_frames, top.n_mfcc)
            logits = forward_int(top, self.model.int_arrays, w)
            self._result, self._window = (int(np.argmax(logits)), [int(v) for v in logits]), []
            return encode_frame(command | REPLY_FLAG)
        if command == Command.RESULT:
            if self._result is None:
                return error(ErrorCode.NOT_READY)
            cls, logits = self._result
            return encode_frame(command | REPLY_FLAG, bytes([cls]) + struct.pack(f"<{len(logits)}i", *logits))
        if command == Command.RESET:
            self._window, self._result = [], None
            return encode_frame(command | REPLY_FLAG)
        if command == Command.STATUS:
            return encode_frame(command | REPLY_FLAG, struct.pack(STATUS_FORMAT, 4 * (self._result is not None),
                                                                  len(self._window), 0, 0, 1234))
        return error(ErrorCode.UNKNOWN_COMMAND)


@pytest.fixture
def tiny(tmp_path, tone_wav):
    model = _tiny_model(tmp_path / "tiny.npz")
    wavs = [str(tone_wav("a.wav", freq=300.0)), str(tone_wav("b.wav", freq=2500.0))]
    return model, wavs


def _golden(model, wav):
    xq = clip_features(model, read_wav(wav))[1]
    ref = forward_int(model.topology, model.int_arrays, xq)
    return model.labels[int(np.argmax(ref))], [int(v) for v in ref]


def _patch_port(monkeypatch, board):
    import ternkws.commands.run as run_command
    monkeypatch.setattr(run_command, "_open_port", lambda name, baud: board)


# -- Device ----------------------------------------------------------------------------------------------

def test_device_classify_and_errors(tiny):
    model, wavs = tiny
    device = Device(PyBoard(model), timeout=0.5)
    assert device.identify().model_id == model.model_id
    xq = clip_features(model, read_wav(wavs[0]))[1]
    cls, logits = device.classify(xq)
    assert (model.labels[cls], logits) == _golden(model, wavs[0])
    with pytest.raises(DeviceError, match="NOT_READY") as e:
        device.run()
    assert (e.value.code, e.value.command) == (ErrorCode.NOT_READY, Command.RUN)
    with pytest.raises(DeviceError, match="UNKNOWN_COMMAND"):
        device.request(0x42)
    with pytest.raises(ValueError, match="4 frames x 8"):
        device.classify(xq[:2])
    with pytest.raises(LinkTimeout):
        Device(PyBoard(model, silent=True), timeout=0.1).identify()
    unplugged = PyBoard(model)
    unplugged.read = lambda n: (_ for _ in ()).throw(serial.SerialException("device disconnected"))
    with pytest.raises(PortError, match="disconnected"):
        Device(unplugged).identify()


# -- CLI against the Python twin -------------------------------------------------------------------------

def test_run_port_json(tiny, monkeypatch, capsys):
    model, wavs = tiny
    board = PyBoard(model)
    _patch_port(monkeypatch, board)
    assert main(["run", "--port", "/dev/fake", "--model", model.path, "--json", *wavs]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["all_bit_exact"] and d["device"]["model_id"] == model.model_id and board.closed
    for clip, wav in zip(d["clips"], wavs):
        assert (clip["class"], clip["logits"]) == _golden(model, wav)
        assert clip["cycles"] == 1234 and clip["wire_bytes"] > 32


def test_run_port_text(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model))
    assert main(["run", "--port", "/dev/fake", "--baud", "1000000", "--model", model.path, *wavs]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"/dev/fake: model {model.model_id} (ternary), 4 frames x 8 MFCC, 3 classes")
    assert all("bit-exact" in line and "1,234 cycles" in line for line in out[1:3])
    # 32 values in chunks of 16 (PyBoard's max_chunk): RESET 5+5, 2 x FEATURES (21+7), RUN 5+5, RESULT 5+18.
    assert out[3].startswith("2/2 clips bit-exact") and "99 bytes on the wire + 1,234 cycles" in out[3]
    assert "at 1000000 baud and 12 MHz" in out[3]


def test_run_model_mismatch(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, model_id="0badc0de"))
    assert main(["run", "--port", "/dev/fake", "--model", model.path, wavs[0]]) == 2
    err = capsys.readouterr().err
    assert "model mismatch" in err and "0badc0de" in err and model.model_id in err


def test_run_refuses_a_stream_board(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, modes=2))
    assert main(["run", "--port", "/dev/fake", "--model", model.path, wavs[0]]) == 2
    err = capsys.readouterr().err
    assert "/dev/fake is a stream board" in err and "ternkws listen --port /dev/fake" in err


def test_run_silent_board(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, silent=True))
    assert main(["run", "--port", "/dev/fake", "--timeout", "0.2", "--model", model.path, wavs[0]]) == 2
    assert "no reply from /dev/fake" in capsys.readouterr().err


# -- retries and results as they come ---------------------------------------------------------------------
# Replies of a --port run of two clips: 1 IDENTIFY, then per clip RESET, FEATURES x 2 (32 values in chunks
# of 16), RUN, RESULT, STATUS: clip 1 is replies 2-7, clip 2 replies 8-13.

@pytest.mark.parametrize("fault, reply, error", [
    ("corrupt", 3, "reply with a bad CRC"),                    # clip 1's first FEATURES reply
    ("drop", 5, "no reply within the timeout"),                # clip 1's RUN reply
    ("corrupt", 13, "reply with a bad CRC"),                   # clip 2's STATUS reply
])
def test_run_retries_a_spoiled_reply_once(tiny, monkeypatch, capsys, fault, reply, error):
    model, wavs = tiny
    board = PyBoard(model, faults={reply: fault})
    _patch_port(monkeypatch, board)
    assert main(["run", "--port", "/dev/fake", "--timeout", "0.2", "--model", model.path, "--json", *wavs]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)                    # stdout: the JSON alone
    assert d["all_bit_exact"]
    for clip, wav in zip(d["clips"], wavs):
        assert (clip["class"], clip["logits"]) == _golden(model, wav)
    retry_lines = [line for line in captured.err.splitlines() if "retrying" in line]
    spoiled = wavs[0] if reply < 8 else wavs[1]
    assert len(retry_lines) == 1 and spoiled in retry_lines[0] and error in retry_lines[0]
    assert [c.get("retried") is not None for c in d["clips"]] == [reply < 8, reply >= 8]


def test_run_gives_up_after_one_retry(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, faults={3: "corrupt", 5: "corrupt"}))   # both tries of clip 1
    assert main(["run", "--port", "/dev/fake", "--model", model.path, *wavs]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("retrying") == 1
    assert f"{wavs[0]}: the link to /dev/fake failed (reply with a bad CRC" in captured.err
    assert "after a retry" in captured.err


def test_run_prints_each_clip_before_a_link_failure(tiny, monkeypatch, capsys):
    """The board is unplugged during the 2nd clip: the device line and the 1st clip's result are already
    on stdout (results are printed as they come), the error names the 2nd clip; no retry (the port is gone)."""
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, faults={9: "unplug"}))
    assert main(["run", "--port", "/dev/fake", "--model", model.path, *wavs]) == 2
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert len(out) == 2 and out[0].startswith(f"/dev/fake: model {model.model_id}")
    assert out[1].startswith(f"{wavs[0]}: board") and "bit-exact" in out[1]
    assert f"{wavs[1]}: the link to /dev/fake failed (reading failed: device disconnected)" in captured.err
    assert "retrying" not in captured.err


def test_run_json_keeps_the_clips_done_before_a_link_failure(tiny, monkeypatch, capsys):
    model, wavs = tiny
    _patch_port(monkeypatch, PyBoard(model, faults={9: "unplug"}))
    assert main(["run", "--port", "/dev/fake", "--model", model.path, "--json", *wavs]) == 2
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert d["complete"] is False and wavs[1] in d["error"] and "device disconnected" in d["error"]
    assert [c["file"] for c in d["clips"]] == [wavs[0]] and d["clips"][0]["bit_exact"]
    assert f"clip 1/2 {wavs[0]}: " in captured.err          # the progress line per clip, on stderr


class _FakeBoardSim:
    """Stands in for sim.board_sim.BoardSim: a PyBoard instead of BoardTop under Verilator."""

    def __init__(self, model, config, **kw):
        self.board = PyBoard(model, faults={9: "unplug"})
        self.stats, self.log_path = {}, "fake-board-sim.log"

    def __enter__(self):
        return self.board

    def __exit__(self, *exc):
        return False


def test_run_sim_prints_each_clip_as_it_comes(tiny, monkeypatch, capsys):
    """`run --sim`: the 1st clip's line is on stdout although the (fake) simulated board fails on the 2nd."""
    import ternkws.sim.board_sim as board_sim
    monkeypatch.setattr(board_sim, "BoardSim", _FakeBoardSim)
    model, wavs = tiny
    assert main(["run", "--sim", "--model", model.path, *wavs]) == 2
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith(f"the simulated board (up5k): model {model.model_id}")
    assert out[1].startswith(f"{wavs[0]}: board") and "bit-exact" in out[1] and len(out) == 2
    assert "starting the simulated board (up5k)" in captured.err
    assert f"{wavs[1]}: the link to the simulated board (up5k) failed" in captured.err


@pytest.mark.parametrize("args,message", [
    ([], "one of the arguments --port --sim is required"),                 # argparse (usage shows it)
    (["--sim", "--port", "/dev/x"], "argument --port: not allowed with argument --sim"),
    (["--port", "/dev/ternkws-no-such-port"], "no device at /dev/ternkws-no-such-port"),
    (["--port", "/dev/null", "--config", "ecp5"], "--config applies to --sim"),
    (["--sim", "--config", "nope"], "--config must be one of"),
])
def test_run_bad_arguments(tiny, args, message, capsys):
    model, wavs = tiny
    assert main(["run", "--model", model.path, *args, wavs[0]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- end to end: the simulated board ------------------------------------------------------------------------

@pytest.mark.cocotb
def test_run_sim_end_to_end(tiny, capsys):
    """`ternkws run --sim`: the host code, TCP, UART pins, HostLink and the accelerator under Verilator;
    class and logits equal the golden model computed here."""
    model, wavs = tiny
    assert main(["run", "--sim", "--model", model.path, "--json", *wavs]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert d["target"] == "sim" and d["device"]["model_id"] == model.model_id
    # start-up progress on stderr: the build (or the cached one) and the port the board listens on
    assert "simulated board listening on 127.0.0.1:" in captured.err
    assert "built in" in captured.err or "cached verilator build" in captured.err
    assert "clip 2/2" in captured.err
    assert d["device"]["clk_freq"] == 100_000_000 and d["device"]["mixer_lanes"] == 8
    for clip, wav in zip(d["clips"], wavs):
        assert (clip["class"], clip["logits"]) == _golden(model, wav)
        assert clip["bit_exact"] and clip["cycles"] > 0
    assert d["clips"][0]["cycles"] == d["clips"][1]["cycles"]
    # IDENTIFY + per clip (RESET, 1 FEATURES, RUN, RESULT, STATUS): every byte went through the UART.
    assert d["sim"]["bytes_from_host"] == 5 + 2 * (5 + (5 + 32) + 5 + 5 + 5)
    assert d["sim"]["bytes_to_host"] == 5 + IDENTIFY_SIZE + 2 * (5 + 7 + 5 + (5 + 13) + (5 + 9))


@pytest.mark.cocotb
def test_board_sim_errors_over_the_socket(tiny):
    """Raw malformed frames through the TCP bridge and the UART pins: a truncated frame ends in TIMEOUT
    (the simulated clock runs while the board waits), a bad CRC in BAD_CRC; the board answers the next
    request normally (same build as the test above: no rebuild)."""
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.sim.board_sim import BoardSim
    model, _ = tiny
    board = BoardSim(model, CONFIGS["up5k"])
    with board as port:
        device = Device(port, timeout=60)
        assert device.identify().model_id == model.model_id
        for raw, expected in ((encode_frame(Command.FEATURES, b"\x01\x02\x03")[:4], (ErrorCode.TIMEOUT, Command.FEATURES)),
                              (encode_frame(Command.STATUS)[:-1] + b"\x00", (ErrorCode.BAD_CRC, Command.STATUS))):
            port.write(raw)
            reply = device.read_reply()
            assert reply == (ERROR_REPLY, bytes(expected))
        with pytest.raises(DeviceError, match="NOT_READY"):
            device.run()
        assert device.status().last_error == ErrorCode.NOT_READY
    assert board.stats["framing_errors"] == 0
    assert board.stats["bytes_from_host"] == 5 + 4 + 5 + 5 + 5


@pytest.mark.slow
@pytest.mark.cocotb
def test_run_sim_default_model(capsys):
    """The bundled model on one bundled clip through the simulated board (a long build and a long sim)."""
    from pathlib import Path
    wav = str(Path(__file__).parent.parent / "golden" / "samples" / "yes.wav")
    assert main(["run", "--sim", "--json", wav]) == 0
    d = json.loads(capsys.readouterr().out)
    model = load()
    assert d["all_bit_exact"] and (d["clips"][0]["class"], d["clips"][0]["logits"]) == _golden(model, wav)
