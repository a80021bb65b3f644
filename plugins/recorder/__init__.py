"""The built-in recorder: WAV files per meeting (mixed) and per participant."""

from plugins.recorder.plugin import RecorderPlugin

__all__ = ["RecorderPlugin"]
