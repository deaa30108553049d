"""The JSON API under /api/v1: a thin entry point over the services."""
