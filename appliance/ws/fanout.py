"""The same bytes to many sockets in one native call (see ``native/fanout.c``)."""

from __future__ import annotations

import errno

from appliance._fanout import ffi, lib

# What a send that found the socket's buffer full returns.
FULL = -errno.EAGAIN


def send_to_all(fds: list[int], data: bytes) -> list[int]:
    """Send ``data`` to each socket in ``fds`` without blocking.

    Returns, per socket, the bytes written (possibly fewer than ``len(data)``) or a
    negated ``errno``: :data:`FULL` when its buffer had no room at all.
    """
    count = len(fds)
    results = ffi.new("ssize_t[]", count)
    lib.hmb_send_all(fds, count, ffi.from_buffer(data), len(data), results)
    return ffi.unpack(results, count)
