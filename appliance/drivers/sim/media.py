"""Sound of a simulated meeting: looped int16 tables, a mixer and capture stamps.

Everything costly happens before the meeting starts. A participant's sound becomes a
:class:`LoopedSignal`, one period of samples padded with a frame's worth of
wrap-around, so the driver thread gets any 10 ms frame as a slice without copying.

This module needs no numpy: a sim worker imports it on every start, and numpy would
add about 15 MB to each worker. The two sample loops Python is too slow for (mixing
and noise) are C, in ``appliance._sim_dsp``; WAV files, which need numpy and soxr to
decode and resample, are read by :mod:`.clips`, imported only when a scenario plays
one.

Frames are memoryviews of format ``"h"`` (native int16, little-endian on every
platform the appliance runs on) and 320 samples; those returned here are views of
internal buffers, valid until the next call, never to be written to by the caller.
The driver's event sink copies what it keeps.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable
from fractions import Fraction
from typing import Protocol

from appliance._sim_dsp import ffi, lib
from appliance.drivers.base import FRAME_SAMPLES, SAMPLE_RATE
from appliance.drivers.sim.scenario import AudioSource

FULL_SCALE = 32767
NOISE_SECONDS = 10
# Longest tone period we tabulate (10 s, 640 KB); rarer frequencies are computed
# per frame instead.
MAX_TABLE_SAMPLES = 10 * SAMPLE_RATE

_STAMP = struct.Struct("<Q")
_SILENCE = bytes(2 * FRAME_SAMPLES)


class Signal(Protocol):
    """A sound indexed by meeting time."""

    def frame(self, k: int) -> memoryview:
        """Samples ``[k * 320, (k + 1) * 320)`` as int16; a view, do not modify."""
        ...


class LoopedSignal:
    """A clip repeated forever: sample ``n`` is ``clip[n % len(clip)]``.

    ``clip`` is any buffer of int16 samples (an ``array("h")``, a numpy array).
    """

    def __init__(self, clip: object) -> None:
        samples = memoryview(clip).cast("B").cast("h")  # type: ignore[arg-type]
        if len(samples) == 0:
            raise ValueError("a looped signal needs at least one sample")
        self.period = len(samples)
        # Repeating the clip past its end makes a frame that crosses the end of the
        # period (or a clip shorter than a frame) one contiguous slice all the same.
        repeats = -(-(self.period + FRAME_SAMPLES) // self.period)
        table = bytes(samples) * repeats
        self._table = memoryview(table).cast("h")[: self.period + FRAME_SAMPLES]

    def frame(self, k: int) -> memoryview:
        offset = (k * FRAME_SAMPLES) % self.period
        return self._table[offset : offset + FRAME_SAMPLES]


# Limitation: a tone with no period of 10 s or less is computed in Python frame by
# frame, about 50 us of the driver thread per frame; scenarios that need cheap frames
# use tabulated tones (such as whole or half hertz).
class ToneSignal:
    """A sine computed frame by frame, for frequencies with no short period."""

    def __init__(self, tone_hz: float, amplitude: float) -> None:
        self.tone_hz = tone_hz
        self.amplitude = amplitude

    def frame(self, k: int) -> memoryview:
        samples = tone_samples(self.tone_hz, self.amplitude, k * FRAME_SAMPLES)
        return memoryview(samples).toreadonly()


def tone_samples(
    tone_hz: float, amplitude: float, start: int, count: int = FRAME_SAMPLES
) -> array[int]:
    """``round(amplitude * 32767 * sin(2 * pi * tone_hz * n / 32000))`` for n in
    ``[start, start + count)``, as int16 (rounding half to even, as Python does)."""
    step = 2 * math.pi * tone_hz
    scale = amplitude * FULL_SCALE
    sin = math.sin
    return array(
        "h",
        [
            round(scale * sin(step * n / SAMPLE_RATE))
            for n in range(start, start + count)
        ],
    )


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
) -> array[int]:
    """Deterministic white noise as int16, uniform within ``amplitude * 32767``.

    The generator is SplitMix64 over the sample index (see ``native/sim_dsp.c``),
    written out rather than taken from a library whose generators may change
    between releases: the same seed gives the same bytes on every machine.
    """
    clip = array("h", bytes(2 * count))
    out = ffi.from_buffer("int16_t[]", clip, require_writable=True)
    lib.hmb_noise_s16(out, count, seed, amplitude * FULL_SCALE / 32768)
    return clip


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
    # Imported here: numpy and soxr cost every worker memory, and only file clips
    # need them.
    from appliance.drivers.sim import clips

    return LoopedSignal(clips.load_clip(source.file, amplitude))


class Mixer:
    """Sums int16 frames in int32 and clips to int16, into a reused buffer."""

    def __init__(self) -> None:
        self._out = bytearray(2 * FRAME_SAMPLES)
        self._bytes = memoryview(self._out)
        self._view = self._bytes.cast("h")
        self._c_out = ffi.from_buffer("int16_t[]", self._out, require_writable=True)

    def mix(self, frames: Iterable[object]) -> memoryview:
        """The clipped sum of ``frames`` (silence for none); valid until next call.

        Each frame is a buffer of 320 int16 samples. The result is writable, so a
        capture stamp can go into it.
        """
        inputs = [memoryview(f).cast("B") for f in frames]  # type: ignore[arg-type]
        for view in inputs:
            if view.nbytes != len(self._out):
                raise ValueError(
                    f"a frame is {len(self._out)} bytes, not {view.nbytes}"
                )
        if not inputs:
            self._bytes[:] = _SILENCE
        elif len(inputs) == 1:
            # Nothing to add, and nothing to clip: the common case of one speaker.
            self._bytes[:] = inputs[0]
        else:
            pointers = [ffi.from_buffer("int16_t[]", view) for view in inputs]
            lib.hmb_mix_s16(self._c_out, pointers, len(pointers), FRAME_SAMPLES)
        return self._view


def stamp(frame: object, capture_ns: int) -> None:
    """Overwrite the first 8 bytes of ``frame`` (writable) with ``capture_ns``,
    uint64 LE."""
    _STAMP.pack_into(frame, 0, capture_ns)  # type: ignore[arg-type]
