"""The console: a browser client of the public API, served as static files at /console.

The files hold nothing secret, so they need no key: the page asks for one and sends it as a
bearer header on every API call, like any other client. It is a plain Flask blueprint, not a
flask-smorest one, so that it stays out of the OpenAPI document.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect

PATH = "/console"
STATIC = "static"

# Model output and memory are untrusted: the pages render them as text, and this policy makes
# sure that even a slip could not run a script that is not one of the console's own files.
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def create_blueprint() -> Blueprint:
    """The console's pages and assets under /console."""
    blp = Blueprint(
        "console",
        __name__,
        url_prefix=PATH,
        static_folder=STATIC,
        static_url_path="/assets",
    )

    def index() -> Response:
        response = blp.send_static_file("index.html")
        # Always asked again, so a new release's page never runs against stale modules.
        response.headers["Cache-Control"] = "no-cache"
        return response

    blp.add_url_rule("", "index", index)
    blp.add_url_rule("/", "index_slash", index)
    blp.after_request(_secure)
    return blp


def install(app: Flask) -> None:
    """Serve the console, and send the root URL there: it is where a newcomer looks first."""
    app.register_blueprint(create_blueprint())
    app.add_url_rule("/", "root", lambda: redirect(PATH, 302))


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
