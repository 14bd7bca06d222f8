"""Marshmallow schemas: they validate what comes in and shape what goes out."""
