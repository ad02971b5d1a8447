"""WAV input/output for the golden model (NumPy and the standard library, no extra dependency).

The contract (golden/SPEC.md, section 3 "Features"): 16 kHz mono WAV, read into float32 samples by
one exact rule per sample width:

    8-bit PCM (unsigned)   (u - 128) / 128
    16-bit PCM             x / 2^15         (the original rule: 16-bit files give the same bits as ever)
    24-bit PCM             x / 2^23
    32-bit PCM             x / 2^31         (computed in float64, then rounded to nearest float32)
    32-bit IEEE float      as stored
    64-bit IEEE float      rounded to nearest float32

Float samples are kept as they are, also beyond [-1, 1] (no clipping; the MFCC front end takes
logarithms of power, so a gain only shifts c0); NaN or infinite samples are refused.

The RIFF chunks are parsed here (Python's `wave` module refuses WAVE_FORMAT_EXTENSIBLE and float):
the plain `fmt ` header (format 1 = PCM, 3 = IEEE float) and WAVE_FORMAT_EXTENSIBLE (0xFFFE, with the
KSDATAFORMAT sub-format GUID of PCM or IEEE float, valid bits equal to the container) are accepted;
unknown chunks (LIST, fact, cue, bext, ...) are skipped, odd-sized chunks have their pad byte.
A file that is broken or holds another encoding is refused with one sentence saying what is wrong.
The sox command that converts it is suggested only where sox can read the file: a WAV we read but at
the wrong rate or channel count, or one of the encodings in SOX_READS (A-law, mu-law, ADPCM, GSM);
never for empty, truncated or non-WAV files or for encodings sox refuses too (12-bit PCM, MP3 in WAV).
"""

import os
import struct
import wave
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1   # shorter clips hold too little speech to classify

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
PCM_BITS = (8, 16, 24, 32)
FLOAT_BITS = (32, 64)
READS = "8/16/24/32-bit PCM and 32/64-bit float WAV"
# KSDATAFORMAT_SUBTYPE_*: the 16-bit format code in the first 4 bytes (little-endian), then this tail.
GUID_TAIL = bytes.fromhex("0000 1000 8000 00aa 0038 9b71")

# Other WAVE format codes (mmreg.h), to name what we refuse; SOX_READS: those sox converts to PCM.
ENCODINGS = {
    0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM",
    0x0014: "G.723 ADPCM", 0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM", 0x0050: "MPEG-1 audio (MP1/MP2) in WAV",
    0x0055: "MP3 in WAV", 0x00FF: "AAC in WAV", 0x0160: "WMA", 0x0161: "WMA", 0x0162: "WMA Pro",
    0x0163: "WMA Lossless", 0x1610: "AAC in WAV", 0x2000: "AC-3 in WAV", 0x2001: "DTS in WAV",
    0xF1AC: "FLAC in WAV",
}
SOX_READS = {0x0002, 0x0006, 0x0007, 0x0011, 0x0031}

# What a file that is not RIFF/WAVE looks like, by its first bytes.
MAGIC = [
    (b"RIFX", "a big-endian WAV (RIFX) file"), (b"RF64", "an RF64 (64-bit WAV) file"),
    (b"riff\x2e\x91\xcf\x11", "a Sony Wave64 file"), (b"fLaC", "a FLAC file"), (b"OggS", "an Ogg file"),
    (b"ID3", "an MP3 file"), (b"caff", "a Core Audio (CAF) file"), (b".snd", "a Sun/NeXT AU file"),
    (b"NIST_1A", "a NIST SPHERE file"), (b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
    (b"#!AMR", "an AMR file"), (b"MThd", "a MIDI file"), (b"PK\x03\x04", "a zip archive (or .npz)"),
    (b"\x93NUMPY", "a NumPy .npy array"), (b"\x1f\x8b", "a gzip archive"), (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"),
]


def _fail(path, what):
    raise UserError(f"{path}: {what}")


def _looks_like(head):
    """A few words on what the first bytes of a non-RIFF/WAVE file look like."""
    if head[:4] == b"RIFF" and len(head) >= 12:
        return f"a RIFF file of type {head[8:12].decode('latin-1')!r}"
    if head[:4] in (b"FORM",) and head[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF file"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A file"
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16 text"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "an MP3 or AAC (ADTS) stream"
    head = head.removeprefix(b"\xef\xbb\xbf")           # UTF-8 byte-order mark
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:                       # a character cut at the end of `head` is fine
        text = head[: e.start].decode("utf-8") if e.reason == "unexpected end of data" else None
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        if text.startswith("version https://git-lfs"):
            return "a Git LFS pointer, not the audio itself (run 'git lfs pull')"
        if text.lstrip()[:1] == "<" and "html" in text[:200].lower():
            return "an HTML page (a failed download?)"
        first = text.strip().splitlines()[0] if text.strip() else text
        return f"text ({first[:40]!r})"
    return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"


def _encoding(path, tag, bits, valid, extensible):
    """('pcm' | 'float') for what we read; otherwise refuse, naming the encoding."""
    if tag == PCM:
        if bits in PCM_BITS and valid == bits:
            return "pcm"
        what = f"{bits}-bit PCM" if valid == bits else f"{valid}-bit PCM in {bits}-bit containers"
    elif tag == IEEE_FLOAT:
        if bits in FLOAT_BITS and valid == bits:
            return "float"
        what = f"{bits}-bit float" if valid == bits else f"{valid}-bit float in {bits}-bit containers"
    else:
        what = ENCODINGS.get(tag, f"WAVE format code 0x{tag:04X}")
    fix = (f"convert it with 'sox {path.name} -r 16000 -c 1 -b 16 out.wav'" if tag in SOX_READS
           else "sox cannot read it either, so export it again as 16-bit PCM from the program that made it")
    _fail(path, f"encoding not supported: {what}{' (WAVE_FORMAT_EXTENSIBLE)' if extensible else ''} "
                f"(ternkws reads {READS}); {fix}")


def _parse(path, f, size):
    """(encoding, bits, channels, rate, data bytes) of an open WAV file of `size` bytes."""
    head = f.read(512)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if head[:4] == b"RIFF" and len(head) < 12:
            _fail(path, f"truncated: only {size} bytes, a WAV header alone takes 44")
        _fail(path, f"not a readable PCM WAV file: it looks like {_looks_like(head)}, not RIFF/WAVE audio")
    fmt = data = None
    pos = 12
    while pos + 8 <= size and (fmt is None or data is None):
        f.seek(pos)
        cid, n = struct.unpack("<4sI", f.read(8))
        name = cid.decode("latin-1")
        avail = size - pos - 8
        if not all(32 <= c < 127 for c in cid):
            _fail(path, f"damaged WAV file: unreadable chunk header at byte {pos}"
                        + ("" if fmt else " (no 'fmt ' chunk before it)"))
        if cid == b"data":
            if n > avail:
                _fail(path, f"truncated: its data chunk declares {n} bytes but only {avail} follow "
                            f"(the file was cut short, or its writer never filled in the size)")
            data = f.read(n)
        elif n > avail:
            _fail(path, f"truncated: its {name!r} chunk declares {n} bytes but only {avail} follow"
                        + ("" if data is not None else ", and no data chunk came before it"))
        elif cid == b"fmt " and fmt is None:
            fmt = f.read(n)
        pos += 8 + n + (n & 1)
    if fmt is None and data is None:
        _fail(path, f"truncated: the file ends after {size} bytes with neither a 'fmt ' nor a data chunk")
    if fmt is None:
        _fail(path, "damaged WAV file: it has a data chunk but no 'fmt ' chunk to say how to read it")
    if data is None:
        _fail(path, f"truncated: the file ends after {size} bytes without a data chunk (it holds no audio)")
    if len(fmt) < 16:
        _fail(path, f"damaged WAV file: its 'fmt ' chunk is {len(fmt)} bytes, at least 16 expected")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    valid, extensible = bits, tag == EXTENSIBLE
    if extensible:
        if len(fmt) < 40 or struct.unpack("<H", fmt[16:18])[0] < 22:
            _fail(path, "damaged WAV file: its WAVE_FORMAT_EXTENSIBLE header is shorter than 40 bytes")
        valid, guid = struct.unpack("<H", fmt[18:20])[0] or bits, fmt[24:40]
        if guid[4:] != GUID_TAIL:
            g = f"{guid[3::-1].hex()}-{guid[5:3:-1].hex()}-{guid[7:5:-1].hex()}-{guid[8:10].hex()}-{guid[10:].hex()}"
            _fail(path, f"encoding not supported: WAVE_FORMAT_EXTENSIBLE with the unknown sub-format {g} "
                        f"(ternkws reads {READS}); sox cannot read it either, so export it again as "
                        f"16-bit PCM from the program that made it")
        tag = struct.unpack("<I", guid[:4])[0]
    encoding = _encoding(path, tag, bits, valid, extensible)
    if channels == 0 or rate == 0:      # (the block-align and byte-rate fields are not used, as in `wave`)
        _fail(path, f"damaged WAV file: its header says {channels} channels at {rate} Hz")
    return encoding, bits, channels, rate, data


def _to_float(path, encoding, bits, raw):
    """float32 samples of mono `raw` by the rule for `bits` (module docstring); a partial frame is dropped."""
    width = bits // 8
    raw = raw[: len(raw) // width * width]
    if encoding == "float":
        x = np.frombuffer(raw, dtype=f"<f{width}")
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            _fail(path, f"has {bad.size} NaN or infinite float sample(s), the first at sample {bad[0]}")
        with np.errstate(over="ignore"):
            x = x.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            _fail(path, f"has {bad.size} float sample(s) beyond the float32 range, the first at sample {bad[0]}")
        return x
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(x >= 1 << 23, x - (1 << 24), x)
        return x.astype(np.float32) / np.float32(2.0 ** 23)
    return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0 ** 31).astype(np.float32)


def read_wav(path, sample_rate=SAMPLE_RATE, min_seconds=MIN_SECONDS):
    """Read a mono WAV at `sample_rate` (8/16/24/32-bit PCM or 32/64-bit float); return float32 samples."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .wav file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                _fail(path, "is empty (0 bytes), not a WAV file")
            encoding, bits, channels, rate, raw = _parse(path, f, size)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    fix = f"convert it with 'sox {path.name} -r {sample_rate} -c 1 -b 16 out.wav'"
    if channels != 1:
        raise UserError(f"{path}: has {channels} channels, expected mono; {fix}")
    if rate != sample_rate:
        raise UserError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz (ternkws does not "
                        f"resample, so that features stay bit-reproducible); {fix}")
    x = _to_float(path, encoding, bits, raw)
    if len(x) == 0:
        raise UserError(f"{path}: contains no audio samples")
    if len(x) < min_seconds * sample_rate:
        raise UserError(f"{path}: only {len(x) / sample_rate * 1000:.0f} ms of audio, need at least "
                        f"{min_seconds * 1000:.0f} ms")
    return x


def write_wav(path, samples, sample_rate=SAMPLE_RATE):
    """Write float samples in [-1, 1) (or int16) as a 16-bit PCM mono WAV (plain header)."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())
