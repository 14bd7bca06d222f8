"""The request's view of the services."""

from __future__ import annotations

from flask import current_app

from meshcore.bootstrap import Mesh, Services


def mesh() -> Mesh:
    return current_app.extensions["mesh"]


def services() -> Services:
    # One tenant until authentication lands; the tenant is already in every row and key.
    m = mesh()
    return m.tenant(m.settings.tenant)
