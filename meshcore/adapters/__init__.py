"""Adapters: the only code that knows Redis, SQLAlchemy, litellm and Celery."""
