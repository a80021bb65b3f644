"""The supervisor: the process owning the HTTP server, the workers and the plugins."""
