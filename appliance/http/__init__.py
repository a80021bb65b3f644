"""The HTTP front end: REST, the WebSocket handshake, and the connections under them."""
