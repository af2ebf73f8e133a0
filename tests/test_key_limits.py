"""Names and keys bosco cannot write are refused before anything is written (README "Keys"):
255 bytes per file or folder name, 1,024 bytes per S3 object key; a write that fails names the
file and removes what the run had created."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from trustkit import write

from bosco.cli import cli
from bosco.errors import ManifestError
from bosco.manifest import load_manifest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BOSCO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home/.config"))


@pytest.mark.parametrize("data, message", [
    ({"service": {"name": "n" * 10_000}}, '1:14: service.name "' + "n" * 60 + '..." cannot be a key segment'),
    ({"assets": {"js": {"t" * 239: ["a.js"]}}}, '1:13: assets.js: bundle tag "' + "t" * 60 + '..." cannot be a key '
     "segment"),
])
def test_names_too_long_for_a_key_are_manifest_errors(tmp_path: Path, data: dict, message: str):
    path = write(tmp_path / "bosco-service.json", json.dumps(data))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:{message} (non-empty, at most 238 bytes,")


def test_a_tag_of_238_bytes_is_fine(tmp_path: Path):
    path = write(tmp_path / "bosco-service.json", json.dumps({"assets": {"js": {"é" * 119: ["a.js"]}}}))
    assert load_manifest(path).sections[0].bundles[0].tag == "é" * 119


def test_build_out_refuses_keys_longer_than_s3_allows_and_writes_nothing(tmp_path: Path):
    root = tmp_path / "ws"
    deep = "/".join(["d" * 200] * 5)  # each name fits a file system, the whole key does not fit S3
    write(root / "svc/img" / deep / "x.svg", "<svg/>\n")
    write(root / "svc/js/a.js", "var a = 1;\n")
    write(root / "svc/bosco-service.json", json.dumps({"assets": {"img": {"i": ["img/**/*.svg"]},
                                                                  "js": {"app": ["js/a.js"]}}}))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "-W", str(root), "--out", str(out), "-e", "production"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: svc: asset key svc/default/img/" + "d" * 44 + "...: the S3 key production/svc/default/img/"
        + "d" * 33 + "... is 1,040 bytes with its .br copy (at most 1,024)",
        f"error: 1 error; nothing written to {out}"]
    assert not out.exists()


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead


def build_with_file_size_limit(tmp_path: Path, root: Path, out: Path) -> subprocess.CompletedProcess:
    """``bosco build -W root --out out`` in a process that cannot write files over 4 KB; it fails (exit 1)."""
    env = {**os.environ, "BOSCO_CACHE": "0", "HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "bosco", "build", "-W", str(root), "--out", str(out)],
                            env=env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size,
                            check=False)
    assert result.returncode == 1, result.stderr
    return result


def test_a_failed_write_names_the_file_and_leaves_nothing_behind(tmp_path: Path):
    root = tmp_path / "ws"
    write(root / "svc/img/small.svg", "<svg/>\n")
    write(root / "svc/img/zbig.svg", "<svg>" + " " * 10_000 + "</svg>\n")
    write(root / "svc/bosco-service.json", json.dumps({"assets": {"img": {"i": ["img/*.svg"]}}}))
    out = tmp_path / "out"
    result = build_with_file_size_limit(tmp_path, root, out)
    # the first file over the limit (zbig.svg, or index.html when the pool stores it first) is named
    assert re.search(rf"^error: {re.escape(str(out))}/\S+: cannot write \(File too large\)", result.stderr, re.M), \
        result.stderr
    assert "Traceback" not in result.stderr
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_a_failed_write_leaves_no_folder_it_made(tmp_path: Path):
    root = tmp_path / "ws"
    write(root / "svc/img/big.svg", "<svg>" + " " * 10_000 + "</svg>\n")  # the only file: its folders are new
    write(root / "svc/bosco-service.json", json.dumps({"assets": {"img": {"i": ["img/*.svg"]}}}))
    out = tmp_path / "out"
    result = build_with_file_size_limit(tmp_path, root, out)
    assert f"error: {out}/svc/default/img/big.svg: cannot write (File too large)" in result.stderr, result.stderr
    assert sorted(out.rglob("*")) == []  # svc/default/img/ made for it is gone too
