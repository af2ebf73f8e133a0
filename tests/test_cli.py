"""The real ``bosco`` CLI (click's runner, and subprocesses where a process matters) on copies of the example."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from bosco.cli import cli

from conftest import free_port, linked_vendor, running_cdn

PUBLISHED = [
    "app-checkout/default/css/checkout.css",
    "app-checkout/default/css/checkout.css.map",
    "app-checkout/default/html/checkout.css.html",
    "app-checkout/default/html/checkout.js.html",
    "app-checkout/default/html/vendor-min.js.html",
    "app-checkout/default/js/checkout.js",
    "app-checkout/default/js/checkout.js.map",
    "app-checkout/default/js/vendor-min.js",
    "app-checkout/default/js/vendor-min.js.map",
    "app-home/default/css/main.css",
    "app-home/default/css/main.css.map",
    "app-home/default/fonts/inter.woff2",
    "app-home/default/html/bottom.js.html",
    "app-home/default/html/main.css.html",
    "app-home/default/html/top.js.html",
    "app-home/default/img/hero.jpg",
    "app-home/default/img/icon-cart.svg",
    "app-home/default/img/logo.png",
    "app-home/default/js/bottom.js",
    "app-home/default/js/bottom.js.map",
    "app-home/default/js/top.js",
    "app-home/default/js/top.js.map",
    "app-reports/default/css/reports.css",
    "app-reports/default/css/reports.css.map",
    "app-reports/default/html/reports.css.html",
    "app-reports/default/html/reports.js.html",
    "app-reports/default/js/reports.js",
    "app-reports/default/js/reports.js.map",
    "asset/favicon.svg",
    "index.html",
    "vendor/library/dom-helpers/closest.js",
    "vendor/library/es-shim/shim.js",
]
# The release indexes build --out writes last, as s3push does (services with published files).
RELEASE_INDEXES = [f"{service}/{name}" for service in ("app-checkout", "app-home", "app-reports")
                   for name in ("default/release.json", "releases.json")]
WRITTEN = sorted(PUBLISHED + RELEASE_INDEXES)
# Single files published as they are on disk: key -> path in the example workspace.
VERBATIM = {
    "app-home/default/fonts/inter.woff2": "app-home/public/fonts/inter.woff2",
    "app-home/default/img/hero.jpg": "app-home/public/img/hero.jpg",
    "app-home/default/img/icon-cart.svg": "app-home/public/img/icon-cart.svg",
    "app-home/default/img/logo.png": "app-home/public/img/logo.png",
    "asset/favicon.svg": "app-checkout/site/favicon.svg",
    "vendor/library/dom-helpers/closest.js": "app-checkout/lib/dom-helpers/closest.js",
    "vendor/library/es-shim/shim.js": "app-checkout/lib/es-shim/shim.js",
}


pytestmark = pytest.mark.usefixtures("isolated_env")  # conftest.py: no user config, no BOSCO_* variables


def bosco(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_build_writes_exactly_the_published_key_set(example, tmp_path, monkeypatch):
    monkeypatch.chdir(example)
    out = tmp_path / "out"
    result = bosco("build", "--out", out)
    assert result.exit_code == 0, result.output
    assert files(out) == WRITTEN
    for key, source in VERBATIM.items():
        assert (out / key).read_bytes() == (example / source).read_bytes(), key
    assert result.stdout == ""
    assert "wrote 38 files" in result.stderr and "for 4 services" in result.stderr


def test_build_accepts_the_workspace_option_from_anywhere(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = bosco("build", "-W", example, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "out") == WRITTEN


def test_no_minify_concatenates_the_sources_unchanged(example, tmp_path):
    assert bosco("-W", example, "build", "--out", tmp_path / "min").exit_code == 0
    result = bosco("-W", example, "build", "--no-minify", "--out", tmp_path / "plain")
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain"
    assert files(plain) == WRITTEN
    js = example / "app-home" / "public" / "js"
    bottom = (plain / "app-home/default/js/bottom.js").read_text(encoding="utf-8")
    names = ("lib/dom-ready.js", "lib/format.js", "app.js")
    parts = [(js / name).read_text(encoding="utf-8-sig").rstrip() for name in names]  # BOMs are removed
    positions = [bottom.index(part) for part in parts]
    assert positions == sorted(positions)
    for key in ("app-home/default/js/top.js", "app-home/default/css/main.css", "app-checkout/default/js/checkout.js"):
        assert len((tmp_path / "min" / key).read_bytes()) < len((plain / key).read_bytes()), key
    base_css = (example / "app-home/public/css/base.css").read_text(encoding="utf-8").rstrip()
    assert base_css in (plain / "app-home/default/css/main.css").read_text(encoding="utf-8")
    assert base_css not in (tmp_path / "min" / "app-home/default/css/main.css").read_text(encoding="utf-8")


def test_build_option_sets_the_build_segment(example, tmp_path):
    result = bosco("-W", example, "build", "-b", "55", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "out") == sorted(k.replace("/default/", "/55/") for k in WRITTEN)
    fragment = (tmp_path / "out" / "app-home/55/html/top.js.html").read_text(encoding="utf-8")
    assert fragment.startswith('<script src="/app-home/55/js/top.js" ')


def test_bundle_argument_limits_bundles_to_one_tag(example, tmp_path):
    result = bosco("-W", example, "build", "top", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    bundles = [k for k in files(tmp_path / "out") if "/default/" in k]
    # app-checkout has no "top" bundle: its library and site files must not drag it into a release
    assert bundles == ["app-home/default/html/top.js.html", "app-home/default/js/top.js",
                       "app-home/default/js/top.js.map", "app-home/default/release.json"]
    assert not [k for k in files(tmp_path / "out") if k.startswith("app-checkout/")]


def test_globstar_reaches_into_a_symlinked_folder_one_level_as_npm_bosco_did(example, tmp_path, monkeypatch):
    # node-glob 7 (the npm tool's globs): `**` may end at a symbolic link to a folder, so the files
    # directly in it are assets, not those in its subfolders (docs/manifest.md "Globs"); a file
    # added behind the link later is seen by the next build, even one that would change nothing
    from bosco import stamps

    monkeypatch.setattr(stamps, "RACY_NS", 0)  # trust folder stats milliseconds old: the no-op check applies
    shutil.rmtree(example / "app-reports")  # its build.command runs on every build: no run is skipped
    repo = linked_vendor(example / "app-home")
    out = tmp_path / "out"
    assert bosco("-W", example, "build", "--out", out).exit_code == 0
    bundle = (out / "app-home/default/js/linked.js").read_text()
    assert "own=1" in bundle and "linked=2" in bundle and "deep" not in bundle
    unchanged = bosco("-W", example, "build", "--out", out, "-v")
    assert unchanged.exit_code == 0 and "nothing changed" in unchanged.output
    (repo / "shared-js/added.js").write_text("var added = 4;\n")
    assert bosco("-W", example, "build", "--out", out).exit_code == 0
    assert "added=4" in (out / "app-home/default/js/linked.js").read_text()


def test_fragment_urls_are_root_relative_by_default(example, tmp_path):
    out = tmp_path / "out"
    assert bosco("-W", example, "build", "--out", out).exit_code == 0
    top = sri((out / "app-home/default/js/top.js").read_bytes())
    css = sri((out / "app-home/default/css/main.css").read_bytes())
    assert (out / "app-home/default/html/top.js.html").read_text(encoding="utf-8") == (
        f'<script src="/app-home/default/js/top.js" integrity="{top}" crossorigin="anonymous"></script>\n')
    assert (out / "app-home/default/html/main.css.html").read_text(encoding="utf-8") == (
        f'<link rel="stylesheet" href="/app-home/default/css/main.css" type="text/css" media="all" '
        f'integrity="{css}" crossorigin="anonymous" />\n')


def test_fragment_urls_use_base_url(example, tmp_path):
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out, "--base-url", "https://static.example.com/assets/")
    assert result.exit_code == 0, result.output
    fragment = (out / "app-checkout/default/html/checkout.js.html").read_text(encoding="utf-8")
    assert fragment.startswith('<script src="https://static.example.com/assets/app-checkout/default/js/checkout.js" ')
    assert fragment.count("<script") == 1


@pytest.mark.parametrize("base_url", ["javascript:alert(1)//", "static/assets", "data:text/html,x"])
def test_base_url_that_is_not_a_url_prefix_is_refused_before_writing(example, tmp_path, base_url):
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out, "--base-url", base_url)
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        f"error: --base-url {base_url!r} is not a URL prefix fragments can link",
        "hint: give an http:// or https:// URL, or a path starting with / (docs/commands.md)"]
    assert not out.exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_fragment_urls_use_aws_cdn_and_environment(example, tmp_path, where):
    (example / ".bosco" / "tes.json").write_text('{"aws": {"cdn": "https://cdn.example.com/"}}', encoding="utf-8")
    out = tmp_path / "out"
    args = ["-e", "tes", "build", "--out", out] if where == "before" else ["build", "--out", out, "-e", "tes"]
    # aws.cdn wins over --base-url
    result = bosco("-W", example, *args, "--base-url", "https://ignored.example.com")
    assert result.exit_code == 0, result.output
    assert files(out) == WRITTEN  # keys carry no environment; only URLs and S3 object keys do
    fragment = (out / "app-home/default/html/main.css.html").read_text(encoding="utf-8")
    url = "https://cdn.example.com/tes/app-home/default/css/main.css"
    assert fragment.startswith(f'<link rel="stylesheet" href="{url}" ')
    local = tmp_path / "local"
    assert bosco("-W", example, "build", "--out", local).exit_code == 0  # tes.json is read only for -e tes
    assert (local / "app-home/default/html/main.css.html").read_text(encoding="utf-8").startswith(
        '<link rel="stylesheet" href="/app-home/default/css/main.css" ')


def test_invalid_json_manifest_fails_naming_file_line_and_column(example, tmp_path):
    manifest = example / "app-checkout" / "bosco-service.json"
    manifest.write_text('{\n  "service": {"name": "app-checkout"},\n  "tags": ["front",]\n}\n', encoding="utf-8")
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out)
    assert result.exit_code == 1
    message = f"{manifest}:3:19: invalid JSON: trailing comma before ']' (JSON allows none)"
    assert f"error: app-checkout: {message}" in error_lines(result)
    assert error_lines(result)[-1] == f"error: 1 error; nothing written to {out}"
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_file_fails_and_writes_nothing(example, tmp_path):
    (example / "app-home" / "public" / "js" / "app.js").unlink()
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out)
    assert result.exit_code == 1
    folder = example / "app-home" / "public"
    assert f"error: app-home: js/bottom: js/app.js: no file matches under {folder}" in error_lines(result)
    assert not out.exists()


def test_failing_build_command_shows_its_exit_code_and_output(example, tmp_path):
    (example / "app-reports" / "build.py").write_text(
        "import sys\nprint('compiling charts')\nprint('chart.js: unexpected token', file=sys.stderr)\nsys.exit(3)\n",
        encoding="utf-8")
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out)
    assert result.exit_code == 1
    assert "error: app-reports: build command `python3 build.py` failed with exit code 3" in (
        error_lines(result))
    assert "compiling charts\nchart.js: unexpected token\n" in result.stderr
    assert not out.exists()


def run_module(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bosco", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("mode", ["minify", "--minify"])
def test_cdn_minify_serves_bundles_and_the_other_services_when_a_build_fails(example, tmp_path, isolated_env, mode):
    (example / "app-reports" / "build.py").write_text("print('compiling charts')\nraise SystemExit(3)\n",
                                                     encoding="utf-8")
    log = tmp_path / "cdn.log"
    with running_cdn([sys.executable, "-m", "bosco", "cdn", mode], example, isolated_env, log) as (base, index):
        assert index.status_code == 404
        assert '<p class="error">build command `python3 build.py` failed with exit code 3' in index.text
        port = base.rsplit(":", 1)[1]
        fragment = httpx.get(base + "/app-home/local/html/top.js.html")
        assert fragment.status_code == 200
        assert fragment.text.startswith(f'<script src="http://localhost:{port}/app-home/local/js/top.js"')
        assert fragment.text.count("<script") == 1
        bundle = httpx.get(base + "/app-home/local/js/top.js")
        assert bundle.status_code == 200
        assert bundle.text.endswith("//# sourceMappingURL=top.js.map\n")
        source_map = httpx.get(base + "/app-home/local/js/top.js.map")
        assert source_map.headers["content-type"] == "application/json; charset=utf-8"
        assert source_map.json()["sources"] == ["app-home/public/js/polyfills.js"]
        assert httpx.get(base + "/app-home/local/js/polyfills.js").status_code == 404  # bundled, not single
        assert httpx.get(base + "/app-reports/local/js/reports.js").status_code == 404
    output = log.read_text()
    assert "error: app-reports: build command `python3 build.py` failed with exit code 3" in output
    assert "compiling charts" in output
    assert "Traceback" not in output
    assert output.splitlines()[0].startswith("listening on http://127.0.0.1:")  # no empty line from a progress bar


def test_busy_port_is_one_clear_error_line(example, isolated_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_module("cdn", "--port", str(port), cwd=example, env=isolated_env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use",
        "hint: stop the other process or pass --port (or set cdn.port)",
    ]


def test_host_that_cannot_be_bound_is_one_clear_error_line(example, isolated_env):
    port = free_port()
    proc = run_module("cdn", "--host", "203.0.113.7", "--port", str(port), cwd=example, env=isolated_env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == f"error: cannot listen on 203.0.113.7:{port}: Cannot assign requested address"
    assert "Traceback" not in proc.stderr


SECRETS = ("AKIAEXAMPLEKEY12345", "wJalrXUtnFEMI-secret-value", "env-secret-0987")


def test_config_masks_secrets_and_shows_environment_overrides(example):
    settings = json.loads((example / ".bosco" / "bosco.json").read_text(encoding="utf-8"))
    settings["aws"] = {"key": SECRETS[0], "secret": SECRETS[1], "bucket": "shop-assets"}
    (example / ".bosco" / "bosco.json").write_text(json.dumps(settings), encoding="utf-8")
    env = {"BOSCO_CDN_PORT": "9123", "BOSCO_AWS_TOKEN": SECRETS[2]}
    result = bosco("-W", example, "config", env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    settings_file = example / ".bosco" / "bosco.json"
    for line in ('aws.key = "****"', 'aws.secret = "****"', 'aws.token = "****"', 'aws.bucket = "shop-assets"',
                 "cdn.port = 9123", 'cdn.host = "127.0.0.1"'):
        assert line in [entry.split("  # ")[0] for entry in lines]
    # each value names what set it, as `aws configure list` does
    for line in ("cdn.port = 9123  # environment variable BOSCO_CDN_PORT", 'cdn.host = "127.0.0.1"  # default',
                 f'aws.bucket = "shop-assets"  # {settings_file}'):
        assert line in lines
    assert f"  read {example / '.bosco' / 'bosco.json'}" in result.stderr.splitlines()
    as_json = bosco("-W", example, "-v", "config", "--json", env=env)
    assert as_json.exit_code == 0
    values = json.loads(as_json.stdout)
    assert values["aws"]["secret"] == values["aws"]["key"] == values["aws"]["token"] == "****"
    assert values["cdn"]["port"] == 9123
    for secret in SECRETS:
        assert secret not in result.output and secret not in as_json.output


def test_config_masks_secrets_at_any_depth_in_lists_and_urls(example):
    (example / ".bosco" / "bosco.json").write_text(json.dumps({
        "aws": {"bucket": "shop-assets", "endpoint": "https://minio:m1n10-pass@s3.internal:9000",
                "profiles": [{"name": "ci", "secret": "list-secret-1"}, {"name": "dev", "apiKey": "AK-2"}]},
        "sentry": {"dsn": "https://0123abcdkey@o1.ingest.sentry.io/42"},
        "db": {"url": "postgres://app:db-pass-9@db.internal/app", "auth": {"user": "u"}},
        "signing": {"privateKey": "PEM", "passphrase": "open sesame"},
    }), encoding="utf-8")
    result = bosco("-W", example, "config")
    assert result.exit_code == 0, result.output
    lines = [entry.split("  # ")[0] for entry in result.stdout.splitlines()]
    for line in ('aws.endpoint = "https://****@s3.internal:9000"', 'aws.bucket = "shop-assets"',
                 'aws.profiles[0].name = "ci"', 'aws.profiles[0].secret = "****"', 'aws.profiles[1].apiKey = "****"',
                 'sentry.dsn = "https://****@o1.ingest.sentry.io/42"', 'db.url = "postgres://****@db.internal/app"',
                 'db.auth.user = "****"', 'signing.privateKey = "****"', 'signing.passphrase = "****"'):
        assert line in lines
    as_json = json.loads(bosco("-W", example, "config", "--json").stdout)
    assert as_json["aws"]["profiles"] == [{"name": "ci", "secret": "****"}, {"name": "dev", "apiKey": "****"}]
    for secret in ("m1n10-pass", "list-secret-1", "AK-2", "0123abcdkey", "db-pass-9", "PEM", "open sesame"):
        assert secret not in result.output


def test_config_error_names_the_file_line_and_column(example):
    (example / ".bosco" / "bosco.json").write_text('{"cdn": {"port": 7334,}}', encoding="utf-8")
    result = bosco("-W", example, "config")
    assert result.exit_code == 1
    settings = example / ".bosco" / "bosco.json"
    assert error_lines(result)[0].startswith(f"error: {settings}:1:22: invalid JSON: trailing comma")


def published_services(out: Path) -> list[str]:
    return sorted({k.split("/")[0] for k in files(out)} - {"index.html"})


@pytest.mark.parametrize(("args", "services"), [
    (["-r", "home"], ["app-home"]),
    (["-r", "^app-(home|reports)$"], ["app-home", "app-reports"]),
    (["-t", "checkout"], ["app-checkout", "asset", "vendor"]),
    (["-t", "front"], ["app-checkout", "app-home", "asset", "vendor"]),
    (["-t", "front", "-r", "home"], ["app-home"]),
])
def test_repo_and_tag_filters(example, tmp_path, args, services):
    out = tmp_path / "out"
    result = bosco("-W", example, "build", "--out", out, *args)
    assert result.exit_code == 0, result.output
    assert published_services(out) == services
    assert (out / "index.html").is_file()


def test_repo_filter_before_the_command_name(example, tmp_path):
    result = bosco("-W", example, "-r", "reports", "build", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert published_services(tmp_path / "out") == ["app-reports"]


def test_service_filter_uses_the_service_of_the_current_folder(example, tmp_path, monkeypatch):
    monkeypatch.chdir(example / "app-home" / "public" / "js")
    result = bosco("build", "-s", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert published_services(tmp_path / "out") == ["app-home"]
    assert "for 1 service to" in result.stderr


def test_service_filter_outside_any_service_fails(example, tmp_path, monkeypatch):
    monkeypatch.chdir(example)
    result = bosco("-s", "build", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: {example.resolve()} is not inside any service of the workspace"]
    assert not (tmp_path / "out").exists()


def test_invalid_repo_regex_is_a_usage_error(example, tmp_path):
    result = bosco("-W", example, "build", "--out", tmp_path / "out", "-r", "app-(")
    assert result.exit_code == 2
    assert "Invalid value for --repo: 'app-(' is not a valid regular expression" in result.stderr


@pytest.mark.parametrize("value", ["", "..", "a/b"])
def test_environment_that_cannot_be_a_key_segment_is_a_usage_error(example, value):
    result = bosco("-W", example, "-e", value, "config")
    assert result.exit_code == 2
    assert f"Invalid value for --environment: {json.dumps(value)} cannot be a key segment" in result.stderr


def test_filters_matching_nothing_fail(example, tmp_path):
    result = bosco("-W", example, "-t", "nope", "build", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result)[0] == "error: no service matches -t nope"
    assert "hint: check -r/-t/-s: names and tags come from each bosco-service.json" in result.stderr


def test_workspace_without_services_fails(tmp_path):
    result = bosco("-W", tmp_path, "build", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result)[0] == f"error: no service found in workspace {tmp_path}"


def test_run_inside_a_service_of_a_workspace_without_bosco_folder_names_the_way_out(tmp_path, monkeypatch):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "bosco-service.json").write_text("{}")
    monkeypatch.chdir(tmp_path / "svc")
    result = bosco("build", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: no service found in workspace {tmp_path / 'svc'}: it is a service, "
                                   f"and services are the subfolders of the workspace"]
    assert f"hint: run bosco in {tmp_path}, pass -W {tmp_path}, or create {tmp_path / '.bosco'}/" in \
        " ".join(result.stderr.split())


@pytest.mark.parametrize("args", [["build"], ["no-such-command"], ["cdn", "maxify"], ["cdn", "--port", "70000"],
                                  ["build", "--out"], ["--no-such-option", "config"]])
def test_usage_errors_exit_2(example, args):
    result = bosco("-W", example, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Usage: ") or result.stderr.startswith("Error: ")


def test_python_dash_m_bosco_help(tmp_path, isolated_env):
    proc = run_module("--help", cwd=tmp_path, env=isolated_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: bosco [OPTIONS] COMMAND [ARGS]...")
    for command in ("build", "cdn", "config"):
        assert f"\n  {command} " in proc.stdout


def test_problem_lines_print_brackets_literally_and_name_the_service(tmp_path):
    repo = tmp_path / "svc"
    repo.mkdir()
    (repo / "bosco-service.json").write_text(json.dumps({"assets": {"js": {"top": ["js/[ab].js"]}, "doc": {}}}))
    result = bosco("-W", tmp_path, "build", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert f"error: svc: js/top: js/[ab].js: no file matches under {repo}" in result.stderr
    assert f"warning: svc: {repo / 'bosco-service.json'}: unknown asset type assets.doc ignored" in result.stderr


@pytest.mark.parametrize("out", [".", "..", "app-home", "app-home/public/js"])
def test_build_refuses_an_out_folder_that_holds_or_sits_in_sources(example, out):
    source = (example / "app-home" / "public" / "js" / "app.js").read_bytes()
    result = bosco("-W", example, "build", "--out", example / out)
    assert result.exit_code == 1
    message = error_lines(result)[0]
    assert message.startswith(f"error: --out {(example / out).resolve()} ")
    assert ("contains the workspace" in message) or ("is inside the service repo" in message)
    assert (example / "app-home" / "public" / "js" / "app.js").read_bytes() == source
    assert not (example / "index.html").exists()


def test_build_into_a_plain_folder_of_the_workspace_is_allowed(example):
    result = bosco("-W", example, "build", "--out", example / "out")
    assert result.exit_code == 0, result.output
    assert (example / "out" / "index.html").is_file()


def test_cdn_on_a_fresh_example_runs_the_build_command_once_and_warns_about_nothing(example, tmp_path, isolated_env):
    assert not (example / "app-reports" / "dist").exists()
    log = tmp_path / "cdn.log"
    with running_cdn([sys.executable, "-m", "bosco", "cdn"], example, isolated_env, log) as (base, index):
        assert httpx.get(base + "/app-reports/local/reports.js").status_code == 200
        deadline = time.monotonic() + 60
        while "serving 4 services" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    output = log.read_text()
    assert "serving 4 services" in output
    assert "warning" not in output and "error" not in output


MEDIA = {
    "app.wasm": "application/wasm", "clip.mp4": "video/mp4", "clip.webm": "video/webm",
    "site.webmanifest": "application/manifest+json; charset=utf-8", "photo.avif": "image/avif",
    "mod.mjs": "text/javascript; charset=utf-8", "song.mp3": "audio/mpeg", "song.ogg": "audio/ogg",
    "notes.txt": "text/plain; charset=utf-8", "feed.xml": "application/xml; charset=utf-8",
    "favicon.ico": "image/vnd.microsoft.icon", "font.otf": "font/otf", "model.glb": "model/gltf-binary",
    "data.bin": "application/octet-stream", "scene.x3dz": "text/x-scene; charset=utf-8",
}


def test_media_types_are_the_same_in_cdn_and_build_and_configurable(tmp_path: Path) -> None:
    repo = tmp_path / "ws" / "media"
    (repo / "site").mkdir(parents=True)
    for name in MEDIA:
        (repo / "site" / name).write_bytes(b"\x00data")
    (repo / "bosco-service.json").write_text(json.dumps({"siteAssets": [{"basePath": "site", "glob": "*"}]}))
    (tmp_path / "ws/.bosco").mkdir()
    # users extend the table (and may replace entries): .x3dz is not in it, .glb already is
    (tmp_path / "ws/.bosco/bosco.json").write_text(json.dumps({"types": {".X3DZ": "text/x-scene"}}))
    shown = bosco("-W", tmp_path / "ws", "config")
    assert shown.exit_code == 0 and 'types..X3DZ = "text/x-scene"' in shown.output
    assert bosco("-W", tmp_path / "ws", "build", "--out", tmp_path / "out").exit_code == 0
    release = json.loads((tmp_path / "out/media/default/release.json").read_text())
    published = {e["key"].removeprefix("asset/"): e["contentType"] for e in release["objects"]}
    assert {name: published[name] for name in MEDIA} == MEDIA
    with running_cdn([sys.executable, "-m", "bosco", "cdn"], tmp_path / "ws", dict(os.environ),
                     tmp_path / "cdn.log") as (base, _):
        served = {name: httpx.get(f"{base}/asset/{name}").headers["content-type"] for name in MEDIA}
    assert served == MEDIA


@pytest.mark.parametrize(("types", "message"), [
    ({"wasm": "application/wasm"}, "'wasm' is not a file extension such as \".wasm\""),
    ({".wasm": "wasm"}, ".wasm: 'wasm' is not a media type such as \"application/wasm\""),
    ([".wasm"], "types must be an object like {}"),
])
def test_bad_types_configuration_names_the_file(tmp_path: Path, types, message: str) -> None:
    (tmp_path / ".bosco").mkdir()
    (tmp_path / ".bosco/bosco.json").write_text(json.dumps({"types": types}))
    result = bosco("-W", tmp_path, "config")
    assert result.exit_code == 1
    assert message in " ".join(result.output.split()) and ".bosco/bosco.json" in result.output
