"""Concurrent pushes to one environment: releases.json is updated with S3 conditional writes
(moto's server honours If-Match / If-None-Match), so no push drops another's entry."""

from __future__ import annotations

import json

import boto3
import pytest

from bosco.errors import PublishError
from bosco.publish.compress import CompressionCache
from bosco.publish.execute import execute
from bosco.publish.plan import PublishOptions, plan_release
from bosco.publish.release_index import update_releases
from bosco.publish.s3 import S3Target
from bosco.publish.target import Headers

from .s3support import REGION, keys
from .test_s3push import expected_set


def target(moto_url: str, bucket: str) -> S3Target:
    return S3Target(boto3.client("s3", endpoint_url=moto_url, region_name=REGION), bucket, "tes/")


def releases(s3, bucket: str, service: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"tes/{service}/releases.json")["Body"].read())


def test_two_pushes_planned_before_either_wrote_keep_both_releases(workspace, moto_url, s3, bucket):
    plans = [plan_release(expected_set(workspace, b), target(moto_url, bucket), PublishOptions("tes", b, base_url="https://cdn.example.com/tes"))
             for b in ("71", "81")]  # both read releases.json while it did not exist yet
    for plan in plans:
        execute(plan, target(moto_url, bucket), CompressionCache(None))
    for service in ("app-web", "app-other"):
        record = releases(s3, bucket, service)
        assert record["current"] == "81"
        assert [r["build"] for r in record["releases"]] == ["71", "81"]


def test_put_if_refuses_a_stale_version(moto_url, s3, bucket):
    t = target(moto_url, bucket)
    headers = Headers("application/json; charset=utf-8", "no-cache", "", "0" * 64)
    assert t.put_if("a.json", b"1", headers, None)
    assert not t.put_if("a.json", b"2", headers, None)  # If-None-Match: * and the object exists
    data, version = t.read_versioned("a.json")
    s3.put_object(Bucket=bucket, Key="tes/a.json", Body=b"other writer")
    assert not t.put_if("a.json", b"3", headers, version)
    assert s3.get_object(Bucket=bucket, Key="tes/a.json")["Body"].read() == b"other writer"
    assert t.put_if("a.json", b"4", headers, t.read_versioned("a.json")[1])
    assert s3.get_object(Bucket=bucket, Key="tes/a.json")["Body"].read() == b"4"


@pytest.mark.tampers_bucket  # hand-written releases.json records
def test_releases_update_that_lost_a_race_reads_and_applies_again(moto_url, s3, bucket):
    s3.put_object(Bucket=bucket, Key="tes/svc/releases.json", Body=b'{"releases": [{"build": "1"}]}')
    seen = []

    def add_2(old):
        seen.append(old)
        if len(seen) == 1:  # another push writes between our read and our write
            s3.put_object(Bucket=bucket, Key="tes/svc/releases.json",
                          Body=b'{"releases": [{"build": "1"}, {"build": "3"}]}')
        return {"releases": [*old["releases"], {"build": "2"}]}

    data, changed = update_releases(target(moto_url, bucket), "svc", add_2, "no-cache")
    assert changed and len(seen) == 2
    stored = json.loads(s3.get_object(Bucket=bucket, Key="tes/svc/releases.json")["Body"].read())
    assert stored == {"releases": [{"build": "1"}, {"build": "3"}, {"build": "2"}]} == json.loads(data)


@pytest.mark.tampers_bucket  # deletes the push's own objects mid-push, as `s3delete --force` of that build would
def test_release_index_is_not_written_when_its_objects_vanished_mid_push(workspace, moto_url, s3, bucket):
    options = PublishOptions("tes", "55", base_url="https://cdn.example.com/tes")
    plan = plan_release(expected_set(workspace, "55"), target(moto_url, bucket), options)
    done, doomed = [], []

    def delete_build_after_the_content(result) -> None:  # the publish progress hook, between the phases
        done.append(result)
        if len(done) == len(plan.steps):
            doomed.extend(sorted(k.removeprefix("tes/") for k in keys(s3, bucket, "tes/app-web/55/")))
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"tes/{k}"} for k in doomed]})

    with pytest.raises(PublishError) as info:
        execute(plan, target(moto_url, bucket), CompressionCache(None), delete_build_after_the_content)
    assert len(doomed) > 20  # every object of app-web/55 (gzip and brotli forms, maps, fragments, files)
    assert str(info.value) == (f"{len(doomed)} object(s) of this push vanished from s3://{bucket}/tes/ before its "
                               f"release index was written ({', '.join(doomed[:3])} and {len(doomed) - 3} more); "
                               "no release index written")
    assert info.value.hint == "another command deleted them (s3delete?); run the same push again to store them"
    stored = keys(s3, bucket)
    assert not [k for k in stored if k.endswith(("/release.json", "/releases.json", "index.html"))]
    execute(plan_release(expected_set(workspace, "55"), target(moto_url, bucket), options),
            target(moto_url, bucket), CompressionCache(None))  # the same push again completes the release
    assert "tes/app-web/55/release.json" in keys(s3, bucket)
