"""The cdn server over real sockets: every route, headers, ETag/304, CORS, traversal, content types."""

from __future__ import annotations

import http.client
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from markupsafe import escape

from bosco.server import AssetHolder, CdnServer

from conftest import build

CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, GET, PUT, DELETE, OPTIONS",
    "access-control-allow-credentials": "false",
    "access-control-max-age": "86400",
    "access-control-allow-headers": "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept",
}
SERVICES = ("app-home", "app-checkout", "app-reports", "service-api")


def raw(base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """Send ``path`` exactly as given (no client-side normalisation); returns (status, headers, body)."""
    conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def disk_bytes(asset_set, key: str) -> bytes:
    """The bytes of the single source file behind ``key`` (sources are ``<service>/<repo path>``)."""
    output = asset_set.get(key)
    (source,) = output.sources
    service, rel = source.split("/", 1)
    (built,) = [s for s in asset_set.services if s.name == service]
    return (Path(built.path) / rel).read_bytes()


def assert_asset_headers(headers, output, status: int = 200) -> None:
    assert headers["content-type"] == output.content_type
    assert headers["content-length"] == str(len(output.data))
    assert headers["cache-control"] == "no-cache, must-revalidate"
    assert headers["access-control-allow-origin"] == "*"
    assert re.fullmatch(r'"[0-9a-f]{32}"', headers["etag"])


@pytest.fixture
def example_set(example):
    """The example workspace built as ``bosco cdn`` builds it (unminified, one file per source)."""
    return build(example, build="local")


@pytest.fixture
def minified_set(example):
    """The example workspace built as ``bosco cdn minify`` builds it (bundles + maps)."""
    return build(example, build="local", minify=True, bundle=True)


@pytest.mark.parametrize("mode", ["unminified", "minified"])
def test_get_every_key_serves_its_exact_bytes_and_headers(request, mode):
    asset_set = request.getfixturevalue("example_set" if mode == "unminified" else "minified_set")
    base = request.getfixturevalue("serve")(asset_set)
    keys = [k for k in asset_set.outputs if k != "index.html"]
    assert len(keys) > 20
    with httpx.Client(base_url=base) as client:
        for key in keys:
            response = client.get(f"/{key}")
            assert response.status_code == 200, key
            assert response.content == asset_set.get(key).data, key
            assert_asset_headers(response.headers, asset_set.get(key))


def test_text_and_binary_content_types_of_example_keys(example_set, serve):
    base = serve(example_set)
    expected = {
        "app-home/local/js/app.js": "text/javascript; charset=utf-8",
        "app-home/local/css/home.css": "text/css; charset=utf-8",
        "app-home/local/html/bottom.js.html": "text/html; charset=utf-8",
        "app-home/local/img/icon-cart.svg": "image/svg+xml; charset=utf-8",
        "app-home/local/img/logo.png": "image/png",
        "app-home/local/img/hero.jpg": "image/jpeg",
        "app-home/local/fonts/inter.woff2": "font/woff2",
        "app-checkout/local/tiny.min.js.map": "application/json; charset=utf-8",
        "vendor/library/es-shim/shim.js": "text/javascript; charset=utf-8",
        "asset/favicon.svg": "image/svg+xml; charset=utf-8",
    }
    with httpx.Client(base_url=base) as client:
        for key, content_type in expected.items():
            response = client.get(f"/{key}")
            assert (response.status_code, response.headers["content-type"]) == (200, content_type), key


def test_unminified_files_are_served_byte_for_byte_as_on_disk(example_set, serve):
    base = serve(example_set)
    singles = [o.key for o in example_set.outputs.values() if o.kind in ("file", "library", "site")]
    assert "app-home/local/fonts/inter.woff2" in singles and "app-home/local/js/lib/format.js" in singles
    with httpx.Client(base_url=base) as client:
        for key in singles:
            assert client.get(f"/{key}").content == disk_bytes(example_set, key), key


def test_head_has_the_get_headers_and_no_body(minified_set, serve):
    base = serve(minified_set)
    for key in ("app-home/local/js/bottom.js", "app-home/local/img/logo.png", "app-home/local/html/main.css.html"):
        get_status, get_headers, _ = raw(base, f"/{key}")
        status, headers, body = raw(base, f"/{key}", "HEAD")
        assert (status, body) == (200, b"")
        assert_asset_headers(headers, minified_set.get(key))
        assert headers["etag"] == get_headers["etag"]


def test_etag_gives_304_on_if_none_match(minified_set, serve):
    base = serve(minified_set)
    key = "/app-home/local/css/main.css"
    etag = httpx.get(base + key).headers["etag"]
    other = httpx.get(base + "/app-home/local/js/top.js").headers["etag"]
    assert etag != other
    with httpx.Client(base_url=base) as client:
        for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            response = client.get(key, headers={"If-None-Match": header})
            assert response.status_code == 304, header
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert response.headers["cache-control"] == "no-cache, must-revalidate"
            assert response.headers["access-control-allow-origin"] == "*"
        head = client.head(key, headers={"If-None-Match": etag})
        assert head.status_code == 304
        stale = client.get(key, headers={"If-None-Match": other})
        assert stale.status_code == 200
        assert stale.content == minified_set.get(key[1:]).data


@pytest.mark.parametrize("path", ["/", "/app-home/local/js/top.js", "/no/such/key", "/repos", "/../etc/passwd", "*",
                                  "http://127.0.0.1/app-home/local/js/top.js"])
def test_options_preflight_on_any_path(minified_set, serve, path):
    base = serve(minified_set)
    status, headers, body = raw(base, path, "OPTIONS", {
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type",
    })
    assert (status, body) == (200, b"")
    assert {k: headers[k] for k in CORS} == CORS


@pytest.mark.parametrize("path", ["/", "/no/such/key.js", "/app-home/local/js/nope.js", "/app-home/local/js/"])
def test_root_and_unknown_paths_are_404_with_the_index_page(minified_set, serve, path):
    base = serve(minified_set)
    response = httpx.get(base + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache, must-revalidate"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == minified_set.get("index.html").data
    for name in SERVICES:
        assert f'<section id="{name}">\n<h2>{name}</h2>' in response.text
    assert '<a href="http://' not in response.text and "<script" not in response.text  # works offline
    assert '<a href="/app-home/local/html/top.js.html">top.js.html</a>' in response.text


def test_index_page_shows_broken_services_in_red_and_serves_the_others(example, serve):
    (example / "app-checkout" / "bosco-service.json").write_text(
        '{\n  "service": {"name": "app-checkout"},\n  "tags": ["front",]\n}\n', encoding="utf-8")
    (example / "app-home" / "public" / "js" / "app.js").unlink()
    asset_set = build(example, build="local")
    base = serve(asset_set)
    response = httpx.get(base + "/")
    assert response.status_code == 404
    page = response.text
    assert re.search(r"\.error\s*\{[^}]*color:\s*#b91c1c", page)  # the .error class is red
    # paths are repo-relative: the page goes to any origin (and is published), never the workspace's location
    assert response.headers["access-control-allow-origin"] == "*"
    assert ('<p class="error">bosco-service.json:3:19: invalid JSON: trailing comma before &#39;]&#39; '
            '(JSON allows none)</p>') in page
    assert '<div class="error">js/app.js: no file matches under public' in page
    assert str(example) not in page and str(example.resolve()) not in page
    for name in SERVICES:
        assert f"<h2>{name}</h2>" in page
    assert httpx.get(base + "/app-home/local/js/polyfills.js").status_code == 200
    assert httpx.get(base + "/app-checkout/local/checkout/cart.js").status_code == 404


def test_repos_lists_services_with_their_package_json_description(example, example_set, serve):
    base = serve(example_set)
    response = httpx.get(base + "/repos")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    for name in SERVICES:
        description = json.loads((example / name / "package.json").read_text(encoding="utf-8"))["description"]
        assert f"<td>{escape(description)}</td>" in response.text, name
        assert f"<code>{name}</code>" in response.text
    assert str(example) not in response.text
    head = httpx.head(base + "/repos")
    assert (head.status_code, head.content) == (200, b"")


TRAVERSALS = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2f..%2f..%2fetc/passwd",
    "/..%5c..%5c..%5cetc%5cpasswd",
    "//etc/passwd",
    "/etc/passwd",
    "/app-home/local/js/../../../app-home/bosco-service.json",
    "/app-home/local/js/%2e%2e/%2e%2e/%2e%2e/app-home/bosco-service.json",
    "/app-home/bosco-service.json",
    "/app-home/public/js/app.js",
    "/app-home/local/js/../js/app.js",
    "/./app-home/local/js/app.js",
    "http://127.0.0.1/etc/passwd",  # absolute-form request target
    "http://127.0.0.1/../../etc/passwd",
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_traversal_and_disk_paths_are_404(example, example_set, serve, method):
    base = serve(example_set)
    secret = example / "app-home" / "bosco-service.json"
    absolute = [str(secret), "/" + str(secret), str(secret).replace("/", "%2f")]
    index = example_set.get("index.html").data
    for path in TRAVERSALS + absolute:
        status, headers, body = raw(base, path, method)
        assert status == 404, path
        assert headers["content-type"] == "text/html; charset=utf-8", path
        assert body == (index if method == "GET" else b""), path


@pytest.fixture
def typed_workspace(tmp_path: Path) -> Path:
    """One service with one file of every content type the server must label."""
    repo = tmp_path / "ws" / "typed"
    files = {
        "app.js": b"console.log(`caf\xc3\xa9`);\n",
        "app.js.map": b'{"version":3,"sources":["app.js"],"mappings":""}\n',
        "site.css": b":root { --w: clamp(1rem, 2vw, 3rem); }\n",
        "icon.svg": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>\n',
        "font.woff2": b"wOF2\x00\x01\x00\x00\xff\xfe\x00\x80",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00",
        "photo.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\xff\xd9",
        "guide.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n%%EOF\n",
        "data.json": b'{"\xc3\xa9": [1, 2]}\n',
        "page.html": b"<!doctype html><p>\xe2\x9c\x93</p>\n",
    }
    for name, data in files.items():
        (repo / "static").mkdir(parents=True, exist_ok=True)
        (repo / "static" / name).write_bytes(data)
    manifest = {"assets": {"basePath": "static", "js": {"main": ["app.js", "app.js.map"]},
                           "css": {"main": ["site.css"]}, "img": {"main": ["icon.svg", "logo.png", "photo.jpg"]},
                           "fonts": {"main": ["font.woff2"]}, "pdf": {"main": ["guide.pdf"]},
                           "json": {"main": ["data.json"]}, "html": {"main": ["page.html"]}}}
    (repo / "bosco-service.json").write_text(json.dumps(manifest), encoding="utf-8")
    return repo.parent


def test_content_types_from_boscos_table(typed_workspace, serve):
    asset_set = build(typed_workspace, build="local")
    assert asset_set.errors == []
    base = serve(asset_set)
    expected = {
        "app.js": "text/javascript; charset=utf-8",
        "app.js.map": "application/json; charset=utf-8",
        "site.css": "text/css; charset=utf-8",
        "icon.svg": "image/svg+xml; charset=utf-8",
        "font.woff2": "font/woff2",
        "logo.png": "image/png",
        "photo.jpg": "image/jpeg",
        "guide.pdf": "application/pdf",
        "data.json": "application/json; charset=utf-8",
        "page.html": "text/html; charset=utf-8",
    }
    with httpx.Client(base_url=base) as client:
        for name, content_type in expected.items():
            response = client.get(f"/typed/local/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == content_type, name
            assert response.content == (typed_workspace / "typed" / "static" / name).read_bytes(), name
            assert response.headers["content-length"] == str(len(response.content)), name


def test_requests_wait_for_the_first_build_then_see_swaps(example, example_set, minified_set):
    holder = AssetHolder()
    waiting = threading.Event()  # set when a request starts waiting for the first build
    wait_ready = holder.wait_ready
    holder.wait_ready = lambda *args: waiting.set() or wait_ready(*args)  # type: ignore[method-assign]
    server = CdnServer(holder, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        preflight = httpx.options(base + "/app-home/local/js/app.js")  # answered without waiting
        assert preflight.status_code == 200
        results: list[httpx.Response] = []
        waiting_request = threading.Thread(target=lambda: results.append(httpx.get(base + "/app-home/local/js/app.js",
                                                                                    timeout=60)))
        waiting_request.start()
        assert waiting.wait(30), "the request never reached the server"
        assert results == []  # it cannot have been answered: no asset set yet
        threading.Thread(target=holder.swap, args=(example_set,)).start()
        waiting_request.join(30)
        assert not waiting_request.is_alive()
        (response,) = results
        assert response.status_code == 200
        assert response.content == (example / "app-home" / "public" / "js" / "app.js").read_bytes()
        etag = response.headers["etag"]

        holder.swap(minified_set)
        assert httpx.get(base + "/app-home/local/js/app.js").status_code == 404
        bundle = httpx.get(base + "/app-home/local/js/bottom.js", headers={"If-None-Match": etag})
        assert bundle.status_code == 200
        assert bundle.content == minified_set.get("app-home/local/js/bottom.js").data
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_writes_are_refused_with_405_and_cors(serve, example, method):
    base = serve(build(example))
    response = httpx.request(method, f"{base}/app-home/local/js/app.js", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == b""


def test_fragment_urls_are_percent_encoded_and_served(serve, tmp_path):
    repo = tmp_path / "ws" / "odd"
    (repo / "js").mkdir(parents=True)
    names = ["my file.js", "hash#1.js", "q?x=1.js", "pct%20.js"]
    for name in names:
        (repo / "js" / name).write_text(f"console.log({name!r});\n")
    (repo / "bosco-service.json").write_text(json.dumps(
        {"service": {"name": "odd svc \u00fc"}, "assets": {"js": {"all": [f"js/{n}" for n in names]}}}))
    base = serve(build(tmp_path / "ws", base_url="http://localhost:1"))
    fragment = httpx.get(f"{base}/odd%20svc%20%C3%BC/local/html/all.js.html").text
    srcs = re.findall(r'src="http://localhost:1(/[^"]+)"', fragment)
    assert srcs == [
        "/odd%20svc%20%C3%BC/local/js/my%20file.js",
        "/odd%20svc%20%C3%BC/local/js/hash%231.js",
        "/odd%20svc%20%C3%BC/local/js/q%3Fx%3D1.js",
        "/odd%20svc%20%C3%BC/local/js/pct%2520.js",
    ]
    for src, name in zip(srcs, names, strict=True):
        response = httpx.get(base + src)
        assert response.status_code == 200
        assert response.content == (repo / "js" / name).read_bytes()


@pytest.fixture
def video_base(tmp_path: Path, serve) -> tuple[str, bytes]:
    """A served site asset ``asset/clip.mp4`` of 1000 bytes."""
    repo = tmp_path / "ws" / "media"
    (repo / "site").mkdir(parents=True)
    data = bytes(range(256)) * 3 + bytes(232)
    (repo / "site" / "clip.mp4").write_bytes(data)
    (repo / "bosco-service.json").write_text(json.dumps({"siteAssets": [{"basePath": "site", "glob": "*"}]}))
    return serve(build(repo.parent, build="local")), data


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-1", 0, 1), ("bytes=990-", 990, 999), ("bytes=-10", 990, 999), ("bytes=500-5000", 500, 999),
    ("bytes=-5000", 0, 999), ("BYTES = 7 - 7", 7, 7),
])
def test_single_byte_range_gives_206(video_base, header: str, first: int, last: int) -> None:
    base, data = video_base
    for method in ("GET", "HEAD"):
        response = httpx.request(method, f"{base}/asset/clip.mp4", headers={"Range": header})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {first}-{last}/1000"
        assert response.headers["content-length"] == str(last - first + 1)
        assert response.headers["accept-ranges"] == "bytes"
        assert response.content == (data[first:last + 1] if method == "GET" else b"")


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_gives_416(video_base, header: str) -> None:
    base, _ = video_base
    response = httpx.get(f"{base}/asset/clip.mp4", headers={"Range": header})
    assert response.status_code == 416 and response.headers["content-range"] == "bytes */1000"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-", "bytes=-"])
def test_other_ranges_are_ignored_like_s3_does(video_base, header: str) -> None:
    base, data = video_base
    response = httpx.get(f"{base}/asset/clip.mp4", headers={"Range": header})
    assert response.status_code == 200 and response.content == data
    assert response.headers["accept-ranges"] == "bytes"


def test_if_range_applies_the_range_only_to_the_same_representation(video_base) -> None:
    base, data = video_base
    etag = httpx.get(f"{base}/asset/clip.mp4").headers["etag"]
    same = httpx.get(f"{base}/asset/clip.mp4", headers={"Range": "bytes=0-1", "If-Range": etag})
    assert same.status_code == 206 and same.content == data[:2]
    for stale in ('"0123"', "W/" + etag, "Sat, 29 Oct 1994 19:43:31 GMT"):
        other = httpx.get(f"{base}/asset/clip.mp4", headers={"Range": "bytes=0-1", "If-Range": stale})
        assert other.status_code == 200 and other.content == data


def test_unminified_index_page_links_each_bundle_to_its_concatenation(example, example_set, minified_set, serve):
    # unminified cdn serves each bundle key as the concatenation: its tag links there, its files stay listed
    page = httpx.get(serve(example_set) + "/").text
    assert '<td><a href="/app-home/local/js/bottom.js">bottom</a></td>' in page
    assert '<td><a href="/app-home/local/css/main.css">main</a></td>' in page
    assert '<li><a href="/app-home/local/js/app.js">app-home/local/js/app.js</a></li>' in page
    assert httpx.get(serve(example_set) + "/app-home/local/js/bottom.js").status_code == 200
    # minified: the bundle itself, as before
    assert '<td><a href="/app-home/local/js/bottom.js">bottom</a></td>' in httpx.get(serve(minified_set) + "/").text
