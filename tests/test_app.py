"""bosco's Python API (``bosco.app``) called directly, without the command line: ``build_to`` and
``Cdn`` on the example workspace, what the reporter is told, and the README's example run as
written. The S3 use cases are in tests/publish/test_app.py (moto's server)."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import until

from bosco import app
from bosco.errors import BoscoError, ProblemsError

README = Path(__file__).resolve().parents[1] / "README.md"


class Events(app.Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lines: list[tuple[str, str]] = []

    def event(self, name: str, **fields: Any) -> None:
        self.events.append((name, fields))

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))


pytestmark = pytest.mark.usefixtures("isolated_env")  # conftest.py: no user config, no BOSCO_* variables


def test_build_to_writes_the_release_and_returns_its_figures(example, tmp_path):
    ws = app.open_workspace(example, repo="^app-home$")
    out = tmp_path / "out"
    result = app.build_to(ws, out, build="7", reporter=Events())
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["app-home/7/css/main.css", "app-home/7/css/main.css.map", "app-home/7/fonts/inter.woff2",
                       "app-home/7/html/bottom.js.html", "app-home/7/html/main.css.html", "app-home/7/html/top.js.html",
                       "app-home/7/img/hero.jpg", "app-home/7/img/icon-cart.svg", "app-home/7/img/logo.png",
                       "app-home/7/js/bottom.js", "app-home/7/js/bottom.js.map", "app-home/7/js/top.js",
                       "app-home/7/js/top.js.map", "app-home/7/release.json", "app-home/releases.json",
                       "index.html"]  # the libraries and site assets are other services'
    assert (result.out, result.environment, result.build, result.services) == (out, "local", "7", ["app-home"])
    assert (result.written, result.unchanged, result.warnings) == (len(written), 0, [])
    assert result.bytes == sum((out / p).stat().st_size for p in written)
    again = app.build_to(ws, out, build="7")
    assert (again.written, again.unchanged, again.bytes) == (0, len(written), 0)


def test_build_to_renders_only_the_index_page_it_writes(example, tmp_path, monkeypatch):
    # index.html is regenerated from the release indexes; the built set's own page (what cdn
    # serves) was rendered too, only to be left out of the release
    from bosco import fragments, pipeline
    from bosco.publish import index_page

    rendered: list[str] = []
    for module in (pipeline, index_page):
        monkeypatch.setattr(module, "render_index", lambda *a, name=module.__name__, **k: rendered.append(name)
                            or fragments.render_index(*a, **k))
    app.build_to(app.open_workspace(example), tmp_path / "out", build="7")
    assert rendered == ["bosco.publish.index_page"]


def test_build_to_refuses_a_broken_service_and_writes_nothing(example, tmp_path):
    (example / "app-home" / "public" / "js" / "polyfills.js").unlink()
    reporter = Events()
    with pytest.raises(ProblemsError) as raised:
        app.build_to(app.open_workspace(example), tmp_path / "out", reporter=reporter)
    assert str(raised.value) == f"1 error; nothing written to {tmp_path / 'out'}"
    assert raised.value.problems == [text for kind, text in reporter.lines if kind == "error"]
    assert raised.value.problems[0].startswith("app-home: js/top: js/polyfills.js: no file matches")
    assert not (tmp_path / "out").exists()


def test_cdn_serves_over_http_and_reports_events(example):
    manifest = example / "app-checkout/bosco-service.json"  # the service's name is not its folder's
    manifest.write_text(manifest.read_text().replace('"name": "app-checkout"', '"name": "checkout-web"'))
    reporter = Events()
    cdn = app.Cdn(app.open_workspace(example), port=0, watch="app-home", reporter=reporter).start()
    try:
        assert cdn.built.wait(120)
        response = httpx.get(f"{cdn.base_url}/app-home/local/html/main.css.html")
        assert response.status_code == 200 and "app-home/local/css/" in response.text
    finally:
        cdn.stop()
    names = [name for name, _ in reporter.events]
    assert names == ["listening", "serving", "watching", "stopped"]
    serving = reporter.events[1][1]
    assert serving["url"] == f"http://localhost:{cdn.server.port}/" and serving["minified"] is False
    assert serving["services"] == ["app-home", "checkout-web", "app-reports", "service-api"]
    assert serving["assets"] == 44 == len(cdn.server.holder.asset_keys())
    assert reporter.events[2][1] == {"services": ["app-home"], "livereload": False}
    with pytest.raises(BoscoError, match="-w 'nope' matches none of the 4 services"):
        app.Cdn(app.open_workspace(example), port=0, watch="nope")


def test_the_readme_example_runs_as_written(example, monkeypatch):
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(example.parent)
    (example.parent / "examples").mkdir()
    example.rename(example.parent / "examples" / "workspace")
    exec(compile(code, "README.md", "exec"), {})
    out = example.parent / "out"
    assert json.loads((out / "app-reports" / "releases.json").read_text())["current"] == "7"
    assert not (out / "service-api").exists()


def test_configuration_names_the_origin_of_every_value(example, monkeypatch):
    monkeypatch.setenv("BOSCO_CDN_PORT", "8000")
    (example / ".bosco" / "bosco.json").write_text(json.dumps({"aws": {"bucket": "b", "secret": "s3cr3t"}}))
    report = app.configuration(app.open_workspace(example, overrides={"brotli": {"quality": 4}}))
    rows = {key: (value, origin) for key, value, origin in report.rows}
    assert rows["cdn.port"] == (8000, "environment variable BOSCO_CDN_PORT")
    assert rows["aws.bucket"] == ("b", str(example / ".bosco" / "bosco.json"))
    assert rows["cdn.host"] == ("127.0.0.1", "default")
    assert rows["brotli.quality"][0] == 4
    assert "s3cr3t" not in json.dumps(report.to_json()) and report.to_json() == report.values
    assert (report.root, report.environment) == (example, "local")
    assert str(example / ".bosco" / "bosco.json") in report.sources


def test_cdn_answers_a_service_as_soon_as_it_is_built_while_another_build_command_waits(tmp_path):
    """The first request for a service is answered with its complete fragment as soon as that
    service is built: neither the services after it nor another service's build.command hold it."""
    go = tmp_path / "go"
    slow = tmp_path / "ws" / "aaa-slow"  # first in order; its build.command waits until the test says go
    slow.mkdir(parents=True)
    script = (f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
              "pathlib.Path('public').mkdir()\npathlib.Path('public/a.js').write_text('var a = 1;\\n')\n")
    (slow / "bosco-service.json").write_text(json.dumps({
        "service": {"name": "aaa-slow"}, "build": {"command": [sys.executable, "-c", script], "timeout": 300000},
        "assets": {"basePath": "public", "js": {"top": ["a.js"]}}}))
    for name in ("bbb", "ccc"):
        repo = tmp_path / "ws" / name
        (repo / "public").mkdir(parents=True)
        (repo / "public" / f"{name}.js").write_text(f"var {name} = 1;\n")
        (repo / "bosco-service.json").write_text(json.dumps({
            "service": {"name": name}, "assets": {"basePath": "public", "js": {"top": [f"{name}.js"]}}}))
    cdn = app.Cdn(app.open_workspace(tmp_path / "ws"), port=0).start()
    try:
        fragment = httpx.get(f"{cdn.base_url}/ccc/local/html/top.js.html", timeout=60)
        assert fragment.status_code == 200
        assert fragment.text.count("<script") == 1 and f"{cdn.base_url}/ccc/local/ccc.js" in fragment.text
        assert httpx.get(f"{cdn.base_url}/ccc/local/ccc.js", timeout=60).text == "var ccc = 1;\n"
        index: list[httpx.Response] = []  # the index page waits for every service
        asking = threading.Thread(target=lambda: index.append(httpx.get(f"{cdn.base_url}/", timeout=60)))
        asking.start()
        slow_fragment: list[httpx.Response] = []  # so does a service not built yet
        waiting = threading.Thread(target=lambda: slow_fragment.append(
            httpx.get(f"{cdn.base_url}/aaa-slow/local/html/top.js.html", timeout=60)))
        waiting.start()
        until(lambda: "aaa-slow" in cdn.server.holder.wanted, what="the request for aaa-slow to wait")
        assert not go.exists() and not (slow / "public").exists() and not cdn.built.is_set()  # still waiting
        assert index == [] and slow_fragment == []
        go.write_text("")
        asking.join(60)
        waiting.join(60)
        assert cdn.built.wait(120)
        assert slow_fragment[0].status_code == 200 and f"{cdn.base_url}/aaa-slow/local/a.js" in slow_fragment[0].text
        assert "aaa-slow" in index[0].text and "ccc" in index[0].text
    finally:
        go.write_text("")
        cdn.stop()
