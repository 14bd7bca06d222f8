"""Mesh REST API: a thin flask-smorest layer over the services."""
