"""Files outside a service repository are never read because an input names them (README "Files
bosco reads"): map sources, sourceMappingURL targets, @imports and symlinks that escape the repo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from trustkit import write

from bosco.cli import cli

from conftest import build

SECRET = "TOPSECRET-d41d8cd9"
PASSWD = Path("/etc/passwd").read_text().splitlines()[0]  # the first line of a file every Linux has



def a_map(sources, **fields) -> str:
    return json.dumps({"version": 3, "sources": sources, "names": [], "mappings": "AAAA", **fields})


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A workspace with a good service and one whose inputs name files outside its repository."""
    root = tmp_path / "ws"
    write(tmp_path / "secret.txt", f"var s = '{SECRET}';\n")
    write(tmp_path / "secret.css", f'.s {{ content: "{SECRET}"; }}\n')
    write(tmp_path / "evil.map", a_map(["x.js"], sourcesContent=[SECRET]))
    write(root / "good/js/a.js", "var good = 1;\n")
    write(root / "good/bosco-service.json", json.dumps({"assets": {"js": {"app": ["js/a.js"]}}}))
    evil = root / "evil"
    write(evil / "vendor/abs.min.js", "var a=1;\n")
    write(evil / "vendor/abs.min.js.map", a_map(["/etc/passwd", "../../../secret.txt"],
                                                 mappings="AAAA,CAAC;ACAA"))
    write(evil / "vendor/link.min.js", "var b=2;\n")
    write(evil / "vendor/link.min.js.map", a_map(["linked.js"]))
    (evil / "vendor/linked.js").symlink_to(tmp_path / "secret.txt")
    write(evil / "vendor/url.min.js", "var c=3;\n//# sourceMappingURL=../../../evil.map\n")
    write(evil / "css/outside.css", '@import "../../../secret.css";\n.a { color: red; }\n')
    (evil / "css/link.css").symlink_to(tmp_path / "secret.css")
    write(evil / "css/linked.css", '@import "link.css";\n.b { color: blue; }\n')
    write(evil / "bosco-service.json", json.dumps({"files": {
        "abs": {"basePath": "vendor", "alreadyMinified": True, "js": ["abs.min.js", "abs.min.js.map"]},
        "link": {"basePath": "vendor", "alreadyMinified": True, "js": ["link.min.js", "link.min.js.map"]},
        "url": {"basePath": "vendor", "alreadyMinified": True, "js": ["url.min.js"]},
        "outside": {"css": ["css/outside.css"]},
        "linked": {"css": ["css/linked.css"]},
    }}))
    return root


EVIL_ERRORS = [
    "js/abs: vendor/abs.min.js.map: sources[0] '/etc/passwd': resolves outside the repository; not read",
    "js/abs: vendor/abs.min.js.map: sources[1] '../../../secret.txt': resolves outside the repository; not read",
    "js/link: vendor/link.min.js.map: sources[0] 'linked.js': resolves outside the repository; not read",
    "js/url: vendor/url.min.js: sourceMappingURL '../../../evil.map': resolves outside the repository; not read",
    "css/outside: css/outside.css:1: @import '../../../secret.css': resolves outside the repository; not read",
    "css/linked: css/linked.css:1: @import 'link.css': resolves outside the repository; not read",
]


def test_published_maps_never_hold_files_outside_the_repo(hostile: Path, serve):
    asset_set = build(hostile, build="local", minify=True, bundle=True)
    [evil] = [s for s in asset_set.services if s.name == "evil"]
    assert list(evil.all_errors) == EVIL_ERRORS
    base = serve(asset_set)
    for key in ("js/abs.js.map", "js/link.js.map", "js/url.js.map", "css/outside.css.map", "css/linked.css.map"):
        response = httpx.get(f"{base}/evil/local/{key}")
        assert response.status_code == 200
        assert SECRET not in response.text and PASSWD not in response.text
    assert httpx.get(f"{base}/evil/local/js/abs.js.map").json()["sources"] == ["/etc/passwd", "../../../secret.txt"]
    assert httpx.get(f"{base}/evil/local/js/abs.js.map").json()["sourcesContent"] == [None, None]
    for key in ("css/outside.css", "css/linked.css"):
        assert SECRET not in httpx.get(f"{base}/evil/local/{key}").text
    assert httpx.get(f"{base}/good/local/js/app.js").text.startswith("var good=1;")
    index = httpx.get(base + "/").text
    assert "sources[1] &#39;../../../secret.txt&#39;: resolves outside the repository; not read" in index


def test_build_out_reports_each_escape_and_writes_nothing(hostile: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "-W", str(hostile), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: evil: {e}" for e in EVIL_ERRORS] + [
        f"error: {len(EVIL_ERRORS)} errors; nothing written to {out}"]
    assert not out.exists() or not any(out.iterdir())
    assert "Traceback" not in result.output


def test_a_source_inside_the_repo_is_still_read(tmp_path: Path):
    repo = tmp_path / "ws/svc"
    write(repo / "src/lib.js", "function lib() {}\n")
    write(repo / "dist/lib.min.js", "function lib(){}\n//# sourceMappingURL=maps/lib.map\n")
    write(repo / "dist/maps/lib.map", a_map(["lib.js"], sourceRoot="../../src/", mappings="AAAA"))
    write(repo / "bosco-service.json", json.dumps(
        {"files": {"lib": {"basePath": "dist", "alreadyMinified": True, "js": ["lib.min.js"]}}}))
    asset_set = build(tmp_path / "ws", build="local", minify=True, bundle=True)
    assert asset_set.errors == []
    source_map = json.loads(asset_set.outputs["svc/local/js/lib.js.map"].data)
    assert source_map["sources"] == ["svc/src/lib.js"]
    assert source_map["sourcesContent"] == ["function lib() {}\n"]


def test_files_module_never_opens_a_fifo(tmp_path: Path):
    from bosco.errors import InputFileError
    from bosco.files import read_bytes

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputFileError) as info:
        read_bytes(tmp_path / "pipe", "pipe")
    assert str(info.value) == "pipe: is a FIFO (named pipe), not a regular file; not read"
