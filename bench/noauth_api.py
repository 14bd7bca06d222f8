"""Mesh's API with the key check skipped, for the bench alone: the price of authentication is
a GET served by `meshapi.app:create_app()` against the same GET served by this app.

No setting turns authentication off, and none is added for this: this factory, which no
deployment runs, swaps the API's check of the Authorization header for a fixed caller of the
bench's tenant, so the two apps differ by the key check and nothing else.
"""

from __future__ import annotations

from flask import Flask, g

from meshapi import auth
from meshapi.app import create_app as create_mesh_app
from meshcore.domain.keys import ALL_SCOPES, Principal
from meshcore.domain.network import DEFAULT_TENANT

CALLER = Principal("bench-no-key-check", DEFAULT_TENANT, ALL_SCOPES)


def create_app() -> Flask:
    app = create_mesh_app()
    hooks = app.before_request_funcs[None]
    hooks[hooks.index(auth._authenticate)] = _trusted_caller
    return app


def _trusted_caller() -> None:
    g.principal = CALLER
