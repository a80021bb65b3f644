"""Pictures of a simulated screen share: I420 test patterns drawn with numpy.

Imported by the driver only when a scenario shares a screen, so a worker without a
share never loads numpy. A share picture lives in one reused I420 buffer that
:class:`ShareRenderer` patches in place: the "moving" pattern redraws only the
columns of its bar, and "slides" repaints only when the slide changes.
"""

from __future__ import annotations

import numpy as np


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
