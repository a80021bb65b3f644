"""Folders for plugins' files: one per meeting, one per bot run inside it.

Plugins that write files keep them under ``$HMB_DATA_DIR/<their folder>/<meeting_id>/
<run started, UTC>/``, so a person finds a meeting's files by its ID and then by when
the bot was there, and a REST endpoint can find them again from the disk alone.
"""

from __future__ import annotations

import re
from pathlib import Path

_MEETING_ID = re.compile(r"\d{9,11}")


def meeting_folder(root: Path, meeting_id: str) -> Path | None:
    """``root/<meeting_id>``, or ``None`` when ``meeting_id`` cannot be a meeting's
    (so a name from a URL never leads outside ``root``)."""
    meeting_id = meeting_id.strip()
    if not _MEETING_ID.fullmatch(meeting_id):
        return None
    return root / meeting_id


def new_run_folder(root: Path, meeting_id: str, started_utc: str) -> Path:
    """Create ``root/<meeting_id>/<started_utc>``; a second run that started in the
    same second gets ``-2``, and so on."""
    parent = meeting_folder(root, meeting_id)
    if parent is None:
        raise ValueError(f"not a meeting ID: {meeting_id!r}")
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = parent / (started_utc if n == 1 else f"{started_utc}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"too many runs named {started_utc} in {parent}")
