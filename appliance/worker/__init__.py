"""The worker process: one per meeting, hosting one driver."""
