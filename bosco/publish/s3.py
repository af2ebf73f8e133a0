"""The S3 target of ``bosco s3push``/``s3delete``: objects under ``<environment>/`` in ``aws.bucket``.

Works with any S3-compatible store: ``aws.endpoint`` (or the SDK's own ``AWS_ENDPOINT_URL``)
selects it. Credentials come from the standard AWS chain; ``aws.key``/``aws.secret`` are accepted
for compatibility with Bosco and never printed. Transient errors (5xx, throttling, connection
resets, timeouts) are retried by botocore's ``standard`` retry mode with exponential backoff, up
to ``aws.attempts`` attempts in total, each waiting at most ``aws.connecttimeout`` seconds to
connect and ``aws.readtimeout`` seconds for an answer.

S3 cannot store a ``Vary`` header (only ``Content-*``, ``Cache-Control``, ``Expires`` and
``x-amz-meta-*``), so ``Vary: Accept-Encoding`` has to be added by the CDN that picks ``<key>``
or ``<key>.br`` by the request's ``Accept-Encoding``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from bosco.config import Config
from bosco.errors import PublishError
from bosco.publish.target import Headers, SourceMissing, StoredObject
from bosco.redact import redact

DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per request
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
CONFLICT = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}  # a conditional write lost


def config_problems(config: Config, environment: str) -> list[str]:
    """What is missing from the configuration to publish to S3 (empty when nothing is)."""
    if not config.aws.bucket:
        return [f"aws.bucket is not set (put it in .bosco/{environment}.json or BOSCO_AWS_BUCKET)"]
    return []


def s3_client(config: Config, concurrency: int, on_retry: Callable[[str], None] | None = None) -> Any:
    """A boto3 S3 client for the configured region and endpoint, with a connection pool of
    ``concurrency``, botocore's standard retry mode (``aws.attempts`` attempts in total) and
    ``aws.connecttimeout``/``aws.readtimeout`` (seconds). ``on_retry(message)`` is called before
    each retry with the operation, URL (userinfo masked, ``redact.redact``), attempt and the cause
    of the previous failure."""
    aws = config.aws
    credentials = {}
    if aws.key and aws.secret:
        credentials = {"aws_access_key_id": aws.key, "aws_secret_access_key": aws.secret}
    boto_config = BotoConfig(
        retries={"mode": "standard", "total_max_attempts": aws.attempts},
        connect_timeout=aws.connecttimeout,
        read_timeout=aws.readtimeout,
        max_pool_connections=max(10, concurrency),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"} if aws.endpoint else None,
    )
    client = boto3.session.Session().client("s3", region_name=aws.region, endpoint_url=aws.endpoint,
                                            config=boto_config, **credentials)
    if on_retry is not None:
        client.meta.events.register("needs-retry.s3", _record_cause)
        client.meta.events.register("request-created.s3", lambda request, operation_name, **_: _notify(
            request, operation_name, aws.attempts, on_retry))
    return client


def _record_cause(request_dict: dict[str, Any], response: Any, caught_exception: Exception | None,
                  **_: Any) -> None:
    """``needs-retry`` handler: remember why the attempt failed (the retry handler decides whether)."""
    if caught_exception is not None:
        cause = str(caught_exception)
    elif response is not None and response[0].status_code >= 400:
        cause = f"HTTP {response[0].status_code} {response[1].get('Error', {}).get('Code', '')}".rstrip()
    else:
        return
    request_dict["context"]["bosco_retry_cause"] = cause


def _notify(request: Any, operation: str, attempts: int, on_retry: Callable[[str], None]) -> None:
    """``request-created`` handler: a request created for attempt 2 or later is a retry."""
    attempt = request.context.get("retries", {}).get("attempt", 1)
    if attempt > 1:
        on_retry(redact(f"retrying {operation} {request.url.split('?')[0]} (attempt {attempt} of {attempts}) after: "
                        f"{request.context.get('bosco_retry_cause', 'an error')}"))


NO_CREDENTIALS_HINT = ("no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                       "AWS_PROFILE (a profile of ~/.aws/credentials), or run where an instance role applies")


class S3Target:
    """The objects under ``<prefix>`` (``<environment>/``) of ``bucket``. Raises ``PublishError``
    naming ``s3://bucket/key`` and the S3 error code on failure."""

    compress = True
    cheap_head = False

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.description = f"s3://{bucket}/{prefix}"

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        where = f"s3://{self.bucket}/{self.prefix}{key}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            hint = "create the bucket or fix aws.bucket" if code == "NoSuchBucket" else None
            raise PublishError(redact(f"{where}: {code} {error.get('Message', '')}".rstrip()), hint) from exc
        except NoCredentialsError as exc:
            raise PublishError(f"{where}: {exc}", NO_CREDENTIALS_HINT) from exc
        except BotoCoreError as exc:
            raise PublishError(f"{where}: {redact(str(exc))}",
                               "check aws.endpoint, aws.region and your AWS credentials") from exc

    def _pages(self, prefix: str, **extra: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(prefix):
            yield from paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix, **extra)

    def list(self, prefix: str) -> dict[str, int]:
        return {o["Key"][len(self.prefix):]: o["Size"]
                for page in self._pages(prefix) for o in page.get("Contents", [])}

    def folders(self, prefix: str) -> list[str]:
        start = len(self.prefix + prefix)
        return [p["Prefix"][start:].rstrip("/") for page in self._pages(prefix, Delimiter="/")
                for p in page.get("CommonPrefixes", [])]

    def head(self, key: str) -> StoredObject | None:
        try:
            with self._errors(key):
                meta = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except PublishError as exc:
            if _not_found(exc):
                return None
            raise
        return StoredObject(key, meta["ContentLength"], meta.get("Metadata", {}).get("sha256"),
                            meta["LastModified"].timestamp())

    def read(self, key: str) -> bytes | None:
        found = self.read_versioned(key)
        return found[0] if found else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            with self._errors(key):
                response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
                return response["Body"].read(), response["ETag"]
        except PublishError as exc:
            if _not_found(exc):
                return None
            raise

    def fetch(self, key: str) -> tuple[bytes, dict[str, str]] | None:
        """The stored body at ``key`` (still encoded) and its ``content-type``, ``content-encoding``
        (``""`` when none) and ``cache-control`` headers, or None when there is no object."""
        try:
            with self._errors(key):
                response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
                body = response["Body"].read()
        except PublishError as exc:
            if _not_found(exc):
                return None
            raise
        return body, {"content-type": response.get("ContentType", ""),
                      "content-encoding": response.get("ContentEncoding", ""),
                      "cache-control": response.get("CacheControl", "")}

    @staticmethod
    def _headers(headers: Headers) -> dict[str, Any]:
        args = {"ContentType": headers.content_type, "CacheControl": headers.cache_control,
                "Metadata": {"sha256": headers.sha256}}
        if headers.content_encoding:
            args["ContentEncoding"] = headers.content_encoding
        return args

    def put(self, key: str, body: bytes, headers: Headers) -> None:
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body, **self._headers(headers))

    def put_if(self, key: str, body: bytes, headers: Headers, version: str | None) -> bool:
        """A conditional PutObject: ``If-Match: <version>`` (the ETag), or ``If-None-Match: *`` when
        ``version`` is None."""
        condition = {"IfMatch": version} if version else {"IfNoneMatch": "*"}
        try:
            with self._errors(key):
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body,
                                       **self._headers(headers), **condition)
        except PublishError as exc:
            if _error_code(exc) in CONFLICT or (version and _not_found(exc)):
                return False
            raise
        return True

    def copy(self, source: str, key: str, headers: Headers) -> None:
        try:
            with self._errors(key):
                self.client.copy_object(Bucket=self.bucket, Key=self.prefix + key, MetadataDirective="REPLACE",
                                        CopySource={"Bucket": self.bucket, "Key": self.prefix + source},
                                        **self._headers(headers))
        except PublishError as exc:
            if _not_found(exc):
                raise SourceMissing(source) from exc
            raise

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            with self._errors(batch[0]):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self.prefix + k} for k in batch], "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise PublishError(f"s3://{self.bucket}/{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                                   f" ({len(response['Errors'])} key(s) not deleted)")


def _error_code(exc: PublishError) -> str | None:
    cause = exc.__cause__
    return cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None


def _not_found(exc: PublishError) -> bool:
    return _error_code(exc) in NOT_FOUND


def s3_target(config: Config, environment: str, concurrency: int,
              on_retry: Callable[[str], None] | None = None) -> S3Target:
    """The S3 target for ``environment`` from the configuration (``aws.bucket``, ``aws.region``,
    ``aws.endpoint``, timeouts; ``on_retry`` as for ``s3_client``). Raises ``PublishError`` when
    ``aws.bucket`` is not set."""
    problems = config_problems(config, environment)
    if problems:
        raise PublishError(problems[0], "configure the bucket of this environment")
    return S3Target(s3_client(config, concurrency, on_retry), str(config.aws.bucket), f"{environment}/")
