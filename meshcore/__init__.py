"""Mesh core: the domain, the application services, and the adapters they run on."""
