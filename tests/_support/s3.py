"""moto's S3 server as a real loopback process for the remote-cache tests (started, stopped by pid)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests._support.engine import EngineError, free_port

BUCKET = "kbuild-cache"
KEYS = {"AWS_ACCESS_KEY_ID": "kbuild-test", "AWS_SECRET_ACCESS_KEY": "kbuild-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    """`moto_server -H 127.0.0.1 -p PORT`: `.endpoint`, `.env()` for boto3 and the cache program."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc, self.pid, self.port, self.log_path = proc, proc.pid, port, log_path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**KEYS, "AWS_ENDPOINT_URL": self.endpoint}

    def make_bucket(self, name: str = BUCKET) -> str:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=name)
        return name

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_moto(workdir: Path, timeout: float = 30.0) -> MotoServer:
    import importlib.util
    import sys

    exe = shutil.which("moto_server")
    argv = [exe] if exe else [sys.executable, "-m", "moto.server"]
    if exe is None and importlib.util.find_spec("moto") is None:
        raise EngineError("moto_server is not installed (pip install 'moto[server]')")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "moto.log"
    port = free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([*argv, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = MotoServer(proc, port, log_path)
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(f"{server.endpoint}/", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # it answers
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise EngineError(f"moto_server did not answer on {server.endpoint}: "
                              f"{log_path.read_text(errors='replace')[-400:]}")
        time.sleep(0.2)
