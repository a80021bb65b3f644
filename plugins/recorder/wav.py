"""A WAV file that is valid while it grows, so a crash loses only its last moments.

Theory of operation
-------------------
The file starts with a canonical 44-byte header (RIFF, ``fmt `` for PCM, ``data``)
whose sizes say "empty". Appended audio is held in memory; :meth:`GrowingWav.sync`
writes it to the file and then rewrites the two sizes in the header, in that order, so
at any moment the header describes at most the data that is in the file. After a
kill -9 the file plays up to its last sync: the recorder syncs about every second.
Nothing is fsynced: the data is in the kernel's page cache, which outlives the process.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
HEADER_SIZE = HEADER.size  # 44
_RIFF_SIZE_AT = 4
_DATA_SIZE_AT = 40
_SIZE = struct.Struct("<I")
# The data chunk's size is a 32-bit field: stop a file before it overflows (about
# 18.6 hours of 32 kHz mono).
MAX_DATA = 0xFFFFFFFF - HEADER_SIZE


def header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """A canonical PCM WAV header for 16-bit samples."""
    block = channels * 2
    return HEADER.pack(
        b"RIFF",
        HEADER_SIZE - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        16,
        b"data",
        data_bytes,
    )


class GrowingWav:
    """Appends 16-bit mono PCM to a new WAV file; see the module docstring."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.data_bytes = 0
        self._pending = bytearray()
        # O_EXCL: a recording never overwrites another.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            self._write(header(sample_rate, 0))
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(self, pcm: bytes | memoryview) -> None:
        """Hold ``pcm`` (any bytes-like object) until the next :meth:`sync`."""
        self._pending += memoryview(pcm)

    def sync(self) -> None:
        """Write what is held, then make the header say so."""
        if not self._pending or self._fd < 0:
            return
        pending, self._pending = self._pending, bytearray()
        room = MAX_DATA - self.data_bytes
        if len(pending) > room:
            # Limitation: a file stops growing at the 4 GiB limit of WAV (about
            # 18 hours of one stream); later audio of that stream is not recorded.
            pending = pending[: room - room % 2]
        self._write(pending)
        self.data_bytes += len(pending)
        os.pwrite(
            self._fd, _SIZE.pack(HEADER_SIZE - 8 + self.data_bytes), _RIFF_SIZE_AT
        )
        os.pwrite(self._fd, _SIZE.pack(self.data_bytes), _DATA_SIZE_AT)

    def close(self) -> None:
        """Sync and close; closing twice is harmless."""
        if self._fd < 0:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
