"""Where share captures live, and the latest snapshot found from the files alone.

Layout under ``$HMB_DATA_DIR/shares/``::

    <meeting_id>/<started, UTC: 20261203T144306Z>/index.jsonl
                                                 /0001-144310.123Z.png
                                                 /share-1.mp4   (optional)

Snapshots are numbered in order and carry their UTC time of day; ``index.jsonl`` has
one line per snapshot: ``{"file", "utc", "capture_ns", "user_id", "width",
"height"}``.
"""

from __future__ import annotations

from pathlib import Path

from appliance.plugins.storage import meeting_folder, new_run_folder

FOLDER = "shares"
INDEX = "index.jsonl"


def meeting_dir(data_dir: Path, meeting_id: str) -> Path | None:
    """The folder of a meeting's files, or ``None`` for an impossible ID."""
    return meeting_folder(data_dir / FOLDER, meeting_id)


def new_session_dir(data_dir: Path, meeting_id: str, started_utc: str) -> Path:
    """Create the folder of a new run of the meeting."""
    return new_run_folder(data_dir / FOLDER, meeting_id, started_utc)


def latest_snapshot(data_dir: Path, meeting_id: str) -> Path | None:
    """The newest snapshot of the meeting's newest run that has one."""
    folder = meeting_dir(data_dir, meeting_id)
    if folder is None or not folder.is_dir():
        return None
    for session in sorted(folder.iterdir(), reverse=True):
        snapshots = sorted(session.glob("[0-9]*.png")) if session.is_dir() else []
        if snapshots:
            return snapshots[-1]
    return None
