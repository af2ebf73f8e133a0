"""Helpers for the bundle tests: write a one-service workspace and build it."""

from __future__ import annotations

import json
from pathlib import Path

from bosco.assetset import ServiceResult
from bosco.pipeline import BuildOptions, build_service
from bosco.workspace import load_service

PUBLISH = BuildOptions(build="default", minify=True, bundle=True, sri=True)


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path``, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def service(root: Path, name: str, files: dict[str, str | bytes], assets: dict) -> Path:
    """Write ``files`` (repo path -> text) and a manifest with ``assets`` under ``root/name``."""
    repo = root / name
    for rel, content in files.items():
        write(repo / rel, content)
    (repo / "bosco-service.json").write_text(json.dumps({"service": {"name": name}, "assets": assets}))
    return repo


def build(repo: Path, options: BuildOptions = PUBLISH) -> ServiceResult:
    return build_service(load_service(repo), options)


def output(result: ServiceResult, key: str) -> bytes:
    return next(o.data for o in result.outputs if o.key == key)


def write_outputs(result: ServiceResult, folder: Path) -> None:
    for o in result.outputs:
        path = folder / o.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(o.data)
