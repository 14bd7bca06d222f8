"""The request's view of the services."""

from __future__ import annotations

from flask import current_app, g

from meshcore.bootstrap import Mesh, Services


def mesh() -> Mesh:
    return current_app.extensions["mesh"]


def services() -> Services:
    """The services of the tenant whose key made this request."""
    return mesh().tenant(g.principal.tenant_id)
