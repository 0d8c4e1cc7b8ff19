"""`inv smoke`: a built apiserver against a real etcd; processes and files cleaned up whatever happens."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from ops.smoke import plan_smoke
from tests.conftest import REPO, inv, require, sigint_default

pytestmark = pytest.mark.go


@pytest.fixture(autouse=True)
def _etcd():
    import shutil

    require(shutil.which("etcd") is not None, "etcd (apt-get install etcd-server)")


def leftovers(tree: Path) -> list[str]:
    """Processes still running from this tree's smoke work dirs."""
    out = subprocess.run(["pgrep", "-af", str(tree / "_output/smoke")], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_plan_has_the_minimum_flags(tmp_path):
    plan = plan_smoke(Path("/b/kube-apiserver"), Path("/usr/bin/etcd"), tmp_path, "tok", (2379, 2380, 6443))
    argv = plan.apiserver_argv
    assert argv[0] == "/b/kube-apiserver" and "--etcd-servers=http://127.0.0.1:2379" in argv
    for flag in ("--secure-port=6443", "--bind-address=127.0.0.1", "--authorization-mode=AlwaysAllow",
                 f"--token-auth-file={tmp_path / 'tokens.csv'}", f"--cert-dir={tmp_path / 'certs'}",
                 f"--service-account-key-file={tmp_path / 'sa.key'}",
                 f"--service-account-signing-key-file={tmp_path / 'sa.key'}"):
        assert flag in argv
    assert "--listen-client-urls" in plan.etcd_argv and plan.etcd_url == "http://127.0.0.1:2379"
    assert plan.apiserver_url == "https://127.0.0.1:6443"


def test_smoke_sample_apiserver(sample_repo):
    tree = sample_repo("gopath")
    result = inv("smoke", "--kube-root", str(tree), check=True)
    assert "ok  /version gitVersion: v1.20.2" in result.stdout
    assert "ok  /version gitTreeState: clean" in result.stdout
    assert "ok  ConfigMap create and read back: default/kbuild-smoke-" in result.stdout
    for label in ("etcd healthy", "/version answers", "/readyz ok", "total"):
        assert f"    {label}: " in result.stdout
    assert not leftovers(tree)
    assert not any((tree / "_output/smoke").iterdir())


def test_smoke_failure_stops_etcd_and_cleans_up(sample_repo):
    tree = sample_repo("gopath")
    # kubectl is no server: it exits at once, and smoke must say so, stop etcd and clean up.
    result = inv("smoke", "--kube-root", str(tree), "--what", "cmd/kubectl")
    assert result.returncode != 0
    assert "kube-apiserver exited" in result.stderr and "Traceback" not in result.stderr
    assert not leftovers(tree)
    assert not any((tree / "_output/smoke").iterdir())


def test_smoke_ctrl_c(sample_repo):
    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", check=True)
    proc = subprocess.Popen(["inv", "--search-root", str(REPO), "smoke", "--kube-root", str(tree)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=sigint_default)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if line.startswith("starting kube-apiserver"):
                break
            assert time.monotonic() < deadline
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not leftovers(tree)
    assert not any((tree / "_output/smoke").iterdir())


@pytest.mark.realtree
def test_smoke_real_apiserver(real_tree):
    result = inv("smoke", "--kube-root", str(real_tree), check=True)
    assert "ok  /version gitVersion: v1.20.2" in result.stdout
    assert "ok  /version gitCommit: faecb196815e248d3ecfb03c680a4507229c2a56" in result.stdout
    assert "ok  /version gitTreeState: archive" in result.stdout
    assert "ok  ConfigMap create and read back" in result.stdout
    assert not leftovers(real_tree)
