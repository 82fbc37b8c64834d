"""The two web pages (analysts' console, wall screen), served by the API process itself.

`make install` builds web/ (Vite) into web/dist; this router serves that folder: `/` leads to the
console's login, `/console` and `/screen` answer their page's shell (any sub-path too: the pages
route on the client), `/assets/…` the hashed scripts and styles, gzip-compressed when the
browser accepts it. The shells hold no data: everything comes from authenticated API calls, so
these routes are public. Nothing is loaded from elsewhere (the command centre's network is
closed), which the Content-Security-Policy states.
"""
from __future__ import annotations

import gzip
import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from api.security import public

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "web" / "dist"
PAGES = ("console", "screen")
# 'unsafe-eval': Alpine.js evaluates its attribute expressions; ECharts sets inline styles.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
SHELL = public("static page shells and assets: no data, everything else needs credentials")
COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".html")


class WebFiles:
    """The built front end in memory: compressed once, served many times (a wall screen
    reloads rarely, analysts often)."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, tuple[float, tuple[bytes, bytes | None, str]]] = {}

    def get(self, relative: str) -> tuple[bytes, bytes | None, str] | None:
        try:
            path = (self.root / relative).resolve()
            if not path.is_relative_to(self.root.resolve()) or not path.is_file():
                return None
            mtime = path.stat().st_mtime    # a rebuild (`make install`) is served at once
        except (OSError, ValueError):       # a name too long, a NUL byte: no such file
            return None
        kept = self.cache.get(relative)
        if kept is None or kept[0] != mtime:
            body = path.read_bytes()
            packed = gzip.compress(body, 9) if path.suffix in COMPRESSIBLE else None
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            kept = self.cache[relative] = (mtime, (body, packed, kind))
        return kept[1]


def _send(request: Request, found: tuple[bytes, bytes | None, str], cache: str) -> Response:
    body, packed, kind = found
    headers = {"Cache-Control": cache, "Content-Security-Policy": CSP, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if packed is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = packed
    if kind.startswith("text/") or kind.endswith(("javascript", "json")):
        kind += "; charset=utf-8"
    return Response(body, media_type=kind, headers=headers)


def web_router(root: Path | None = None) -> APIRouter:
    files = WebFiles(root or DEFAULT_ROOT)
    router = APIRouter(include_in_schema=False)

    def page(name: str, request: Request) -> Response:
        found = files.get(f"{name}/index.html")
        if found is None:
            raise HTTPException(404, "the web front end is not built: run `make install`")
        return _send(request, found, "no-cache")

    @router.get("/", dependencies=[SHELL])
    def home(request: Request) -> RedirectResponse:
        query = request.url.query      # ?lang=en travels along
        return RedirectResponse("/console" + (f"?{query}" if query else ""), status_code=303)

    def shells(name: str):
        def shell(request: Request) -> Response:
            return page(name, request)

        def shell_path(request: Request, path: str) -> Response:   # client-side routes
            return page(name, request)
        return shell, shell_path

    for name in PAGES:
        shell, shell_path = shells(name)
        router.add_api_route(f"/{name}", shell, methods=["GET"], dependencies=[SHELL])
        router.add_api_route(f"/{name}/{{path:path}}", shell_path, methods=["GET"],
                             dependencies=[SHELL])

    @router.get("/assets/{path:path}", dependencies=[SHELL])
    def asset(request: Request, path: str) -> Response:
        found = files.get(f"assets/{path}")
        if found is None:
            raise HTTPException(404, f"no asset {path!r}")
        # Vite puts a content hash in every asset name: a new build is a new name.
        return _send(request, found, "public, max-age=31536000, immutable")

    return router
