"""The shared cache (``cache.remote``) on moto's S3 server: a second runner with an empty local
cache reuses the first runner's verified minify results and compressed bodies, never a stale or
corrupt one, and every build is byte-identical with and without caches."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import struct
import zlib
from pathlib import Path

import pytest

from bosco import cache, verify
from bosco.publish import compress

from .s3support import keys, run


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith("release.json") and not p.name.endswith("releases.json")}


def share(workspace: Path, bucket: str) -> None:
    (workspace / ".bosco" / "bosco.json").write_text(json.dumps({"cache": {"remote": f"s3://{bucket}/team-cache"}}))


def new_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    """A machine with an empty local cache (and this process's memory cache emptied)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"cache-{name}"))
    cache._memory.clear()


def build(workspace: Path, out: Path) -> dict[str, bytes]:
    result = run(workspace, "build", "--out", str(out))
    assert result.exit_code == 0, result.output
    cache.remote().flush() if cache.remote() else None
    return files(out)


def refuse(*_args, **_kwargs):
    raise AssertionError("computed although the shared cache holds the result")


def test_second_runner_reuses_verified_results_and_builds_the_same_bytes(workspace, bucket, s3, tmp_path,
                                                                         monkeypatch):
    (workspace / ".bosco" / "bosco.json").write_text("{}")
    new_runner(monkeypatch, tmp_path, "uncached")
    monkeypatch.setenv("BOSCO_CACHE", "0")
    without = build(workspace, tmp_path / "out-uncached")
    monkeypatch.delenv("BOSCO_CACHE")
    share(workspace, bucket)
    new_runner(monkeypatch, tmp_path, "first")
    first = build(workspace, tmp_path / "out-first")
    stored = keys(s3, bucket, "team-cache/")
    folder = f"team-cache/{cache.folder_name()}/"
    assert stored and all(k.startswith(folder + f"{verify.MINIFIED}/") for k in stored)
    assert len(stored) == 4  # a.js, b.js and site.css of app-web, x.js of app-other: each verified once
    new_runner(monkeypatch, tmp_path, "second")
    monkeypatch.setattr(verify, "_compute", refuse)
    second = build(workspace, tmp_path / "out-second")
    assert first == second == without


def test_changed_input_or_option_never_reuses_a_shared_result(workspace, bucket, tmp_path, monkeypatch):
    share(workspace, bucket)
    new_runner(monkeypatch, tmp_path, "first")
    build(workspace, tmp_path / "out-first")
    (workspace / "app-web/public/js/a.js").write_bytes(b"/*! MIT licence */\nvar answer = 41;\n")
    new_runner(monkeypatch, tmp_path, "second")
    changed = build(workspace, tmp_path / "out-second")
    assert b"var answer=41;" in changed["app-web/default/js/top.js"]
    (workspace / ".bosco" / "tes.json").write_text(json.dumps({**json.loads(
        (workspace / ".bosco" / "tes.json").read_text()), "minify": {"legalcomments": "eof"}}))
    new_runner(monkeypatch, tmp_path, "third")
    eof = build(workspace, tmp_path / "out-third")
    new_runner(monkeypatch, tmp_path, "uncached")
    monkeypatch.setenv("BOSCO_CACHE", "0")
    (workspace / ".bosco" / "bosco.json").write_text("{}")
    assert build(workspace, tmp_path / "out-uncached") == eof
    assert eof["app-web/default/js/top.js"] != changed["app-web/default/js/top.js"]


def test_corrupt_or_foreign_shared_entries_are_ignored(workspace, bucket, s3, tmp_path, monkeypatch):
    share(workspace, bucket)
    new_runner(monkeypatch, tmp_path, "first")
    first = build(workspace, tmp_path / "out-first")
    entries = sorted(keys(s3, bucket, "team-cache/"))
    bodies = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in entries]
    assert all(b'"code": "' in body for body in bodies)
    s3.put_object(Bucket=bucket, Key=entries[0], Body=bodies[0].replace(b'"code": "', b'"code": "X'))  # corrupt
    s3.put_object(Bucket=bucket, Key=entries[1], Body=bodies[2])  # another key's entry
    s3.put_object(Bucket=bucket, Key=entries[2], Body=b"not an entry")
    new_runner(monkeypatch, tmp_path, "second")
    # the corrupt entry would ship an X, the foreign one another file's code: neither is used
    assert build(workspace, tmp_path / "out-second") == first


LARGE_JS = b"".join(b"var answer%d = %d;\n" % (n, n) for n in range(400))  # its bundle and map: >= 4 KiB


def first_push(workspace: Path, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Build 1 pushed by a first runner sharing its cache in ``bucket`` (app-web's top.js and its
    map above ``SHARED_MINIMUM``)."""
    (workspace / "app-web/public/js/a.js").write_bytes(LARGE_JS)
    share(workspace, bucket)
    new_runner(monkeypatch, tmp_path, "first")
    result = run(workspace, "s3push", "-n", "-b", "1")
    assert result.exit_code == 0, result.output
    cache.remote().flush()


def headers(stored: dict) -> tuple:
    """The headers s3push sets on an object, as ``get_object`` returns them."""
    return stored["ContentType"], stored.get("ContentEncoding"), stored["CacheControl"], stored["Metadata"]


def second_push(workspace: Path, bucket: str, s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                may_compress: bool = False) -> None:
    """The same build pushed by a second runner with an empty local cache to a mirror bucket, which
    may neither verify nor (unless ``may_compress``) compress anything the shared cache holds; its
    objects are the first's."""
    new_runner(monkeypatch, tmp_path, "second")
    s3.create_bucket(Bucket=bucket + "-mirror")
    settings = json.loads((workspace / ".bosco" / "tes.json").read_text())
    settings["aws"]["bucket"] = bucket + "-mirror"
    (workspace / ".bosco" / "tes.json").write_text(json.dumps(settings))
    real_encode = compress.encode
    if not may_compress:
        monkeypatch.setattr(compress, "encode", lambda data, *args: real_encode(data, *args)
                            if len(data) < compress.SHARED_MINIMUM else refuse())
    monkeypatch.setattr(verify, "_compute", refuse)
    again = run(workspace, "s3push", "-n", "-b", "1")
    assert again.exit_code == 0, again.output
    first, second = keys(s3, bucket, "tes/"), keys(s3, bucket + "-mirror", "tes/")
    assert set(first) == set(second) and len(first) > 20
    for key in first:
        if not key.endswith("release.json") and not key.endswith("releases.json"):
            mine, theirs = (s3.get_object(Bucket=b, Key=key) for b in (bucket, bucket + "-mirror"))
            assert mine["Body"].read() == theirs["Body"].read(), key
            assert headers(mine) == headers(theirs), key


def shared_bodies(s3, bucket: str) -> list[str]:
    """Keys of the single compressed bodies in the shared cache."""
    return [k for k in keys(s3, bucket, "team-cache/") if f"/{verify.MINIFIED}/" not in k
            and f"/{compress.PACK}/" not in k]


def test_second_runner_push_compresses_nothing(workspace, bucket, s3, tmp_path, monkeypatch):
    """...but bodies under ``SHARED_MINIMUM`` bytes (fragments, small files): encoding one costs less
    than a round trip to the store, so they are neither stored there nor asked for."""
    first_push(workspace, bucket, monkeypatch, tmp_path)
    bodies = shared_bodies(s3, bucket)
    assert {k.split("/")[2] for k in bodies} == {"gzip9", "gzip6", "br11", "br5"}  # gzip 6: source maps
    shared = {k.rsplit("/", 1)[1] for k in bodies}
    for key in keys(s3, bucket, "tes/"):
        if key.endswith((".js", ".css", ".html", ".map")) and not key.endswith("index.html"):
            data = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            assert (hashlib.sha256(data).hexdigest() in shared) == (len(data) >= compress.SHARED_MINIMUM), key
    assert sum(1 for k in keys(s3, bucket, "tes/") if "/html/" in k) >= 2  # the fragments were among them
    second_push(workspace, bucket, s3, monkeypatch, tmp_path)


def pack_of(s3, bucket: str) -> tuple[str, bytes]:
    """The key and bytes of the one pack in the shared cache."""
    packs = [k for k in keys(s3, bucket, "team-cache/") if f"/{compress.PACK}/" in k]
    assert len(packs) == 1, packs
    return packs[0], s3.get_object(Bucket=bucket, Key=packs[0])["Body"].read()


def test_second_runner_fetches_the_bodies_of_a_service_as_one_pack(workspace, bucket, s3, tmp_path, monkeypatch):
    first_push(workspace, bucket, monkeypatch, tmp_path)
    # one pack: app-web's top.js and its map in gzip and brotli; app-other has no body that large
    key, data = pack_of(s3, bucket)
    bodies = compress.unpack(cache.open_envelope(key.rsplit("/", 1)[1], data))
    published = {}
    for stored in keys(s3, bucket, "tes/app-web/1/"):
        body = s3.get_object(Bucket=bucket, Key=stored)["Body"].read()
        decoded = compress.decode(body, compress.BROTLI if stored.endswith(".br") else compress.GZIP)
        if decoded is not None and len(decoded) >= compress.SHARED_MINIMUM:
            published[stored] = body
    assert sorted(published) == ["tes/app-web/1/js/top.js", "tes/app-web/1/js/top.js.br",
                                 "tes/app-web/1/js/top.js.map", "tes/app-web/1/js/top.js.map.br"]
    assert sorted(bodies.values()) == sorted(published.values())
    singles = {f"{k.rsplit('/', 1)[1]}.{k.split('/')[2]}": k for k in shared_bodies(s3, bucket)}
    assert set(bodies) <= set(singles)  # each also has its own entry (for a push that changes one of them)
    for label in bodies:  # the second runner can only get them from the pack
        s3.delete_object(Bucket=bucket, Key=singles[label])
    fetched = []
    real_get = cache.RemoteCache.get
    monkeypatch.setattr(cache.RemoteCache, "get", lambda self, kind, name: fetched.append(kind) or real_get(
        self, kind, name))
    second_push(workspace, bucket, s3, monkeypatch, tmp_path)
    # four verified files, one pack, and the regenerated index.html (not among the planned uploads)
    assert sorted(fetched) == sorted([verify.MINIFIED] * 4 + [compress.PACK, "gzip9", "br11"])


def test_a_pack_of_other_bytes_is_never_used(workspace, bucket, s3, tmp_path, monkeypatch):
    """A pack is named by the hashes of the bodies it holds: after an input changed, the second
    runner's bodies have other names, so the first runner's pack is not even asked for."""
    first_push(workspace, bucket, monkeypatch, tmp_path)
    old, _ = pack_of(s3, bucket)
    (workspace / "app-web/public/js/a.js").write_bytes(LARGE_JS.replace(b"answer399", b"changed399"))
    new_runner(monkeypatch, tmp_path, "second")
    fetched = []
    real_get = cache.RemoteCache.get
    monkeypatch.setattr(cache.RemoteCache, "get", lambda self, kind, name: fetched.append(
        self.object_key(kind, name)) or real_get(self, kind, name))
    result = run(workspace, "s3push", "-n", "-b", "2")
    assert result.exit_code == 0, result.output
    cache.remote().flush()
    top = s3.get_object(Bucket=bucket, Key="tes/app-web/2/js/top.js")
    assert b"changed399=399" in gzip.decompress(top["Body"].read())
    assert headers(top) == ("text/javascript; charset=utf-8", "gzip", "public, max-age=31536000, immutable",
                            {"sha256": hashlib.sha256(gzip.decompress(s3.get_object(
                                Bucket=bucket, Key="tes/app-web/2/js/top.js")["Body"].read())).hexdigest()})
    asked = [k for k in fetched if f"/{compress.PACK}/" in k]
    assert len(asked) == 1 and old not in asked  # build 2's pack: not there yet, then stored
    assert len([k for k in keys(s3, bucket, "team-cache/") if f"/{compress.PACK}/" in k]) == 2


@pytest.mark.parametrize("damage", ["flipped", "cut", "foreign", "other bodies"])
def test_a_corrupt_or_foreign_pack_is_ignored(workspace, bucket, s3, tmp_path, monkeypatch, damage):
    """A pack that is damaged, stored under another pack's name or holding other bodies than its
    name says is not used: the bodies come from their single entries, and the second runner still
    publishes the first's bytes (the damaged pack would ship a flipped or missing body)."""
    first_push(workspace, bucket, monkeypatch, tmp_path)
    key, data = pack_of(s3, bucket)
    name = key.rsplit("/", 1)[1]
    payload = cache.open_envelope(name, data)
    bodies = compress.unpack(payload)
    if damage == "flipped":
        data = data[:-100] + bytes([data[-100] ^ 1]) + data[-99:]
    elif damage == "cut":
        data = data[:-1]
    elif damage == "foreign":
        data = cache.envelope(cache.key("another pack"), payload)
    else:
        data = cache.envelope(name, compress.pack(dict(list(bodies.items())[:-1])))
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    second_push(workspace, bucket, s3, monkeypatch, tmp_path)


def test_cache_stats_and_prune(workspace, bucket, s3, tmp_path, monkeypatch):
    share(workspace, bucket)
    new_runner(monkeypatch, tmp_path, "first")
    build(workspace, tmp_path / "out")
    old = tmp_path / "cache-first" / "bosco" / "v1-0000000000000000" / "ab"
    old.mkdir(parents=True)
    (old / "entry").write_bytes(b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="team-cache/v1-0000000000000000/minified/ab/entry", Body=b"y" * 500)
    stats = run(workspace, "cache", "stats", "--remote", "--json")
    assert stats.exit_code == 0, stats.output
    figures = json.loads(stats.stdout)
    local = {f["name"]: f for f in figures["local"]["folders"]}
    assert local["v1-0000000000000000"] == {"name": "v1-0000000000000000", "entries": 1, "bytes": 1000,
                                            "current": False}
    assert local[cache.folder_name()]["entries"] >= 4 and local[cache.folder_name()]["current"]
    remote = {f["name"]: f for f in figures["remote"]["folders"]}
    assert remote["v1-0000000000000000"]["bytes"] == 500 and remote[cache.folder_name()]["entries"] == 4
    pruned = run(workspace, "cache", "prune", "--remote")
    assert pruned.exit_code == 0, pruned.output
    assert not old.parent.exists()
    assert all(k.startswith(f"team-cache/{cache.folder_name()}/") for k in keys(s3, bucket, "team-cache/"))
    assert len(keys(s3, bucket, "team-cache/")) == 4


def test_local_cache_is_trimmed_to_its_size_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for n in range(30):
        cache.store(cache.key("entry", str(n)), "x" * 100_000)
    folder = cache.cache_dir()
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) > 2_900_000
    assert cache.trim(1) > 1_900_000
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 1024 * 1024


def test_unreachable_shared_cache_never_fails_a_build(workspace, tmp_path, monkeypatch):
    (workspace / ".bosco" / "bosco.json").write_text(json.dumps({"cache": {"remote": "s3://no-such-bucket/x"}}))
    new_runner(monkeypatch, tmp_path, "first")
    result = run(workspace, "build", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert cache.remote().broken
    assert "no-such-bucket" not in result.stderr  # information that needs no action: -v only
    new_runner(monkeypatch, tmp_path, "verbose")
    verbose = run(workspace, "-v", "build", "--out", str(tmp_path / "out-verbose"))
    assert verbose.exit_code == 0, verbose.output
    told = [line for line in verbose.stderr.splitlines() if "s3://no-such-bucket/x" in line]
    assert len(told) == 1 and "going on without it" in told[0], verbose.stderr
    new_runner(monkeypatch, tmp_path, "uncached")
    monkeypatch.setenv("BOSCO_CACHE", "0")
    (workspace / ".bosco" / "bosco.json").write_text("{}")
    assert build(workspace, tmp_path / "out-uncached") == files(tmp_path / "out")


def test_a_shared_cache_that_never_answers_never_fails_a_build(workspace, tmp_path, monkeypatch):
    """A store that takes connections and never answers (a wrong port, a hung proxy): each request
    times out, and the build goes on without the shared cache (a botocore timeout carries no
    response: reading its error code raised AttributeError, a traceback that failed the build)."""
    share(workspace, "team")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel completes connections it never answers
        for name, value in (("ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}"), ("READTIMEOUT", "1"),
                            ("CONNECTTIMEOUT", "1"), ("ATTEMPTS", "1")):
            monkeypatch.setenv(f"BOSCO_AWS_{name}", value)
        new_runner(monkeypatch, tmp_path, "first")
        result = run(workspace, "build", "--out", str(tmp_path / "out"))
        assert result.exit_code == 0, result.output
        assert cache.remote().broken
    new_runner(monkeypatch, tmp_path, "uncached")
    monkeypatch.setenv("BOSCO_CACHE", "0")
    (workspace / ".bosco" / "bosco.json").write_text("{}")
    assert build(workspace, tmp_path / "out-uncached") == files(tmp_path / "out")


def test_a_shared_gzip_body_with_other_header_bytes_is_never_published(workspace, bucket, s3, tmp_path,
                                                                       monkeypatch):
    """A shared gzip body that decodes to the right bytes but is not in bosco's own form (here a
    header comment, RFC 1952 FCOMMENT) is encoded again: published objects stay byte-identical to
    the first runner's."""
    first_push(workspace, bucket, monkeypatch, tmp_path)
    rewritten = 0
    for key in keys(s3, bucket, "team-cache/"):
        if f"/{compress.PACK}/" in key:
            s3.delete_object(Bucket=bucket, Key=key)
        elif "/gzip" in key:
            raw = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
            body = (b"\x1f\x8b\x08\x10\0\0\0\0\0\xff" + b"INJECTED\0" + deflate.compress(raw) + deflate.flush()
                    + struct.pack("<II", zlib.crc32(raw), len(raw)))
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            rewritten += 1
    assert rewritten >= 2
    second_push(workspace, bucket, s3, monkeypatch, tmp_path, may_compress=True)
