"""Compressed variants: which types, deterministic bodies, the content-hash cache."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import signal
import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import brotli
import pytest
from click.testing import CliRunner
from live import until
from zlib_ng import gzip_ng

from bosco import cache
from bosco.assetset import Output
from bosco.cache import seal
from bosco.cli import cli
from bosco.publish.compress import (
    BROTLI,
    GZIP,
    IDENTITY,
    CompressionCache,
    default_cache_dir,
    encode,
    encodings_for,
    pack,
    unpack,
)
from bosco.sizes import compressed_sizes

JS = b"function add(a, b) { return a + b; }\n" * 50


def test_compressible_types_come_from_bosco_table():
    for key in ("a/1/js/top.js", "a/1/css/m.css", "a/1/js/top.js.map", "a/1/i.svg", "a/1/d.json", "index.html",
                "a/1/r.txt", "a/1/f.xml", "a/1/X.JS"):
        assert encodings_for(key) == (GZIP, BROTLI), key
    for key in ("a/1/p.png", "a/1/p.jpg", "a/1/p.webp", "a/1/f.woff2", "a/1/f.woff", "a/1/x.gz", "a/1/x.pdf",
                "a/1/no-extension"):
        assert encodings_for(key) == (IDENTITY,), key
    assert encodings_for("a/1/js/top.js", compress=False) == (IDENTITY,)
    assert (GZIP.suffix, BROTLI.suffix, BROTLI.name) == ("", ".br", "br")


def test_encodings_are_deterministic_and_decode_to_the_input():
    first, second = encode(JS, GZIP), encode(JS, GZIP)
    assert first == second and gzip.decompress(first) == JS
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip mtime field is zero
    assert brotli.decompress(encode(JS, BROTLI)) == JS
    assert encode(JS, IDENTITY) is JS


def test_cache_stores_by_content_hash_and_reuses_it(tmp_path: Path):
    cache = CompressionCache(tmp_path / "c")
    sha = hashlib.sha256(JS).hexdigest()
    body = cache.body(JS, sha, BROTLI, "a/1/js/top.js")
    path = tmp_path / "c" / sha[:2] / f"{sha}.br11"
    assert path.read_bytes() == seal(body) and cache.size(sha, BROTLI, "a/1/js/top.js", len(JS)) == len(body)
    path.write_bytes(seal(b"cached bytes"))  # a second request is answered from the cache, not re-encoded
    assert cache.body(JS, sha, BROTLI, "a/1/js/top.js") == b"cached bytes"
    assert cache.size(sha, BROTLI, "a/1/js/top.js", len(JS)) == len(b"cached bytes")
    assert cache.size(sha, GZIP, "a/1/js/top.js", len(JS)) is None
    assert cache.size(sha, BROTLI, "a/1/js/top.js.map", len(JS)) is None  # maps use their own quality


def test_cache_without_folder_or_unwritable_folder_still_encodes(tmp_path: Path):
    sha = hashlib.sha256(JS).hexdigest()
    assert gzip.decompress(CompressionCache(None).body(JS, sha, GZIP, "x.js")) == JS
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert gzip.decompress(CompressionCache(blocker / "c").body(JS, sha, GZIP, "x.js")) == JS


def test_default_cache_dir_follows_xdg():
    folder = cache.folder_name()
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path(f"/x/bosco/{folder}/compressed")
    assert default_cache_dir({"HOME": "/h"}) == Path(f"/h/.cache/bosco/{folder}/compressed")
    assert default_cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "rel"}) == Path(f"/h/.cache/bosco/{folder}/compressed")
    # one rule for every disk cache: BOSCO_CACHE=0 keeps compressed bodies in memory only, like the rest
    assert default_cache_dir({"HOME": "/h", "BOSCO_CACHE": "0"}) is None
    assert cache.cache_dir({"HOME": "/h", "BOSCO_CACHE": "0"}) is None


def test_source_maps_get_their_own_brotli_quality(tmp_path: Path):
    cache = CompressionCache(tmp_path / "c", brotli_quality=11, map_quality=4)
    sha = hashlib.sha256(JS).hexdigest()
    assert cache.body(JS, sha, BROTLI, "a/1/js/top.js.map") == brotli.compress(JS, mode=brotli.MODE_TEXT, quality=4)
    assert (tmp_path / "c" / sha[:2] / f"{sha}.br4").is_file()
    assert cache.body(JS, sha, BROTLI, "a/1/js/top.js") == brotli.compress(JS, mode=brotli.MODE_TEXT, quality=11)


def test_large_bodies_are_encoded_in_worker_processes(tmp_path: Path):
    big = JS * 40  # over the 64 KiB pool threshold
    sha = hashlib.sha256(big).hexdigest()
    with CompressionCache(None, workers=2) as cache:
        assert cache.body(big, sha, BROTLI, "a/1/js/top.js") == encode(big, BROTLI, quality=9)
        assert cache._pool is not None  # the pool really ran it
    assert cache._pool is None


def test_levels_follow_the_kind_and_size_of_the_body(tmp_path: Path):
    """Source maps: gzip 6 (developer tools fetch them); bodies over 64 KiB: brotli 9, not 11."""
    cache = CompressionCache(tmp_path / "c")
    sha = hashlib.sha256(JS).hexdigest()
    assert cache.body(JS, sha, GZIP, "a/1/js/top.js.map") == gzip_ng.compress(JS, 6, mtime=0)
    assert cache.body(JS, sha, GZIP, "a/1/js/top.js") == gzip_ng.compress(JS, 9, mtime=0)
    assert sorted(p.name for p in (tmp_path / "c" / sha[:2]).iterdir()) == [f"{sha}.gzip6", f"{sha}.gzip9"]
    large = JS * (64 * 1024 // len(JS) + 1)
    large_sha = hashlib.sha256(large).hexdigest()
    assert cache.body(large, large_sha, BROTLI, "a/1/js/top.js") == brotli.compress(large, mode=brotli.MODE_TEXT,
                                                                                     quality=9)
    assert cache.size(large_sha, BROTLI, "a/1/js/top.js", len(large)) is not None  # found under its own level
    assert (tmp_path / "c" / large_sha[:2] / f"{large_sha}.br9").is_file()


def test_prepared_bodies_are_the_bodies_asked_for(tmp_path: Path):
    bodies = [(JS * n, hashlib.sha256(JS * n).hexdigest(), enc, key) for n in (40, 60, 80)
              for enc, key in ((GZIP, "a/1/js/t.js"), (BROTLI, "a/1/js/t.js"), (GZIP, "a/1/js/t.js.map"))]
    with CompressionCache(None, workers=2) as cache:
        cache.prepare(bodies)
        got = [cache.body(*body) for body in reversed(bodies)]
    expected = [CompressionCache(None).body(*body) for body in reversed(bodies)]
    assert got == expected


def count_encodings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record every body ``CompressionCache`` encodes (bytes, encoding), then encode it for real."""
    calls: list[tuple[int, str]] = []
    real = CompressionCache._encode

    def recording(self, data, encoding, key):
        calls.append((len(data), encoding.name))
        return real(self, data, encoding, key)

    monkeypatch.setattr(CompressionCache, "_encode", recording)
    return calls


def test_the_same_bytes_at_several_keys_are_compressed_once(monkeypatch, tmp_path):
    """Services shipping the same bundle: one brotli and one gzip computation for all their keys,
    prepared (no folder: nothing is read back from disk) or asked for by many threads at once."""
    calls = count_encodings(monkeypatch)
    big = JS * 40
    sha = hashlib.sha256(big).hexdigest()
    keys = [f"svc-{n}/1/js/bottom.js" for n in range(6)]
    with CompressionCache(None, workers=2) as cache:
        cache.prepare([(big, sha, enc, key) for key in keys for enc in (GZIP, BROTLI)])
        with ThreadPoolExecutor(12) as pool:
            bodies = list(pool.map(lambda a: cache.body(big, sha, *a), [(e, k) for k in keys for e in (GZIP, BROTLI)]))
        assert cache._ahead == {}  # every prepared body was taken
    assert sorted(calls) == [(len(big), "br"), (len(big), "gzip")]
    assert bodies == [encode(big, e, quality=9 if e == BROTLI else None) for _ in keys for e in (GZIP, BROTLI)]
    calls.clear()
    large = JS * 1000  # 1.9 MB: brotli takes long enough for the twelve threads to ask at once
    large_sha = hashlib.sha256(large).hexdigest()
    with CompressionCache(tmp_path / "c") as cache, ThreadPoolExecutor(12) as pool:  # threads wait for the first
        assert set(pool.map(lambda k: cache.body(large, large_sha, BROTLI, k), keys * 2)) == {
            encode(large, BROTLI, quality=9)}
    assert calls == [(len(large), "br")]
    calls.clear()
    with CompressionCache(None) as cache:  # a source map of the same bytes has its own level: its own body
        cache.body(big, sha, BROTLI, keys[0])
        cache.body(big, sha, BROTLI, keys[0] + ".map")
    assert calls == [(len(big), "br"), (len(big), "br")]


def test_leaving_by_ctrl_c_does_not_wait_for_the_body_being_encoded():
    """Ctrl-C while a worker encodes a large body (brotli 11 of a few MB takes many seconds): leaving
    the ``with`` block terminates the workers, so the command stops at once; the thread that waited
    for the body gets an error, never the finished body."""
    text = random.Random(7).randbytes(3 * 1024 * 1024).hex().encode()  # 6 MB that brotli works hard on
    sha = hashlib.sha256(text).hexdigest()
    outcome: dict[str, object] = {}

    def encode_big() -> None:
        try:
            outcome["body"] = cache.body(text, sha, BROTLI, "a/1/js/big.js")
        except (BrokenProcessPool, CancelledError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=encode_big)
    with pytest.raises(KeyboardInterrupt), CompressionCache(None, workers=2) as cache:
        thread.start()
        until(lambda: cache._pool is not None and cache._pool._pending_work_items, 30.0, "the body in the pool")
        raise KeyboardInterrupt
    thread.join(30.0)
    assert not thread.is_alive()
    assert "body" not in outcome and isinstance(outcome["error"], (BrokenProcessPool, CancelledError))
    assert cache._pool is None
    with pytest.raises(CancelledError):  # a thread still measuring does not start a new pool
        cache.body(text[:100_000], hashlib.sha256(text[:100_000]).hexdigest(), GZIP, "a/1/js/next.js")
    assert cache._pool is None
    assert gzip.decompress(cache.body(JS, hashlib.sha256(JS).hexdigest(), GZIP, "a/1/js/small.js")) == JS


def test_ctrl_c_while_measuring_bundle_sizes_cancels_the_measurements_not_started(tmp_path: Path):
    """Ctrl-C while ``s3push``/``diff`` measure the compressed sizes of many large bundles (seconds
    each at brotli 11): the command stops without finishing the measurements in flight (8 at a
    time; waiting for them kept a stopped s3push running for many seconds)."""
    rng = random.Random(3)
    outputs = [Output(f"a/1/js/b{n}.js", rng.randbytes(150_000).hex().encode(), "bundle") for n in range(16)]
    folder = tmp_path / "c"

    def brotli_bodies() -> list[Path]:
        return list(folder.rglob("*.br*"))

    def interrupt_after_the_first_body() -> None:
        until(brotli_bodies, 60.0, "a first brotli body")
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_after_the_first_body, daemon=True).start()
    with pytest.raises(KeyboardInterrupt), CompressionCache(folder, workers=2) as cache:
        compressed_sizes(outputs, cache)
    assert 1 <= len(brotli_bodies()) < 8


def test_services_shipping_the_same_large_bundle_share_one_compression(tmp_path, moto_url, bucket, s3, monkeypatch):
    """Two services with the same 90 KB bundle: s3push compresses it once per encoding (gzip 9 with
    zlib-ng, brotli 9 above 64 KiB) and stores it at both keys; every object read back from moto's
    server decodes to the bundle, with its Content-Encoding and Cache-Control."""
    library = "".join(f"var item{n} = {n} * 2;\n" for n in range(6000)).encode()
    root = tmp_path / "ws"
    (root / ".bosco").mkdir(parents=True)
    (root / ".bosco" / "tes.json").write_text(json.dumps(
        {"aws": {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1"}}))
    for name in ("svc-a", "svc-b"):
        (root / name / "js").mkdir(parents=True)
        (root / name / "js" / "lib.js").write_bytes(library)
        (root / name / "bosco-service.json").write_text(json.dumps(
            {"service": {"name": name}, "assets": {"js": {"top": ["js/lib.js"]}}}))
    calls = count_encodings(monkeypatch)
    result = CliRunner().invoke(cli, ["-W", str(root), "-e", "tes", "s3push", "-n", "-b", "7"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bundle = s3.get_object(Bucket=bucket, Key="tes/svc-a/7/js/top.js")
    data = gzip.decompress(bundle["Body"].read())
    assert len(data) > 64 * 1024 and b"item5999" in data
    assert calls.count((len(data), "gzip")) == 1 and calls.count((len(data), "br")) == 1
    for name in ("svc-a", "svc-b"):
        for suffix, encoding, body in (("", "gzip", gzip_ng.compress(data, 9, mtime=0)),
                                       (".br", "br", brotli.compress(data, mode=brotli.MODE_TEXT, quality=9))):
            stored = s3.get_object(Bucket=bucket, Key=f"tes/{name}/7/js/top.js{suffix}")
            assert stored["Body"].read() == body
            assert (stored["ContentEncoding"], stored["ContentType"]) == (encoding, "text/javascript; charset=utf-8")
            assert stored["CacheControl"] == "public, max-age=31536000, immutable"
            assert stored["CacheControl"] == "public, max-age=31536000, immutable"


def test_a_damaged_cached_body_is_encoded_again(tmp_path: Path):
    # a crash can leave a cache file empty or cut short (a rename with no fsync before it): s3push
    # published it as it was, an object no browser can decode (found afterwards by bosco verify)
    compression = CompressionCache(tmp_path / "c")
    sha = hashlib.sha256(JS).hexdigest()
    for encoding in (BROTLI, GZIP):
        good = compression.body(JS, sha, encoding, "a/1/js/top.js")
        (path,) = (tmp_path / "c" / sha[:2]).glob(f"{sha}.{encoding.name}*")
        stored = path.read_bytes()
        flipped = bytearray(stored)
        flipped[len(flipped) // 2] ^= 0x10
        for damaged in (b"", good[: len(good) // 2], stored[: len(stored) // 2], bytes(flipped)):
            path.write_bytes(damaged)
            assert compression.size(sha, encoding, "a/1/js/top.js", len(JS)) is None  # no wrong size either
            assert compression.body(JS, sha, encoding, "a/1/js/top.js") == good, (encoding.name, len(damaged))
            assert path.read_bytes() == stored  # stored again, whole
            assert compression.size(sha, encoding, "a/1/js/top.js", len(JS)) == len(good)


def test_a_pack_gives_back_exactly_its_bodies():
    bodies = {"a.gzip9": encode(JS, GZIP), "a.br11": encode(JS, BROTLI), "empty.gzip6": b""}
    payload = pack(bodies)
    assert unpack(payload) == bodies and list(unpack(payload)) == list(bodies)
    assert unpack(pack({})) == {}

    def raw(header: bytes, rest: bytes = b"") -> bytes:
        return len(header).to_bytes(4, "big") + header + rest

    assert unpack(raw(b'[["a", 2]]', b"xy")) == {"a": b"xy"}
    for broken in (payload[:-1], payload + b"x", payload[:3], raw(b"[[1]]"), raw(b'{"a": 1}', b"x"),
                   raw(b'[["a", 1], ["a", 1]]', b"xy"), raw(b'[["a", -1]]'), raw(b"not json")):
        assert unpack(broken) is None, broken
