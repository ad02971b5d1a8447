import numpy as np
import pytest

from ternkws.golden.audio import write_wav


@pytest.fixture
def tone_wav(tmp_path):
    """A 1-s 16 kHz mono 16-bit WAV with a tone and a little noise."""
    def make(name="tone.wav", seconds=1.0, freq=440.0, rate=16000):
        t = np.arange(int(seconds * rate)) / rate
        x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
        path = tmp_path / name
        write_wav(path, x, rate)
        return path
    return make
