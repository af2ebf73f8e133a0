"""Helpers of the publish tests: a small workspace with one file of every published type, the CLI
runner, bucket listing, and a fault-injecting proxy in front of moto's S3 server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

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


class FaultProxy:
    """An HTTP proxy in front of the moto server that answers ``500 InternalError`` to PUT and
    copy requests for keys ending with ``fail_suffix``, ``failures`` times (None: always).
    ``attempts`` counts the requests it failed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_suffix: str | None = None
        self.failures: int | None = None
        self.attempts = 0
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
        if self._should_fail(request):
            return Response(b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                            b"<Message>injected fault</Message></Error>", 500, media_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
        path = request.scope["raw_path"].decode("ascii")
        upstream = await self.client.send(self.client.build_request(
            request.method, path, params=request.query_params, headers=headers, content=body), stream=True)
        raw = b"".join([chunk async for chunk in upstream.aiter_raw()])
        await upstream.aclose()
        excluded = {"transfer-encoding", "connection"}
        return Response(raw, upstream.status_code,
                        headers={k: v for k, v in upstream.headers.items() if k.lower() not in excluded})
