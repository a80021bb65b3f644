"""WAV files as sound for a simulated participant: decoded, resampled, scaled.

Imported only when a scenario plays a file: numpy adds about 15 MB to a worker, and
a worker that plays no file has no use for it.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from appliance.drivers.base import FRAME_SAMPLES, SAMPLE_RATE

FULL_SCALE = 32767


def decode_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file as mono float64 in [-1, 1) and its sample rate.

    Channels are averaged. 8-bit samples are unsigned, wider ones signed, as WAV
    defines them. A truncated file yields the whole frames it has. Raises
    ``wave.Error`` or ``OSError`` for what the stdlib cannot read (for example
    float or WAVE_FORMAT_EXTENSIBLE files).
    """
    with wave.open(str(path), "rb") as clip:
        channels = clip.getnchannels()
        width = clip.getsampwidth()
        rate = clip.getframerate()
        raw = clip.readframes(clip.getnframes())
    usable = len(raw) - len(raw) % (channels * width)
    data = np.frombuffer(raw[:usable], dtype=np.uint8)
    if width == 1:
        samples = (data.astype(np.float64) - 128) / 128
    elif width == 2:
        samples = data.view("<i2") / 32768
    elif width == 3:
        b = data.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    elif width == 4:
        samples = data.view("<i4") / float(1 << 31)
    else:
        raise wave.Error(f"unsupported sample width {width} bytes")
    return samples.reshape(-1, channels).mean(axis=1), rate


def load_clip(path: Path, amplitude: float) -> np.ndarray:
    """A WAV file as 32 kHz mono int16, scaled so its peak is ``amplitude``.

    Resampling uses soxr. A silent file stays silent; a file that resamples to no
    samples at all becomes one frame of silence.
    """
    samples, rate = decode_wav(path)
    if rate != SAMPLE_RATE and len(samples):
        # Imported here: only clips at another rate need it.
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float64)
    if len(samples) == 0:
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)
    peak = float(np.max(np.abs(samples)))
    if peak > 0:
        samples = samples * (amplitude * FULL_SCALE / peak)
    return np.round(samples).astype(np.int16)
