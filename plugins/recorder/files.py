"""Where recordings live, and finding them again from the files alone.

Layout under ``$HMB_DATA_DIR/recordings/``::

    <meeting_id>/<started, UTC: 20261203T144306Z>/mixed.wav
                                                 /<user_id>-<name>.wav
                                                 /share-<user_id>-<name>.wav

One folder per bot run in the meeting, named by when the run started. The REST API
lists and serves recordings from this tree only (not from the recorder's memory), so
they outlive the meeting's removal and the appliance's restarts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from appliance.drivers.base import SAMPLE_RATE
from appliance.errors import InvalidRequest, RecordingNotFound
from appliance.plugins.storage import meeting_folder, new_run_folder
from plugins.recorder.wav import HEADER_SIZE

FOLDER = "recordings"
_SESSION = re.compile(r"\d{8}T\d{6}Z(-\d+)?")
_UNSAFE = re.compile(r"[^\w.-]+")


def sanitise(name: str, limit: int = 48) -> str:
    """A participant's name as part of a file name: letters, digits, ``.-_`` only."""
    return _UNSAFE.sub("_", name).strip("._-")[:limit].strip("._-")


def file_name(stream: str, user_id: int, name: str | None) -> str:
    """``mixed.wav``, ``<user_id>-<name>.wav`` or ``share-<user_id>-<name>.wav``."""
    if stream == "mixed":
        return "mixed.wav"
    clean = sanitise(name or "")
    base = f"{user_id}-{clean}" if clean else str(user_id)
    return f"share-{base}.wav" if stream == "share" else f"{base}.wav"


def meeting_dir(data_dir: Path, meeting_id: str) -> Path | None:
    """The folder of a meeting's files, or ``None`` for an impossible ID."""
    return meeting_folder(data_dir / FOLDER, meeting_id)


def new_session_dir(data_dir: Path, meeting_id: str, started_utc: str) -> Path:
    """Create the folder of a new run of the meeting."""
    return new_run_folder(data_dir / FOLDER, meeting_id, started_utc)


def list_recordings(data_dir: Path, meeting_id: str) -> list[dict[str, Any]] | None:
    """Every WAV file of the meeting, oldest run first; ``None`` if it has none."""
    folder = meeting_dir(data_dir, meeting_id)
    if folder is None or not folder.is_dir():
        return None
    listing = []
    for session in sorted(folder.iterdir()):
        if not (session.is_dir() and _SESSION.fullmatch(session.name)):
            continue
        for path in sorted(session.glob("*.wav")):
            size = path.stat().st_size
            samples = max(0, size - HEADER_SIZE) // 2
            listing.append(
                {
                    "name": f"{session.name}/{path.name}",
                    "session": session.name,
                    "file": path.name,
                    "bytes": size,
                    "duration_s": round(samples / SAMPLE_RATE, 3),
                }
            )
    return listing


def find_recording(data_dir: Path, meeting_id: str, name: str) -> Path:
    """The file a listed ``name`` (``<session>/<file>.wav``) refers to.

    Raises :class:`InvalidRequest` for a name that cannot be a recording and
    :class:`RecordingNotFound` for one that does not exist.
    """
    session, _, file = name.partition("/")
    if (
        not _SESSION.fullmatch(session)
        or not file.endswith(".wav")
        or "/" in file
        or file.startswith(".")
        or _UNSAFE.search(file)
    ):
        raise InvalidRequest(
            f"{name!r} is not a recording name (names look like "
            "20261203T144306Z/mixed.wav; GET .../recordings lists them)"
        )
    folder = meeting_dir(data_dir, meeting_id)
    path = folder / session / file if folder is not None else None
    if path is None or not path.is_file():
        raise RecordingNotFound(f"no recording {name} of meeting {meeting_id.strip()}")
    return path
