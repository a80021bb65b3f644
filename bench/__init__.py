"""Benchmark harness of the appliance (issue 5): ``python -m bench --help``.

It starts the appliance on the sim driver and the Go reference server ``gofanout``
(``../shared/anchors``) one after the other, runs the same WebSocket load against each
with real client code in processes of their own, and prints our figures beside the
reference's and as ratios to it, so a noisy machine does not hide a regression.
"""
