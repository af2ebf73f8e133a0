"""The ``bosco cdn`` HTTP app (Starlette on uvicorn): serves only the keys of the current asset set.

No path on disk is reachable by URL: a request path is looked up as an asset key in an in-memory
mapping, so ``/../``, ``%2e%2e`` and absolute paths can only miss (404 with the index page).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute, request_response
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from bosco.assetset import AssetSet
from bosco.config import CdnSection
from bosco.errors import BoscoError
from bosco.fragments import render_repos
from bosco.pipeline import INDEX_KEY

if TYPE_CHECKING:
    from bosco.release_proxy import RemoteReleases

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
WANTED_LIMIT = 64  # services requests ask the first build to take next (the names of other paths are kept too)
EVENTS_PATH = "/_bosco/events"
SOCKET_PATH = "/_bosco/socket"
LIVERELOAD_PATH = "/_bosco/livereload.js"
KEEPALIVE = 15.0  # seconds between SSE comment lines on an idle stream (keeps proxies from closing it)
RECONNECT_MS = 1000  # the SSE ``retry`` the browser waits before reconnecting


Message = tuple[str, str]  # (event name, JSON data)


class EventHub:
    """Live-reload events fanned out to every connected client: WebSocket clients of
    ``/_bosco/socket`` (RFC 6455; one JSON text message ``{"event": ..., "data": ...}`` each) and
    server-sent events clients of ``/_bosco/events`` (WHATWG HTML §9.2).

    ``publish`` may be called from any thread; each subscriber is an asyncio queue on the server's
    loop. A message published with ``key`` and ``retain=True`` is also replayed to clients that
    connect later, until a message with the same key and ``retain=False`` replaces it (used for
    failed rebuilds, so a page loaded during a failure still shows it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message | None]]] = set()
        self._retained: dict[str, Message] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: str, data: Any, key: str | None = None, retain: bool = False) -> None:
        """Send ``event`` with ``data`` (JSON-encoded) to every connected client."""
        message = (event, json.dumps(data, separators=(",", ":")))
        with self._lock:
            if key is not None:
                if retain:
                    self._retained[key] = message
                else:
                    self._retained.pop(key, None)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            self._send(subscriber, message)

    def close(self) -> None:
        """End every open stream and socket (server shutdown)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            self._send(subscriber, None)

    def _send(self, subscriber: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message | None]],
              message: Message | None) -> None:
        loop, queue = subscriber
        try:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        except RuntimeError:  # the loop is closed: the server is gone
            with self._lock:
                self._subscribers.discard(subscriber)

    def _subscribe(self) -> tuple[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message | None]], list[Message]]:
        """A new subscriber on the running loop (it gets every message published from now on) and
        the retained messages to send it first."""
        subscriber: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message | None]] = (
            asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            self._subscribers.add(subscriber)
            return subscriber, list(self._retained.values())

    def _unsubscribe(self, subscriber: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message | None]]) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @staticmethod
    async def _messages(queue: asyncio.Queue[Message | None], retained: list[Message]) -> AsyncIterator[Message | None]:
        """The retained messages, then each published one; None after every ``KEEPALIVE`` seconds
        without one (time for a keep-alive); ends at ``close``."""
        for message in retained:
            yield message
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except asyncio.TimeoutError:
                yield None
                continue
            if message is None:
                return
            yield message

    async def stream(self) -> AsyncIterator[str]:
        """One server-sent events client's stream: a ``retry`` line, then the messages as events
        (subscribed before the first line, so a ``close`` right after it still ends the stream)."""
        subscriber, retained = self._subscribe()
        try:
            yield f"retry: {RECONNECT_MS}\n: connected\n\n"
            async for message in self._messages(subscriber[1], retained):
                yield ": keepalive\n\n" if message is None else f"event: {message[0]}\ndata: {message[1]}\n\n"
        finally:
            self._unsubscribe(subscriber)

    async def serve_socket(self, websocket: WebSocket) -> None:
        """One WebSocket client: the messages as JSON text messages (a ``{"event": "keepalive"}``
        when idle) until the client goes or the server stops. A socket, unlike an event stream,
        takes none of the six HTTP/1.1 connections a browser allows per host, however many tabs
        are open."""
        await websocket.accept()
        subscriber, retained = self._subscribe()
        closed = asyncio.ensure_future(websocket.receive())  # a message from the client or its close
        messages = self._messages(subscriber[1], retained)
        following: asyncio.Future[Message | None] | None = None
        try:
            while True:
                following = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({following, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    return
                try:
                    message = following.result()
                except StopAsyncIteration:
                    await websocket.close(1001)  # going away: the server stops
                    return
                event, data = message if message is not None else ("keepalive", "null")
                await websocket.send_text(f'{{"event":{json.dumps(event)},"data":{data}}}')
        except WebSocketDisconnect:
            return
        finally:
            self._unsubscribe(subscriber)
            closed.cancel()
            if following is not None and not following.done():
                # the generator runs inside this task until it is cancelled and has ended: closing
                # it before would raise "aclose(): asynchronous generator is already running"
                following.cancel()
                await asyncio.wait({following})
            await messages.aclose()


class AssetHolder:
    """Holds the served AssetSet; ``swap`` replaces it in one assignment, so a request sees either
    the old or the new set, never half of a rebuild. ``events`` is the live-reload event stream.
    ``ready`` is set once an asset set is served, ``stopping`` once the server shuts down. While
    the first build runs, ``offer`` serves the services built so far (``partial``: their names) to
    the requests for their keys, and ``wanted`` lists the services requests wait for (the first
    build takes them next).
    ``remote`` (``release_proxy.RemoteReleases``, ``bosco cdn --remote``) answers the keys the
    asset set does not have: the workspace's services always win."""

    def __init__(self, asset_set: AssetSet | None = None, base_url: str = "",
                 remote: RemoteReleases | None = None) -> None:
        self.current = asset_set or AssetSet({}, ())
        self.base_url = base_url
        self.remote = remote
        self.events = EventHub()
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.pending: frozenset[str] = frozenset()
        self.partial: frozenset[str] = frozenset()
        self.wanted: list[str] = []
        self._changed = threading.Condition()
        if asset_set is not None:
            self.ready.set()

    def swap(self, asset_set: AssetSet, pending: frozenset[str] = frozenset()) -> None:
        """Serve ``asset_set`` from now on. ``pending`` are keys it lacks that the next set will
        have (the concatenations a quick ``cdn -w`` pass leaves to the complete one): a request
        for one waits for that set (``wait_built``) instead of answering 404."""
        with self._changed:
            self.current = asset_set
            self.pending = pending
            self.ready.set()
            self._changed.notify_all()

    def offer(self, asset_set: AssetSet, services: Iterable[str], pending: frozenset[str] = frozenset()) -> None:
        """Serve ``asset_set`` (the first build so far) to the requests for the keys of ``services``
        (``<service>/...``; ``pending`` as for ``swap``); the others go on waiting for ``swap``."""
        with self._changed:
            self.current = asset_set
            self.partial = frozenset(services)
            self.pending = pending
            self._changed.notify_all()

    def asset_keys(self) -> frozenset[str]:
        """The keys of the assets served (pages such as the index page left out), the ``pending``
        ones included: the same whether a quick pass, whose concatenations are pending, or its
        complete pass is served."""
        with self._changed:
            current, pending = self.current, self.pending
        return frozenset(k for k, o in current.outputs.items() if o.kind != "page") | pending

    def stop(self) -> None:
        """The server is shutting down: end the live-reload streams and wake requests that wait
        for the first build (they answer 503)."""
        self.events.close()
        with self._changed:
            self.stopping.set()
            self._changed.notify_all()

    def wait_ready(self, timeout: float, key: str | None = None) -> bool:
        """Block until an asset set is served (True), the server stops or ``timeout`` seconds pass;
        for a ``key`` of a service (``<service>/...``) only until that service is ``offer``ed
        (True), and the service is ``wanted`` meanwhile."""
        service = key.split("/", 1)[0] if key else ""

        def answerable() -> bool:
            return self.ready.is_set() or bool(service) and service in self.partial

        with self._changed:
            if service and not answerable() and service not in self.wanted and len(self.wanted) < WANTED_LIMIT:
                self.wanted.append(service)
            self._changed.wait_for(lambda: answerable() or self.stopping.is_set(), timeout)
            return answerable()

    def wait_built(self, key: str, timeout: float) -> None:
        """Block until ``key`` is no longer ``pending``, the server stops or ``timeout`` seconds pass."""
        with self._changed:
            self._changed.wait_for(lambda: key not in self.pending or self.stopping.is_set(), timeout)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


_BYTE_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*", re.I)


class RangeNotSatisfiable(Exception):
    """A byte range that starts at or after the end of the representation (answer 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions (inclusive) a ``Range`` header asks for, RFC 9110 §14.1.2,
    within a representation of ``size`` bytes: ``bytes=0-1``, ``bytes=100-`` or the suffix
    ``bytes=-500``; a ``last`` past the end is clipped. None when there is no header or it is
    ignored, as S3 ignores it: not one well-formed byte range (several ranges, other units,
    garbage). Raises ``RangeNotSatisfiable`` when ``first`` is at or after ``size`` (or for a
    ``bytes=-0`` suffix)."""
    match = _BYTE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        if int(last) == 0:
            raise RangeNotSatisfiable
        return (max(size - int(last), 0), size - 1) if size else None
    if last and int(last) < int(first):
        return None  # invalid: ignored
    if int(first) >= size:
        raise RangeNotSatisfiable
    return int(first), min(int(last), size - 1) if last else size - 1


def representation(request: Request, data: bytes, content_type: str, etag: str,
                   extra: Mapping[str, str] | None = None) -> Response:
    """The answer to a GET/HEAD of one representation (``data``, its strong ``etag``, ``extra``
    headers such as ``Content-Encoding``): 304 when ``If-None-Match`` matches (RFC 9110 §13.1.2),
    206 with ``Content-Range`` for one satisfiable byte range (``byte_range``; ``If-Range`` applies
    it only while ``etag`` matches), 416 for a range past the end, else 200."""
    headers = {**CORS_HEADERS, "Cache-Control": NO_CACHE, "ETag": etag, "Accept-Ranges": "bytes", **(extra or {})}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if_range = request.headers.get("if-range")
    size = len(data)
    try:  # If-Range: the range only applies to this exact representation (strong ETag match)
        span = byte_range(request.headers.get("range"), size) if if_range in (None, etag) else None
    except RangeNotSatisfiable:
        return Response(b"", 416, {**headers, "Content-Range": f"bytes */{size}"})
    if span is None:
        return Response(data, 200, headers, media_type=content_type)
    first, last = span
    return Response(data[first:last + 1], 206, {**headers, "Content-Range": f"bytes {first}-{last}/{size}"},
                    media_type=content_type)


def create_app(holder: AssetHolder) -> Starlette:
    """The ASGI app serving ``holder.current``: GET/HEAD of keys, OPTIONS preflight, ``/repos``, and
    the live-reload socket ``/_bosco/socket`` (WebSocket), stream ``/_bosco/events``
    (text/event-stream) and script ``/_bosco/livereload.js``."""
    livereload_js = resources.files("bosco.templates").joinpath("livereload.js").read_bytes()

    async def socket(websocket: WebSocket) -> None:
        await holder.events.serve_socket(websocket)

    async def events(request: Request) -> Response:
        headers = {**CORS_HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(holder.events.stream(), headers=headers, media_type="text/event-stream")

    async def script(request: Request) -> Response:
        headers = {**CORS_HEADERS, "Cache-Control": NO_CACHE}
        return Response(livereload_js, 200, headers, media_type="text/javascript; charset=utf-8")

    def page(status: int, body: bytes) -> Response:
        return Response(body, status, {**CORS_HEADERS, "Cache-Control": NO_CACHE}, media_type=HTML)

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", 200, CORS_HEADERS)
        if request.method not in ("GET", "HEAD"):  # a pseudo-CDN is read-only
            return Response(b"", 405, {**CORS_HEADERS, "Allow": "GET, HEAD, OPTIONS"})
        path = request.scope["path"]
        if not holder.ready.is_set():  # the first build is still running: wait for it (or the service asked for)
            await anyio.to_thread.run_sync(holder.wait_ready, BUILD_WAIT, path[1:] if path.startswith("/") else None)
            if holder.stopping.is_set():
                return Response(b"bosco cdn is stopping\n", 503,
                                {**CORS_HEADERS, "Cache-Control": NO_CACHE, "Connection": "close"},
                                media_type="text/plain; charset=utf-8")
        assets = holder.current
        if path == "/repos":
            return page(200, render_repos(assets.services, holder.base_url).encode("utf-8"))
        key = path[1:] if path.startswith("/") else None
        # the index page is rendered when first asked for (tens of ms): off the event loop
        output = await anyio.to_thread.run_sync(assets.get, key) if key == INDEX_KEY else assets.get(key)
        if output is None and (key in holder.pending or holder.current is not assets):
            # being built (or the set was swapped meanwhile): served by the set that has it
            await anyio.to_thread.run_sync(holder.wait_built, key, BUILD_WAIT)
            assets = holder.current
            output = assets.get(key)
        if output is None and holder.remote is not None and path.startswith("/"):
            answer = await anyio.to_thread.run_sync(holder.remote.respond, path[1:],
                                                    request.headers.get("accept-encoding"))
            if answer is not None and answer.etag is None:  # an upstream error, passed through
                return Response(answer.body, answer.status, {**CORS_HEADERS, "Cache-Control": NO_CACHE},
                                media_type=answer.content_type)
            if answer is not None:
                return representation(request, answer.body, answer.content_type, answer.etag, answer.headers)
        if output is None:
            index = await anyio.to_thread.run_sync(assets.get, INDEX_KEY)
            return page(404, index.data if index else b"not found")
        return representation(request, output.data, output.content_type, f'"{output.sha256[:32]}"')

    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[
        WebSocketRoute(SOCKET_PATH, socket),
        Route(EVENTS_PATH, events, methods=["GET"]),
        Route(LIVERELOAD_PATH, script, methods=["GET", "HEAD"]),
        Route("/{path:path}", endpoint, methods=methods),
    ])
    # Targets no route matches (``OPTIONS *``, absolute-form ``GET http://host/x``) get the same answers.
    app.router.default = request_response(endpoint)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free one).

    Raises ``BoscoError`` naming the port and the fix when it is in use or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections: without it every
    # keep-alive response waits ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(ACCEPT_BACKLOG)  # a request made while the server starts waits in the backlog, never refused
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BoscoError(f"port {port} on {host} is already in use",
                             "stop the other process or pass --port (or set cdn.port)") from exc
        raise BoscoError(f"cannot listen on {host}:{port}: {exc.strerror}", "check --host/--port") from exc
    return sock


HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a complete request head
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open (uvicorn's default)
ACCEPT_BACKLOG = 128  # listen(2) backlog, also how many connections asyncio accepts in one go


def connection_limit() -> int:
    """How many connections ``bosco cdn`` holds at once: the process's file-descriptor limit
    (``RLIMIT_NOFILE``) less an eighth (at least 32) for files, watches and workers; from 16 up to
    1024 (224 at macOS's default limit of 256, 896 at Linux's 1024)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    return 1024 if soft == resource.RLIM_INFINITY else max(16, min(1024, soft - max(32, soft // 8)))


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with the defences a dev server needs against slow or broken clients.

    - A connection must send a complete request head within ``header_timeout`` seconds of opening
      (or of its previous response), else it is closed: slowloris clients cannot hold it open.
    - Beyond ``max_connections`` open connections, a new connection closes the one that has been
      waiting longest for a request head (uvicorn's ``limit_concurrency`` answers 503 only once
      every connection is busy), so well-behaved clients keep being served during a flood.
    - A request whose body breaks HTTP/1.1 framing (a malformed chunk) gets uvicorn's 400 and the
      app's own answer is dropped quietly instead of failing with a traceback."""

    header_timeout = HEADER_TIMEOUT
    max_connections = 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._wait_for_head()
        if len(self.connections) > self.max_connections:
            waiting = [c for c in self.connections if isinstance(c, _Protocol) and c is not self
                       and c._head_timer is not None]
            if waiting:
                min(waiting, key=lambda c: c._waiting_since)._close_waiting()

    def _wait_for_head(self) -> None:
        self._waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.header_timeout, self._close_waiting)

    def _head_received(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_waiting(self) -> None:
        self._head_received()
        if not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_received()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_received()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._head_received()  # the connection now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._head_timer is None:
            self._wait_for_head()

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # the app is already answering
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:  # too late for a 400: just close
                self.transport.close()
                return
        super().send_400_response(msg)


class _LoopProblems:
    """The server loop's exception handler: when accept() fails for lack of resources (EMFILE: the
    process is out of file descriptors) asyncio stops accepting for a second, reports every failed
    accept of the batch and schedules one retry each; this logs one line per second instead of a
    traceback per accept, and drops the failures of those retries once the server has closed its
    socket. Anything else goes to asyncio's default handler."""

    def __init__(self) -> None:
        self.logged_at = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and str(context.get("message", "")).startswith("socket.accept()"):
            if loop.time() - self.logged_at >= 1.0:
                self.logged_at = loop.time()
                logging.getLogger("uvicorn.error").warning("not accepting connections for a second: %s",
                                                           exc.strerror or exc)
            return
        if isinstance(exc, (OSError, ValueError)) and "_start_serving" in repr(context.get("handle")):
            return  # a retry scheduled above, run after the listening socket was closed
        loop.default_exception_handler(context)


class _Server(uvicorn.Server):
    """uvicorn's server that ends the live-reload streams and the requests waiting for the first
    build as soon as shutdown is asked for (Ctrl-C, SIGTERM), so their connections close at once
    instead of being cancelled after the graceful-shutdown timeout with tracebacks."""

    def __init__(self, config: uvicorn.Config, holder: AssetHolder) -> None:
        super().__init__(config)
        self.holder = holder

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.holder.stop()
        super().handle_exit(sig, frame)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(_LoopProblems())
        await super().serve(sockets)


def _websocket(**arguments: Any) -> asyncio.Protocol:
    """uvicorn's wsproto WebSocket protocol (RFC 6455) for one upgraded connection; imported at the
    first upgrade (live reload), so its import is not on the way to the first answer."""
    from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

    return WSProtocol(**arguments)


class CdnServer:
    """uvicorn serving ``create_app(holder)`` on an already bound socket.

    ``run()`` blocks (the CLI); ``start()`` serves from a background thread and returns once it
    accepts connections (tests); ``stop()`` shuts it down. ``port`` is the bound port."""

    def __init__(self, holder: AssetHolder, host: str = CdnSection.host, port: int = CdnSection.port,
                 header_timeout: float = HEADER_TIMEOUT, max_connections: int | None = None) -> None:
        self.socket = bind(host, port)
        self.host = host
        self.port = self.socket.getsockname()[1]
        self.holder = holder
        limit = max_connections or connection_limit()
        protocol = type("CdnProtocol", (_Protocol,), {"header_timeout": header_timeout, "max_connections": limit})
        config = uvicorn.Config(create_app(holder), log_level="warning", lifespan="off", access_log=False,
                                # uvicorn answers 503 from this many connections: only when none could be closed
                                timeout_graceful_shutdown=2, http=protocol, limit_concurrency=limit + 1,
                                timeout_keep_alive=KEEP_ALIVE_TIMEOUT, backlog=ACCEPT_BACKLOG, ws=_websocket)
        self._server = _Server(config, holder)
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
        self.holder.stop()
        self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self.socket.close()
