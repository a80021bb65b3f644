"""Sound and pictures of the simulated meeting, checked against first principles."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.drivers.base import FRAME_SAMPLES, SAMPLE_RATE
from appliance.drivers.sim import clips, media, screen
from appliance.drivers.sim.scenario import AudioSource


def expected_tone(tone_hz: float, amplitude: float, n: int) -> int:
    return round(amplitude * 32767 * math.sin(2 * math.pi * tone_hz * n / 32000))


@pytest.mark.parametrize("tone_hz", [440, 1000, 441.5, 440.37])
@pytest.mark.parametrize("k", [0, 1, 99, 12345])
def test_tone_frames_follow_the_formula(tone_hz, k):
    signal = media.make_signal(AudioSource("tone", tone_hz=tone_hz), 0.25)
    frame = np.frombuffer(signal.frame(k), np.int16)
    assert signal.frame(k).format == "h" and frame.shape == (FRAME_SAMPLES,)
    want = [expected_tone(tone_hz, 0.25, n) for n in range(k * 320, (k + 1) * 320)]
    # A tabulated tone reads sample n from n mod its period, which can land one
    # rounding step away from evaluating the formula at a large n.
    assert np.max(np.abs(frame.astype(int) - want)) <= 1
    if k < 100:
        assert frame.tolist() == want


def test_tone_period():
    assert media.tone_period(440) == 800
    assert media.tone_period(1000) == 32
    assert media.tone_period(441.5) == 64000
    assert media.tone_period(440.1) == 320000
    # Not a short fraction: computed frame by frame.
    assert media.tone_period(440.37) is None
    assert isinstance(
        media.make_signal(AudioSource("tone", tone_hz=440.37), 0.25), media.ToneSignal
    )


def test_tone_peak_is_the_amplitude():
    frame = media.tone_samples(1000, 1.0, 0, 32)
    assert max(frame) == 32767 and min(frame) == -32767
    assert not any(media.tone_samples(440, 0.0, 0, 320))


def test_looped_signal_wraps_across_frames():
    clip = np.arange(700, dtype=np.int16)
    signal = media.LoopedSignal(clip)
    for k in range(10):
        n = np.arange(k * 320, (k + 1) * 320)
        assert signal.frame(k).tolist() == (n % 700).tolist()


def test_clip_shorter_than_a_frame_repeats_within_the_frame():
    signal = media.LoopedSignal(np.array([1, 2, 3], dtype=np.int16))
    assert signal.frame(0)[:7].tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert signal.frame(1)[0] == 320 % 3 + 1
    with pytest.raises(ValueError):
        media.LoopedSignal(np.array([], dtype=np.int16))


def test_frames_are_read_only_views():
    frame = media.LoopedSignal(np.arange(1000, dtype=np.int16)).frame(0)
    with pytest.raises(TypeError):
        frame[0] = 5
    with pytest.raises(TypeError):
        media.ToneSignal(440.37, 0.25).frame(0)[0] = 5


def test_noise_is_deterministic_and_within_the_peak():
    a = np.array(media.noise_clip(7, 0.5))
    assert len(a) == media.NOISE_SECONDS * SAMPLE_RATE
    assert np.array_equal(a, media.noise_clip(7, 0.5))
    assert not np.array_equal(a, media.noise_clip(8, 0.5))
    assert np.abs(a.astype(int)).max() <= round(0.5 * 32767)
    # White: roughly uniform with mean near zero and little correlation.
    assert abs(float(a.mean())) < 100
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02
    signal = media.make_signal(AudioSource("noise", noise_seed=7), 0.5)
    assert signal.frame(3).tolist() == a[960:1280].tolist()


def splitmix64(seed: int, count: int) -> list[int]:
    """The published SplitMix64 generator, one 64-bit output at a time."""
    mask = 2**64 - 1
    out = []
    state = seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
def test_noise_is_splitmix64(seed):
    # The generator is ours, not numpy's, so these bytes never change; a client in
    # any language can reproduce them from this definition.
    words = splitmix64(seed, 50)
    want = [round(((w >> 48) - 32768) * (0.5 * 32767 / 32768)) for w in words]
    assert media.noise_clip(seed, 0.5, count=50).tolist() == want
    if seed == 0:
        assert words[0] == 0xE220A8397B1DCDAF  # the reference value for seed 0


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """``samples`` is (frames, channels) in [-1, 1)."""
    if width == 2:
        data = np.round(samples * 32767).astype("<i2").tobytes()
    elif width == 1:
        data = (np.round(samples * 127) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(samples * (2**23 - 1)).astype("<i4").reshape(-1)
        data = b"".join(struct.pack("<i", v)[:3] for v in ints.tolist())
    else:
        data = np.round(samples * (2**31 - 1)).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(samples.shape[1])
        clip.setsampwidth(width)
        clip.setframerate(rate)
        clip.writeframes(data)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum)) * rate / len(samples)


def test_file_is_resampled_to_32k_mono(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([left, left], axis=1)
    write_wav(tmp_path / "a.wav", stereo, 16000)
    clip = clips.load_clip(tmp_path / "a.wav", 0.25)
    assert clip.dtype == np.int16
    assert abs(len(clip) - 32000) <= 2
    assert dominant_hz(clip[:32000], SAMPLE_RATE) == pytest.approx(1000, abs=2)
    # Scaled so that the loudest sample is the amplitude.
    assert abs(int(np.abs(clip.astype(int)).max()) - round(0.25 * 32767)) <= 1
    signal = media.make_signal(AudioSource("file", file=tmp_path / "a.wav"), 0.25)
    assert signal.frame(2).tolist() == clip[640:960].tolist()


def test_file_channels_are_averaged(tmp_path):
    t = np.arange(1600) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 500 * t)
    write_wav(tmp_path / "opposite.wav", np.stack([tone, -tone], axis=1), 16000)
    assert not clips.load_clip(tmp_path / "opposite.wav", 0.25).any()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_file_sample_widths(tmp_path, width):
    t = np.arange(3200) / 32000
    tone = 0.5 * np.sin(2 * np.pi * 400 * t)
    write_wav(tmp_path / "w.wav", tone.reshape(-1, 1), 32000, width)
    decoded, rate = clips.decode_wav(tmp_path / "w.wav")
    assert rate == 32000
    assert np.max(np.abs(decoded - tone)) < 0.01
    clip = clips.load_clip(tmp_path / "w.wav", 1.0)
    assert len(clip) == 3200 and int(np.abs(clip.astype(int)).max()) == 32767


def test_silent_file_stays_silent(tmp_path):
    write_wav(tmp_path / "s.wav", np.zeros((100, 1)), 8000)
    assert not clips.load_clip(tmp_path / "s.wav", 0.25).any()


def test_mixed_is_the_clipped_int32_sum():
    mixer = media.Mixer()
    a = np.full(320, 30000, dtype=np.int16)
    b = np.full(320, 10000, dtype=np.int16)
    assert mixer.mix([a, b]).tolist() == [32767] * 320
    assert mixer.mix([-a, -b]).tolist() == [-32768] * 320
    assert mixer.mix([a, -b]).tolist() == [20000] * 320
    assert not any(mixer.mix([]))
    # One frame is copied, not aliased: the result may be stamped.
    assert mixer.mix([a]).tolist() == [30000] * 320
    with pytest.raises(ValueError):
        mixer.mix([a[:100]])


@given(
    st.lists(st.lists(st.integers(-32768, 32767), min_size=8, max_size=8), max_size=6)
)
def test_mix_matches_definition(patterns):
    # Eight values tiled over the frame keep generation fast and still reach the
    # extremes in every column.
    frames = [np.resize(np.array(p, dtype=np.int16), 320) for p in patterns]
    columns = zip(*(f.tolist() for f in frames), strict=True)
    want = [max(-32768, min(32767, sum(col))) for col in columns]
    got = media.Mixer().mix(frames).tolist()
    assert got == (want if frames else [0] * 320)


def test_stamp_writes_uint64_le():
    frame = np.zeros(320, dtype=np.int16)
    media.stamp(frame, 0x0102030405060708)
    assert frame.tobytes()[:8] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert not frame[4:].any()


@pytest.mark.parametrize("size", [(16, 16), (640, 360), (1920, 1080), (34, 18)])
@pytest.mark.parametrize("pattern", ["moving", "slides"])
def test_i420_sizes(size, pattern):
    width, height = size
    renderer = screen.ShareRenderer(width, height, pattern)
    frame = renderer.frame(0)
    assert frame.dtype == np.uint8
    assert frame.nbytes == screen.i420_size(width, height) == width * height * 3 // 2


def planes(frame: np.ndarray, width: int, height: int):
    y = frame[: width * height].reshape(height, width)
    c = (width // 2) * (height // 2)
    u = frame[width * height : width * height + c].reshape(height // 2, width // 2)
    v = frame[width * height + c :].reshape(height // 2, width // 2)
    return y, u, v


def test_moving_frames_always_differ_and_draw_a_white_bar():
    renderer = screen.ShareRenderer(320, 180, "moving", fps=30)
    previous = None
    for j in range(200):
        frame = bytes(renderer.frame(j))
        assert frame != previous
        previous = frame
        y, u, v = planes(np.frombuffer(frame, np.uint8), 320, 180)
        white = np.all(y == 235, axis=0)
        assert white.sum() == 10  # the bar's width: 320 // 32
        under = np.flatnonzero(white)[::2] // 2
        assert np.all(u[:, under] == 128) and np.all(v[:, under] == 128)
    # Going back in time draws the same picture again.
    assert bytes(renderer.frame(3)) == bytes(
        screen.ShareRenderer(320, 180, "moving", fps=30).frame(3)
    )


def test_slides_are_identical_within_and_differ_across():
    renderer = screen.ShareRenderer(640, 360, "slides", fps=10, slide_s=1.0)
    slides = []
    for first in range(0, 50, 10):
        within = {bytes(renderer.frame(j)) for j in range(first, first + 10)}
        assert len(within) == 1
        slides.append(within.pop())
    assert len(set(slides)) == len(slides)
    assert slides[0] == bytes(
        screen.ShareRenderer(640, 360, "slides", fps=10, slide_s=1.0).frame(9)
    )


def test_slides_at_fractional_frames_per_slide():
    # fps * slide_s = 3.0000000000000004 must still change slide every 3 frames.
    renderer = screen.ShareRenderer(64, 64, "slides", fps=30, slide_s=0.1)
    frames = [bytes(renderer.frame(j)) for j in range(9)]
    assert frames[0] == frames[2] != frames[3] == frames[5] != frames[6]


def test_renderer_rejects_odd_or_tiny_sizes():
    for width, height in ((15, 16), (16, 15), (8, 8)):
        with pytest.raises(ValueError):
            screen.ShareRenderer(width, height)
    with pytest.raises(ValueError):
        screen.ShareRenderer(16, 16, "spiral")
