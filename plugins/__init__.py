"""The built-in plugins of the appliance.

Each is registered through the ``headless_meeting_bot`` entry-point group in
``pyproject.toml``, exactly as a third-party plugin is, and enabled with
``HMB_PLUGINS``:

* :mod:`plugins.recorder`: WAV files of every meeting, mixed and per participant;
* :mod:`plugins.share_capture`: PNG snapshots of screen shares when their content
  changes, and optionally an MP4 of the share.
"""
