"""Sound and pictures of a simulated meeting: looped PCM tables and I420 test patterns.

Everything costly happens before the meeting starts. A participant's sound becomes a
:class:`LoopedSignal`, one period of int16 samples padded with a frame's worth of
wrap-around, so the driver thread gets any 10 ms frame as a slice without copying. A
share picture lives in one reused I420 buffer that :class:`ShareRenderer` patches in
place: the "moving" pattern redraws only the columns of its bar, and "slides" repaints
only when the slide changes.

Arrays returned here are views of internal buffers: valid until the next call, never
to be written to by the caller. The driver's event sink copies what it keeps.
"""

from __future__ import annotations

import logging
import math
import struct
import wave
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.drivers.base import FRAME_SAMPLES, SAMPLE_RATE
from appliance.drivers.sim.scenario import AudioSource

logger = logging.getLogger(__name__)

FULL_SCALE = 32767
NOISE_SECONDS = 10
# Longest tone period we tabulate (10 s, 640 KB); rarer frequencies are computed
# per frame instead.
MAX_TABLE_SAMPLES = 10 * SAMPLE_RATE

_STAMP = struct.Struct("<Q")


class Signal(Protocol):
    """A sound indexed by meeting time."""

    def frame(self, k: int) -> np.ndarray:
        """Samples ``[k * 320, (k + 1) * 320)`` as int16; a view, do not modify."""
        ...


class LoopedSignal:
    """A clip repeated forever: sample ``n`` is ``clip[n % len(clip)]``."""

    def __init__(self, clip: np.ndarray) -> None:
        if len(clip) == 0:
            raise ValueError("a looped signal needs at least one sample")
        self.period = len(clip)
        # np.resize repeats the clip cyclically, so a frame that crosses the end of
        # the period (or a clip shorter than a frame) is still one contiguous slice.
        self._table = np.resize(clip.astype(np.int16), self.period + FRAME_SAMPLES)
        self._table.flags.writeable = False

    def frame(self, k: int) -> np.ndarray:
        offset = (k * FRAME_SAMPLES) % self.period
        return self._table[offset : offset + FRAME_SAMPLES]


class ToneSignal:
    """A sine computed frame by frame, for frequencies with no short period."""

    def __init__(self, tone_hz: float, amplitude: float) -> None:
        self.tone_hz = tone_hz
        self.amplitude = amplitude

    def frame(self, k: int) -> np.ndarray:
        return tone_samples(self.tone_hz, self.amplitude, k * FRAME_SAMPLES)


def tone_samples(
    tone_hz: float, amplitude: float, start: int, count: int = FRAME_SAMPLES
) -> np.ndarray:
    """``round(amplitude * 32767 * sin(2 * pi * tone_hz * n / 32000))`` for n in
    ``[start, start + count)``, as int16 (rounding half to even, as Python does)."""
    n = np.arange(start, start + count, dtype=np.float64)
    phase = 2 * np.pi * tone_hz * n / SAMPLE_RATE
    return np.round(amplitude * FULL_SCALE * np.sin(phase)).astype(np.int16)


def tone_period(tone_hz: float) -> int | None:
    """The period in samples of a sampled tone, or ``None`` if longer than 10 s.

    The sine repeats after ``n`` samples when ``tone_hz * n / 32000`` is an integer;
    frequencies are read as fractions with a denominator up to 1000, so 440.1 Hz
    repeats after 320000 samples and 440 Hz after 800.
    """
    frac = Fraction(tone_hz).limit_denominator(1000)
    if abs(float(frac) - tone_hz) > 1e-9:
        return None
    span = frac.denominator * SAMPLE_RATE
    period = span // math.gcd(frac.numerator, span)
    return period if period <= MAX_TABLE_SAMPLES else None


def noise_clip(
    seed: int, amplitude: float, count: int = NOISE_SECONDS * SAMPLE_RATE
) -> np.ndarray:
    """Deterministic white noise as int16, uniform within ``amplitude * 32767``.

    The generator is SplitMix64 over the sample index, written out here rather than
    taken from numpy, whose generators may change between releases: the same seed
    gives the same bytes on every machine and version.
    """
    golden = np.uint64(0x9E3779B97F4A7C15)
    i = np.arange(1, count + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * golden
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    uniform = (z >> np.uint64(48)).astype(np.int64) - 32768
    return np.round(uniform * (amplitude * FULL_SCALE / 32768)).astype(np.int16)


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
        # Imported here: only file clips at another rate need it, and every worker
        # would otherwise carry it in memory.
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float64)
    if len(samples) == 0:
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)
    peak = float(np.max(np.abs(samples)))
    if peak > 0:
        samples = samples * (amplitude * FULL_SCALE / peak)
    return np.round(samples).astype(np.int16)


def make_signal(source: AudioSource, amplitude: float) -> Signal:
    """The signal of one scenario audio table, precomputed where possible."""
    if source.kind == "tone":
        assert source.tone_hz is not None
        period = tone_period(source.tone_hz)
        if period is None:
            return ToneSignal(source.tone_hz, amplitude)
        return LoopedSignal(tone_samples(source.tone_hz, amplitude, 0, period))
    if source.kind == "noise":
        assert source.noise_seed is not None
        return LoopedSignal(noise_clip(source.noise_seed, amplitude))
    assert source.file is not None
    return LoopedSignal(load_clip(source.file, amplitude))


class Mixer:
    """Sums int16 frames in int32 and clips to int16, into reused buffers."""

    def __init__(self) -> None:
        self._acc = np.zeros(FRAME_SAMPLES, dtype=np.int32)
        self._out = np.zeros(FRAME_SAMPLES, dtype=np.int16)

    def mix(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """The clipped sum of ``frames`` (silence for none); valid until next call."""
        acc = self._acc
        acc.fill(0)
        for frame in frames:
            np.add(acc, frame, out=acc)
        np.clip(acc, -32768, 32767, out=acc)
        self._out[:] = acc
        return self._out


def stamp(frame: np.ndarray, capture_ns: int) -> None:
    """Overwrite the first 8 bytes of ``frame`` with ``capture_ns``, uint64 LE."""
    _STAMP.pack_into(frame, 0, capture_ns)


def i420_size(width: int, height: int) -> int:
    """Bytes of one I420 frame: a full Y plane, then quarter U and V planes."""
    return width * height * 3 // 2


# 75 % colour bars in BT.601 limited range, as (Y, U, V).
_BARS = (
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
)
_WHITE = (235, 128, 128)
_INK = (40, 128, 128)
_SLIDE_BACKGROUNDS = (
    (200, 120, 132),
    (190, 140, 110),
    (205, 110, 120),
    (185, 135, 145),
    (210, 128, 128),
    (180, 150, 125),
)


class ShareRenderer:
    """I420 frames of a simulated screen share.

    ``frame(j)`` gives share frame ``j`` (``j / fps`` seconds into the share) as a
    flat uint8 array of :func:`i420_size` bytes. The array is the renderer's own
    buffer: the next call changes it, so copy what you keep.

    * ``"moving"``: colour bars with a white bar that steps right every frame,
      crossing the picture in about four seconds, so consecutive frames always
      differ.
    * ``"slides"``: slide ``j // (fps * slide_s)``; each slide is a background
      colour, a title bar, lines of "text" and the slide number in binary, so
      consecutive slides differ and frames within one slide are byte-identical.
    """

    def __init__(
        self,
        width: int,
        height: int,
        pattern: str = "moving",
        fps: float = 10.0,
        slide_s: float = 3.0,
    ) -> None:
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(
                f"I420 needs even sides of at least 16, not {width}x{height}"
            )
        if pattern not in ("moving", "slides"):
            raise ValueError(f"unknown pattern {pattern!r}")
        self.width = width
        self.height = height
        self.pattern = pattern
        y_size = width * height
        c_size = (width // 2) * (height // 2)
        self._buf = np.empty(y_size + 2 * c_size, dtype=np.uint8)
        self._y = self._buf[:y_size].reshape(height, width)
        self._u = self._buf[y_size : y_size + c_size].reshape(height // 2, width // 2)
        self._v = self._buf[y_size + c_size :].reshape(height // 2, width // 2)
        self._frames_per_slide = fps * slide_s
        self._slide: int | None = None

        columns = np.arange(width // 2) * 2 * len(_BARS) // width
        bars = np.array(_BARS, dtype=np.uint8)
        self._row_u = bars[columns, 1]
        self._row_v = bars[columns, 2]
        self._row_y = np.repeat(bars[columns, 0], 2)
        self._bar_w = max(2, width // 32 // 2 * 2)
        positions = (width - self._bar_w) // 2 + 1
        self._positions = positions
        step = int(positions / max(1.0, 4 * fps))
        self._step = min(max(1, step), positions - 1)
        self._bar_x: int | None = None
        if pattern == "moving":
            self._y[:] = self._row_y
            self._u[:] = self._row_u
            self._v[:] = self._row_v

    def frame(self, j: int) -> np.ndarray:
        if self.pattern == "moving":
            self._move_bar(2 * ((j * self._step) % self._positions))
        else:
            slide = int(j / self._frames_per_slide + 1e-9)
            if slide != self._slide:
                self._draw_slide(slide)
                self._slide = slide
        return self._buf

    def _move_bar(self, x: int) -> None:
        w = self._bar_w
        old = self._bar_x
        if old is not None:
            self._y[:, old : old + w] = self._row_y[old : old + w]
            self._u[:, old // 2 : (old + w) // 2] = self._row_u[
                old // 2 : (old + w) // 2
            ]
            self._v[:, old // 2 : (old + w) // 2] = self._row_v[
                old // 2 : (old + w) // 2
            ]
        self._fill(x, 0, x + w, self.height, _WHITE)
        self._bar_x = x

    def _draw_slide(self, n: int) -> None:
        w, h = self.width, self.height
        self._fill(0, 0, w, h, _SLIDE_BACKGROUNDS[n % len(_SLIDE_BACKGROUNDS)])
        margin = _even(w // 16)
        line = max(2, _even(h // 24))
        self._fill(margin, margin, w - margin, margin + 2 * line, _INK)
        for i in range(6):
            top = margin + (4 + 2 * i) * line
            # Line lengths vary with the slide number so slides differ in shape too.
            length = (w - 2 * margin) * (3 + (n * 7 + i * 3) % 5) // 8
            self._fill(margin, top, margin + _even(length), top + line, _INK)
        size = max(2, _even(w // 48))
        for bit in range(16):
            left = margin + bit * 2 * size
            if left + size > w or h - margin < size:
                break
            colour = _WHITE if (n >> bit) & 1 else _INK
            self._fill(left, h - margin - size, left + size, h - margin, colour)

    def _fill(self, x0: int, y0: int, x1: int, y1: int, yuv: tuple[int, ...]) -> None:
        # Callers pass even coordinates, so the chroma rectangle is exactly half.
        self._y[y0:y1, x0:x1] = yuv[0]
        self._u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[1]
        self._v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[2]


def _even(value: int) -> int:
    return max(0, value // 2 * 2)
