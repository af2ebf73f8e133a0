"""The one masking helper: secret keys at any depth, URLs' userinfo, secret name=value pairs, page paths."""

from __future__ import annotations

import pytest

from bosco.redact import is_secret_key, mask_values, public_paths, redact, shown_value


@pytest.mark.parametrize("name", ["secret", "aws.secret", "apiKey", "api_key", "privateKey", "passphrase", "auth",
                                  "password", "DB_PASSWORD", "token", "authToken", "accessKeyId",
                                  "secretAccessKey", "key", "Authorization", "X-Amz-Signature", "credentials"])
def test_secret_key_names(name):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["bucket", "region", "endpoint", "cdn", "maxage", "author", "keys", "monkey",
                                  "host", "dsn"])
def test_ordinary_key_names(name):
    assert not is_secret_key(name)


def test_mask_values_at_any_depth_and_in_lists():
    values = {
        "aws": {"bucket": "b", "endpoint": "https://minio:minio-pass-123@s3.example.com:9000/",
                "profiles": [{"name": "ci", "secret": "list-secret-1"}, {"name": "dev", "apiKey": "AK-2"}],
                "tokens": ["t1", "t2"]},
        "sentry": {"dsn": "https://0123abcd@o1.ingest.sentry.io/42",
                   "db": "postgres://app:db-pass-9@db.internal:5432/app?sslmode=require&password=q-9"},
        "auth": {"user": "u", "pass": "p", "enabled": True, "retries": 3},
        "signing": {"privateKey": "-----BEGIN KEY-----", "passphrase": "", "note": None},
    }
    assert mask_values(values) == {
        "aws": {"bucket": "b", "endpoint": "https://****@s3.example.com:9000/",
                "profiles": [{"name": "ci", "secret": "****"}, {"name": "dev", "apiKey": "****"}],
                "tokens": ["****", "****"]},
        "sentry": {"dsn": "https://****@o1.ingest.sentry.io/42",
                   "db": "postgres://****@db.internal:5432/app?sslmode=require&password=****"},
        "auth": {"user": "****", "pass": "****", "enabled": True, "retries": "****"},
        "signing": {"privateKey": "****", "passphrase": "", "note": None},
    }


def test_redact_masks_userinfo_and_secret_pairs_in_free_text():
    assert redact('Could not connect to the endpoint URL: "http://ak:sk-123@127.0.0.1:9/tes/a.js"') == \
        'Could not connect to the endpoint URL: "http://****@127.0.0.1:9/tes/a.js"'
    assert redact("Server=db;User Id=app;Password=hunter2;Api_Key=zz") == \
        "Server=db;User Id=app;Password=****;Api_Key=****"
    assert redact("retrying PutObject https://s3.example.com/b/k?X-Amz-Credential=AKIA1&x-id=PutObject") == \
        "retrying PutObject https://s3.example.com/b/k?X-Amz-Credential=****&x-id=PutObject"
    assert redact("max-age=60, no userinfo in s3://bucket/tes/ or mail me@example.com") == \
        "max-age=60, no userinfo in s3://bucket/tes/ or mail me@example.com"


def test_shown_value_never_echoes_a_secret_key():
    assert shown_value("aws.secret", 12345678) == "****"
    assert shown_value("aws.endpoint", "ftp://u:p@host") == '"ftp://****@host"'
    assert shown_value("cdn.port", "x") == '"x"'


def test_public_paths_are_repo_relative(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ws = tmp_path / "ws"
    repo = ws / "app"
    text = (f"{repo}/bosco-service.json:1:2: invalid JSON; {ws}/other/x.js is outside {repo}; "
            f"{ws}-copy/y.js; cache {tmp_path}/home/.cache/bosco")
    assert public_paths(text, repo, [ws]) == (
        f"bosco-service.json:1:2: invalid JSON; other/x.js is outside .; {ws}-copy/y.js; cache ~/.cache/bosco")
