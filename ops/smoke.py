"""`inv smoke`: prove a built kube-apiserver works against a real etcd.

Plan (pure): ports, files and the two command lines. Run: start etcd, start
the apiserver, wait for /version and /readyz against deadlines, compare the
served version with `inv version`, create and read back a ConfigMap, then stop
both by pid and remove the work directory — on success, failure and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import KBError, ToolError

if TYPE_CHECKING:
    from workspace.tree import KubeTree

SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class SmokePlan:
    workdir: Path
    etcd_argv: tuple[str, ...]
    apiserver_argv: tuple[str, ...]
    etcd_url: str
    apiserver_url: str
    token: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def plan_smoke(apiserver: Path, etcd: Path, workdir: Path, token: str,
               ports: tuple[int, int, int]) -> SmokePlan:
    """The two command lines: etcd on loopback, and the apiserver with the minimum flags it needs."""
    client, peer, secure = ports
    etcd_url = f"http://127.0.0.1:{client}"
    etcd_argv = (str(etcd), "--data-dir", str(workdir / "etcd"), "--listen-client-urls", etcd_url,
                 "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", f"default=http://127.0.0.1:{peer}")
    key = workdir / "sa.key"
    api_argv = (str(apiserver), f"--etcd-servers={etcd_url}", f"--secure-port={secure}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--cert-dir={workdir / 'certs'}",
                f"--token-auth-file={workdir / 'tokens.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=AlwaysAllow")
    return SmokePlan(workdir, etcd_argv, api_argv, etcd_url, f"https://127.0.0.1:{secure}", token)


def write_files(plan: SmokePlan, environ: Mapping[str, str]) -> None:
    """tokens.csv and the service-account key (openssl, as Kubernetes' own scripts make it)."""
    (plan.workdir / "certs").mkdir(parents=True)
    (plan.workdir / "tokens.csv").write_text(f'{plan.token},kbuild-smoke,kbuild-smoke,"system:masters"\n')
    openssl = shutil.which("openssl", path=environ.get("PATH"))
    if not openssl:
        raise ToolError("openssl is needed to make the service-account key", hint="apt-get install openssl")
    subprocess.run([openssl, "genrsa", "-out", str(plan.workdir / "sa.key"), "2048"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start(name: str, argv: tuple[str, ...], workdir: Path) -> Proc:
    log = workdir / f"{name}.log"
    fh = log.open("w")
    try:
        popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                 cwd=workdir, start_new_session=True)
    finally:
        fh.close()
    return Proc(name, popen, log)


def stop(proc: Proc, grace: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL: by pid (its own process group)."""
    if proc.popen.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.popen.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE  # the apiserver's self-signed serving cert, on loopback only


def request(url: str, token: str | None = None, method: str = "GET", body: object = None,
            timeout: float = 5.0) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_INSECURE if url.startswith("https") else None) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for(what: str, check: Callable[[], bool], deadline: float, procs: list[Proc]) -> float:
    """Poll ``check`` until it's true; fail at the deadline or when a process died. Returns seconds waited."""
    start_t = time.monotonic()
    while True:
        for p in procs:
            if p.popen.poll() is not None:
                raise KBError(f"{p.name} exited (code {p.popen.returncode}) while waiting for {what}:\n{p.tail()}")
        try:
            if check():
                return time.monotonic() - start_t
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() - start_t > deadline:
            tails = "\n".join(f"--- {p.name} ({p.log}):\n{p.tail()}" for p in procs)
            raise KBError(f"timed out after {deadline:.0f}s waiting for {what}\n{tails}")
        time.sleep(0.2)


@dataclass
class SmokeResult:
    checks: list[tuple[str, str]] = field(default_factory=list)   # (what, result)
    timings: dict[str, float] = field(default_factory=dict)


def run_smoke(plan: SmokePlan, expected: Mapping[str, str], environ: Mapping[str, str],
              say: Callable[[str], None], deadlines: Mapping[str, float] | None = None,
              keep: bool = False) -> SmokeResult:
    """Start etcd and the apiserver, check them, stop both and clean up whatever happens."""
    limits = {"etcd": 30.0, "version": 120.0, "readyz": 120.0, **(deadlines or {})}
    result = SmokeResult()
    procs: list[Proc] = []
    t0 = time.monotonic()
    try:
        write_files(plan, environ)
        say(f"starting etcd on {plan.etcd_url}")
        procs.append(start("etcd", plan.etcd_argv, plan.workdir))
        result.timings["etcd healthy"] = wait_for(
            "etcd /health", lambda: request(f"{plan.etcd_url}/health")[0] == 200, limits["etcd"], procs)
        say(f"starting {Path(plan.apiserver_argv[0]).name} on {plan.apiserver_url}")
        procs.append(start("kube-apiserver", plan.apiserver_argv, plan.workdir))
        served: dict[str, str] = {}

        def version_ok() -> bool:
            code, text = request(f"{plan.apiserver_url}/version", plan.token)
            if code == 200:
                served.update(json.loads(text))
            return code == 200

        result.timings["/version answers"] = wait_for("/version", version_ok, limits["version"], procs)
        result.timings["/readyz ok"] = wait_for(
            "/readyz", lambda: request(f"{plan.apiserver_url}/readyz", plan.token)[0] == 200, limits["readyz"], procs)
        for key in ("gitVersion", "gitCommit", "gitTreeState"):
            if served.get(key) != expected.get(key):
                raise KBError(f"/version {key} is {served.get(key)!r}, `inv version` says {expected.get(key)!r}")
            result.checks.append((f"/version {key}", served[key]))
        name = f"kbuild-smoke-{secrets.token_hex(3)}"
        data = {"checked-by": "inv smoke", "nonce": secrets.token_hex(8)}
        t = time.monotonic()
        code, text = request(f"{plan.apiserver_url}/api/v1/namespaces/default/configmaps", plan.token, "POST",
                             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
        if code != 201:
            raise KBError(f"creating ConfigMap {name} answered {code}: {text[:300]}")
        code, text = request(f"{plan.apiserver_url}/api/v1/namespaces/default/configmaps/{name}", plan.token)
        if code != 200 or json.loads(text).get("data") != data:
            raise KBError(f"reading ConfigMap {name} back answered {code}: {text[:300]}")
        result.timings["ConfigMap create + get"] = time.monotonic() - t
        result.checks.append(("ConfigMap create and read back", f"default/{name}"))
        return result
    finally:
        for proc in reversed(procs):
            stop(proc)
        result.timings["total"] = time.monotonic() - t0
        if not keep and "_output" in plan.workdir.resolve().parts:
            shutil.rmtree(plan.workdir, ignore_errors=True)


def smoke(tree: KubeTree, what: str, environ: Mapping[str, str], say: Callable[[str], None],
          keep: bool = False) -> SmokeResult:
    """Build (if not up to date) the apiserver, then run the smoke test against it."""
    from build.driver import BuildJob, build_tree
    from build.version import compute

    etcd = shutil.which("etcd", path=environ.get("PATH"))
    if not etcd:
        raise ToolError("etcd: not found on PATH", hint="apt-get install etcd-server")
    built = build_tree(tree, BuildJob(whats=(what,)), environ)
    binary = built[0].path
    stamp = compute(tree.root, environ)
    expected = {"gitVersion": stamp.version, "gitCommit": stamp.commit, "gitTreeState": stamp.tree_state}
    workdir = tree.root / "_output" / "smoke" / f"run-{os.getpid()}-{secrets.token_hex(3)}"
    workdir.mkdir(parents=True)
    plan = plan_smoke(binary, Path(etcd), workdir, secrets.token_hex(16), (free_port(), free_port(), free_port()))
    result = run_smoke(plan, expected, environ, say, keep=keep)
    return result
