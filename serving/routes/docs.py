"""API documentation without the internet: Swagger UI (``/docs``) and ReDoc (``/redoc``) from
assets on this machine.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank where the
service cannot reach one. The assets come from the ``fastapi-offline`` wheel and the
pages start them from ``/static/docs.js`` (no inline script, as the CSP of
``serving.security`` allows none).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
STATIC = Path(__file__).parent.parent / "static"  # the service's own CSS and scripts
STATIC_URL = "/static"

SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"><link rel="icon" href="{assets}/favicon.png">
</head><body><div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script><script src="{static}/docs.js"></script>
</body></html>"""

REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<link rel="icon" href="{assets}/favicon.png"></head>
<body><redoc spec-url="{openapi}"></redoc><script src="{assets}/redoc.standalone.js"></script>
</body></html>"""


def add_static_and_docs(app: FastAPI) -> None:
    """Mount the static files, the docs' assets and the two pages (the app is made with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="static")
    fields = {"title": app.title, "assets": ASSETS_URL, "static": STATIC_URL}
    fields["openapi"] = app.openapi_url

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(SWAGGER.format(**fields))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC.format(**fields))
