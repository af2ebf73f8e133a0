"""Live reload: the server-sent events stream, the script, fragments, and a real headless browser."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import Live, atomic_write, until

from conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def page_server(html: str) -> Iterator[str]:
    """Serve ``html`` at ``/`` of a local HTTP server (the app server a developer's page comes from;
    Chromium's local network access checks refuse a public page's sockets to 127.0.0.1); yields its URL."""
    body = html.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


COLOR = "getComputedStyle(document.querySelector('.probe')).color"


@contextmanager
def chromium_with_page(fragment: str) -> Iterator[tuple[Any, str]]:
    """Headless Chromium (Playwright; the test is skipped without it) and the URL of a page whose
    head holds ``fragment`` and whose body holds a ``.probe`` paragraph (its colour is ``COLOR``)."""
    playwright = pytest.importorskip("playwright.sync_api")
    html = f"<!doctype html><html><head>{fragment}</head><body><p class='probe'>probe</p></body></html>"
    with playwright.sync_playwright() as p, page_server(html) as page_url:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser, page_url
        finally:
            browser.close()


def read_event(lines, name: str) -> dict:
    """The data of the next ``name`` event on an SSE line iterator."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event == name:
            return json.loads(line[len("data: "):])
    raise AssertionError(f"stream ended before a {name} event")


def subscribe(w: Live, stream: httpx.Response):
    """Iterate the stream's lines once the server has registered the client."""
    lines = stream.iter_lines()
    assert next(lines) == "retry: 1000"
    assert next(lines) == ": connected"
    until(lambda: w.holder.events.subscribers >= 1, what="the SSE client to be registered")
    return lines


def test_sse_client_receives_the_changed_key(live, example: Path) -> None:
    w = live()
    with w.http.stream("GET", "/_bosco/events") as stream:
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["access-control-allow-origin"] == "*"
        lines = subscribe(w, stream)
        atomic_write(example / "app-home/public/css/home.css", b".sse {}\n")
        event = read_event(lines, "rebuild")
    assert event["service"] == "app-home" and event["ok"] is True and event["css_only"] is True
    assert event["changed"] == ["app-home/local/css/home.css", "app-home/local/css/main.css",
                                "app-home/local/css/main.css.map"] and event["removed"] == [] and event["errors"] == []


def test_sse_js_change_is_not_css_only_and_failures_are_replayed(live, example: Path) -> None:
    w = live()
    with w.http.stream("GET", "/_bosco/events") as stream:
        lines = subscribe(w, stream)
        atomic_write(example / "app-home/public/js/app.js", b"var x;\n")
        event = read_event(lines, "rebuild")
        assert event["changed"] == ["app-home/local/js/app.js", "app-home/local/js/bottom.js",
                                    "app-home/local/js/bottom.js.map"] and event["css_only"] is False
        (example / "app-home/public/css/base.css").unlink()
        failed = read_event(lines, "rebuild")
    assert failed["ok"] is False
    # any origin may read the stream: paths are repo-relative, never where the workspace lives
    assert failed["errors"] == ["css/main: css/base.css: no file matches under public"]
    # a page loaded while the service is broken learns it on connect, until the next good rebuild
    with w.http.stream("GET", "/_bosco/events") as stream:
        lines = subscribe(w, stream)
        assert read_event(lines, "rebuild") == failed
        (example / "app-home/public/css/base.css").write_text("body {}\n")
        assert read_event(lines, "rebuild")["ok"] is True
    with w.http.stream("GET", "/_bosco/events") as stream:
        lines = stream.iter_lines()
        assert [next(lines), next(lines), next(lines)] == ["retry: 1000", ": connected", ""]
        assert w.holder.events.subscribers >= 1  # and nothing is replayed


def test_livereload_script_is_served(live) -> None:
    w = live()
    response = w.get("_bosco/livereload.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content == resources.files("bosco.templates").joinpath("livereload.js").read_bytes()
    assert b'new URL("socket", me.src)' in response.content


def test_fragments_of_watched_services_include_the_script_only_with_livereload(live) -> None:
    w = live(livereload=True)
    script = f'<script src="{w.url}/_bosco/livereload.js" data-bosco-service="app-home"></script>'
    assert w.get("app-home/local/html/main.css.html").text == (
        f'<link rel="stylesheet" href="{w.url}/app-home/local/css/base.css" type="text/css" media="all" />\n'
        f'<link rel="stylesheet" href="{w.url}/app-home/local/css/home.css" type="text/css" media="all" />\n'
        f"{script}\n"
    )
    assert w.get("app-home/local/html/top.js.html").text.endswith(f"{script}\n")
    assert "livereload" not in w.get("app-checkout/local/html/checkout.js.html").text  # not watched
    w.close()
    plain = live()
    assert "livereload" not in plain.get("app-home/local/html/main.css.html").text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed: apt-get install -y chromium "
                    "(.ci/run does it)")
def test_browser_swaps_css_in_place_reloads_on_js_and_shows_failures(live, example: Path) -> None:
    w = live(livereload=True)
    fragment = w.get("app-home/local/html/main.css.html").text
    with chromium_with_page(fragment) as (browser, page_url):
        page = browser.new_page()
        page.goto(page_url)
        until(lambda: w.holder.events.subscribers >= 1, what="the page to connect to the event stream")
        page.evaluate("window.marker = 42")
        assert page.evaluate(COLOR) == "rgb(29, 35, 39)"  # body colour from base.css

        atomic_write(example / "app-home/public/css/home.css", b".probe { color: rgb(1, 2, 3); }\n")
        page.wait_for_function(f"{COLOR} === 'rgb(1, 2, 3)'", timeout=15000)
        assert page.evaluate("window.marker") == 42  # no reload: the stylesheet was swapped in place
        links = page.evaluate("[...document.querySelectorAll('link')].map(l => l.href)")
        assert links[0] == f"{w.url}/app-home/local/css/base.css" and len(links) == 2
        assert links[1].startswith(f"{w.url}/app-home/local/css/home.css?bosco=")

        manifest = example / "app-home/bosco-service.json"
        good = manifest.read_text()
        manifest.write_text("{")
        overlay = page.wait_for_selector("#bosco-overlay", timeout=15000)
        assert overlay.text_content().startswith("bosco: app-home failed to rebuild\n\nbosco-service.json:1:2: ")
        manifest.write_text(good)
        page.wait_for_selector("#bosco-overlay", state="detached", timeout=15000)
        assert page.evaluate("window.marker") == 42

        with page.expect_navigation(timeout=15000):
            atomic_write(example / "app-home/public/js/app.js", b"var reloaded = true;\n")
        assert page.evaluate("window.marker") is None  # anything but CSS reloads the page



def test_server_socket_is_tcp_so_responses_are_not_delayed() -> None:
    from bosco.server import bind

    sock = bind("127.0.0.1", 0)
    try:  # asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_ctrl_c_with_an_open_event_stream_stops_quietly(example: Path, tmp_path: Path) -> None:
    port = free_port()

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_bosco/livereload.js").status_code == 200
        except httpx.TransportError:
            return False

    log = tmp_path / "cdn.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "bosco", "cdn", "-w", "app-home", "--livereload",
                                 "--port", str(port)], cwd=example, stdout=handle, stderr=subprocess.STDOUT)
    try:
        until(up, 60, "bosco cdn to answer")
        until(lambda: "watching app-home" in log.read_text(), 60, "the first build to finish")
        with httpx.stream("GET", f"http://127.0.0.1:{port}/_bosco/events", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "retry: 1000"
            os.kill(proc.pid, signal.SIGINT)
            rest = list(lines)  # the server ends the stream itself on shutdown
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    output = log.read_text()
    assert rest[-1] == "" and ": connected" in rest
    assert "Traceback" not in output and "ERROR" not in output
    assert output.rstrip().endswith("stopped")


TABS = 10
FONT_AND_FETCH = """async ([font, asset]) => {
    const face = new FontFace("probe", `url(${font})`);
    const settled = await face.load().then(() => "loaded", (e) => "settled: " + e.name);
    const timing = performance.getEntriesByName(font).at(-1);
    const response = await fetch(asset);
    return [settled !== undefined && timing && timing.responseStatus, response.status, (await response.text()).length];
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed: apt-get install -y chromium "
                    "(.ci/run does it)")
def test_ten_tabs_all_live_reload_and_still_load_fonts_and_fetch(live, example: Path) -> None:
    # a browser allows 6 HTTP/1.1 connections per host: one event stream per tab used them all up
    w = live(livereload=True)
    fragment = w.get("app-home/local/html/main.css.html").text + w.get("app-home/local/html/bottom.js.html").text
    font, asset = f"{w.url}/app-home/local/fonts/inter.woff2", f"{w.url}/app-home/local/css/base.css"
    with chromium_with_page(fragment) as (browser, page_url):
        context = browser.new_context()
        pages = [context.new_page() for _ in range(TABS)]
        for page in pages:
            page.goto(page_url)
            page.evaluate("window.marker = 42")
        until(lambda: w.holder.events.subscribers >= TABS, what="every tab to connect")
        base_css = len((example / "app-home/public/css/base.css").read_bytes())
        for page in pages:  # the font's request completed (200) and fetch() answers, in every tab
            assert page.evaluate(FONT_AND_FETCH, [font, asset]) == [200, 200, base_css]

        atomic_write(example / "app-home/public/css/home.css", b".probe { color: rgb(1, 2, 3); }\n")
        for page in pages:
            page.wait_for_function(f"{COLOR} === 'rgb(1, 2, 3)'", timeout=15000)
            assert page.evaluate("window.marker") == 42  # swapped in place
        atomic_write(example / "app-home/public/js/app.js", b"var reloaded = true;\n")
        for page in pages:
            page.wait_for_function("window.reloaded === true && window.marker === undefined", timeout=15000)
        for page in pages:
            assert page.evaluate(FONT_AND_FETCH, [font, asset]) == [200, 200, base_css]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed: apt-get install -y chromium "
                    "(.ci/run does it)")
@pytest.mark.parametrize("name", ["café.css", "my styles.css"])
def test_css_hot_swap_of_names_that_urls_encode(live, example: Path, name: str) -> None:
    css = example / "app-home/public/css" / name
    css.write_text(".probe { color: rgb(4, 5, 6); }\n")
    manifest = example / "app-home/bosco-service.json"
    manifest.write_text(manifest.read_text().replace('"css/home.css"]', f'"css/home.css", "css/{name}"]'))
    w = live(livereload=True)
    fragment = w.get("app-home/local/html/main.css.html").text
    assert "%20" in fragment or "%C3%A9" in fragment
    with chromium_with_page(fragment) as (browser, page_url):
        page = browser.new_page()
        page.goto(page_url)
        until(lambda: w.holder.events.subscribers >= 1, what="the page to connect")
        assert page.evaluate(COLOR) == "rgb(4, 5, 6)"
        page.evaluate("window.marker = 42")
        atomic_write(css, b".probe { color: rgb(7, 8, 9); }\n")
        page.wait_for_function(f"{COLOR} === 'rgb(7, 8, 9)'", timeout=15000)
        assert page.evaluate("window.marker") == 42


def test_a_socket_closed_by_its_client_ends_without_error() -> None:
    # the client goes while the socket waits for the next message: the waiting is cancelled and
    # ended before the message stream is closed (closing it first raised "aclose(): asynchronous
    # generator is already running" out of the app)
    import warnings

    from bosco.server import AssetHolder, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette asks for httpx2 (the same API)
        from starlette.testclient import TestClient

    holder = AssetHolder()
    with TestClient(create_app(holder)) as client:
        for n in range(3):
            with client.websocket_connect("/_bosco/socket") as ws:
                until(lambda: holder.events.subscribers == 1, what="the socket to subscribe")
                holder.events.publish("rebuild", {"n": n})
                assert ws.receive_json() == {"event": "rebuild", "data": {"n": n}}
            until(lambda: holder.events.subscribers == 0, what="the socket to unsubscribe")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed: apt-get install -y chromium "
                    "(.ci/run does it)")
@pytest.mark.parametrize("minify", [False, True])
def test_editing_an_imported_style_sheet_updates_the_page(live, example: Path, minify: bool) -> None:
    # the page links home.css (or the bundle); the rule is in a sheet home.css imports
    css = example / "app-home/public/css"
    (css / "partials").mkdir()
    (css / "partials/probe.css").write_text(".probe { color: rgb(4, 5, 6); }\n")
    home = css / "home.css"
    home.write_text('@import "partials/probe.css";\n' + home.read_text())
    w = live(livereload=True, minify=minify)
    fragment = w.get("app-home/local/html/main.css.html").text
    with chromium_with_page(fragment) as (browser, page_url):
        page = browser.new_page()
        page.goto(page_url)
        until(lambda: w.holder.events.subscribers >= 1, what="the page to connect")
        assert page.evaluate(COLOR) == "rgb(4, 5, 6)"
        atomic_write(css / "partials/probe.css", b".probe { color: rgb(7, 8, 9); }\n")
        page.wait_for_function(f"{COLOR} === 'rgb(7, 8, 9)'", timeout=15000)
