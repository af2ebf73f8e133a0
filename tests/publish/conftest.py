"""Fixtures for publish tests: moto's S3 server on 127.0.0.1, a fault-injecting proxy in front of it,
and a small workspace with one file of every published type."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bosco.cli import cli
from bosco.server import bind

REGION = "us-east-1"
_buckets = itertools.count(1)

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


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """URL of moto's standalone S3 server, started on a free port of 127.0.0.1 for the session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials (moto accepts any), no real AWS config files, a private compression cache."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def s3(moto_url: str):
    """A boto3 S3 client talking to the moto server."""
    return boto3.client("s3", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def bucket(s3) -> str:
    """A new, empty bucket for this test."""
    name = f"bosco-test-{next(_buckets)}"
    s3.create_bucket(Bucket=name)
    return name


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


@pytest.fixture
def workspace(tmp_path: Path, moto_url: str, bucket: str) -> Path:
    """The fixture workspace, environment ``tes`` publishing to ``bucket`` on the moto server."""
    return write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                             "cdn": "https://cdn.example.com", "maxAttempts": 2})


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


@pytest.fixture
def fault_proxy(moto_url: str) -> Iterator[FaultProxy]:
    """A running ``FaultProxy`` in front of the moto server."""
    proxy = FaultProxy(moto_url)
    proxy.thread.start()
    for _ in range(500):
        if proxy.server.started:
            break
        threading.Event().wait(0.01)
    assert proxy.server.started
    yield proxy
    proxy.server.should_exit = True
    proxy.thread.join(10)
    proxy.socket.close()
