"""One bad service never takes the workspace down (README "Files bosco reads"): a workspace with one
good and one bad service; ``build`` exits 1 with a one-line error naming the file, never prints a
traceback and never hangs, and ``cdn`` shows every error on its index page and serves the good service."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from trustkit import write

from bosco.cli import cli

from conftest import running_cdn

GOOD_JS = "var good = 1;\n"



def manifest(repo: Path, data: dict | str) -> None:
    write(repo / "bosco-service.json", data if isinstance(data, str) else json.dumps(data))


def images(repo: Path, make: Callable[[Path], None]) -> None:
    """``img/*`` matching a logo and the odd file ``make`` creates at ``img/odd``."""
    write(repo / "img/logo.svg", "<svg/>\n")
    make(repo / "img/odd")
    manifest(repo, {"assets": {"img": {"logo": ["img/*"]}}})


def socket_file(path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(path.parent)  # a unix socket path is limited to 108 bytes: bind the short relative name
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(cwd)


def char_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD (root)")


def minified(repo: Path, source_map: dict | str, files: dict[str, str | bytes] | None = None) -> None:
    write(repo / "vendor/x.min.js", "var x=1;\n")
    write(repo / "vendor/x.min.js.map", source_map if isinstance(source_map, str) else json.dumps(
        {"version": 3, "names": [], **source_map}))
    for name, content in (files or {}).items():
        write(repo / "vendor" / name, content)
    manifest(repo, {"files": {"min": {"basePath": "vendor", "alreadyMinified": True,
                                      "js": ["x.min.js", "x.min.js.map"]}}})


DEEP = "[" * 100_000 + "]" * 100_000
# kind -> (make the bad service in the folder given, the error line build prints with <bad> for its folder)
BAD: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo matched by a glob": (lambda r: images(r, os.mkfifo),
                               "bad: img/logo: img/odd: is a FIFO (named pipe), not a regular file; only regular "
                               "files are assets"),
    "socket matched by a glob": (lambda r: images(r, socket_file),
                                 "bad: img/logo: img/odd: is a socket, not a regular file; only regular files "
                                 "are assets"),
    "character device matched by a glob": (lambda r: images(r, char_device),
                                           "bad: img/logo: img/odd: is a character device, not a regular file; only "
                                           "regular files are assets"),
    "broken symlink matched by a glob": (lambda r: images(r, lambda p: p.symlink_to(p.with_name("gone"))),
                                         "bad: img/logo: img/odd: is a broken symlink, not a regular file; only "
                                         "regular files are assets"),
    "fifo as bosco-service.json": (lambda r: (r.mkdir(), os.mkfifo(r / "bosco-service.json")),
                                   "bad: <bad>/bosco-service.json: is a FIFO (named pipe), not a regular file; "
                                   "not read"),
    "broken symlink as bosco-service.json": (
        lambda r: (r.mkdir(), (r / "bosco-service.json").symlink_to(r / "gone.json")),
        "bad: <bad>/bosco-service.json: is a broken symlink, not a regular file; not read"),
    "symlink loop as bosco-service.json": (
        lambda r: (r.mkdir(), (r / "bosco-service.json").symlink_to(r / "bosco-service.json")),
        "bad: <bad>/bosco-service.json: is a symlink loop, not a regular file; not read"),
    "manifest nested 100,000 levels": (lambda r: manifest(r, '{"tags": ' + DEEP + "}"),
                                       "bad: <bad>/bosco-service.json: JSON nested deeper than 64 levels"),
    "glob with a lone surrogate": (lambda r: manifest(r, '{"assets": {"js": {"app": ["js/\\udc80.js"]}}}'),
                                   'bad: <bad>/bosco-service.json:1:28: assets.js.app[0]: glob "js/\\udc80.js" is not '
                                   "valid Unicode (a lone surrogate at character 4)"),
    "100 KB glob": (lambda r: manifest(r, {"assets": {"js": {"app": ["a" * 100_000]}}}),
                    f'bad: <bad>/bosco-service.json:1:28: assets.js.app[0]: glob "{"a" * 60}..." is 100,000 characters '
                    "long (at most 1,024)"),
    "brace bomb": (lambda r: manifest(r, {"libraries": [{"glob": "{a,b}" * 24}]}),
                   'bad: <bad>/bosco-service.json:1:17: libraries[0].glob: glob "' + ("{a,b}" * 12) + '..." expands to '
                   "more than 1,000 patterns (braces)"),
    "map sources a number": (lambda r: minified(r, {"sources": 5, "mappings": "AAAA"}),
                             "bad: js/min: vendor/x.min.js.map: not a usable source map: sources must be a list of "
                             "strings (or null)"),
    "map sourceRoot a number": (lambda r: minified(r, {"sources": ["a.js"], "sourceRoot": 5, "mappings": "AAAA"}),
                                "bad: js/min: vendor/x.min.js.map: not a usable source map: sourceRoot must be a "
                                "string, not 5"),
    "map source index out of range": (lambda r: minified(r, {"sources": ["a.js"], "mappings": "AAAA,CCAA"}),
                                      "bad: js/min: vendor/x.min.js.map: not a usable source map: mappings line 1 "
                                      "refers to source 1, but sources has 1 entries"),
    "map mappings not Base64 VLQ": (lambda r: minified(r, {"sources": ["a.js"], "mappings": "A!"}),
                                    "bad: js/min: vendor/x.min.js.map: not a usable source map: mappings is not "
                                    "valid Base64 VLQ"),
    "map nested 100,000 levels": (lambda r: minified(r, DEEP),
                                  "bad: js/min: vendor/x.min.js.map: JSON nested deeper than 64 levels (not a usable "
                                  "source map)"),
    "map source file binary": (lambda r: minified(r, {"sources": ["bin.js"], "mappings": "AAAA"},
                                                  {"bin.js": b"\xff\xfe\x00binary"}),
                               "bad: js/min: vendor/x.min.js.map: sources[0] vendor/bin.js: cannot read as UTF-8 "
                               "(invalid start byte at byte 0)"),
}


def workspace(root: Path, make: Callable[[Path], None]) -> Path:
    write(root / "good/js/a.js", GOOD_JS)
    manifest(root / "good", {"assets": {"js": {"app": ["js/a.js"]}}})
    make(root / "bad")
    return root


def bosco(*args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real CLI in a process (a FIFO read would block: the timeout turns that into a failure)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    env.update(HOME=str(cwd / "home"), XDG_CONFIG_HOME=str(cwd / "home/.config"))
    return subprocess.run([sys.executable, "-m", "bosco", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


BLOCKING = {"fifo matched by a glob", "fifo as bosco-service.json"}  # reading them would block: in a process


@pytest.mark.parametrize("kind", list(BAD))
def test_build_fails_with_one_line_naming_the_file(tmp_path: Path, kind: str, monkeypatch):
    make, expected = BAD[kind]
    root = workspace(tmp_path / "ws", make)
    out = tmp_path / "out"
    if kind in BLOCKING:
        result = bosco("build", "-W", root, "--out", out, cwd=tmp_path)
        code, stdout, stderr = result.returncode, result.stdout, result.stderr
    else:
        for name in [n for n in os.environ if n.startswith("BOSCO_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home/.config"))
        run = CliRunner().invoke(cli, ["build", "-W", str(root), "--out", str(out)], catch_exceptions=False)
        code, stdout, stderr = run.exit_code, run.stdout, run.stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: " + expected.replace("<bad>", str(root / "bad")),
                      f"error: 1 error; nothing written to {out}"], stderr
    assert code == 1
    assert "Traceback" not in stdout + stderr
    assert not out.exists()


def test_cdn_shows_every_bad_service_and_serves_the_good_one(tmp_path: Path):
    root = tmp_path / "ws"
    write(root / "good/js/a.js", GOOD_JS)
    manifest(root / "good", {"assets": {"js": {"app": ["js/a.js"]}}})
    kinds = ["fifo matched by a glob", "fifo as bosco-service.json", "manifest nested 100,000 levels",
             "brace bomb", "map sources a number"]
    for n, kind in enumerate(kinds):
        BAD[kind][0](root / f"bad{n}")
    for folder in ("twin1", "twin2"):
        manifest(root / folder, {"service": {"name": "twin"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSCO_")}
    env.update(HOME=str(tmp_path / "home"))
    log = tmp_path / "cdn.log"
    with running_cdn([sys.executable, "-m", "bosco", "cdn", "minify"], root, env, log) as (base, index):
        page = httpx.get(base + "/").text
        assert httpx.get(base + "/good/local/js/app.js").text.startswith("var good=1;")
        for n, kind in enumerate(kinds):
            shown = BAD[kind][1].split(": ", 1)[1].replace("<bad>", f"bad{n}")
            assert shown.split(": ", 2)[-1].replace("'", "&#39;").replace('"', "&#34;") in page, kind
        assert "2 services are named &#39;twin&#39; (folders twin1 and twin2)" in page
    assert "Traceback" not in log.read_text()


def test_odd_package_json_is_a_warning_and_never_blocks(tmp_path: Path):
    root = workspace(tmp_path / "ws", lambda r: (write(r / "js/b.js", "var b = 2;\n"),
                                                  manifest(r, {"assets": {"js": {"app": ["js/b.js"]}}}),
                                                  os.mkfifo(r / "package.json")))
    write(root / "good/package.json", '{"description": ' + DEEP + "}")
    result = bosco("build", "-W", root, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:") and "git" not in line]
    assert warnings == [
        "warning: bad: package.json: is a FIFO (named pipe), not a regular file; not read; its description is not "
        "shown",
        "warning: good: package.json: JSON nested deeper than 64 levels; its description is not shown"]


@pytest.mark.parametrize("what", ["fifo", "deep"])
def test_odd_workspace_config_is_one_error_line(tmp_path: Path, what: str):
    root = workspace(tmp_path / "ws", lambda r: manifest(r, {}))
    config = root / ".bosco/bosco.json"
    config.parent.mkdir()
    if what == "fifo":
        os.mkfifo(config)
    else:
        config.write_text('{"cdn": ' + DEEP + "}")
    result = bosco("build", "-W", root, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 1
    reason = ("is a FIFO (named pipe), not a regular file; not read" if what == "fifo"
              else "JSON nested deeper than 64 levels")
    assert result.stderr.splitlines()[0] == f"error: {config}: {reason}"
    assert "Traceback" not in result.stderr


def test_null_sources_are_allowed_and_dropped(tmp_path: Path):
    from conftest import build

    root = workspace(tmp_path / "ws", lambda r: minified(
        r, {"sources": [None, "a.js"], "sourcesContent": [None, "var x = 1;"], "mappings": "AAAA,CCAA"}))
    asset_set = build(root, build="local", minify=True, bundle=True)
    assert asset_set.errors == []
    source_map = json.loads(asset_set.outputs["bad/local/js/min.js.map"].data)
    assert source_map["sources"] == ["bad/vendor/a.js"]
    assert source_map["mappings"] == "CAAA"
