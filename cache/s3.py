"""S3 (or any S3-compatible store) as the store, through boto3.

``PREFIX/output/<OutputID>`` holds an output's bytes; ``PREFIX/action/<ActionID>`` holds
``<OutputID> <size>``. The endpoint comes from ``AWS_ENDPOINT_URL`` and the credentials from
the standard AWS variables and files, as boto3 finds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from cache.config import Remote
from cache.store import CONNECT_TIMEOUT, CORRUPT, DENIED, READ_TIMEOUT, SERVER, UNREACHABLE, StoreError

_ENTRY = re.compile(rb"^([0-9a-f]{64}) (\d{1,20})\n?$")


def entry_body(output: str, size: int) -> bytes:
    return f"{output} {size}\n".encode()


def parse_entry_body(data: bytes) -> tuple[str, int]:
    m = _ENTRY.match(data)
    if not m:
        raise StoreError(CORRUPT, "an action's entry is not kbuild's")
    return m.group(1).decode(), int(m.group(2))


class S3Store:
    """The bucket and prefix named by ``remote`` (boto3 clients are thread-safe)."""

    def __init__(self, remote: Remote, environ: Mapping[str, str] = os.environ) -> None:
        import boto3
        from botocore.config import Config

        self.remote = remote
        self.where = f"s3://{remote.bucket}"
        prefix = remote.prefix + "/" if remote.prefix else ""
        self.actions, self.outputs = f"{prefix}action/", f"{prefix}output/"
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16)
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.client: Any = boto3.session.Session().client(
            "s3", endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None,
            region_name=region, config=config)

    def _call(self, what: str, fn: Any, **kw: Any) -> Any:
        """One S3 call; None for a missing key; StoreError of the right kind for the rest."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(**kw)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            if code == "NoSuchBucket":
                raise StoreError(SERVER, f"{self.where}: no such bucket") from None
            if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StoreError(DENIED, f"{self.where} refused {what} ({code or status})") from None
            raise StoreError(SERVER, f"{self.where} answered {code or status} to {what}") from None
        except NoCredentialsError:
            raise StoreError(DENIED, f"{self.where}: no AWS credentials (AWS_ACCESS_KEY_ID, ~/.aws)") from None
        except BotoCoreError as exc:
            text = str(exc)
            reason = ("timed out" if "timeout" in text.lower() else
                      "connection refused" if "connect" in text.lower() else type(exc).__name__)
            raise StoreError(UNREACHABLE, f"{self.where}: {reason}") from None

    def ping(self) -> None:
        self._call("HeadBucket", self.client.head_bucket, Bucket=self.remote.bucket)

    def lookup(self, action: str) -> tuple[str, int] | None:
        got = self._call("GetObject", self.client.get_object, Bucket=self.remote.bucket, Key=self.actions + action)
        if got is None:
            return None
        return parse_entry_body(self._read_all(got["Body"]))

    def _read_all(self, body: Any) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            return bytes(body.read())
        except (BotoCoreError, OSError) as exc:
            raise StoreError(UNREACHABLE, f"{self.where}: {type(exc).__name__}") from None

    def download(self, output: str, size: int, dest: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError

        got = self._call("GetObject", self.client.get_object, Bucket=self.remote.bucket, Key=self.outputs + output)
        if got is None:
            raise StoreError(CORRUPT, f"an entry names output {output[:12]}…, which {self.where} does not have")
        try:
            for chunk in got["Body"].iter_chunks(1 << 20):
                dest.write(chunk)
        except (BotoCoreError, OSError) as exc:
            raise StoreError(UNREACHABLE, f"{self.where}: {type(exc).__name__}") from None

    def upload(self, action: str, output: str, size: int, body: Path) -> int:
        sent = 0
        key = self.outputs + output
        if self._call("HeadObject", self.client.head_object, Bucket=self.remote.bucket, Key=key) is None:
            with open(body, "rb") as fh:
                self._call("PutObject", self.client.put_object, Bucket=self.remote.bucket, Key=key, Body=fh,
                           ContentLength=size)
            sent += size
        entry = entry_body(output, size)
        self._call("PutObject", self.client.put_object, Bucket=self.remote.bucket, Key=self.actions + action,
                   Body=entry)
        return sent + len(entry)

    def probe_write(self) -> None:
        key = f"{self.actions}.kbuild-write-probe"
        self._call("PutObject", self.client.put_object, Bucket=self.remote.bucket, Key=key, Body=b"ok\n")
        self._call("DeleteObject", self.client.delete_object, Bucket=self.remote.bucket, Key=key)

