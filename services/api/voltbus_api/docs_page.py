"""The interactive API docs at /api/docs, with Swagger UI served from this process.

FastAPI's default page loads Swagger UI from a CDN, so on a Pi without internet it stays blank.
The assets come from the `fastapi-offline` package (a packaged Swagger UI 5, not a hand copy) and
the page has no inline script, so it works under a `Content-Security-Policy` of 'self'.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/api/docs"
ASSETS_URL = "/api/docs-assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))

# Relative URLs: right behind a reverse proxy that serves the API under a prefix, too.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: API docs</title>
<link rel="icon" href="docs-assets/favicon.png">
<link rel="stylesheet" href="docs-assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs-assets/swagger-ui-bundle.js"></script>
<script src="docs-assets/init.js"></script>
</body>
</html>
"""
_INIT = """"use strict";
window.ui = SwaggerUIBundle({
  url: new URL("v1/openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


def install(app: FastAPI) -> None:
    """Serve the docs page and its assets (create the app with docs_url=None)."""
    page = _PAGE.format(title=app.title)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{ASSETS_URL}/init.js", include_in_schema=False)
    async def init() -> Response:
        return Response(_INIT, media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
