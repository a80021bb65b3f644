"""The framed binary protocol between the supervisor and its workers."""
