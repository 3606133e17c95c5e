"""Routes serving the console's static files from memory, with security and cache headers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

__all__ = ["CSP", "STATIC", "install_console"]

STATIC = Path(__file__).with_name("static")

#: No inline script or style, nothing from another origin, never inside a frame.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str, str]]:
    """name -> (body, content type, ETag) for every file under ``static/`` (read once)."""
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC.iterdir()):
        kind = _TYPES.get(path.suffix)
        if kind is None or not path.is_file():
            continue
        body = path.read_bytes()
        files[path.name] = (body, kind, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


def install_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (``/console`` redirects there)."""
    files = _load()

    async def redirect(request: Request) -> Response:
        # relative, so a path prefix added by a reverse proxy is kept
        return RedirectResponse("console/", status_code=308, headers=_SECURITY)

    async def asset(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        found = files.get(name)
        if found is None:
            return Response(
                f"botwire console: no file {name[:80]!r}; open /console/.",
                404,
                {**_SECURITY, "Cache-Control": "no-store"},
                media_type="text/plain",
            )
        body, kind, etag = found
        headers = {**_SECURITY, "ETag": etag}
        inm = request.headers.get("if-none-match")
        if inm is not None and etag in {t.strip() for t in inm.split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, headers=headers, media_type=kind)

    app.add_route("/console", redirect, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/console/", asset, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/console/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False)
