"""golden/audio.py `read_wav`: every accepted width and header reads exactly by its rule (SPEC.md
section 3); 16-bit through WAVE_FORMAT_EXTENSIBLE gives the same bits and features as plain 16-bit;
each broken file is refused with one line naming the problem, also through the CLI."""

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from ternkws.cli import main
from ternkws.golden.audio import read_wav, write_wav
from ternkws.golden.checkpoint import load
from ternkws.golden.errors import UserError
from ternkws.golden.pipeline import clip_features

SAMPLES = Path(__file__).parent.parent / "golden" / "samples"
RATE = 16000


# ---- a small WAV writer (independent of golden/audio.py) ----------------------------------------

def guid(code):
    """KSDATAFORMAT_SUBTYPE_* for a WAVE format code (00000001-0000-0010-8000-00aa00389b71 = PCM)."""
    return struct.pack("<IHH", code, 0x0000, 0x0010) + bytes.fromhex("800000aa00389b71")


def fmt_chunk(code, bits, channels=1, rate=RATE, extensible=False, valid=None, sub=None):
    block = channels * bits // 8
    base = struct.pack("<HHIIHH", 0xFFFE if extensible else code, channels, rate, rate * block, block, bits)
    if not extensible:
        return base
    return base + struct.pack("<HHI", 22, bits if valid is None else valid, 4) + (sub or guid(code))


def chunk(cid, payload, size=None):
    n = len(payload) if size is None else size
    return cid + struct.pack("<I", n) + payload + (b"\0" if len(payload) % 2 else b"")


def riff(*chunks, form=b"WAVE"):
    body = form + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav(code, bits, data, **kw):
    return riff(chunk(b"fmt ", fmt_chunk(code, bits, **kw)), chunk(b"data", data))


def encode(kind, bits, v):
    """Bytes of the sample values `v` (ints for PCM, floats for float) in little-endian WAV layout."""
    if kind == "float":
        return np.asarray(v, f"<f{bits // 8}").tobytes()
    if bits == 8:
        return np.asarray(v, np.uint8).tobytes()
    if bits == 24:
        return np.asarray(v, "<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.asarray(v, f"<i{bits // 8}").tobytes()


def values(kind, bits, n=RATE):
    """NumPy-generated samples covering the whole range (extremes included) and the exact expected floats."""
    rng = np.random.default_rng(bits + (kind == "float"))
    if kind == "float":
        v = (0.4 * rng.standard_normal(n)).astype(f"<f{bits // 8}")
        v[:8] = [0.0, -0.0, 1.0, -1.0, 1.5, -3.25, 1e-40 if bits == 32 else 1e-310, 2.0 ** -149]
        return v, v.astype(np.float32)                      # kept as they are (float64: nearest float32)
    if bits == 8:
        u = rng.integers(0, 256, n)
        u[:3] = [0, 128, 255]
        return u, ((u - 128) / 128).astype(np.float32)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = rng.integers(lo, hi, n, endpoint=True)
    x[:4] = [lo, hi, 0, -1]
    return x, (x / 2.0 ** (bits - 1)).astype(np.float32)   # float64 is exact here, then nearest float32


FORMATS = [("pcm", 8), ("pcm", 16), ("pcm", 24), ("pcm", 32), ("float", 32), ("float", 64)]
CODE = {"pcm": 1, "float": 3}


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    return p


# ---- every width and header reads exactly ---------------------------------------------------------

@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
@pytest.mark.parametrize("kind,bits", FORMATS, ids=[f"{k}{b}" for k, b in FORMATS])
def test_every_width_reads_exactly(tmp_path, kind, bits, extensible):
    v, expected = values(kind, bits)
    p = write(tmp_path, "x.wav", wav(CODE[kind], bits, encode(kind, bits, v), extensible=extensible))
    x = read_wav(p)
    assert x.dtype == np.float32 and x.shape == expected.shape
    assert x.tobytes() == expected.tobytes()                 # bit for bit (-0.0 and subnormals included)


@pytest.mark.parametrize("kind,bits", [("pcm", 8), ("pcm", 16), ("pcm", 24)])
def test_exact_rules_lose_nothing(tmp_path, kind, bits):
    """8/16/24-bit: the float32 sample is the exact rational value of the rule."""
    v, _ = values(kind, bits)
    x = read_wav(write(tmp_path, "x.wav", wav(1, bits, encode(kind, bits, v)))).astype(np.float64)
    if bits == 8:
        np.testing.assert_array_equal(x * 128 + 128, v)
    else:
        np.testing.assert_array_equal(x * 2.0 ** (bits - 1), v)
    assert x.min() >= -1 and x.max() < 1


def test_32bit_pcm_rounds_to_nearest_float32(tmp_path):
    x = np.array([2 ** 31 - 1, -2 ** 31, 1, -1, 0, 2 ** 24 + 1, 123456789] * 2300, "<i4")
    y = read_wav(write(tmp_path, "x.wav", wav(1, 32, x.tobytes())))
    assert y[0] == np.float32(1.0) and y[1] == -1.0 and y[2] == np.float32(2.0 ** -31)
    err = np.abs(y.astype(np.float64) - x / 2.0 ** 31)
    assert np.all(err <= np.abs(x / 2.0 ** 31) * 2.0 ** -24)


def test_sixteen_bit_extensible_equals_plain_and_today_bit_for_bit(tmp_path):
    """A bundled sample rewrapped as WAVE_FORMAT_EXTENSIBLE (with fact and LIST chunks) gives the same
    samples as the plain file and as the stdlib reading with x / 32768, and the same MFCC features."""
    model = load()
    for name in ("yes.wav", "silence.wav"):
        with wave.open(str(SAMPLES / name), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
            pcm = w.readframes(w.getnframes())
        today = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        ext = write(tmp_path, "ext.wav", riff(chunk(b"fmt ", fmt_chunk(1, 16, extensible=True)),
                                              chunk(b"fact", struct.pack("<I", len(pcm) // 2)),
                                              chunk(b"LIST", b"INFOISFT\x05\0\0\0sox!\0"), chunk(b"data", pcm)))
        plain = read_wav(SAMPLES / name)
        assert plain.tobytes() == today.tobytes() == read_wav(ext).tobytes()
        for a, b in zip(clip_features(model, plain), clip_features(model, read_wav(ext))):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    x = 0.3 * np.sin(np.arange(RATE) * 0.05)                 # write_wav's output reads the same through both
    write_wav(tmp_path / "w.wav", x)
    raw = (tmp_path / "w.wav").read_bytes()
    ext = write(tmp_path, "w_ext.wav", wav(1, 16, raw[44:], extensible=True))
    assert read_wav(tmp_path / "w.wav").tobytes() == read_wav(ext).tobytes()


def test_unknown_chunks_and_odd_padding_are_skipped(tmp_path):
    v, expected = values("pcm", 8, n=RATE + 1)               # odd-sized 8-bit data chunk
    data = encode("pcm", 8, v)
    chunks = [chunk(b"JUNK", b"\0" * 3), chunk(b"fmt ", fmt_chunk(1, 8)), chunk(b"LIST", b"INFOabc"),
              chunk(b"fact", struct.pack("<I", len(v))), chunk(b"data", data), chunk(b"cue ", b"\1" * 5)]
    assert read_wav(write(tmp_path, "a.wav", riff(*chunks))).tobytes() == expected.tobytes()
    # data before fmt: the data chunk's pad byte must be skipped to find fmt
    b = riff(chunk(b"LIST", b"x"), chunk(b"data", data), chunk(b"fmt ", fmt_chunk(1, 8)))
    assert read_wav(write(tmp_path, "b.wav", b)).tobytes() == expected.tobytes()
    # a fmt chunk longer than 16 bytes (cbSize 0, as some writers do) and a trailing partial frame
    v, expected = values("pcm", 24, n=RATE)
    c = riff(chunk(b"fmt ", fmt_chunk(1, 24) + b"\0\0"), chunk(b"data", encode("pcm", 24, v) + b"\x01\x02"))
    assert read_wav(write(tmp_path, "c.wav", c)).tobytes() == expected.tobytes()


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
@pytest.mark.parametrize("args", [["-b", "24"], ["-b", "32"], ["-e", "floating-point", "-b", "32"],
                                  ["-e", "floating-point", "-b", "64"]], ids=["s24", "s32", "f32", "f64"])
def test_files_written_by_sox_read_as_their_16_bit_source(tmp_path, args):
    """sox writes WAVE_FORMAT_EXTENSIBLE (and a fact chunk) for these; widening 16-bit is exact."""
    src = SAMPLES / "yes.wav"
    out = tmp_path / "out.wav"
    subprocess.run(["sox", "-D", str(src), *args, str(out)], check=True, capture_output=True)
    assert read_wav(out).tobytes() == read_wav(src).tobytes()


# ---- broken files: one sentence naming the problem ------------------------------------------------

def _pcm16(n=RATE):
    return np.zeros(n, "<i2").tobytes()


BROKEN = [
    # name, file bytes, words the message holds, sox suggested?
    ("empty", b"", ["is empty (0 bytes)"], False),
    ("text", b"not audio, just some words\n", ["not a readable PCM WAV file", "text ('not audio"], False),
    ("html", b"<!DOCTYPE html>\n<html><body>404</body></html>", ["HTML page"], False),
    ("lfs", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 32044\n", ["Git LFS pointer"], False),
    ("mp3", b"ID3\x04\0\0\0\0\0\x10" + b"\xff\xfb" * 200, ["an MP3 file"], False),
    ("flac", b"fLaC\0\0\0\x22" + bytes(200), ["a FLAC file"], False),
    ("aiff", b"FORM\0\0\0\x40AIFFCOMM" + bytes(60), ["an AIFF file"], False),
    ("avi", riff(chunk(b"LIST", b"hdrl"), form=b"AVI "), ["RIFF file of type 'AVI '"], False),
    ("npz", b"PK\x03\x04" + bytes(100), ["zip archive"], False),
    ("binary", bytes(range(7, 107)), ["unrecognised binary data", "07 08 09"], False),
    ("riff_cut", b"RIFF\x24\x7d\0\0", ["truncated"], False),
    ("header_only", riff(), ["truncated", "neither a 'fmt ' nor a data chunk"], False),
    ("no_data", riff(chunk(b"fmt ", fmt_chunk(1, 16)), chunk(b"LIST", b"INFO")),
     ["truncated", "without a data chunk"], False),
    ("data_cut", riff(chunk(b"fmt ", fmt_chunk(1, 16)), chunk(b"data", _pcm16()[:1000], size=32000)),
     ["truncated", "data chunk declares 32000 bytes but only 1000 follow"], False),
    ("data_unsized", riff(chunk(b"fmt ", fmt_chunk(1, 16)), chunk(b"data", _pcm16(), size=0xFFFFFFFF)),
     ["truncated", "data chunk declares 4294967295 bytes"], False),
    ("list_cut", riff(chunk(b"fmt ", fmt_chunk(1, 16)), chunk(b"LIST", b"INFO", size=5000)),
     ["truncated", "'LIST' chunk declares 5000 bytes", "no data chunk"], False),
    ("garbage_chunk", riff(chunk(b"fmt ", fmt_chunk(1, 16))) + b"\xff\0\x13\x88" + bytes(40),
     ["damaged", "unreadable chunk header at byte 36"], False),
    ("no_fmt", riff(chunk(b"data", _pcm16())), ["no 'fmt ' chunk"], False),
    ("short_fmt", riff(chunk(b"fmt ", fmt_chunk(1, 16)[:14]), chunk(b"data", _pcm16())),
     ["'fmt ' chunk is 14 bytes"], False),
    ("short_extensible", riff(chunk(b"fmt ", fmt_chunk(1, 16, extensible=True)[:24]), chunk(b"data", _pcm16())),
     ["WAVE_FORMAT_EXTENSIBLE header is shorter"], False),
    ("zero_channels", wav(1, 16, _pcm16(), channels=0), ["damaged", "0 channels"], False),
    ("alaw", wav(6, 8, bytes(RATE)), ["encoding not supported: A-law"], True),
    ("mulaw", wav(7, 8, bytes(RATE)), ["encoding not supported: mu-law"], True),
    ("ima_adpcm", wav(0x11, 4, bytes(RATE)), ["IMA ADPCM"], True),
    ("mp3_in_wav", wav(0x55, 0, bytes(RATE)), ["encoding not supported: MP3 in WAV", "sox cannot read it"], False),
    ("pcm12", wav(1, 12, _pcm16()), ["encoding not supported: 12-bit PCM"], False),
    ("float16", wav(3, 16, _pcm16()), ["encoding not supported: 16-bit float"], False),
    ("code_0x1234", wav(0x1234, 16, _pcm16()), ["WAVE format code 0x1234"], False),
    ("ext_alaw", wav(6, 8, bytes(RATE), extensible=True), ["A-law (WAVE_FORMAT_EXTENSIBLE)"], True),
    ("ext_20_in_24", wav(1, 24, bytes(3 * RATE), extensible=True, valid=20),
     ["20-bit PCM in 24-bit containers"], False),
    ("ext_unknown_guid", wav(1, 16, _pcm16(), extensible=True, sub=bytes(range(16))),
     ["unknown sub-format 03020100-0504-0706-0809-0a0b0c0d0e0f"], False),
    # the encoding is named before the rate and channels: sox cannot fix 12-bit PCM at any rate
    ("pcm12_44k_stereo", wav(1, 12, _pcm16(), rate=44100, channels=2), ["12-bit PCM"], False),
    ("alaw_8k", wav(6, 8, bytes(RATE), rate=8000), ["A-law"], True),
    ("float_nan", wav(3, 32, np.r_[np.zeros(100), np.nan, np.inf, np.zeros(RATE)].astype("<f4").tobytes()),
     ["2 NaN or infinite float sample(s), the first at sample 100"], False),
    ("float64_huge", wav(3, 64, np.r_[np.zeros(RATE), 1e300].astype("<f8").tobytes()),
     ["beyond the float32 range", "sample 16000"], False),
    # readable encodings at the wrong rate or channel count: the sox advice
    ("rate_44k_float", wav(3, 32, bytes(4 * 44100), rate=44100), ["sample rate is 44100 Hz"], True),
    ("stereo_24_ext", wav(1, 24, bytes(6 * RATE), channels=2, extensible=True), ["2 channels"], True),
    ("no_samples", wav(1, 16, b""), ["contains no audio samples"], False),
    ("short_8bit", wav(1, 8, bytes(800)), ["only 50 ms"], False),
]


@pytest.mark.parametrize("name,content,words,sox", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_message(tmp_path, name, content, words, sox):
    p = write(tmp_path, "bad.wav", content)
    with pytest.raises(UserError) as e:
        read_wav(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg
    for w in words:
        assert w in msg, msg
    assert ("'sox bad.wav -r 16000 -c 1 -b 16 out.wav'" in msg) == sox, msg


def test_sox_reads_what_we_send_it_to(tmp_path):
    """Where the message suggests sox, sox does convert the file into one read_wav reads."""
    if shutil.which("sox") is None:
        pytest.skip("needs sox")
    for e in ("a-law", "u-law", "ima-adpcm", "ms-adpcm", "gsm-full-rate"):
        src, out = tmp_path / f"{e}.wav", tmp_path / f"{e}_16.wav"
        subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-e", e, str(src), "synth", "0.5", "sine", "440"],
                       check=True, capture_output=True)
        with pytest.raises(UserError, match="sox"):
            read_wav(src)
        subprocess.run(["sox", str(src), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True,
                       capture_output=True)
        assert len(read_wav(out)) >= 8000           # ADPCM and GSM pad to whole blocks


@pytest.mark.parametrize("name,content,words,sox", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_through_the_cli_is_one_line(tmp_path, name, content, words, sox, capsys):
    p = write(tmp_path, "bad.wav", content)
    rc = main(["infer", str(p)])
    err = capsys.readouterr().err
    assert rc == 2                                           # a user error (ternkws/commands/_common.py)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("kind,bits", FORMATS, ids=[f"{k}{b}" for k, b in FORMATS])
def test_cli_infers_every_width(tmp_path, kind, bits, capsys):
    v, _ = values(kind, bits)
    p = write(tmp_path, "ok.wav", wav(CODE[kind], bits, encode(kind, bits, v), extensible=True))
    assert main(["infer", "--json", str(p)]) == 0
    assert "error" not in capsys.readouterr().out
