"""Whole-bundle results are cached by their inputs' hashes and by what their build read: a change
to any input, option or file read on the side (a CSS @import, a composed map, a file that did not
exist) never reuses a stale result, and cached builds are byte-identical to uncached ones."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bosco import cache, stamps

from conftest import build

FILES = {
    "public/js/a.js": "function a() { return 1 + 1; }\na();\n",
    "public/js/lib.min.js": "var lib=1;\n//# sourceMappingURL=lib.min.js.map\n",
    "public/js/lib.min.js.map": json.dumps({"version": 3, "sources": ["lib.js"], "names": [],
                                            "mappings": "AAAA", "sourcesContent": ["var lib = 1;\n"]}),
    "public/css/site.css": '@import "parts/vars.css";\nbody { color: red; }\n',
    "public/css/parts/vars.css": ".vars { margin: 0; }\n",
}
MANIFEST = {"service": {"name": "svc"}, "assets": {"basePath": "public", "js": {"top": ["js/a.js"]},
                                                   "css": {"main": ["css/site.css"]}},
            "files": {"vendor": {"basePath": "public", "alreadyMinified": True, "js": ["js/lib.min.js"]}}}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    repo = tmp_path / "ws" / "svc"
    for name, text in FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    (repo / "bosco-service.json").write_text(json.dumps(MANIFEST))
    return tmp_path / "ws"


def outputs(root: Path, **options) -> dict[str, bytes]:
    options = {"bundle": True, "minify": True, **options}
    asset_set = build(root, **options)
    assert asset_set.errors == []
    return {key: output.data for key, output in asset_set.outputs.items()}


def uncached(root: Path, monkeypatch: pytest.MonkeyPatch, **options) -> dict[str, bytes]:
    """The same build with every cache off (memory included)."""
    with monkeypatch.context() as patch:
        patch.setenv("BOSCO_CACHE", "0")
        patch.setattr(cache, "_memory", {})
        return outputs(root, **options)


def edit(path: Path, text: str) -> None:
    """Rewrite ``path`` in place with ``text`` (the same size when ``text`` is), keeping its mtime: only
    the ctime and the content tell."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_cached_bundles_are_byte_identical_to_uncached_ones(ws, monkeypatch):
    first = outputs(ws)
    again = outputs(ws)
    assert again == first == uncached(ws, monkeypatch)
    assert b"margin:0" in first["svc/local/css/main.css"]


def test_a_changed_input_of_the_same_size_is_rebuilt(ws, monkeypatch):
    outputs(ws)
    edit(ws / "svc/public/js/a.js", FILES["public/js/a.js"].replace("1 + 1", "2 + 2"))
    changed = outputs(ws)
    assert b"2+2" in changed["svc/local/js/top.js"]
    assert changed == uncached(ws, monkeypatch)


def test_a_changed_css_import_is_rebuilt(ws, monkeypatch):
    outputs(ws)
    edit(ws / "svc/public/css/parts/vars.css", ".vars { margin: 7; }\n")
    changed = outputs(ws)
    assert b"margin:7" in changed["svc/local/css/main.css"]
    assert changed == uncached(ws, monkeypatch)


def test_a_changed_composed_map_is_rebuilt(ws, monkeypatch):
    before = outputs(ws)["svc/local/js/vendor.js.map"]
    (ws / "svc/public/js/lib.min.js.map").write_text(json.dumps(
        {"version": 3, "sources": ["other.js"], "names": [], "mappings": "AAAA", "sourcesContent": ["var lib = 1;\n"]}))
    after = outputs(ws)["svc/local/js/vendor.js.map"]
    assert b"svc/public/js/other.js" in after and after != before
    assert after == uncached(ws, monkeypatch)["svc/local/js/vendor.js.map"]


def test_a_file_that_appears_is_read(ws, monkeypatch):
    """A map named by a sourceMappingURL comment that did not exist is looked for again."""
    lib = ws / "svc/public/js/lib.min.js"
    lib.write_text("var lib=1;\n//# sourceMappingURL=later.map\n")
    before = outputs(ws)["svc/local/js/vendor.js.map"]
    assert b"lib.min.js" in before and b"later.js" not in before
    (ws / "svc/public/js/later.map").write_text(json.dumps(
        {"version": 3, "sources": ["later.js"], "names": [], "mappings": "AAAA", "sourcesContent": ["var lib = 1;\n"]}))
    after = outputs(ws)["svc/local/js/vendor.js.map"]
    assert b"svc/public/js/later.js" in after
    assert after == uncached(ws, monkeypatch)["svc/local/js/vendor.js.map"]


def test_a_changed_option_is_not_served_from_the_cache(ws):
    minified = outputs(ws)["svc/local/js/top.js"]
    plain = outputs(ws, minify=False)["svc/local/js/top.js"]
    assert b"1 + 1" in plain and b"1+1" in minified
    assert outputs(ws, build="56")["svc/56/js/top.js"] == minified


def test_a_new_file_matching_a_glob_is_bundled(ws):
    manifest = json.loads((ws / "svc/bosco-service.json").read_text())
    manifest["assets"]["js"]["top"] = ["js/*.js"]
    manifest["files"] = {}
    (ws / "svc/bosco-service.json").write_text(json.dumps(manifest))
    (ws / "svc/public/js/lib.min.js").unlink()
    outputs(ws)
    (ws / "svc/public/js/b.js").write_text("function b() { return 3; }\n")
    assert b"function b(){return 3;}" in outputs(ws)["svc/local/js/top.js"]


def test_an_unchanged_bundle_is_not_built_again(ws, monkeypatch):
    first = outputs(ws)
    import bosco.bundle

    def refuse(*args, **kwargs):
        raise AssertionError("an unchanged bundle was built again")

    monkeypatch.setattr(bosco.bundle, "build_bundle", refuse)
    assert outputs(ws) == first


def test_the_code_version_is_remembered_per_sys_path_and_recomputed_when_one_changes(tmp_path, monkeypatch):
    # python -m bosco and the bosco script have different sys.path lists: alternating them must hit
    # the memo each time, and a changed folder of sys.path (a package installed) must not
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    memo = tmp_path / "xdg" / "bosco" / "code-version.json"
    other = tmp_path / "site-packages"
    other.mkdir()

    def fresh() -> str:
        cache.code_version.cache_clear()
        return cache.code_version()

    try:
        real = fresh()
        with monkeypatch.context() as patch:
            patch.syspath_prepend(str(other))
            assert fresh() == real
        entries = json.loads(memo.read_bytes())["entries"]
        assert len(entries) == 2 and {version for _, version in entries} == {real}
        memo.write_text(json.dumps({"entries": [[signature, "remembered"] for signature, _ in entries]}))
        assert fresh() == "remembered"  # this sys.path: read from the memo, not computed
        with monkeypatch.context() as patch:
            patch.syspath_prepend(str(other))
            assert fresh() == "remembered"  # the other one too
            (other / "newpackage").mkdir()  # the folder changed: computed again
            assert fresh() == real
        assert len(json.loads(memo.read_bytes())["entries"]) == 3
        work = tmp_path / "work"  # python -m bosco puts the current folder first on sys.path
        work.mkdir()
        monkeypatch.chdir(work)
        with monkeypatch.context() as patch:
            patch.syspath_prepend(str(work))
            assert fresh() == real
            memo.write_text(json.dumps({"entries": [[signature, "remembered"] for signature, _ in
                                                    json.loads(memo.read_bytes())["entries"]]}))
            assert fresh() == "remembered"
            (work / "notes.txt").write_text("a file saved in the current folder\n")
            assert fresh() == "remembered"  # not a reason to read every source file again
    finally:
        cache.code_version.cache_clear()


def test_installed_versions_are_those_importlib_metadata_reads(tmp_path, monkeypatch):
    # the code version reads versions from dist-info folder names, not METADATA: the same answers,
    # the first folder along sys.path winning, a name installed nowhere None
    from importlib.metadata import version

    names = (*cache.CACHED_LIBRARIES, "Jinja2", "python-dateutil", "not-installed-anywhere")
    expected = {n: version(n) for n in names[:-1]} | {"not-installed-anywhere": None}
    assert cache.installed_versions(names) == expected
    shadow = tmp_path / "site"
    (shadow / "rjsmin-0.0.1.dist-info").mkdir(parents=True)
    (shadow / "rjsmin-0.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: rjsmin\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(shadow))
    assert cache.installed_versions(("rjsmin",)) == {"rjsmin": "0.0.1"} == {"rjsmin": version("rjsmin")}
    legacy = tmp_path / "legacy"  # an .egg-info first: its version comes from its PKG-INFO
    (legacy / "rjsmin.egg-info").mkdir(parents=True)
    (legacy / "rjsmin.egg-info" / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: rjsmin\nVersion: 0.0.2\n")
    monkeypatch.syspath_prepend(str(legacy))
    assert cache.installed_versions(("rjsmin",)) == {"rjsmin": "0.0.2"} == {"rjsmin": version("rjsmin")}


def test_a_cold_minified_build_verifies_in_workers_and_reads_each_input_once(ws, monkeypatch, tmp_path):
    """The pool gets every distinct input as the services are read; each service is built from its
    results (the build computes nothing itself) and every input is read once, byte-identical to a
    build that verifies everything in the process itself."""
    from bosco import bundle, verify

    other = ws / "other"  # a second service with the same files: each distinct text goes to the pool once
    for name, text in FILES.items():
        (other / name).parent.mkdir(parents=True, exist_ok=True)
        (other / name).write_text(text.replace("return 1", "return 3"))
    (other / "bosco-service.json").write_text(json.dumps({**MANIFEST, "service": {"name": "other"}}))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # nothing ahead: every file verified in the build itself
    inline = uncached(ws, monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    cache._memory.clear()
    reads: list[str] = []
    real_read = bundle.read_text
    monkeypatch.setattr(bundle, "read_text", lambda path, shown: reads.append(str(path)) or real_read(path, shown))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    real_compute = verify._compute  # an already-minified file is only syntax-checked, in the build

    def compute(type_, text, minify, *args, **kwargs):
        assert not minify, "minified in the build, not in a worker"
        return real_compute(type_, text, minify, *args, **kwargs)

    monkeypatch.setattr(verify, "_compute", compute)
    assert outputs(ws) == inline
    assert sorted(reads) == sorted(set(reads))
    assert {Path(p).name for p in reads} == {"a.js", "site.css", "lib.min.js", "lib.min.js.map"}


_rewrite_during_read: list[tuple[Path, str]] = []  # (file, new text): armed by the next test


def _rewrite_at_read(event: str, args: tuple) -> None:
    """Audit hook: once ``bosco.files.read_bytes`` has opened and stat'ed the armed file for a bundle
    build that records what it reads (``stamps.recording``), rewrite it
    in place before its bytes are read (``os.open`` raises ``open`` with mode None; the
    ``os.fdopen`` of that descriptor raises ``open`` with an int path)."""
    if not _rewrite_during_read or event != "open":
        return
    path, text = _rewrite_during_read[0]
    if args[0] == str(path) and args[1] is None and stamps.recording_active():  # the read a bundle records
        _rewrite_during_read.append((path, "opened"))
    elif isinstance(args[0], int) and _rewrite_during_read[-1] == (path, "opened"):
        _rewrite_during_read.clear()
        with open(path, "r+", encoding="utf-8") as handle:  # the hook is disarmed: no recursion
            handle.write(text)


def test_an_edit_saved_while_a_file_is_read_is_not_recorded_as_the_version_before(ws, monkeypatch):
    """An editor rewriting a file in place between bosco's stat of it and its read: the bundle is
    made from the new bytes, so it must not be recorded as made from the version before (whose
    hash was known by that stat), or undoing the edit later serves the edited bundle."""
    monkeypatch.setattr(stamps, "RACY_NS", 0)  # trust stats of files milliseconds old (stamps.RACY_NS)
    monkeypatch.setattr(stamps, "JUST_READ", 0)  # the read the hook rewrites during, not the bytes hashed before it
    a = ws / "svc/public/js/a.js"
    first = outputs(ws)  # a.js's hash is now known by its stat
    assert b"1+1" in first["svc/local/js/top.js"]
    sys.addaudithook(_rewrite_at_read)  # (hooks cannot be removed; this one is idle once disarmed)
    edited = FILES["public/js/a.js"].replace("1 + 1", "2 + 2")
    cache._memory.clear()
    edit(a, FILES["public/js/a.js"].replace("1 + 1", "3 + 3"))  # a new version, so the bundle is built
    _rewrite_during_read.append((a, edited))
    during = outputs(ws)
    assert not _rewrite_during_read, "the read of a.js was not seen"
    assert b"2+2" in during["svc/local/js/top.js"]  # built from the bytes read
    edit(a, FILES["public/js/a.js"].replace("1 + 1", "3 + 3"))  # the edit undone
    assert b"3+3" in outputs(ws)["svc/local/js/top.js"]


def test_a_file_saved_between_reading_and_bundling_is_bundled_as_saved(ws, monkeypatch):
    """``minify_inputs(keep=True)`` hands what it read to the bundle's build; a file saved in between
    (cdn's complete pass reads every service first, a save lands meanwhile) is read again, never
    bundled, or cached under its new hash, as it was."""
    from bosco import bundle
    from bosco.assets import collect
    from bosco.workspace import load_service

    repo = ws / "svc"
    svc = load_service(repo)
    b = next(b for b in collect(repo, svc.manifest).bundles if b.type == "js" and b.tag == "top")
    kept = bundle.minify_inputs("svc", repo, "js", "top", b.assets, "local", keep=True)
    assert kept == [(FILES["public/js/a.js"], None, ())]
    edit(repo / "public/js/a.js", FILES["public/js/a.js"].replace("1 + 1", "3 + 3"))
    built = bundle.build_bundle("svc", repo, "js", "top", b.assets, True)
    assert b"3+3" in built.code and b"1+1" not in built.code
    assert bundle._kept == {}


def test_a_file_hashed_for_a_cache_key_is_not_read_again_by_the_read_that_follows(tmp_path, monkeypatch):
    from bosco.files import read_bytes

    monkeypatch.setattr(stamps, "RACY_NS", 0)
    path = tmp_path / "lib.js"
    path.write_bytes(b"var lib = 1;\n")
    assert stamps.sha256(path) == hashlib.sha256(b"var lib = 1;\n").hexdigest()  # read and hashed: a miss
    opened: list[object] = []
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: opened.append(args[0]) or real_fdopen(*args, **kwargs))
    assert read_bytes(path) == b"var lib = 1;\n" and opened == []  # the bytes just hashed
    assert read_bytes(path) == b"var lib = 1;\n" and len(opened) == 1  # handed out once
    path.write_bytes(b"var lib = 2;\n")
    stamps.sha256(path)
    edit(path, "var lib = 3;\n")  # same size and mtime, after the hash: only the ctime tells
    assert read_bytes(path) == b"var lib = 3;\n" and len(opened) == 2  # read from the disk


class _Huge:
    def __reduce__(self):
        return bytearray, (2 ** 64,)  # unpickling raises OverflowError


def test_a_local_entry_that_is_damaged_or_cannot_be_loaded_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(cache, "_memory", {})
    cache.store("k" * 64, {"css": "body{}"})
    path = cache.cache_dir() / "kk" / ("k" * 64)
    stored = path.read_bytes()
    assert cache.read_sealed(path) == stored[cache.SEAL_SIZE:]
    flipped = bytearray(stored)
    flipped[-3] ^= 0x01
    garbage = b"\x80\x05\x95" + (2 ** 63 - 1).to_bytes(8, "little")
    unloadable = (b"".join(cache._entry(_Huge(), ())), cache.seal(len(garbage).to_bytes(8, "little") + garbage),
                  cache.seal((2 ** 63).to_bytes(8, "little")))
    for damaged in (b"", stored[:len(stored) // 2], bytes(flipped), *unloadable):
        path.write_bytes(damaged)
        monkeypatch.setattr(cache, "_memory", {})
        assert cache.load("k" * 64) is None
    path.write_bytes(stored)
    monkeypatch.setattr(cache, "_memory", {})
    assert cache.load("k" * 64) == {"css": "body{}"}


def test_known_parts_of_an_entry_are_written_as_they_are_and_checked_when_read(tmp_path, monkeypatch):
    # a bundle's code and map are stored by the SHA-256 its outputs carry anyway: not sealed again,
    # but a part changed or cut short on disk is still a miss
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(cache, "_memory", {})
    code, source_map = b"var a=1;\n" * 1000, b'{"version":3}' * 1000
    value = ({"code": code, "source_map": source_map, "also": code}, {("read", "/x"): "abc"})
    digests = [(code, hashlib.sha256(code).hexdigest()), (source_map, hashlib.sha256(source_map).hexdigest())]
    cache.store("p" * 64, value, digests)
    path = cache.cache_dir() / "pp" / ("p" * 64)
    stored = path.read_bytes()
    assert stored.endswith(code + source_map) and stored.count(code) == 1  # once, as it is
    monkeypatch.setattr(cache, "_memory", {})
    assert cache.load("p" * 64) == value
    flipped = bytearray(stored)
    flipped[-len(source_map) - 5] ^= 0x01  # in the code part, outside the sealed header
    for damaged in (bytes(flipped), stored[:-1]):
        path.write_bytes(damaged)
        monkeypatch.setattr(cache, "_memory", {})
        assert cache.load("p" * 64) is None
    cache.store("p" * 64, value, [(code, hashlib.sha256(b"other").hexdigest())])
    monkeypatch.setattr(cache, "_memory", {})
    assert cache.load("p" * 64) is None  # a wrong digest given when storing: never a wrong value


def _bosco(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bosco", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120)


def _tree(folder: Path) -> dict[str, bytes]:
    """The files under ``folder``, the release time of its release indexes (the clock) left out."""
    return {p.relative_to(folder).as_posix(): re.sub(rb'"time": "[^"]*"', b'"time": ""', p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["cut", 0.6, 0.9])
def test_damaged_entries_in_the_cache_folder_give_the_cold_build(ws, tmp_path, damage):
    # a crash or a bad disk can leave any entry cut short or with flipped bytes: an entry that still
    # unpickled was used as it was (a wrong main.css), another raised OverflowError (a traceback)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    cold = _bosco("-W", ws, "build", "--out", tmp_path / "cold", env={**env, "BOSCO_CACHE": "0"})
    assert cold.returncode == 0, cold.stderr
    assert _bosco("-W", ws, "build", "--out", tmp_path / "out", env=env).returncode == 0
    entries = [p for p in (tmp_path / "xdg" / "bosco").rglob("*") if p.is_file() and p.name != "code-version.json"]
    assert len(entries) > 5
    for path in entries:
        data = path.read_bytes()
        if damage == "cut":
            path.write_bytes(data[:len(data) // 3])
        else:  # one bit, at that fraction of the entry
            changed = bytearray(data)
            changed[int(len(data) * damage)] ^= 0x01
            path.write_bytes(bytes(changed))
    again = _bosco("-W", ws, "build", "--out", tmp_path / "out", env=env)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert _tree(tmp_path / "out") == _tree(tmp_path / "cold")
