"""Mesh workers: the Celery app, its queues and routing, and thin tasks over the services."""
