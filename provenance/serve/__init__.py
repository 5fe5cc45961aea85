"""`provenance serve`: the newsroom desk, one shared library behind an HTTP API and a web page.

    app.py         the ASGI app (Starlette): who may call (auth.py), size limits, error pages
    api_routes.py  the JSON API under /api (openapi.py describes it)
    pages.py       the pages for people (templates/, static/)
    jobs.py        checks, ingests and audits as background jobs behind a small JobRunner interface
    inputs.py      what is accepted: public URLs only, uploads told by their bytes, times
    auth.py        tokens (hash stored, db/tokens.py) and the page's cookie and CSRF value

Starlette, not FastAPI: the API is a dozen routes whose inputs are checked by hand anyway (URLs
resolved, uploads sniffed, limits counted while the body streams), so FastAPI's pydantic layer
would add a dependency and a second way to validate without removing code; the OpenAPI
description is written out (openapi.py) and tested against the routes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings
    from .app import ServeConfig

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8700


def exposed(host: str) -> bool:
    """True when `host` lets other machines connect (anything but a loopback address or localhost)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a name: it may resolve to any interface


def serve(settings: "Settings", config: "ServeConfig", *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          workers: int | None = None) -> None:
    """Serve the desk over the library of `settings` until interrupted (uvicorn)."""
    import uvicorn

    from ..api import Library
    from . import jobs
    from .app import build_app

    # A URL sent to the server is someone else's: even its own host must be public (inputs.py).
    library = Library.from_settings(replace(settings, trust_named_host=False,
                                            allow_private_urls=config.allow_private_urls))
    library.engine  # noqa: B018 - open the database and check its schema before accepting anyone
    runner = jobs.ThreadJobRunner(library, workers=workers or jobs.DEFAULT_WORKERS)
    app = build_app(library, config, runner)
    try:
        # Forwarded headers are believed only from a proxy on this machine (the README's set-up).
        uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                    server_header=False, log_level="info")
    finally:
        library.close()
