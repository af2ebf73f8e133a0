"""The cdn index page shows raw / gzip / br sizes of every bundle and marks bundles over their size
budget (README "Size budgets"), measured after the server answers."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from pathlib import Path

import httpx
from live import atomic_write, until

from bosco.budgets import measure_service
from bosco.pipeline import BuildOptions, assemble, build_service
from bosco.publish.compress import BROTLI, GZIP, CompressionCache
from bosco.workspace import load_service

from conftest import running_cdn

BIG_JS = "var big = [" + ", ".join(f'"item {n} of the big list"' for n in range(200)) + "];\n"
SMALL_JS = "var small = 1;\n"


def workspace(root: Path) -> Path:
    (root / "shop/js").mkdir(parents=True)
    (root / "shop/js/big.js").write_text(BIG_JS, encoding="utf-8")
    (root / "shop/js/small.js").write_text(SMALL_JS, encoding="utf-8")
    (root / "shop/bosco-service.json").write_text(json.dumps({
        "assets": {"js": {"big": ["js/big.js"], "small": ["js/small.js"]}},
        "budgets": {"js/*": "100 B gzip"}}), encoding="utf-8")
    return root


def sizes(data: bytes) -> tuple[int, int, int]:
    """Raw, gzip and brotli bytes as s3push stores them."""
    cache, sha = CompressionCache(None), hashlib.sha256(data).hexdigest()
    return len(data), len(cache.body(data, sha, GZIP, "x.js")), len(cache.body(data, sha, BROTLI, "x.js"))


def test_cdn_index_page_shows_bundle_sizes_and_marks_bundles_over_budget(tmp_path: Path, isolated_env):
    root = workspace(tmp_path / "ws")
    log = tmp_path / "cdn.log"
    with running_cdn([sys.executable, "-m", "bosco", "cdn", "minify"], root, isolated_env, log) as (base, _):
        deadline = time.monotonic() + 60
        page = httpx.get(base + "/").text
        while "sizes pending" in page and time.monotonic() < deadline:
            time.sleep(0.1)
            page = httpx.get(base + "/").text
        # measured once the complete (verified, minified) build is served: the quick first pass
        # serves files not verified yet as they are
        big = sizes(httpx.get(base + "/shop/local/js/big.js").content)
        small = sizes(httpx.get(base + "/shop/local/js/small.js").content)
        assert big[1] > 100 >= small[1]
    rows = {row.split("</a>", 1)[0].rsplit(">", 1)[1]: row for row in page.split("<tr")[2:]}
    assert '<td class="sizes">{:,} / {:,} / {:,}<div class="over">over budget: {:,} bytes gzip, limit 100 ' \
        '(js/*: &#39;100 B gzip&#39;), {:,} over</div></td>'.format(*big, big[1], big[1] - 100) in rows["big"]
    assert rows["big"].startswith(' class="over">')
    assert f'<td class="sizes">{small[0]:,} / {small[1]:,} / {small[2]:,}</td>' in rows["small"]
    assert rows["small"].startswith(">")
    assert "Traceback" not in log.read_text()


def test_index_page_says_sizes_pending_until_measured_and_build_pages_show_no_sizes(tmp_path: Path):
    build = build_service(load_service(workspace(tmp_path / "ws") / "shop"), BuildOptions())
    pending = assemble([build], BuildOptions(), sizes={}).outputs["index.html"].data.decode()
    assert pending.count('<td class="sizes"><span class="muted">sizes pending</span></td>') == 2
    published = assemble([build], BuildOptions()).outputs["index.html"].data.decode()
    assert "sizes" not in published


def test_sizes_of_an_older_build_never_replace_those_of_its_rebuild(live, example: Path):
    # the first measurement of app-home is held until its rebuild has been measured and served:
    # the page keeps the rebuild's sizes (generation order), never the older ones
    gate, calls = threading.Event(), []

    def measure(build):
        calls.append(build.name)
        if build.name == "app-home" and calls.count("app-home") == 1:
            gate.wait(60)
        return measure_service(build, (), CompressionCache(None))

    w = live(minify=True, measure=measure)
    first = threading.Thread(target=w.session.measure_sizes)
    first.start()
    until(lambda: "app-home" in calls, what="the first measurement of app-home")
    polyfills = example / "app-home/public/js/polyfills.js"
    atomic_write(polyfills, polyfills.read_bytes() + b"\nvar added = " + b"[1, 2, 3];" * 50 + b"\n")
    w.wait_rebuild("app-home")
    until(lambda: calls.count("app-home") == 2, what="the rebuild's measurement of app-home")
    top = w.get("app-home/local/js/top.js").content
    expected = "{:,} / {:,} / {:,}".format(*sizes(top))
    page = until(lambda: expected in (text := w.get("").text) and text, what="the rebuild's sizes on the page")
    gate.set()
    first.join(60)
    assert not first.is_alive()
    assert expected in w.get("").text
    assert page.count("sizes pending") == 0
