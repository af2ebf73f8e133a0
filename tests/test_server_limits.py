"""bosco cdn under hostile clients: slowloris connections are dropped, a connection flood does not stop
well-behaved clients, a malformed request gets a 400 without a traceback in the terminal."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bosco.assetset import AssetSet, Output
from bosco.server import AssetHolder, CdnServer

from conftest import free_port

WAIT = 30.0
BODY = b"var served = true;\n"


def asset_set() -> AssetSet:
    key = "svc/local/js/a.js"
    return AssetSet({key: Output(key, BODY, "file", "svc")}, ())


def closed_by_server(sock: socket.socket) -> bool:
    """Wait (bounded) until the server closes ``sock``; False when it is still open after ``WAIT``."""
    sock.settimeout(WAIT)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_never_send_a_complete_request_head_are_closed() -> None:
    server = CdnServer(AssetHolder(asset_set()), "127.0.0.1", 0, header_timeout=0.5).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        partial = socket.create_connection(("127.0.0.1", server.port))
        partial.sendall(b"GET /svc/local/js/a.js HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        with httpx.Client(base_url=base) as client:  # a keep-alive client is served meanwhile
            assert client.get("/svc/local/js/a.js").content == BODY
            assert closed_by_server(silent)
            assert closed_by_server(partial)
            assert client.get("/svc/local/js/a.js").content == BODY
    finally:
        server.stop()


def test_a_flood_of_idle_connections_does_not_lock_out_other_clients() -> None:
    server = CdnServer(AssetHolder(asset_set()), "127.0.0.1", 0, max_connections=50).start()
    flood = []
    try:
        flood = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
        response = httpx.get(f"http://127.0.0.1:{server.port}/svc/local/js/a.js", timeout=WAIT)
        assert response.status_code == 200 and response.content == BODY
        # the oldest idle connections made room: the first 150 of the flood were closed
        assert all(closed_by_server(sock) for sock in flood[:150])
    finally:
        for sock in flood:
            sock.close()
        server.stop()


def test_malformed_chunked_body_gets_400_and_no_traceback(capfd) -> None:
    server = CdnServer(AssetHolder(asset_set()), "127.0.0.1", 0).start()
    try:
        for method in (b"POST", b"GET"):
            for body in (b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n"):
                with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
                    sock.sendall(method + b" /svc/local/js/a.js HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + body)
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
                assert answer.count(b"HTTP/1.1") == 1  # the app's own answer was dropped
        assert httpx.get(f"http://127.0.0.1:{server.port}/svc/local/js/a.js").content == BODY
    finally:
        server.stop()
    logged = capfd.readouterr().err
    assert "Traceback" not in logged and "Exception in ASGI application" not in logged


def test_cdn_out_of_file_descriptors_logs_one_line_and_keeps_serving(tmp_path: Path) -> None:
    svc = tmp_path / "ws" / "svc"
    (svc / "js").mkdir(parents=True)
    (svc / "js" / "a.js").write_bytes(BODY)
    (svc / "bosco-service.json").write_text('{"assets": {"js": {"a": ["js/a.js"]}}}')
    port = free_port()
    log = tmp_path / "log"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))  # macOS's default

    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "bosco", "cdn", "--port", str(port)], cwd=svc.parent, env=env,
                                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=few_descriptors)
    url = f"http://127.0.0.1:{port}/svc/local/js/a.js"
    flood: list[socket.socket] = []
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                assert httpx.get(url, timeout=WAIT).content == BODY
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(log.read_text())
                time.sleep(0.1)
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        assert httpx.get(url, timeout=WAIT).content == BODY  # served during the flood
        for sock in flood:
            sock.close()
        assert httpx.get(url, timeout=WAIT).content == BODY  # and after it
    finally:
        for sock in flood:
            sock.close()
        proc.terminate()
        proc.wait(WAIT)
    output = log.read_text()
    assert "Traceback" not in output, output
