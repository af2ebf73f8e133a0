"""Helpers of the publish tests: a small workspace with one file of every published type, the CLI
runner, bucket listing, the consistency rule every publishing test ends with (``assert_consistent``),
and a fault-injecting proxy in front of moto's S3 server."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import uvicorn
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bosco.cli import cli
from bosco.server import bind

REGION = "us-east-1"

# Exact bytes of the fixture workspace (service -> repo path -> bytes).
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
FILES: dict[str, dict[str, bytes]] = {
    "app-web": {
        "public/js/a.js": b"var answer = 40;\n",
        "public/js/b.js": b"answer = answer + 2;\nconsole.log(answer);\n",
        "public/css/site.css": b"body {\n  color: #333333;\n  margin: 0;\n}\n",
        "public/img/icon.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect/></svg>\n',
        "public/img/logo.png": PNG,
        "public/img/photo.jpg": b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1)),
        "public/img/anim.gif": b"GIF89a" + bytes(64),
        "public/img/pic.webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32),
        "public/fonts/f.woff": b"wOFF" + bytes(40),
        "public/fonts/f.woff2": b"wOF2" + bytes(40),
        "public/fonts/f.ttf": b"\x00\x01\x00\x00" + bytes(40),
        "public/fonts/f.eot": b"\x4c\x50" + bytes(40),
        "public/docs/guide.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
        "public/data/config.json": b'{"feature": true}\n',
        "public/pages/help.html": b"<!doctype html><title>help</title><p>help</p>\n",
        "site/favicon.ico": b"\x00\x00\x01\x00" + bytes(60),
    },
    "app-other": {
        "src/x.js": b"function other() { return 'other'; }\nother();\n",
    },
}
MANIFESTS = {
    "app-web": {
        "service": {"name": "app-web"},
        "assets": {
            "basePath": "public",
            "js": {"top": ["js/a.js", "js/b.js"]},
            "css": {"main": ["css/site.css"]},
            "img": {"main": ["img/*"]},
            "fonts": {"main": ["fonts/*"]},
            "pdf": {"docs": ["docs/*.pdf"]},
            "json": {"data": ["data/*.json"]},
            "html": {"pages": ["pages/*.html"]},
        },
        "siteAssets": [{"basePath": "site", "glob": "*"}],
    },
    "app-other": {"service": {"name": "app-other"}, "assets": {"basePath": "src", "js": {"bottom": ["x.js"]}}},
}


def write_workspace(root: Path, aws: dict) -> Path:
    """Write the fixture workspace under ``root`` with ``aws`` as the ``tes`` environment's settings."""
    (root / ".bosco").mkdir(parents=True)
    (root / ".bosco" / "tes.json").write_text(json.dumps({"aws": aws}))
    for service, files in FILES.items():
        (root / service).mkdir()
        (root / service / "bosco-service.json").write_text(json.dumps(MANIFESTS[service]))
        for rel, data in files.items():
            path = root / service / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def run(workspace: Path, *args: str, input: str | None = None) -> Result:
    """Run the bosco CLI in ``workspace`` (environment ``tes``) and return the click result."""
    return CliRunner().invoke(cli, ["-W", str(workspace), "-e", "tes", *args], input=input, catch_exceptions=False)


def keys(s3, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every key of ``bucket`` under ``prefix`` -> ETag (paginated)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


LINK = re.compile(r'(?:href|src)="([^"#]+)"')
FRAGMENT = re.compile(r"[^/]+/[^/]+/[^/]+/html/[^/]+\.(?:js|css)\.html")  # <env>/<svc>/<build>/html/<tag>.<type>.html


def stored_bytes(s3, bucket: str, key: str) -> bytes:
    """The bytes of ``key`` as a client sees them (gzip-encoded objects decoded)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"].read()
    return gzip.decompress(body) if response.get("ContentEncoding") == "gzip" else body


def page_links(s3, bucket: str, key: str = "tes/index.html") -> set[str]:
    """The keys (relative to the environment, ``<env>/`` removed) that the stored page ``key`` links."""
    environment = key.split("/", 1)[0]
    links = set()
    for url in LINK.findall(stored_bytes(s3, bucket, key).decode("utf-8")):
        path = unquote(urlsplit(url).path)  # <aws.cdn path>/<env>/<key>
        marker = f"/{environment}/"
        assert marker in path, f"{key} links {url} outside the environment"
        links.add(path[path.index(marker) + len(marker):])
    return links


def _json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def assert_consistent(s3, bucket: str, tampered: bool = False) -> None:
    """Nothing published dangles: every URL in every ``<env>/index.html`` and in every published
    fragment is an object of the bucket. Unless the test ``tampered`` with the bucket itself (deleted
    objects or wrote release records behind bosco's back), also: ``index.html`` links exactly the
    current release of each service's ``releases.json`` (no other build of a released service), every
    release ``releases.json`` names has its index, and every object of every release index exists."""
    stored = set(keys(s3, bucket))
    for page in sorted(k for k in stored if k.count("/") == 1 and k.endswith("/index.html") or FRAGMENT.fullmatch(k)):
        environment = page.split("/", 1)[0]
        missing = sorted(link for link in page_links(s3, bucket, page) if f"{environment}/{link}" not in stored)
        assert not missing, f"{page} links missing objects: {missing}"
    if tampered:
        return
    for record_key in sorted(k for k in stored if k.endswith("/releases.json") and k.count("/") == 2):
        environment, service, _ = record_key.split("/")
        record = _json(s3, bucket, record_key)
        for entry in record["releases"]:
            assert f"{environment}/{entry['index']}" in stored, f"{record_key} names a missing {entry['index']}"
        page = f"{environment}/index.html"
        if page in stored:
            builds = {link.split("/")[1] for link in page_links(s3, bucket, page) if link.startswith(f"{service}/")}
            assert builds <= {record["current"]}, f"{page} links builds {sorted(builds)} of {service}, " \
                f"current is {record['current']}"
            current = _json(s3, bucket, f"{environment}/{service}/{record['current']}/release.json")
            if current.get("bundles"):
                assert builds == {record["current"]}, f"{page} does not link {service}'s current release"
    for index_key in sorted(k for k in stored if k.endswith("/release.json") and k.count("/") == 3):
        environment = index_key.split("/", 1)[0]
        named = {s["key"] for o in _json(s3, bucket, index_key)["objects"] for s in o["stored"]}
        missing = sorted(k for k in named if f"{environment}/{k}" not in stored)
        assert not missing, f"{index_key} names missing objects: {missing}"


class FaultProxy:
    """An HTTP proxy in front of the moto server that answers ``500 InternalError`` to PUT and
    copy requests for keys ending with ``fail_suffix``, ``failures`` times (None: always), and
    ``503 SlowDown`` to GETs of keys ending with ``unavailable_suffix`` while it is set.
    ``attempts`` counts the requests it failed. PUTs of keys ending with ``stall_suffix`` get no
    answer while it is set (then a 503: they are never forwarded), and so do multi-object deletes
    of objects other than release indexes while ``stall_delete`` is set (``stalled`` counts both).
    ``log`` records every forwarded request: ``(method, path, If-None-Match or None, status)``, and
    ``listed`` the prefix of every forwarded ListObjectsV2 request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_suffix: str | None = None
        self.unavailable_suffix: str | None = None
        self.failures: int | None = None
        self.attempts = 0
        self.stall_suffix: str | None = None
        self.stall_delete = False
        self.stalled = 0
        self.log: list[tuple[str, str, str | None, int]] = []
        self.listed: list[str] = []
        self._lock = threading.Lock()
        self.client = httpx.AsyncClient(base_url=upstream)
        app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "HEAD", "PUT", "POST", "DELETE"])])
        self.socket = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def _should_fail(self, request: Request) -> bool:
        if request.method != "PUT" or not self.fail_suffix or not request.url.path.endswith(self.fail_suffix):
            return False
        with self._lock:
            if self.failures is not None and self.attempts >= self.failures:
                return False
            self.attempts += 1
            return True

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        if request.method == "PUT" and self.stall_suffix and request.url.path.endswith(self.stall_suffix):
            self.stalled += 1
            while self.stall_suffix:
                await asyncio.sleep(0.05)
            return Response(b"", 503)  # never forwarded: the client has given up by now
        if (request.method == "POST" and "delete" in request.query_params and self.stall_delete
                and b"release.json" not in body):
            self.stalled += 1
            while self.stall_delete:
                await asyncio.sleep(0.05)
            return Response(b"", 503)
        if request.method == "GET" and self.unavailable_suffix and request.url.path.endswith(self.unavailable_suffix):
            return Response(b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code></Error>", 503,
                            media_type="application/xml")
        if self._should_fail(request):
            return Response(b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                            b"<Message>injected fault</Message></Error>", 500, media_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
        path = request.scope["raw_path"].decode("ascii")
        upstream = await self.client.send(self.client.build_request(
            request.method, path, params=request.query_params, headers=headers, content=body), stream=True)
        raw = b"".join([chunk async for chunk in upstream.aiter_raw()])
        await upstream.aclose()
        self.log.append((request.method, request.url.path, request.headers.get("if-none-match"), upstream.status_code))
        if request.method == "GET" and request.query_params.get("list-type") == "2":
            self.listed.append(request.query_params.get("prefix", ""))
        excluded = {"transfer-encoding", "connection"}
        return Response(raw, upstream.status_code,
                        headers={k: v for k, v in upstream.headers.items() if k.lower() not in excluded})
