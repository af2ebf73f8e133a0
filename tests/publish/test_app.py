"""bosco's Python API (``bosco.app``) called directly, without the command line, against moto's S3
server: exact keys stored and deleted, exact result fields, what the reporter is told."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bosco import app
from bosco.errors import BoscoError, Cancelled, ProblemsError, PublishError

from .s3support import MANIFESTS, assert_consistent, keys


class Recorder(app.Reporter):
    """A reporter keeping every line, question and event; answers confirmations with ``answer``."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.lines: list[tuple[str, str]] = []
        self.questions: list[str] = []
        self.diffs: list[dict[str, Any]] = []

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))

    def status(self, text: str) -> None:
        self.lines.append(("status", text))

    def changes(self, diff: dict[str, Any]) -> None:
        self.diffs.append(diff)

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer


def release_keys(service: str, build: str) -> set[str]:
    """Every key of ``service``'s release ``build`` in the fixture workspace (objects and encodings)."""
    files = {"app-web": ["js/top.js", "js/top.js.map", "css/main.css", "css/main.css.map", "img/icon.svg",
                         "img/logo.png", "img/photo.jpg", "img/anim.gif", "img/pic.webp", "fonts/f.woff",
                         "fonts/f.woff2", "fonts/f.ttf", "fonts/f.eot", "docs/guide.pdf", "data/config.json",
                         "pages/help.html", "html/top.js.html", "html/main.css.html"],
             "app-other": ["js/bottom.js", "js/bottom.js.map", "html/bottom.js.html"]}[service]
    stored = {".js", ".map", ".css", ".svg", ".json", ".html", ".ttf", ".eot"}  # also stored brotli-encoded at .br
    names = [f for f in files] + [f + ".br" for f in files if f[f.rfind("."):] in stored]
    return {f"tes/{service}/{build}/{n}" for n in names} | {f"tes/{service}/{build}/release.json"}


SHARED = {"tes/asset/favicon.ico", "tes/asset/favicon.ico.br", "tes/index.html", "tes/index.html.br"}


def test_push_stores_exactly_the_release_and_returns_its_report(workspace, s3, bucket):
    ws = app.open_workspace(workspace, "tes")
    recorder = Recorder()
    result = app.push(ws, build="55", reporter=recorder)
    expected = release_keys("app-web", "55") | release_keys("app-other", "55") | SHARED | \
        {"tes/app-web/releases.json", "tes/app-other/releases.json"}
    assert set(keys(s3, bucket)) == expected
    assert result.report.build == "55" and result.report.environment == "tes" and result.report.dry_run is False
    totals = result.report.totals()
    assert (totals["objects"], totals["upload"], totals["copy"], totals["skip"]) == (len(expected), len(expected), 0, 0)
    assert sorted(row["key"] for row in result.report.bundles()) == [
        "app-other/55/js/bottom.js", "app-web/55/css/main.css", "app-web/55/js/top.js"]
    assert result.git == {"app-other": None, "app-web": None}  # not git repositories
    assert result.budgets == [] and result.duplicates == [] and result.verify is None
    assert [(s["service"], s["status"]) for s in result.diff["services"]] == [("app-other", "added"),
                                                                               ("app-web", "added")]
    assert recorder.diffs == [result.diff]
    assert recorder.questions == ["Are you sure you want to publish build 55 in tes (y/N)?"]
    assert [t for k, t in recorder.lines if k == "status"][0].startswith("2 services, 3 bundles, 22 files, ")
    assert list(result.to_json()) == ["ok", "environment", "build", "target", "dry_run", "bundles", "totals",
                                      "objects", "git", "diff", "budgets", "duplicates"]


def test_a_dry_run_or_a_declined_push_changes_nothing(workspace, s3, bucket):
    ws = app.open_workspace(workspace, "tes")
    dry = app.push(ws, build="55", dry_run=True, reporter=Recorder(answer=False))
    assert dry.report.dry_run is True and dry.report.totals()["upload"] == dry.report.totals()["objects"]
    declined = Recorder(answer=False)
    with pytest.raises(Cancelled):
        app.push(ws, build="55", reporter=declined)
    assert declined.questions == ["Are you sure you want to publish build 55 in tes (y/N)?"]
    assert keys(s3, bucket) == {}


def test_the_error_gate_lists_every_problem_and_publishes_nothing(workspace, s3, bucket):
    (workspace / "app-web" / "public" / "js" / "a.js").unlink()
    (workspace / ".bosco" / "tes.json").write_text(json.dumps({"aws": {"region": "us-east-1"}}))
    recorder = Recorder()
    with pytest.raises(ProblemsError) as raised:
        app.push(app.open_workspace(workspace, "tes"), build="55", reporter=recorder)
    problems = raised.value.problems
    assert len(problems) == 2 and problems[0].startswith("app-web: js/top: js/a.js: no file matches under")
    assert problems[1] == "aws.bucket is not set (put it in .bosco/tes.json or BOSCO_AWS_BUCKET)"
    assert str(raised.value) == "2 errors; nothing published to environment tes"
    assert raised.value.hint.startswith("the environment is -e tes; pick one with -e ENV")
    assert [k for k, _ in recorder.lines] == ["error", "error"] and recorder.questions == []
    assert keys(s3, bucket) == {}


def test_a_bundle_push_releases_only_the_services_with_that_tag(workspace, s3, bucket):
    ws = app.open_workspace(workspace, "tes")
    result = app.push(ws, build="4", bundle_tag="top")
    assert {k.split("/")[1] for k in keys(s3, bucket, "tes/app-")} == {"app-web"}
    assert {r.service for r in result.report.results if r.service} == {"app-web"}
    with pytest.raises(PublishError, match="no selected service has a bundle tagged 'nope'"):
        app.push(ws, build="5", bundle_tag="nope")


def test_delete_refuses_the_current_release_unless_forced(workspace, s3, bucket):
    ws = app.open_workspace(workspace, "tes")
    app.push(ws, build="1")
    app.push(ws, build="2")
    before = keys(s3, bucket)
    with pytest.raises(PublishError, match="app-web/2 is the current release in releases.json; nothing deleted"):
        app.delete(ws, "app-web/2")
    assert keys(s3, bucket) == before
    dry = app.delete(ws, "1", dry_run=True)
    assert dry.releases == ["app-other/1", "app-web/1"] and dry.dry_run is True
    assert keys(s3, bucket) == before
    recorder = Recorder()
    result = app.delete(ws, "app-web/1", reporter=recorder)
    assert set(result.deleted) == {k.removeprefix("tes/") for k in release_keys("app-web", "1")}
    assert result.to_json() == {"ok": True, "target": f"s3://{bucket}/tes/", "dry_run": False,
                                "deleted": result.deleted}
    count = len(release_keys("app-web", "1"))
    assert recorder.questions == [f"Are you sure you want to delete {count} objects of app-web/1 in tes (y/N)?"]
    assert set(before) - set(keys(s3, bucket)) == release_keys("app-web", "1")
    forced = app.delete(ws, "app-web/2", force=True)
    assert {f"tes/{k}" for k in forced.deleted} == release_keys("app-web", "2")
    assert_consistent(s3, bucket)


@pytest.mark.tampers_bucket
def test_diff_and_verify_of_published_releases(workspace, s3, bucket, moto_url):
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
    ws = app.open_workspace(workspace, "tes", overrides={"aws": {"cdn": f"{moto_url}/{bucket}"}})  # as behind a CDN
    assert app.push(ws, build="1", verify_after=True).verify.releases == ("app-other/1", "app-web/1")
    (workspace / "app-other" / "src" / "x.js").write_text("function other() { return 'changed'; }\nother();\n")
    app.push(ws, build="2")
    changes = app.diff(ws, from_build="1", to_build="2")
    assert (changes.diff["from"], changes.diff["to"]) == ("1", "2")
    assert [(s["service"], s["status"]) for s in changes.diff["services"]] == [("app-other", "changed"),
                                                                                ("app-web", "unchanged")]
    assert list(changes.to_json()) == ["ok", "from", "to", "services"]
    report = app.verify(ws)
    assert report.ok and sorted(report.releases) == ["app-other/2", "app-web/2"]
    app.require_verified(report)
    s3.put_object(Bucket=bucket, Key="tes/app-web/2/img/logo.png", Body=b"tampered")
    tampered = app.verify(ws, build="2")
    assert not tampered.ok
    with pytest.raises(PublishError, match="between app-"):
        app.require_verified(tampered)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_open_workspace_selects_like_the_shared_options(workspace, name):
    ws = app.open_workspace(workspace, "tes", repo=f"^{name}$")
    assert [s.name for s in ws.selected()] == [name] and ws.environment_given
    with pytest.raises(BoscoError, match="no service matches -r"):
        app.open_workspace(workspace, repo="^none$").selected()


class Events(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, name: str, **fields: Any) -> None:
        self.events.append((name, fields))


def test_cdn_with_remote_serves_the_published_release_beside_the_workspace(workspace, s3, bucket):
    app.push(app.open_workspace(workspace, "tes"), build="55")
    (workspace / ".bosco" / "tes.json").write_text(json.dumps({"aws": {  # read from the bucket, not aws.cdn
        "bucket": bucket, "endpoint": s3.meta.endpoint_url, "region": "us-east-1"}}))
    reporter = Events()
    cdn = app.Cdn(app.open_workspace(workspace, repo="^app-web$"), port=0, remote="tes", reporter=reporter).start()
    try:
        assert cdn.built.wait(120)
        answer = httpx.get(f"{cdn.base_url}/app-other/55/js/bottom.js", headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200 and b"other" in answer.content
        assert httpx.get(f"{cdn.base_url}/app-web/55/js/top.js").status_code == 404  # app-web is local
    finally:
        cdn.stop()
    assert [name for name, _ in reporter.events] == ["remote", "listening", "serving", "stopped"]
    remote = reporter.events[0][1]
    assert (remote["environment"], remote["online"]) == ("tes", True)
    assert remote["status"].startswith(f"remote: 1 published release of tes read from s3://{bucket}/tes/ at ")
    assert reporter.events[2][1]["services"] == ["app-web"]
