"""The audio bus: frames from workers to WebSocket clients, per meeting."""
