"""Shared fixtures: fixture workspaces copied to tmp dirs, a real cdn server on a free port, a private
bosco cache per session, and ``node`` with the ``source-map`` npm package (installed once into a folder
under the system temp dir, never into the repo)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bosco.config import load_config
from bosco.pipeline import BuildOptions, build_asset_set
from bosco.server import AssetHolder, CdnServer
from bosco.workspace import discover_services

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = REPO / "examples" / "workspace"


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return dest


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh copy of examples/workspace (its build output not included)."""
    return copy_tree(EXAMPLE, tmp_path / "workspace")


@pytest.fixture
def fixture_ws(tmp_path: Path) -> Callable[[str], Path]:
    """Copy ``tests/fixtures/<name>`` into a tmp dir and return the copy."""
    return lambda name: copy_tree(FIXTURES / name, tmp_path / name)


def build(root: Path, **options):
    """The asset set of the workspace at ``root`` built with ``BuildOptions(**options)``."""
    config = load_config(root, "local", env={})
    services, warnings = discover_services(root, config)
    return build_asset_set(services, BuildOptions(**options), warnings)


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start a real cdn server for an asset set on a free 127.0.0.1 port; returns its base URL."""
    servers: list[CdnServer] = []

    def start(asset_set) -> str:
        server = CdnServer(AssetHolder(asset_set), "127.0.0.1", 0).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No user config and no BOSCO_* variables from the machine running the tests; returns the environment."""
    for name in list(os.environ):
        if name.startswith("BOSCO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return dict(os.environ)


def linked_vendor(repo: Path) -> Path:
    """Give the example's ``repo`` (app-home) a ``linked`` JS bundle of ``vendor/**/*.js``: the file
    ``public/vendor/own.js`` and the link ``public/vendor/ext`` to ``shared-js`` (``linked.js``, and
    ``deep/deep.js`` in a subfolder, which node-glob 7's ``**`` does not reach)."""
    manifest = json.loads((repo / "bosco-service.json").read_text())
    manifest["assets"]["js"]["linked"] = ["vendor/**/*.js"]
    (repo / "bosco-service.json").write_text(json.dumps(manifest))
    (repo / "public/vendor").mkdir()
    (repo / "public/vendor/own.js").write_text("var own = 1;\n")
    (repo / "shared-js/deep").mkdir(parents=True)
    (repo / "shared-js/linked.js").write_text("var linked = 2;\n")
    (repo / "shared-js/deep/deep.js").write_text("var deep = 3;\n")
    (repo / "public/vendor/ext").symlink_to("../../shared-js", target_is_directory=True)
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_cdn(command: list[str], cwd: Path, env: dict[str, str], log: Path,
                timeout: float = 120.0) -> Iterator[tuple[str, httpx.Response]]:
    """Run ``command + ["--port", <free port>]`` (a ``bosco cdn`` process) with its output in ``log``; once its
    index page answers (bounded wait), yield ``(base URL, index response)``; terminate it afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{command} exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{command} did not answer within {timeout} s:\n{log.read_text()}")
            try:
                index = httpx.get(base + "/", timeout=timeout)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, index
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)


@pytest.fixture
def live(example: Path) -> Iterator[Callable[..., Any]]:
    """Start ``live.Live`` (ServedAssetSet + real server) on the example copy, watching app-home by
    default; every started session is stopped at the end."""
    from live import Live

    sessions: list[Live] = []

    def start(watch=("app-home",), **kwargs) -> Live:
        session = Live(example, watch, **kwargs)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


SOURCE_MAP_VERSION = "0.7.4"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``$XDG_CACHE_HOME`` at a fresh folder so tests never read or fill the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()


class Node:
    """Runs JavaScript with ``node``; ``modules`` is a folder whose node_modules has ``source-map``."""

    def __init__(self, modules: Path) -> None:
        self.modules = modules

    def run(self, script: str, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(["node", "-e", script, "--", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=60, env={"NODE_PATH": str(self.modules / "node_modules"),
                                                   "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def run_file(self, path: Path) -> str:
        """What ``node path`` prints (stdout)."""
        return self.run(f"require({json.dumps(str(path))})")


@pytest.fixture(scope="session")
def node() -> Node:
    if shutil.which("node") is None:
        pytest.fail("node is required by the bundle tests (bundles are executed, not only compared)")
    folder = Path(tempfile.gettempdir()) / f"bosco-test-source-map-{SOURCE_MAP_VERSION}"
    if not (folder / "node_modules" / "source-map" / "package.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder),
                        f"source-map@{SOURCE_MAP_VERSION}"], check=True, capture_output=True, timeout=300)
    return Node(folder)


MAP_CHECK = Path(__file__).with_name("map_check.js")


def check_map(node: Node, code: Path, source_map: Path, type_: str) -> dict:
    """Run MAP_CHECK on a generated file and its map; returns the parsed result."""
    return json.loads(node.run(f"require({json.dumps(str(MAP_CHECK))})", str(code), str(source_map), type_))


@pytest.fixture(scope="session")
def map_checker(node: Node):
    return lambda code, source_map, type_: check_map(node, code, source_map, type_)
