"""Pictures of a share: did the content change, and the frame as a PNG.

Change detection works on a coarse grid of luma averages (64 x 36 blocks, about 30 px
square at 1080p): content changed when at least ``min_blocks`` blocks moved by more than
``threshold`` grey levels since the last snapshot. Averaging ignores encoder noise; the
block count ignores a mouse pointer, which touches at most four blocks. Identical
frames give identical grids, so a still share never counts as changed.

PNG encoding goes through Pillow; the conversion from I420 (BT.601, limited range, as
Zoom and the simulator deliver it) to RGB is integer arithmetic in numpy.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from appliance.plugins import ShareFrame

GRID_COLUMNS = 64
GRID_ROWS = 36


def luma_grid(y: np.ndarray) -> np.ndarray:
    """Average luma of each block of a coarse grid over the picture."""
    height, width = y.shape
    rows, columns = min(GRID_ROWS, height), min(GRID_COLUMNS, width)
    bh, bw = height // rows, width // columns
    blocks = y[: bh * rows, : bw * columns].reshape(rows, bh, columns, bw)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def changed(
    grid: np.ndarray, before: np.ndarray | None, threshold: float, min_blocks: int
) -> bool:
    """Whether the picture of ``grid`` differs from the one of ``before``."""
    if before is None or before.shape != grid.shape:
        return True
    moved = np.count_nonzero(np.abs(grid - before) > threshold)
    return moved >= max(1, min_blocks)


def to_rgb(frame: ShareFrame) -> np.ndarray:
    """The frame as an ``(height, width, 3)`` uint8 RGB array."""
    c = frame.y.astype(np.int32) - 16
    d = frame.u.astype(np.int32) - 128
    e = frame.v.astype(np.int32) - 128
    # Each chroma sample covers a 2 x 2 block of luma.
    d = d.repeat(2, axis=0).repeat(2, axis=1)[: frame.height, : frame.width]
    e = e.repeat(2, axis=0).repeat(2, axis=1)[: frame.height, : frame.width]
    c = 298 * c + 128
    rgb = np.empty((frame.height, frame.width, 3), dtype=np.uint8)
    rgb[..., 0] = np.clip((c + 409 * e) >> 8, 0, 255)
    rgb[..., 1] = np.clip((c - 100 * d - 208 * e) >> 8, 0, 255)
    rgb[..., 2] = np.clip((c + 516 * d) >> 8, 0, 255)
    return rgb


def to_png(frame: ShareFrame, compress_level: int = 3) -> bytes:
    """The frame as PNG bytes (a middling compression level: fast, still small for
    slides)."""
    out = io.BytesIO()
    Image.fromarray(to_rgb(frame)).save(out, "PNG", compress_level=compress_level)
    return out.getvalue()
