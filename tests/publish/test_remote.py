"""``bosco cdn --remote ENV`` against a real HTTP upstream: a release published with s3push to moto's
S3 server, read back through a counting proxy standing in for ``aws.cdn`` (moto serves the bucket
path-style), served over real sockets by a ``bosco cdn`` process whose workspace lacks a service."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import brotli
import httpx
import pytest
from live import until

from bosco.config import load_config
from bosco.release_proxy import accepted, max_age, remote_releases, rewrite_fragment

from .s3support import PNG, REGION, run, write_workspace
from conftest import running_cdn

pytestmark = pytest.mark.usefixtures("isolated_env")


def public(s3, bucket: str) -> None:
    """Make ``bucket`` readable by anyone, as it is behind a CDN."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))


def publish(tmp_path: Path, moto_url: str, bucket: str, *args: str, shortcache: str | None = None) -> None:
    """Publish the fixture workspace (both services) to ``bucket`` with s3push ``args`` (fragments
    linking the production CDN https://cdn.example.com, which the tests never reach)."""
    aws = {"bucket": bucket, "endpoint": moto_url, "region": REGION, "attempts": 2, "cdn": "https://cdn.example.com"}
    if shortcache:
        aws["shortcache"] = shortcache
    root = write_workspace(tmp_path / "publisher", aws)
    result = run(root, "s3push", "-n", *args)
    assert result.exit_code == 0, result.output


def developer(tmp_path: Path, aws: dict) -> Path:
    """The developer's workspace: app-web only (app-other is not cloned), ``tes`` configured by ``aws``."""
    root = write_workspace(tmp_path / "dev", {"region": REGION, "attempts": 2, **aws})
    shutil.rmtree(root / "app-other")
    return root


def cdn(root: Path, env: dict, log: Path):
    return running_cdn([sys.executable, "-m", "bosco", "cdn", "--remote", "tes"], root, env, log)


def get(client: httpx.Client, path: str, accept: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """GET ``path`` with ``Accept-Encoding: accept``: the response and its body as sent (not decoded)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept, **headers}) as response:
        return response, b"".join(response.iter_raw())


def stored(s3, bucket: str, key: str) -> tuple[bytes, str]:
    response = s3.get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response.get("ContentEncoding", "")


def test_remote_release_served_beside_local_services(tmp_path, moto_url, s3, bucket, fault_proxy, isolated_env):
    public(s3, bucket)
    publish(tmp_path, moto_url, bucket, "-b", "55")
    root = developer(tmp_path, {"bucket": bucket, "endpoint": moto_url, "cdn": f"{fault_proxy.url}/{bucket}"})
    with cdn(root, isolated_env, tmp_path / "cdn.log") as (base, index):
        # the index page lists the remote release and where it comes from
        assert index.status_code == 404
        assert "published release tes/55" in index.text and "app-other" in index.text
        assert f"objects from {fault_proxy.url}/{bucket}/tes/" in index.text
        # asset bytes: each stored form as published, the decoded bytes for a client taking neither
        gz, encoding = stored(s3, bucket, "tes/app-other/55/js/bottom.js")
        br, _ = stored(s3, bucket, "tes/app-other/55/js/bottom.js.br")
        assert encoding == "gzip"
        with httpx.Client(base_url=base) as client:
            answer, body = get(client, "/app-other/55/js/bottom.js", "gzip")
            assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
            assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
            assert answer.headers["vary"] == "Accept-Encoding"
            assert body == gz
            answer, body = get(client, "/app-other/55/js/bottom.js", "gzip, br")
            assert answer.headers["content-encoding"] == "br" and body == br
            answer = client.get("/app-other/55/js/bottom.js", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in answer.headers
            assert answer.content == gzip.decompress(gz) == brotli.decompress(br)
            # a raw-stored object (image) as it is
            png, _ = stored(s3, bucket, "tes/app-web/55/img/logo.png")
            # ... but app-web is local: its published keys are not served, its local ones are
            assert client.get("/app-web/55/img/logo.png").status_code == 404
            assert client.get("/app-web/local/img/logo.png").content == png
            local = client.get("/app-web/local/html/top.js.html").text
            assert f"{base.replace('127.0.0.1', 'localhost')}/app-web/local/js/a.js" in local
            # the remote fragment: the published one with its URLs pointing at this server
            published = gzip.decompress(stored(s3, bucket, "tes/app-other/55/html/bottom.js.html")[0]).decode()
            fragment = client.get("/app-other/55/html/bottom.js.html")
            assert fragment.status_code == 200 and fragment.headers["content-type"] == "text/html; charset=utf-8"
            local_base = base.replace("127.0.0.1", "localhost")
            assert fragment.text == published.replace("https://cdn.example.com/tes/", f"{local_base}/")
            assert 'integrity="sha384-' in fragment.text  # the same bytes: SRI still holds
            assert client.get("/app-other/local/html/bottom.js.html").text == fragment.text
            script = fragment.text.split('src="', 1)[1].split('"', 1)[0]
            assert httpx.get(script.replace("localhost", "127.0.0.1")).content == gzip.decompress(gz)
            # a client's ETag: 304
            etag = client.get("/app-other/55/js/bottom.js", headers={"Accept-Encoding": "br"}).headers["etag"]
            again = client.get("/app-other/55/js/bottom.js", headers={"Accept-Encoding": "br", "If-None-Match": etag})
            assert again.status_code == 304
            # immutable objects (build 55) are fetched once per stored form, then served from the copy
            fetched = [entry for entry in fault_proxy.log if entry[1].endswith("/app-other/55/js/bottom.js")]
            assert [(m, s) for m, _, _, s in fetched] == [("GET", 200)]
            # a key no release has: the 404 page
            assert client.get("/app-other/55/js/nope.js").status_code == 404


def test_a_service_filtered_out_is_served_from_its_release(tmp_path, moto_url, s3, bucket, fault_proxy,
                                                            isolated_env):
    public(s3, bucket)
    publish(tmp_path, moto_url, bucket, "-b", "55")
    root = write_workspace(tmp_path / "dev", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                              "cdn": f"{fault_proxy.url}/{bucket}"})
    command = [sys.executable, "-m", "bosco", "cdn", "--remote", "tes", "-r", "app-other"]
    with running_cdn(command, root, isolated_env, tmp_path / "cdn.log") as (base, _), \
            httpx.Client(base_url=base) as client:
        # app-web is in the workspace but not selected: its release is served, under both names
        gz, _ = stored(s3, bucket, "tes/app-web/55/js/top.js")
        answer, body = get(client, "/app-web/55/js/top.js", "gzip")
        assert answer.status_code == 200 and body == gz
        head = client.head("/app-web/55/js/top.js", headers={"Accept-Encoding": "gzip"})
        assert head.status_code == 200 and head.headers["content-length"] == str(len(gz))
        assert head.headers["etag"] == answer.headers["etag"]
        fragment = client.get("/app-web/local/html/top.js.html").text
        assert f"{base.replace('127.0.0.1', 'localhost')}/app-web/55/js/top.js" in fragment
        part = client.get("/app-web/55/img/logo.png", headers={"Range": "bytes=0-7"})  # stored as it is
        assert part.status_code == 206 and part.content == b"\x89PNG\r\n\x1a\n"
        assert part.headers["content-range"] == f"bytes 0-7/{len(PNG)}"
        # the selected service is served from the workspace
        assert client.get("/app-other/local/x.js").content == b"function other() { return 'other'; }\nother();\n"
        assert client.get("/app-other/55/js/bottom.js").status_code == 404


@pytest.mark.tampers_bucket
def test_upstream_errors_pass_through_and_are_never_stored(tmp_path, moto_url, s3, bucket, fault_proxy,
                                                             isolated_env):
    public(s3, bucket)
    publish(tmp_path, moto_url, bucket, "-b", "55")
    body, _ = stored(s3, bucket, "tes/app-other/55/js/bottom.js")
    head = s3.head_object(Bucket=bucket, Key="tes/app-other/55/js/bottom.js")
    s3.delete_object(Bucket=bucket, Key="tes/app-other/55/js/bottom.js")
    root = developer(tmp_path, {"bucket": bucket, "endpoint": moto_url, "cdn": f"{fault_proxy.url}/{bucket}"})
    with cdn(root, isolated_env, tmp_path / "cdn.log") as (base, _), httpx.Client(base_url=base) as client:
        for _ in range(2):
            assert get(client, "/app-other/55/js/bottom.js", "gzip")[0].status_code == 404
        fetched = [(m, s) for m, p, _, s in fault_proxy.log if p.endswith("/app-other/55/js/bottom.js")]
        assert fetched == [("GET", 404), ("GET", 404)]  # asked each time: the 404 was not stored
        s3.put_object(Bucket=bucket, Key="tes/app-other/55/js/bottom.js", Body=body, ContentEncoding="gzip",
                      ContentType=head["ContentType"], CacheControl=head["CacheControl"])
        answer, served = get(client, "/app-other/55/js/bottom.js", "gzip")
        assert answer.status_code == 200 and served == body
        # a 5xx passes through too, and is not stored either
        fault_proxy.unavailable_suffix = "/app-other/55/js/bottom.js.map"
        assert get(client, "/app-other/55/js/bottom.js.map", "gzip")[0].status_code == 503
        fault_proxy.unavailable_suffix = None
        assert get(client, "/app-other/55/js/bottom.js.map", "gzip")[0].status_code == 200
        # a bucket that refuses anonymous reads: the CDN's 403 passes through
        s3.delete_bucket_policy(Bucket=bucket)
        answer = client.get("/app-other/55/js/bottom.js", headers={"Accept-Encoding": "br"})
        assert answer.status_code == 403


def test_stale_copies_are_revalidated_and_served_offline(tmp_path, moto_url, s3, bucket, fault_proxy, isolated_env):
    public(s3, bucket)
    # build "default" changes in place: its keys get aws.shortcache, here fresh for 0 s
    publish(tmp_path, moto_url, bucket, shortcache="public, max-age=0, must-revalidate")
    root = developer(tmp_path, {"bucket": bucket, "endpoint": fault_proxy.url, "cdn": f"{fault_proxy.url}/{bucket}"})
    key = "/app-other/default/js/bottom.js"
    gz, _ = stored(s3, bucket, "tes" + key)
    with cdn(root, isolated_env, tmp_path / "cdn.log") as (base, _), httpx.Client(base_url=base) as client:
        assert get(client, key, "gzip")[1] == get(client, key, "gzip")[1] == gz
        fetched = [(inm is not None, s) for m, p, inm, s in fault_proxy.log if p.endswith(key)]
        assert fetched == [(False, 200), (True, 304)]  # the second asked If-None-Match and kept its copy
        fragment = client.get("/app-other/local/html/bottom.js.html").text.replace(base.split(":")[-1], "PORT")
        # the upstream goes away: copies are served, the index page says so
        fault_proxy.server.should_exit = True
        fault_proxy.thread.join(10)
        third = client.get(key, headers={"Accept-Encoding": "identity"})
        assert third.status_code == 200 and third.content == gzip.decompress(gz)
        page = client.get("/").text
        assert "remote: offline, serving cached copies from " in page
        assert f"(cannot reach {fault_proxy.url}/{bucket}/tes/)" in page
        assert client.get("/app-other/45/js/bottom.js").status_code == 404
    assert "remote: offline, serving cached copies from " in (tmp_path / "cdn.log").read_text()  # the terminal too
    # started again without an upstream: the stored release list and copies
    with cdn(root, isolated_env, tmp_path / "cdn2.log") as (base, index), httpx.Client(base_url=base) as client:
        assert "remote: offline, serving cached copies from " in index.text
        assert client.get("/app-other/local/html/bottom.js.html").text.replace(base.split(":")[-1], "PORT") == fragment
        answer, body = get(client, key, "gzip")
        assert answer.status_code == 200 and body == gz
        missing = client.get("/app-other/default/js/bottom.js.map")  # never fetched: no copy
        assert missing.status_code == 502 and "upstream unreachable and no copy stored" in missing.text


def test_without_aws_cdn_objects_come_from_the_bucket(tmp_path, moto_url, s3, bucket, isolated_env):
    publish(tmp_path, moto_url, bucket, "-b", "56")  # the bucket is private: boto3 reads it with credentials
    root = developer(tmp_path, {"bucket": bucket, "endpoint": moto_url})
    with cdn(root, isolated_env, tmp_path / "cdn.log") as (base, index), httpx.Client(base_url=base) as client:
        assert f"objects from s3://{bucket}/tes/" in index.text
        for key in ("app-other/56/js/bottom.js", "app-other/56/js/bottom.js.map"):
            answer, body = get(client, f"/{key}", "br")
            assert answer.status_code == 200, key
            expected = stored(s3, bucket, f"tes/{key}.br" if answer.headers.get("content-encoding") else f"tes/{key}")
            assert body == expected[0], key


def test_a_new_current_release_is_served_once_the_list_is_read_again(tmp_path, moto_url, s3, bucket):
    public(s3, bucket)
    publish(tmp_path, moto_url, bucket, "-b", "55")
    root = developer(tmp_path, {"bucket": bucket, "endpoint": moto_url, "cdn": f"{moto_url}/{bucket}"})
    releases = remote_releases(load_config(root, "tes"), "tes", tmp_path / "store", ["app-web"], "http://localhost:7334")
    changes = []
    releases.on_change = lambda: changes.append(releases.status_line())
    alias = "app-other/local/html/bottom.js.html"
    assert 'src="http://localhost:7334/app-other/55/js/bottom.js"' in releases.respond(alias, None).body.decode()
    publish(tmp_path / "later", moto_url, bucket, "-b", "56")  # someone publishes while bosco cdn runs
    releases.respond(alias, None)  # within releases_max_age: the list is not read again
    assert "app-other/56/js/bottom.js" not in releases.routes
    releases.releases_max_age = 0
    releases.respond(alias, None)  # read again in the background
    until(lambda: "app-other/56/js/bottom.js" in releases.routes, what="the new release served")
    assert 'src="http://localhost:7334/app-other/56/js/bottom.js"' in releases.respond(alias, None).body.decode()
    assert [s.release.split(" of ")[0] for s in releases.page().services] == ["published release tes/56"]
    assert changes and changes[0].startswith("remote: 1 published release of tes read from")


def test_copies_of_a_bucket_of_the_same_name_on_another_store_are_not_mixed_up(tmp_path, moto_url, s3, bucket):
    """``aws.endpoint`` names the store: a bucket of the same name on another store (a staging MinIO
    beside the production store, say) holds other objects at the same immutable keys, so the copies
    of one are never served for the other. (Here the other store is the same moto server under
    another host name, its objects replaced in between.)"""
    publish(tmp_path, moto_url, bucket, "-b", "56")
    key = "app-other/56/js/bottom.js"

    def served(name: str, endpoint: str) -> bytes:
        root = developer(tmp_path / name, {"bucket": bucket, "endpoint": endpoint})
        releases = remote_releases(load_config(root, "tes"), "tes", tmp_path / "store", ["app-web"],
                                   "http://localhost:7334")
        answer = releases.respond(key, None)
        assert answer.status == 200, (name, answer.body)
        return answer.body

    assert b"'other'" in served("production", moto_url)  # kept for a year: an immutable key
    staging = write_workspace(tmp_path / "staging-publisher",
                              {"bucket": bucket, "endpoint": moto_url, "region": REGION})
    (staging / "app-other/src/x.js").write_text("function other() { return 'staging'; }\nother();\n")
    pushed = run(staging, "s3push", "-n", "-b", "56", "--force")
    assert pushed.exit_code == 0, pushed.output
    assert b"'staging'" in served("staging", moto_url.replace("127.0.0.1", "localhost"))


def test_remote_needs_a_bucket_and_a_release(tmp_path, moto_url, bucket, isolated_env):
    root = developer(tmp_path, {"endpoint": moto_url})
    result = run(root, "cdn", "--remote", "tes", "--port", "0")
    assert result.exit_code == 1
    assert "error: --remote tes: aws.bucket is not set" in result.stderr
    assert '"bucket"' in result.stderr and "Traceback" not in result.stderr
    root = developer(tmp_path / "b", {"bucket": bucket, "endpoint": moto_url})
    result = run(root, "cdn", "--remote", "tes", "--port", "0")
    assert result.exit_code == 1
    assert f"error: --remote tes: no service of s3://{bucket}/tes/ has a releases.json naming a current release" \
        in result.stderr


def test_an_unreachable_bucket_without_stored_releases_is_one_clear_error(tmp_path, bucket, isolated_env):
    from conftest import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    root = developer(tmp_path, {"bucket": bucket, "endpoint": endpoint, "attempts": 1})
    result = run(root, "cdn", "--remote", "tes", "--port", "0")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    error, hint = result.stderr.splitlines()[-2:]
    assert error.startswith(f"error: --remote tes: cannot reach s3://{bucket}/tes/: Could not connect to the endpoint "
                            f'URL: "{endpoint}/{bucket}?')
    assert error.endswith('"; no copy of its releases is stored yet') and error.count("cannot reach") == 1
    assert hint == "hint: connect to the network once to read the releases, or check aws.endpoint and aws.region"


def test_accept_encoding_and_freshness_rules():
    assert accepted(None) == {""}
    assert accepted("gzip, deflate, br") == {"gzip", "deflate", "br", ""}
    assert accepted("br;q=0, gzip;q=0.5") == {"gzip", ""}
    assert accepted("*;q=0") == set()
    assert accepted("*") == {"br", "gzip", ""}
    assert accepted("gzip, identity;q=0") == {"gzip"}
    assert max_age("public, max-age=31536000, immutable") == 31536000
    assert max_age("public, max-age=60, must-revalidate") == 60
    assert max_age("no-cache, max-age=60") == 0
    assert max_age("") == 0


def test_fragment_urls_point_at_this_server():
    published = ('<script src="https://cdn.example.com/tes/app/55/js/top.js" integrity="sha384-x" '
                 'crossorigin="anonymous"></script>\n<script src="/tes/app/55/js/a%20b.js"></script>\n'
                 '<script src="https://elsewhere.example/lib.js"></script>\n')
    keys = {"app/55/js/top.js", "app/55/js/a b.js"}
    assert rewrite_fragment(published, "tes", keys, "http://localhost:7334") == (
        '<script src="http://localhost:7334/app/55/js/top.js" integrity="sha384-x" crossorigin="anonymous">'
        '</script>\n<script src="http://localhost:7334/app/55/js/a%20b.js"></script>\n'
        '<script src="https://elsewhere.example/lib.js"></script>\n')
