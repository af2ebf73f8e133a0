"""Helpers for watch tests: a ServedAssetSet over a real cdn server, bounded polling, atomic saves."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from bosco.config import load_config
from bosco.pipeline import BuildOptions
from bosco.server import AssetHolder, CdnServer
from bosco.watch import Rebuild, ServedAssetSet
from bosco.workspace import discover_services

TIMEOUT = 15.0  # seconds any wait may take before the test fails


def until(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll ``check`` every 20 ms until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def interrupted(proc: subprocess.Popen, sig: int, log: Path, ready: Callable[[], Any], what: str,
                timeout: float = 30.0) -> str:
    """Wait until ``ready()`` (bounded), send ``sig`` to the bosco subprocess that logs to ``log``,
    assert it exits 130 with ``interrupted`` as its last line and no traceback (the shell convention
    for a stopped command) and return its output. The process is killed whatever happens."""
    try:
        until(ready, timeout, what)
        proc.send_signal(sig)
        assert proc.wait(timeout) == 130, log.read_text()
    finally:
        proc.kill()
        proc.wait()
    output = log.read_text()
    assert output.endswith("interrupted\n")
    assert "Traceback" not in output
    return output


def atomic_write(path: Path, data: bytes) -> None:
    """Save like editors do: write a temp file next to ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Live:
    """A running ServedAssetSet + CdnServer on a free port; records rebuilds and problems."""

    def __init__(self, root: Path, watch: Iterable[str], minify: bool = False, livereload: bool = False,
                 quick: bool = False, background: bool = False, **session_args: Any) -> None:
        config = load_config(root, "local", env={})
        services, warnings = discover_services(root, config)
        self.root = root
        self.holder = AssetHolder()
        self.server = CdnServer(self.holder, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.holder.base_url = self.url
        options = BuildOptions(minify=minify, bundle=minify, base_url=self.url)
        self.rebuilds: list[Rebuild] = []
        self.problems: list[tuple[str, str]] = []
        self.output: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        watched = [s.path for s in services if s.name in set(watch)]
        self.session = ServedAssetSet(
            services, watched, options, self.holder, warnings, livereload=livereload,
            on_rebuild=self._record, on_problem=lambda s, m: self.problems.append((s, m)),
            on_output=lambda s, line: self.output.append((s, line)), **session_args,
        )
        # as `bosco cdn` does: the server answers once the first build is served (``quick``: the
        # unminified first pass); ``background`` returns at once, before anything is built
        self.server.start()
        self.serving = threading.Thread(target=self.session.serve, kwargs={"quick": quick}, daemon=True)
        self.serving.start()
        if not background:
            self.serving.join()
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def _record(self, rebuild: Rebuild) -> None:
        with self._lock:
            self.rebuilds.append(rebuild)

    def count(self, service: str) -> int:
        with self._lock:
            return sum(1 for r in self.rebuilds if r.service == service)

    def get(self, key: str) -> httpx.Response:
        return self.http.get(f"/{key}")

    def wait_bytes(self, key: str, expected: bytes) -> httpx.Response:
        """Poll ``key`` until the server returns exactly ``expected`` (200)."""
        return until(lambda: (r := self.get(key)).status_code == 200 and r.content == expected and r,
                     what=f"{key} to serve the new bytes")

    def wait_status(self, key: str, status: int) -> httpx.Response:
        return until(lambda: (r := self.get(key)).status_code == status and r, what=f"{key} to answer {status}")

    def rebuilt(self, service: str, check: Callable[[Rebuild], Any] = bool, what: str = "",
                since: Rebuild | None = None) -> Rebuild:
        """Wait for a reported rebuild of ``service`` (the ``on_rebuild`` hook, reported once its
        complete pass is served, just after the new bytes) for which ``check`` is true, reported
        after ``since`` if given; the first such one."""
        def found() -> Rebuild | None:
            with self._lock:
                later = self.rebuilds[self.rebuilds.index(since) + 1:] if since is not None else self.rebuilds
                return next((r for r in later if r.service == service and check(r)), None)
        return until(found, what=what or f"a rebuild of {service}")

    def wait_rebuild(self, service: str, n: int = 1) -> Rebuild:
        """Wait until ``service`` has been rebuilt ``n`` times; return the last of those."""
        until(lambda: self.count(service) >= n, what=f"{n} rebuild(s) of {service}")
        with self._lock:
            return [r for r in self.rebuilds if r.service == service][n - 1]

    def close(self) -> None:
        self.serving.join(TIMEOUT)
        self.http.close()
        self.session.stop()
        self.server.stop()
