"""Shared fixtures: fixture workspaces copied to tmp dirs and a real cdn server on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

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
