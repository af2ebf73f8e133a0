"""The ``bosco cdn`` HTTP app (Starlette on uvicorn): serves only the keys of the current asset set.

No path on disk is reachable by URL: a request path is looked up as an asset key in an in-memory
mapping, so ``/../``, ``%2e%2e`` and absolute paths can only miss (404 with the index page).
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from bosco.assetset import AssetSet
from bosco.errors import BoscoError
from bosco.fragments import render_repos
from bosco.pipeline import INDEX_KEY

# The CORS headers the original Bosco cdn sent on every response.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Credentials": "false",
    "Access-Control-Max-Age": "86400",
    "Access-Control-Allow-Headers": "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept",
}
NO_CACHE = "no-cache, must-revalidate"
HTML = "text/html; charset=utf-8"
BUILD_WAIT = 300.0  # seconds a request waits for the first build


class AssetHolder:
    """Holds the served AssetSet; ``swap`` replaces it in one assignment, so a request sees either
    the old or the new set, never half of a rebuild."""

    def __init__(self, asset_set: AssetSet | None = None, base_url: str = "") -> None:
        self.current = asset_set or AssetSet({}, ())
        self.base_url = base_url
        self.ready = threading.Event()
        if asset_set is not None:
            self.ready.set()

    def swap(self, asset_set: AssetSet) -> None:
        self.current = asset_set
        self.ready.set()


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def create_app(holder: AssetHolder) -> Starlette:
    """The ASGI app serving ``holder.current``: GET/HEAD of keys, OPTIONS preflight, ``/repos``."""

    def page(status: int, body: bytes) -> Response:
        return Response(body, status, {**CORS_HEADERS, "Cache-Control": NO_CACHE}, media_type=HTML)

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", 200, CORS_HEADERS)
        if request.method not in ("GET", "HEAD"):  # a pseudo-CDN is read-only
            return Response(b"", 405, {**CORS_HEADERS, "Allow": "GET, HEAD, OPTIONS"})
        if not holder.ready.is_set():  # the first build is still running: wait for it
            await anyio.to_thread.run_sync(holder.ready.wait, BUILD_WAIT)
        assets = holder.current
        path = request.scope["path"]
        if path == "/repos":
            return page(200, render_repos(assets.services, holder.base_url).encode("utf-8"))
        output = assets.get(path[1:]) if path.startswith("/") else None
        if output is None:
            index = assets.get(INDEX_KEY)
            return page(404, index.data if index else b"not found")
        etag = f'"{output.sha256[:32]}"'
        headers = {**CORS_HEADERS, "Cache-Control": NO_CACHE, "ETag": etag}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(output.data, 200, headers, media_type=output.content_type)

    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    # Targets no route matches (``OPTIONS *``, absolute-form ``GET http://host/x``) get the same answers.
    app.router.default = request_response(endpoint)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0 picks a free one).

    Raises ``BoscoError`` naming the port and the fix when it is in use or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BoscoError(f"port {port} on {host} is already in use",
                             "stop the other process or pass --port (or set cdn.port)") from exc
        raise BoscoError(f"cannot listen on {host}:{port}: {exc.strerror}", "check --host/--port") from exc
    return sock


class CdnServer:
    """uvicorn serving ``create_app(holder)`` on an already bound socket.

    ``run()`` blocks (the CLI); ``start()`` serves from a background thread and returns once it
    accepts connections (tests); ``stop()`` shuts it down. ``port`` is the bound port."""

    def __init__(self, holder: AssetHolder, host: str = "127.0.0.1", port: int = 7334) -> None:
        self.socket = bind(host, port)
        self.host = host
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(create_app(holder), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        if on_ready:
            threading.Thread(target=self._notify, args=(on_ready,), daemon=True).start()
        self._server.run(sockets=[self.socket])

    def _notify(self, on_ready: Callable[[], None]) -> None:
        while not self._server.started and not self._server.should_exit:
            threading.Event().wait(0.01)
        if self._server.started:
            on_ready()

    def start(self, timeout: float = 10.0) -> CdnServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self.run, args=(ready.set,), daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise BoscoError(f"server on {self.host}:{self.port} did not start within {timeout} s")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self.socket.close()
