"""The built-in share capture: PNG snapshots when a share's content changes."""

from plugins.share_capture.plugin import ShareCapturePlugin

__all__ = ["ShareCapturePlugin"]
