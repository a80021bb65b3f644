"""The WebSocket audio stream: wire format, batching, and the direct-write data path."""
