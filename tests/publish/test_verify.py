"""bosco verify and s3push --verify against moto's S3 server, directly and over HTTP (moto serves the
bucket path-style, standing in for aws.cdn): a clean release verifies, a tampered one lists every
difference and exits 1."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from .s3support import REGION, run, write_workspace


@pytest.fixture
def cdn_workspace(tmp_path, moto_url, s3, bucket):
    """The fixture workspace whose aws.cdn is the moto server's URL of the bucket (path-style), the
    bucket readable by anyone as behind a CDN."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    return write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                             "cdn": f"{moto_url}/{bucket}", "attempts": 2})


def test_push_with_verify_checks_every_object_directly_and_through_the_cdn(cdn_workspace, s3, bucket):
    result = run(cdn_workspace, "s3push", "-n", "-b", "55", "--verify", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["verify"]
    assert report["ok"] is True and report["differences"] == []
    assert report["releases"] == ["app-other/55", "app-web/55"]
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/55/release.json")["Body"].read())
    other = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-other/55/release.json")["Body"].read())
    objects = index["objects"] + other["objects"]
    assert report["checked"] == sum(len(o["stored"]) for o in objects) + 2 * len(objects)
    again = run(cdn_workspace, "verify", "-b", "55")
    assert again.exit_code == 0, again.output
    assert f"verified {report['checked']} objects of 2 releases: app-other/55, app-web/55" in again.stderr


@pytest.mark.tampers_bucket
def test_tampered_release_lists_every_difference(cdn_workspace, s3, bucket):
    assert run(cdn_workspace, "s3push", "-n", "-b", "55").exit_code == 0
    # replaced bytes (same headers), a wrong content type, a deleted brotli form
    s3.put_object(Bucket=bucket, Key="tes/app-web/55/js/top.js", Body=gzip.compress(b"evil();\n"),
                  ContentType="text/javascript; charset=utf-8", ContentEncoding="gzip",
                  CacheControl="public, max-age=31536000, immutable")
    s3.copy_object(Bucket=bucket, Key="tes/app-web/55/img/logo.png", MetadataDirective="REPLACE",
                   CopySource={"Bucket": bucket, "Key": "tes/app-web/55/img/logo.png"}, ContentType="text/plain",
                   CacheControl="no-cache")
    s3.delete_object(Bucket=bucket, Key="tes/app-web/55/css/main.css.br")
    result = run(cdn_workspace, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["releases"] == ["app-other/55", "app-web/55"]
    differences = report["differences"]
    evil = hashlib.sha256(b"evil();\n").hexdigest()
    index = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/55/release.json")["Body"].read())
    top = next(o["sha256"] for o in index["objects"] if o["key"] == "app-web/55/js/top.js")
    cdn = json.loads((cdn_workspace / ".bosco" / "tes.json").read_text())["aws"]["cdn"]
    url = f"{cdn}/tes/app-web/55"
    assert sorted(differences) == sorted([
        f"app-web/55/js/top.js: decodes to SHA-256 {evil}, release.json records {top}",
        f"app-web/55/js/top.js: {len(gzip.compress(b'evil();' + bytes([10])))} bytes stored, release.json records "
        f"{next(s['size'] for o in index['objects'] for s in o['stored'] if s['key'] == 'app-web/55/js/top.js')}",
        f"{url}/js/top.js (Accept-Encoding: br): decodes to SHA-256 {evil}, release.json records {top}",
        f"{url}/js/top.js (Accept-Encoding: gzip): decodes to SHA-256 {evil}, release.json records {top}",
        "app-web/55/img/logo.png: Content-Type is 'text/plain', release.json records 'image/png'",
        "app-web/55/img/logo.png: Cache-Control is 'no-cache', expected 'public, max-age=31536000, immutable'",
        f"{url}/img/logo.png (Accept-Encoding: br): Content-Type is 'text/plain', release.json records 'image/png'",
        f"{url}/img/logo.png (Accept-Encoding: gzip): Content-Type is 'text/plain', release.json records "
        "'image/png'",
        "app-web/55/css/main.css.br: missing",
    ])
    text = run(cdn_workspace, "verify")
    assert text.exit_code == 1
    assert "app-web/55/css/main.css.br: missing" in text.stderr
    assert f"error: {len(differences)} differences between app-other/55, app-web/55 and their release indexes" \
        in text.stderr
