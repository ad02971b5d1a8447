"""WAV input/output for the golden model (stdlib `wave` + NumPy, no extra dependency).

The contract (golden/SPEC.md, "Features"): 16 kHz, mono, 16-bit PCM; samples are scaled to float in
[-1, 1) by dividing by 32768. Anything else is refused with a message that says how to convert it.
"""

import wave
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1   # shorter clips hold too little speech to classify


def read_wav(path, sample_rate=SAMPLE_RATE, min_seconds=MIN_SECONDS):
    """Read a 16-bit PCM mono WAV at `sample_rate`; return float32 samples in [-1, 1)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .wav file")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise UserError(f"{path}: not a readable PCM WAV file ({e}); convert it with "
                        f"'sox {path.name} -r 16000 -c 1 -b 16 out.wav'") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    fix = f"convert it with 'sox {path.name} -r {sample_rate} -c 1 -b 16 out.wav'"
    if channels != 1:
        raise UserError(f"{path}: has {channels} channels, expected mono; {fix}")
    if width != 2:
        raise UserError(f"{path}: has {8 * width}-bit samples, expected 16-bit PCM; {fix}")
    if rate != sample_rate:
        raise UserError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz (ternkws does not "
                        f"resample, so that features stay bit-reproducible); {fix}")
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if len(x) == 0:
        raise UserError(f"{path}: contains no audio samples")
    if len(x) < min_seconds * sample_rate:
        raise UserError(f"{path}: only {len(x) / sample_rate * 1000:.0f} ms of audio, need at least "
                        f"{min_seconds * 1000:.0f} ms")
    return x


def write_wav(path, samples, sample_rate=SAMPLE_RATE):
    """Write float samples in [-1, 1) (or int16) as a 16-bit PCM mono WAV."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())
