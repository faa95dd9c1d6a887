"""`/docs` without the internet: Swagger UI's scripts and styles served by the service itself.

FastAPI's default page loads them from a CDN (blank offline); here they come from the
`swagger-ui-bundle` package, under `/docs/assets/`. ReDoc, which it cannot serve locally, is off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
"""Where Swagger UI's files are served."""


def serve_docs(app: FastAPI) -> None:
    """Add `/docs` (its assets local) to an app created with `docs_url=None`."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    oauth2_redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=oauth2_redirect_url,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
