"""bosco s3push against moto's S3 server: bodies, headers, release index, safety, incremental pushes."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import brotli
import pytest

from bosco import __version__
from bosco.assetset import sri
from bosco.config import load_config
from bosco.pipeline import BuildOptions, build_asset_set
from bosco.publish.compress import BROTLI, GZIP, encode
from bosco.workspace import discover_services

from .s3support import MANIFESTS, keys, page_links, run

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60, must-revalidate"
# Content-Type of every published extension: bosco's table, the same on every machine.
EXPECTED_TYPES = {
    "app-web/55/js/top.js": "text/javascript; charset=utf-8",
    "app-web/55/js/top.js.map": "application/json; charset=utf-8",
    "app-web/55/css/main.css": "text/css; charset=utf-8",
    "app-web/55/css/main.css.map": "application/json; charset=utf-8",
    "app-web/55/img/icon.svg": "image/svg+xml; charset=utf-8",
    "app-web/55/img/logo.png": "image/png",
    "app-web/55/img/photo.jpg": "image/jpeg",
    "app-web/55/img/anim.gif": "image/gif",
    "app-web/55/img/pic.webp": "image/webp",
    "app-web/55/fonts/f.woff": "font/woff",
    "app-web/55/fonts/f.woff2": "font/woff2",
    "app-web/55/fonts/f.ttf": "font/ttf",
    "app-web/55/fonts/f.eot": "application/vnd.ms-fontobject",
    "app-web/55/docs/guide.pdf": "application/pdf",
    "app-web/55/data/config.json": "application/json; charset=utf-8",
    "app-web/55/pages/help.html": "text/html; charset=utf-8",
    "app-web/55/html/top.js.html": "text/html; charset=utf-8",
    "app-web/55/html/main.css.html": "text/html; charset=utf-8",
    "asset/favicon.ico": "image/vnd.microsoft.icon",
    "app-other/55/js/bottom.js": "text/javascript; charset=utf-8",
    "app-other/55/js/bottom.js.map": "application/json; charset=utf-8",
    "app-other/55/html/bottom.js.html": "text/html; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}
# mime-db marks TrueType/OpenType/EOT fonts and icons compressible (unlike PNG, JPEG, WOFF2)
COMPRESSED = {".js", ".map", ".css", ".svg", ".json", ".html", ".ttf", ".eot", ".ico"}


def expected_set(workspace: Path, build: str):
    """The asset set s3push publishes, built through the library with the same options."""
    config = load_config(workspace, "tes")
    services, _ = discover_services(workspace, config)
    return build_asset_set(services, BuildOptions(build=build, minify=True, bundle=True, sri=True,
                                                  base_url="https://cdn.example.com/tes", title=f"bosco tes/{build}"))


def push(workspace: Path, *args: str) -> dict:
    result = run(workspace, "s3push", "-n", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_push_stores_every_asset_with_its_headers_and_bodies(workspace, s3, bucket):
    report = push(workspace, "-b", "55")
    asset_set = expected_set(workspace, "55")
    assert set(EXPECTED_TYPES) == set(asset_set.outputs)
    stored = set()
    for key, output in asset_set.outputs.items():
        suffix = key[key.rfind("."):]
        response = s3.get_object(Bucket=bucket, Key=f"tes/{key}")
        assert response["ContentType"] == EXPECTED_TYPES[key]
        assert response["Metadata"] == {"sha256": output.sha256}
        build_key = key.startswith(("app-web/55/", "app-other/55/"))
        assert response["CacheControl"] == (IMMUTABLE if build_key else SHORT)
        stored.add(f"tes/{key}")
        if suffix in COMPRESSED:
            assert response["ContentEncoding"] == "gzip"
            assert gzip.decompress(response["Body"].read()) == output.data
            br = s3.get_object(Bucket=bucket, Key=f"tes/{key}.br")
            assert (br["ContentEncoding"], br["ContentType"]) == ("br", EXPECTED_TYPES[key])
            assert br["CacheControl"] == response["CacheControl"]
            assert br["Metadata"] == {"sha256": output.sha256}
            assert brotli.decompress(br["Body"].read()) == output.data
            stored.add(f"tes/{key}.br")
        else:
            assert "ContentEncoding" not in response
            assert response["Body"].read() == output.data
    indexes = {f"tes/{s}/55/release.json" for s in MANIFESTS} | {f"tes/{s}/releases.json" for s in MANIFESTS}
    assert set(keys(s3, bucket)) == stored | indexes
    sizes = {k: s3.head_object(Bucket=bucket, Key=k)["ContentLength"] for k in stored | indexes}
    raw = sum(len(o.data) for o in asset_set.outputs.values()) + sum(sizes[k] for k in indexes)
    assert report["totals"] == {"upload": len(stored) + 4, "copy": 0, "skip": 0, "objects": len(stored) + 4,
                                "raw_bytes": raw, "sent_bytes": sum(sizes.values())}
    bundle_rows = {row["key"]: row for row in report["bundles"]}
    assert sorted(bundle_rows) == ["app-other/55/js/bottom.js", "app-web/55/css/main.css", "app-web/55/js/top.js"]
    top = s3.get_object(Bucket=bucket, Key="tes/app-web/55/js/top.js")["ContentLength"]
    assert bundle_rows["app-web/55/js/top.js"]["gzip"] == top
    assert bundle_rows["app-web/55/js/top.js"]["action"] == "upload"


def test_fragments_point_at_the_cdn_with_sri(workspace, s3, bucket):
    push(workspace, "-b", "55")
    asset_set = expected_set(workspace, "55")
    fragment = gzip.decompress(s3.get_object(Bucket=bucket, Key="tes/app-web/55/html/top.js.html")["Body"].read())
    assert b'src="https://cdn.example.com/tes/app-web/55/js/top.js"' in fragment
    assert sri(asset_set.outputs["app-web/55/js/top.js"].data).encode() in fragment


def test_release_index_lists_every_object_and_is_current(workspace, s3, bucket):
    push(workspace, "-b", "55")
    asset_set = expected_set(workspace, "55")
    head = s3.head_object(Bucket=bucket, Key="tes/app-web/55/release.json")
    assert (head["ContentType"], head["CacheControl"]) == ("application/json; charset=utf-8", SHORT)
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/55/release.json")["Body"].read())
    assert (index["bosco"], index["service"], index["environment"], index["build"]) == (__version__, "app-web",
                                                                                        "tes", "55")
    web = {k: o for k, o in asset_set.outputs.items() if o.service == "app-web"}
    assert [o["key"] for o in index["objects"]] == list(web)
    top = next(o for o in index["objects"] if o["key"] == "app-web/55/js/top.js")
    output = web["app-web/55/js/top.js"]
    assert top["sha256"] == output.sha256 and top["size"] == len(output.data)
    assert top["sri"] == sri(output.data) and top["contentType"] == "text/javascript; charset=utf-8"
    stored_sizes = {s["key"]: s["size"] for s in top["stored"]}
    assert stored_sizes == {k: s3.head_object(Bucket=bucket, Key=f"tes/{k}")["ContentLength"]
                            for k in ("app-web/55/js/top.js", "app-web/55/js/top.js.br")}
    png = next(o for o in index["objects"] if o["key"] == "app-web/55/img/logo.png")
    assert png["stored"] == [{"key": "app-web/55/img/logo.png", "encoding": "", "size": len(output_png(asset_set))}]
    releases = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/releases.json")["Body"].read())
    assert releases["current"] == "55"
    assert releases["releases"] == [{"build": "55", "time": index["time"], "index": "app-web/55/release.json"}]


def output_png(asset_set) -> bytes:
    return asset_set.outputs["app-web/55/img/logo.png"].data


def test_default_build_is_never_immutable(workspace, s3, bucket):
    push(workspace, "--concurrency", "1")
    for key in ("tes/app-web/default/js/top.js", "tes/app-web/default/img/logo.png", "tes/index.html"):
        assert s3.head_object(Bucket=bucket, Key=key)["CacheControl"] == SHORT


def test_same_push_again_uploads_nothing(workspace, s3, bucket):
    push(workspace, "-b", "55")
    before = keys(s3, bucket)
    again = push(workspace, "-b", "55")
    assert again["totals"]["upload"] == 0 and again["totals"]["copy"] == 0
    assert again["totals"]["skip"] == again["totals"]["objects"] == len(before)
    assert again["totals"]["sent_bytes"] == 0
    assert keys(s3, bucket) == before


def test_next_build_copies_unchanged_objects_and_uploads_the_changed_file(workspace, s3, bucket):
    push(workspace, "-b", "55")
    (workspace / "app-web/public/css/site.css").write_bytes(b"body {\n  color: #111111;\n}\n")
    report = push(workspace, "-b", "56")
    actions = {o["key"]: o["action"] for o in report["objects"]}
    uploaded = sorted(k for k, a in actions.items() if a == "upload")
    # The changed CSS and its map; fragments and index.html name the build in their URLs, so they are new bytes.
    assert uploaded == sorted([
        "app-web/56/css/main.css", "app-web/56/css/main.css.br",
        "app-web/56/css/main.css.map", "app-web/56/css/main.css.map.br",
        "app-web/56/html/main.css.html", "app-web/56/html/main.css.html.br",
        "app-web/56/html/top.js.html", "app-web/56/html/top.js.html.br",
        "app-other/56/html/bottom.js.html", "app-other/56/html/bottom.js.html.br",
        "index.html", "index.html.br",
        "app-web/56/release.json", "app-other/56/release.json", "app-web/releases.json", "app-other/releases.json",
    ])
    skipped = sorted(k for k, a in actions.items() if a == "skip")
    assert skipped == ["asset/favicon.ico", "asset/favicon.ico.br"]
    copied = {k for k, a in actions.items() if a == "copy"}
    assert "app-web/56/js/top.js.br" in copied and "app-web/56/img/logo.png" in copied
    assert len(copied) == len(actions) - len(uploaded) - len(skipped)
    new = expected_set(workspace, "56")
    for key in ("app-web/56/js/top.js", "app-web/56/css/main.css"):
        response = s3.get_object(Bucket=bucket, Key=f"tes/{key}")
        assert gzip.decompress(response["Body"].read()) == new.outputs[key].data
        assert (response["CacheControl"], response["Metadata"]) == (IMMUTABLE, {"sha256": new.outputs[key].sha256})
    releases = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/releases.json")["Body"].read())
    assert releases["current"] == "56" and [r["build"] for r in releases["releases"]] == ["55", "56"]


@pytest.mark.tampers_bucket
def test_copy_is_replaced_by_upload_when_the_previous_object_is_gone(workspace, s3, bucket):
    push(workspace, "-b", "55")
    s3.delete_object(Bucket=bucket, Key="tes/app-web/55/img/logo.png")
    report = push(workspace, "-b", "56")
    actions = {o["key"]: o["action"] for o in report["objects"]}
    assert actions["app-web/56/img/logo.png"] == "upload"
    assert actions["app-web/56/js/top.js"] == "copy"
    assert s3.get_object(Bucket=bucket, Key="tes/app-web/56/img/logo.png")["Body"].read() == \
        (workspace / "app-web/public/img/logo.png").read_bytes()


def test_dry_run_touches_nothing(workspace, s3, bucket):
    result = run(workspace, "s3push", "-b", "55", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert {o["action"] for o in report["objects"]} == {"upload"}
    assert keys(s3, bucket) == {}
    # only bundles are compressed (the pre-push diff measures them): other compressible objects
    # count their uncompressed size, and say so; index.html is regenerated from the release indexes
    # after them, not planned
    outputs = {k: o for k, o in expected_set(workspace, "55").outputs.items() if k != "index.html"}
    compressible = [k for k in outputs if k[k.rfind("."):] in COMPRESSED and outputs[k].kind != "bundle"]
    assert report["totals"]["estimated_objects"] == 2 * len(compressible)
    bundles = {(r["key"], enc): r[enc] for r in report["bundles"] for enc in ("gzip", "br")}
    assert bundles == {(k, enc): len(encode(o.data, GZIP if enc == "gzip" else BROTLI))
                       for k, o in outputs.items() if o.kind == "bundle" for enc in ("gzip", "br")}
    unknown = sum(len(o.data) * (2 if k in compressible else 1) for k, o in outputs.items() if o.kind != "bundle")
    assert report["totals"]["sent_bytes"] == unknown + sum(bundles.values())
    text = run(workspace, "s3push", "-b", "55", "--dry-run")
    assert (f"{report['totals']['sent_bytes']:,} bytes would be sent (uncompressed size of "
            f"{2 * len(compressible)} objects whose compressed size is not cached: an upper bound)") in text.stdout


def test_report_lists_objects_and_bundles_in_publish_order(workspace, s3, bucket):
    report = push(workspace, "-b", "55", "--concurrency", "32")
    outputs = expected_set(workspace, "55").outputs
    stage = {"file": 0, "bundle": 0, "library": 0, "site": 0, "map": 1, "fragment": 2}
    content = sorted((o for o in outputs.values() if o.kind != "page"), key=lambda o: stage[o.kind])  # stable
    expected = [o.key + suffix for o in content
                for suffix in (("", ".br") if o.key[o.key.rfind("."):] in COMPRESSED else ("",))]
    expected += [f"{s}/55/release.json" for s in sorted(MANIFESTS)] + [f"{s}/releases.json" for s in sorted(MANIFESTS)]
    expected += ["index.html", "index.html.br"]  # regenerated from the release indexes, last
    assert [o["key"] for o in report["objects"]] == expected
    assert [b["key"] for b in report["bundles"]] == [k for k, o in outputs.items() if o.kind == "bundle"]


def test_table_and_totals_on_stdout(workspace, s3, bucket):
    result = run(workspace, "s3push", "-n", "-b", "55")
    assert result.exit_code == 0, result.output
    assert "app-web/55/js/top.js" in result.stdout
    total = len(keys(s3, bucket))
    assert f"{total} objects: {total} uploaded, 0 copied, 0 skipped" in result.stdout


def test_bundle_argument_limits_the_push_to_one_tag(workspace, s3, bucket):
    push(workspace, "-b", "55", "top")
    stored = set(keys(s3, bucket, "tes/app-web/55/"))
    assert "tes/app-web/55/js/top.js" in stored and "tes/app-web/55/css/main.css" not in stored
    push(workspace, "-b", "55", "main")
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/55/release.json")["Body"].read())
    listed = {o["key"] for o in index["objects"]}
    assert {"app-web/55/js/top.js", "app-web/55/css/main.css"} <= listed


def test_bundle_push_leaves_services_without_that_bundle_alone(workspace, s3, bucket):
    # app-other has a site asset but no "top" bundle: it must get no release and keep its current one
    manifest = {**MANIFESTS["app-other"], "siteAssets": [{"basePath": "src", "glob": "*.txt"}]}
    (workspace / "app-other" / "bosco-service.json").write_text(json.dumps(manifest))
    (workspace / "app-other" / "src" / "robots.txt").write_bytes(b"User-agent: *\n")
    push(workspace, "-b", "3")
    result = run(workspace, "s3push", "-n", "--json", "-b", "4", "top")
    # the summary counts what is published: top.js, its map and fragment, app-web's favicon (not robots.txt)
    assert "1 service, 1 bundle, 4 files," in result.stderr
    report = json.loads(result.stdout)
    assert not [o for o in report["objects"] if o["key"].startswith("app-other/")]
    assert not keys(s3, bucket, "tes/app-other/4/")
    other = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-other/releases.json")["Body"].read())
    assert other["current"] == "3" and [r["build"] for r in other["releases"]] == ["3"]
    web = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/releases.json")["Body"].read())
    assert web["current"] == "4"
    assert "tes/app-web/4/js/top.js" in keys(s3, bucket, "tes/app-web/4/")


def test_bundle_push_of_a_tag_no_service_has_is_refused(workspace, s3, bucket):
    push(workspace, "-b", "3")
    before = keys(s3, bucket)
    result = run(workspace, "s3push", "-n", "-b", "60", "nosuchtag")
    assert result.exit_code == 1
    assert "no selected service has a bundle tagged 'nosuchtag'; nothing published" in result.stderr
    assert keys(s3, bucket) == before


def test_concurrency_help_states_the_default_as_the_readme_does(workspace):
    from bosco.publish.plan import DEFAULT_CONCURRENCY

    result = run(workspace, "s3push", "--help")
    assert "default: 8 per CPU, at most 32" in " ".join(result.stdout.split())
    assert min(32, 8 * (os.cpu_count() or 1)) == DEFAULT_CONCURRENCY
    assert "(default 8 per CPU, at most 32)" in (Path(__file__).parents[2] / "README.md").read_text()


def test_non_interactive_stdin_without_n_is_an_error(workspace, s3, bucket):
    result = run(workspace, "s3push", "-b", "55")
    assert result.exit_code == 1
    assert "stdin is not a terminal" in result.stderr and "pass -n" in result.stderr
    assert keys(s3, bucket) == {}


def test_region_endpoint_from_aws_endpoint_url(tmp_path, moto_url, s3, bucket, monkeypatch):
    from .s3support import write_workspace

    workspace = write_workspace(tmp_path / "env-ws", {"bucket": bucket, "region": "us-east-1"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    push(workspace, "-b", "7")
    assert "tes/app-web/7/release.json" in keys(s3, bucket)


def answer_prompt(workspace: Path, answer: str) -> subprocess.CompletedProcess:
    """Run ``bosco s3push -b 55`` as a process whose stdin is a terminal (a pty) and type ``answer``."""
    master, slave = pty.openpty()
    try:
        argv = [sys.executable, "-m", "bosco", "-W", str(workspace), "-e", "tes", "s3push", "-b", "55"]
        proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        os.write(master, answer.encode() + b"\n")  # waits in the terminal's input queue until the prompt reads it
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(), stderr.decode())


def test_confirmation_declined_publishes_nothing(workspace, s3, bucket):
    result = answer_prompt(workspace, "n")
    assert result.returncode == 1, result.stderr
    assert "2 services, 3 bundles, 22 files" in result.stderr
    assert "(37 objects to upload, 0 to copy, 0 unchanged; then 4 release index files and index.html)" in result.stderr
    assert "Are you sure you want to publish build 55 in tes (y/N)?" in result.stderr
    assert "cancelled: nothing changed" in result.stderr
    assert keys(s3, bucket) == {}


def test_confirmation_accepted_publishes(workspace, s3, bucket):
    result = answer_prompt(workspace, "y")
    assert result.returncode == 0, result.stderr
    assert "tes/app-web/55/release.json" in keys(s3, bucket)


def test_repo_filter_publishes_only_matching_services(workspace, s3, bucket):
    push(workspace, "-b", "55", "-r", "^app-other$")
    stored = keys(s3, bucket)
    assert "tes/app-other/55/release.json" in stored
    assert not [k for k in stored if k.startswith("tes/app-web/")]
    # index.html links exactly the current releases: app-other only, until app-web is published
    assert page_links(s3, bucket) == {"index.html", "app-other/55/js/bottom.js", "app-other/55/html/bottom.js.html"}
    push(workspace, "-b", "56", "-r", "^app-web$")
    links = page_links(s3, bucket)
    assert {"app-other/55/js/bottom.js", "app-web/56/js/top.js", "asset/favicon.ico"} <= links
    assert not [k for k in links if k.startswith(("app-other/56/", "app-web/55/"))]


@pytest.mark.tampers_bucket
def test_previous_release_is_found_by_listing_without_releases_json(workspace, s3, bucket):
    push(workspace, "-b", "54")
    push(workspace, "-b", "55")
    for service in MANIFESTS:
        s3.delete_object(Bucket=bucket, Key=f"tes/{service}/releases.json")
    s3.delete_object(Bucket=bucket, Key="tes/app-web/55/img/logo.png")  # only build 54 still has it
    report = push(workspace, "-b", "56")
    actions = {o["key"]: o["action"] for o in report["objects"]}
    assert actions["app-web/56/js/top.js"] == "copy"
    assert actions["app-web/56/img/logo.png"] == "upload"  # the newest indexed release (55) is the source
    record = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/releases.json")["Body"].read())
    assert record["current"] == "56" and [r["build"] for r in record["releases"]] == ["56"]


def test_root_relative_links_without_aws_cdn_are_a_detail_not_a_warning(tmp_path, moto_url, s3, bucket):
    from .conftest import REGION, write_workspace
    workspace = write_workspace(tmp_path / "plain", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                                     "attempts": 2})
    quiet = run(workspace, "s3push", "-n", "-b", "55")
    assert quiet.exit_code == 0, quiet.output
    assert "aws.cdn is not set" not in quiet.stderr
    verbose = run(workspace, "-v", "s3push", "-n", "-b", "56")
    assert verbose.exit_code == 0, verbose.output
    assert "detail: aws.cdn is not set; fragments link root-relative /tes/<key>" in verbose.stderr
