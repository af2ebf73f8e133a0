"""s3push never publishes a broken or half-finished release: problems stop it before any upload,
a failing PUT stops it before any release index, and a re-run completes the release."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

from .s3support import MANIFESTS, REGION, keys, run, write_workspace


def set_manifest(workspace: Path, service: str, manifest: dict) -> None:
    (workspace / service / "bosco-service.json").write_text(json.dumps(manifest))


def failed_push(workspace: Path, *args: str):
    result = run(workspace, "s3push", "-n", "-b", "55", *args)
    assert result.exit_code == 1, result.output
    return result


def test_missing_file_publishes_nothing(workspace, s3, bucket):
    manifest = json.loads(json.dumps(MANIFESTS["app-web"]))
    manifest["assets"]["js"]["top"].append("js/missing.js")
    set_manifest(workspace, "app-web", manifest)
    result = failed_push(workspace, "--json")
    assert result.stderr.count("js/missing.js") == 1  # printed once, not again in the summary
    assert f"1 error; nothing published to s3://{bucket}/tes/" in result.stderr
    assert keys(s3, bucket) == {}
    report = json.loads(result.stdout)
    assert report["ok"] is False and len(report["errors"]) == 2
    assert "js/missing.js" in report["errors"][0]
    assert report["errors"][1] == f"1 error; nothing published to s3://{bucket}/tes/"
    assert report["hint"] == "fix the problems above and run again"


def test_failed_build_command_publishes_nothing(workspace, s3, bucket):
    manifest = {**MANIFESTS["app-other"], "build": {"command": ["python3", "-c", "import sys; sys.exit(3)"]}}
    set_manifest(workspace, "app-other", manifest)
    result = failed_push(workspace)
    assert "app-other" in result.stderr and "nothing published" in result.stderr
    assert keys(s3, bucket) == {}


def test_published_index_page_does_not_depend_on_earlier_local_runs(workspace, s3, bucket):
    # the build.command's output exists already: a publish still runs it, and says nothing about it
    command = ["python3", "-c", "open('ran.txt', 'a').write('ran\\n')"]
    set_manifest(workspace, "app-other", {**MANIFESTS["app-other"], "build": {"command": command}})
    assert run(workspace, "s3push", "-n", "-b", "55").exit_code == 0
    assert (workspace / "app-other" / "ran.txt").read_text() == "ran\n"
    page = gzip.decompress(s3.get_object(Bucket=bucket, Key="tes/index.html")["Body"].read())
    assert b"not run" not in page and b"warning" not in page.split(b"</style>")[-1]
    before = keys(s3, bucket)
    again = run(workspace, "s3push", "-n", "-b", "55", "--json")
    assert json.loads(again.stdout)["totals"]["upload"] == 0
    assert keys(s3, bucket) == before


def test_build_out_runs_a_failing_build_command_even_when_its_output_exists(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    manifest = {**MANIFESTS["app-other"], "build": {"command": ["python3", "-c", "import sys; sys.exit(3)"]}}
    set_manifest(workspace, "app-other", manifest)
    result = run(workspace, "build", "--out", str(tmp_path / "out"), "-b", "55")
    assert result.exit_code == 1
    assert "failed with exit code 3" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_problem_is_listed_and_nothing_published(tmp_path, moto_url, s3, bucket):
    workspace = write_workspace(tmp_path / "ws", {"endpoint": moto_url, "region": REGION})  # no aws.bucket
    (workspace / "app-other" / "bosco-service.json").write_text('{\n  "service": {"name": "app-other"},\n  oops\n}\n')
    manifest = json.loads(json.dumps(MANIFESTS["app-web"]))
    manifest["assets"]["css"]["main"].append("css/gone.css")
    set_manifest(workspace, "app-web", manifest)
    result = failed_push(workspace)
    assert f"{workspace / 'app-other' / 'bosco-service.json'}:3:" in result.stderr
    assert "css/gone.css" in result.stderr
    assert "aws.bucket is not set" in result.stderr
    assert "3 errors; nothing published to environment tes" in result.stderr
    assert keys(s3, bucket) == {}


def test_missing_bucket_is_reported_without_traceback(workspace, s3, bucket):
    config = json.loads((workspace / ".bosco" / "tes.json").read_text())
    config["aws"]["bucket"] = "bosco-no-such-bucket"
    (workspace / ".bosco" / "tes.json").write_text(json.dumps(config))
    result = failed_push(workspace)
    assert "s3://bosco-no-such-bucket/tes/" in result.stderr and "NoSuchBucket" in result.stderr
    assert "Traceback" not in result.output


def test_missing_credentials_name_the_ways_to_give_them(workspace, s3, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to wait for
    result = failed_push(workspace)
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0].startswith(f"error: s3://{bucket}/tes/") and errors[0].endswith(": Unable to locate credentials")
    assert errors[-1] == ("hint: no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                          "AWS_PROFILE (a profile of ~/.aws/credentials), or run where an instance role applies")
    assert keys(s3, bucket) == {}


def proxied_workspace(tmp_path: Path, proxy, bucket: str) -> Path:
    return write_workspace(tmp_path / "proxied", {"bucket": bucket, "endpoint": proxy.url, "region": REGION,
                                                  "cdn": "https://cdn.example.com", "attempts": 2})


def test_first_push_to_an_empty_environment_reads_nothing_per_service(tmp_path, fault_proxy, s3, bucket):
    """Planning lists the environment's folders once; a service without one has no release to read
    (was: releases.json, the build folders and release.json read per service, then its build
    folder listed). Each build folder is listed once more, to confirm its objects before the
    release index is written, and not again (nor the index asked for) to decide that index's
    upload; releases.json is written with If-None-Match: * without reading it first."""
    workspace = proxied_workspace(tmp_path, fault_proxy, bucket)
    result = run(workspace, "s3push", "-n", "-b", "55")
    assert result.exit_code == 0, result.output
    first_put = next(n for n, entry in enumerate(fault_proxy.log) if entry[0] == "PUT")
    before = [(method, path) for method, path, _, _ in fault_proxy.log[:first_put]]
    assert before[0] == ("GET", f"/{bucket}")  # libraries and site assets (asset/, vendor/) are asked per key
    assert all(method == "HEAD" and path.startswith((f"/{bucket}/tes/asset/", f"/{bucket}/tes/vendor/"))
               for method, path in before[1:]), before
    assert fault_proxy.listed[0] == "tes/"
    assert fault_proxy.listed.count("tes/app-web/55/") == fault_proxy.listed.count("tes/app-other/55/") == 1
    assert not [path for method, path, _, _ in fault_proxy.log if method == "HEAD" and path.endswith("release.json")]
    assert "tes/app-web/55/release.json" in keys(s3, bucket)
    releases = [(method, inm) for method, path, inm, _ in fault_proxy.log
                if path == f"/{bucket}/tes/app-web/releases.json"]
    assert releases[0] == ("PUT", "*")  # not read first: written only while there is still none
    again = run(workspace, "s3push", "-n", "-b", "55")  # the services' folders exist now: read as before
    assert again.exit_code == 0 and "0 objects to upload" in again.output, again.output


def test_failing_put_stops_before_any_release_index_and_a_rerun_completes(tmp_path, fault_proxy, s3, bucket):
    workspace = proxied_workspace(tmp_path, fault_proxy, bucket)
    fault_proxy.fail_suffix = f"/{bucket}/tes/app-web/55/css/main.css"
    result = failed_push(workspace)
    assert fault_proxy.attempts == 2  # the first PUT and botocore's one retry (aws.attempts 2)
    assert "app-web/55/css/main.css: InternalError injected fault" in result.stderr
    stored = keys(s3, bucket)
    assert "tes/app-web/55/css/main.css" not in stored
    assert not [k for k in stored if k.endswith(("release.json", "releases.json"))]
    assert not [k for k in stored if "/html/" in k or k.endswith(".map")]  # later stages never started

    fault_proxy.fail_suffix = None
    rerun = run(workspace, "s3push", "-n", "-b", "55", "--json")
    assert rerun.exit_code == 0, rerun.output
    report = json.loads(rerun.stdout)
    assert report["totals"]["skip"] == len(stored)
    css = s3.get_object(Bucket=bucket, Key="tes/app-web/55/css/main.css")
    assert gzip.decompress(css["Body"].read()).startswith(b"body{color:#333")
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/55/release.json")["Body"].read())
    assert "app-web/55/css/main.css" in {o["key"] for o in index["objects"]}


def test_transient_failure_is_retried(tmp_path, fault_proxy, s3, bucket):
    workspace = proxied_workspace(tmp_path, fault_proxy, bucket)
    fault_proxy.fail_suffix = f"/{bucket}/tes/app-web/55/js/top.js.br"
    fault_proxy.failures = 1
    result = run(workspace, "s3push", "-n", "-b", "55")
    assert result.exit_code == 0, result.output
    assert fault_proxy.attempts == 1
    assert "tes/app-web/55/release.json" in keys(s3, bucket)
    assert (f"retry: retrying PutObject {fault_proxy.url}/{bucket}/tes/app-web/55/js/top.js.br (attempt 2 of 2) "
            "after: HTTP 500 InternalError") in result.stderr


def test_endpoint_that_never_answers_fails_after_the_configured_timeouts(tmp_path, bucket):
    with socket.socket() as silent:  # accepts TCP connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": url, "region": REGION,
                                                      "attempts": 2, "connecttimeout": 1, "readtimeout": 1})
        result = failed_push(workspace)
    assert "retry: retrying ListObjectsV2" in result.stderr and "(attempt 2 of 2) after: Read timeout" in result.stderr
    assert f'error: s3://{bucket}/tes/' in result.stderr and 'Read timeout on endpoint URL' in result.stderr


def releases(s3, bucket: str, service: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"tes/{service}/releases.json")["Body"].read())


def test_changed_push_of_a_published_build_is_refused_without_force(workspace, s3, bucket):
    assert run(workspace, "s3push", "-n", "-b", "55").exit_code == 0
    before = keys(s3, bucket)
    (workspace / "app-web/public/css/site.css").write_bytes(b"body {\n  color: #000000;\n}\n")
    result = failed_push(workspace)
    assert ("build 55 is already published with other bytes at app-web/55/css/main.css, "
            "app-web/55/css/main.css.map, app-web/55/html/main.css.html; its objects are immutable, "
            "nothing published") in result.stderr
    assert "pass --force" in result.stderr
    assert keys(s3, bucket) == before
    forced = run(workspace, "s3push", "-n", "-b", "55", "--force")
    assert forced.exit_code == 0, forced.output
    css = s3.get_object(Bucket=bucket, Key="tes/app-web/55/css/main.css")
    assert gzip.decompress(css["Body"].read()).startswith(b"body{color:#000")


def test_default_build_changes_in_place_without_force(workspace, s3, bucket):
    assert run(workspace, "s3push", "-n").exit_code == 0
    (workspace / "app-web/public/css/site.css").write_bytes(b"body {\n  color: #000000;\n}\n")
    assert run(workspace, "s3push", "-n").exit_code == 0
    css = s3.get_object(Bucket=bucket, Key="tes/app-web/default/css/main.css")
    assert gzip.decompress(css["Body"].read()).startswith(b"body{color:#000")


def test_forced_rerun_of_a_build_never_leaves_releases_pointing_at_a_missing_index(tmp_path, fault_proxy, s3,
                                                                                      bucket):
    workspace = proxied_workspace(tmp_path, fault_proxy, bucket)
    assert run(workspace, "s3push", "-n", "-b", "54").exit_code == 0
    (workspace / "app-web/public/css/site.css").write_bytes(b"body {\n  color: #111111;\n}\n")
    assert run(workspace, "s3push", "-n", "-b", "55").exit_code == 0
    (workspace / "app-web/public/css/site.css").write_bytes(b"body {\n  color: #000000;\n}\n")
    fault_proxy.fail_suffix = f"/{bucket}/tes/app-web/55/css/main.css"
    failed_push(workspace, "--force")
    stored = keys(s3, bucket)
    assert "tes/app-web/55/release.json" not in stored  # no longer true, so removed before any change
    assert "tes/app-other/55/release.json" in stored  # app-other did not change
    record = releases(s3, bucket, "app-web")
    assert record["current"] == "54" and [r["build"] for r in record["releases"]] == ["54"]
    assert all(f"tes/{r['index']}" in stored for r in record["releases"])
    assert releases(s3, bucket, "app-other")["current"] == "55"

    fault_proxy.fail_suffix = None
    assert run(workspace, "s3push", "-n", "-b", "55", "--force").exit_code == 0
    record = releases(s3, bucket, "app-web")
    assert record["current"] == "55" and [r["build"] for r in record["releases"]] == ["54", "55"]
    assert "tes/app-web/55/release.json" in keys(s3, bucket)


def at(path: Path, key: str) -> str:
    """``<path>:1:<column>``: where a one-line JSON file ``path`` sets ``key`` (error messages name it)."""
    return f"{path}:1:{path.read_text().index(json.dumps(key)) + 1}"


def test_bad_publish_settings_name_their_file(workspace, s3, bucket):
    path = workspace / ".bosco" / "tes.json"
    config = json.loads(path.read_text())
    config["brotli"] = {"quality": 12}
    path.write_text(json.dumps(config))
    result = failed_push(workspace)
    assert f"error: {at(path, 'quality')}: brotli.quality must be a brotli quality from 0 to 11, not 12" \
        in result.stderr
    config["brotli"] = {}
    config["aws"]["attempts"] = 0
    path.write_text(json.dumps(config))
    result = failed_push(workspace)
    assert f"error: {at(path, 'attempts')}: aws.attempts must be a whole number of attempts from 1 to 20, not 0" \
        in result.stderr
    config["aws"]["attempts"] = 2
    config["aws"]["readtimeout"] = 0
    path.write_text(json.dumps(config))
    result = failed_push(workspace)
    assert f"error: {at(path, 'readtimeout')}: aws.readtimeout must be a whole number of seconds from 1 to 600, not 0" \
        in result.stderr
    assert keys(s3, bucket) == {}


def test_bad_build_name_is_a_usage_error(workspace, s3, bucket):
    result = run(workspace, "s3push", "-n", "-b", "../55")
    assert result.exit_code == 2
    assert '"../55" cannot be a key segment' in result.stderr
    assert keys(s3, bucket) == {}


def test_sass_listed_as_css_is_refused_by_s3push_and_warned_by_build_out(workspace, s3, bucket, tmp_path):
    manifest = json.loads(json.dumps(MANIFESTS["app-web"]))
    manifest["assets"]["css"]["main"].append("css/top2.scss")
    set_manifest(workspace, "app-web", manifest)
    (workspace / "app-web/public/css/top2.scss").write_text("$c: red;\n.a { .b { color: $c; } }\n")
    problem = ("public/css/top2.scss is Sass source, not CSS: browsers cannot use it; compile it in build.command "
               "(e.g. `sass public/css/top2.scss public/css/top2.css`) and list public/css/top2.css instead")
    result = failed_push(workspace)
    assert f"error: app-web: css/main: {problem}" in " ".join(result.stderr.split())
    assert keys(s3, bucket) == {}
    built = run(workspace, "build", "--out", str(tmp_path / "out"))
    assert built.exit_code == 0, built.output
    assert f"warning: app-web: css/main: {problem}" in " ".join(built.stderr.split())
