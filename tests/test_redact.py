"""Passwords never leave kbuild (issue 19, case 2): `common.redact` on every URL shape, and a planted
password in `--mirror`, `--push`, `--docker-host` and `DOCKER_HOST` greped for in every output of every
task that takes them: stdout, stderr, every file under the tree, the report and JUnit files."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from common.redact import MASK, forget, redact, redact_data
from tests.conftest import inv

PW = "s3cr3tPW"


@pytest.fixture(autouse=True)
def fresh_memory():
    forget()
    yield
    forget()


@pytest.mark.parametrize(("given", "shown"), [
    # scheme://user:pw@host, with and without ports, IPv6, paths, queries
    ("tcp://u:s3cr3tPW@127.0.0.1:2375", "tcp://u:***@127.0.0.1:2375"),
    ("ssh://deploy:s3cr3tPW@build-host", "ssh://deploy:***@build-host"),
    ("ssh://u:s3cr3tPW@[::1]:22", "ssh://u:***@[::1]:22"),
    ("tcp://u:s3cr3tPW@[fe80::1%25eth0]:2376", "tcp://u:***@[fe80::1%25eth0]:2376"),
    ("https://u:s3cr3tPW@registry.example:5000/v2/k8s/tags/list", "https://u:***@registry.example:5000/v2/k8s/tags/list"),
    ("http://u:p%40ss%3Aw0rd@host/x", "http://u:***@host/x"),        # @ and : percent-encoded
    ("https://u:p@ss@host/x", "https://u:***@host/x"),                # a raw @ in the password: the last @ ends it
    ("https://u:a:b:c@host", "https://u:***@host"),                   # colons in the password
    ("git+ssh://git:tok3nXYZ@example.org/k.git", "git+ssh://git:***@example.org/k.git"),
    # user:pw@host with no scheme: --mirror and --push forms
    ("u:s3cr3tPW@127.0.0.1:5000", "u:***@127.0.0.1:5000"),
    ("u:s3cr3tPW@registry.example:5000/k8s", "u:***@registry.example:5000/k8s"),
    ("u:s3cr3tPW@[::1]:5000/k8s", "u:***@[::1]:5000/k8s"),
    ("--mirror 'u:s3cr3tPW@127.0.0.1:1': expected HOST", "--mirror 'u:***@127.0.0.1:1': expected HOST"),
    ("DOCKER_HOST=ssh://u:s3cr3tPW@h:22 (from env)", "DOCKER_HOST=ssh://u:***@h:22 (from env)"),
    ('{"host": "u:s3cr3tPW@h"}', '{"host": "u:***@h"}'),
    # secrets in query strings
    ("https://b.s3.example/k?X-Amz-Credential=AKIAX%2F2026&X-Amz-Signature=abcdef&x=1",
     "https://b.s3.example/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
    ("https://r/token?service=r&token=abcd1234&scope=pull", "https://r/token?service=r&token=***&scope=pull"),
    ("https://h/login?user=u&password=hunter22", "https://h/login?user=u&password=***"),
])
def test_credentials_are_masked_and_the_user_kept(given, shown):
    assert redact(given) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize("text", [
    "tcp://127.0.0.1:2375",                         # no user
    "ssh://deploy@build-host:22",                   # a user and no password
    "https://tok@github.com/kubernetes/kubernetes",  # a user only
    "git@github.com:kubernetes/kubernetes.git",
    "k8s.gcr.io/pause:3.2@sha256:" + "ab" * 32,     # an image with a tag and a digest
    "busybox:1.36@sha256:" + "cd" * 32,             # the same without a registry
    "127.0.0.1:5000/k8s/kube-apiserver-amd64:v1.20.2@sha256:" + "ef" * 32,
    "test@localhost", "unix:///var/run/docker.sock", "+++ [1203 11:50:16] Building tarball: src",
    "v1.20.2-12+abc@def", "a:b c@d",
])
def test_things_that_are_not_credentials_are_left_alone(text):
    assert redact(text) == text


def test_a_password_seen_once_is_masked_everywhere_after():
    redact("tcp://u:longpassw0rd@h:1")
    assert redact("paramiko: auth failed for u with longpassw0rd") == f"paramiko: auth failed for u with {MASK}"
    assert redact("decoded p@ss-word-x") == "decoded p@ss-word-x"
    redact("https://u:p%40ss-word-x@h")
    assert redact("decoded p@ss-word-x") == f"decoded {MASK}"  # its percent-decoded form too


def test_passwords_in_the_environment_are_masked_where_they_show_up_alone():
    env = {"DOCKER_HOST": "ssh://u:envpassw0rd@127.0.0.1:1", "HTTPS_PROXY": "http://p:pr0xypass@proxy:3128"}
    assert redact("it said envpassw0rd and pr0xypass", env) == f"it said {MASK} and {MASK}"


def test_structured_data_is_redacted_through():
    body = {"steps": [{"detail": "tcp://u:s3cr3tPW@h:1 down", "data": {"engine": ("ssh://a:b1b2b3@h",)}}],
            "exit_code": 3, "ok": True, "u:kk12kk@h": None}
    out = redact_data(body)
    assert PW not in json.dumps(out) and "b1b2b3" not in json.dumps(out) and "kk12kk" not in json.dumps(out)
    assert out["exit_code"] == 3 and out["ok"] is True
    assert out["steps"][0]["detail"] == "tcp://u:***@h:1 down"


# --- every task, every way a password comes in ---------------------------------------------------


def free_port() -> int:
    """A loopback port where nothing listens (bound, then closed): every connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_bytes_under(*roots: Path) -> dict[Path, bytes]:
    found = {}
    for root in roots:
        if root.is_file():
            found[root] = root.read_bytes()
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    found[path] = path.read_bytes()
    return found


PORT = free_port()
TCP, SSH = f"tcp://u:{PW}@127.0.0.1:{PORT}", f"ssh://u:{PW}@127.0.0.1:{PORT}"
BARE = f"u:{PW}@127.0.0.1:{PORT}"

# (task arguments, DOCKER_HOST or None). Each fails fast: nothing listens on PORT.
CASES = [
    (["images", "--docker-host", TCP], None),
    (["images"], SSH),
    (["images", "--mirror", BARE], None),
    (["images", "--mirror", f"https://{BARE}/k8s"], None),
    (["release", "--mode", "native", "--docker-host", TCP], None),
    (["release", "--mode", "script", "--docker-host", SSH], None),
    (["release", "--push", BARE], None),
    (["release", "--mode", "native", "--push", f"{BARE}/k8s", "--mirror", BARE], TCP),
    (["ci", "--release", "--docker-host", TCP], None),
    (["ci", "--release"], SSH),
    (["doctor", "--task", "images", "--task", "release", "--docker-host", TCP], None),
    (["doctor", "--task", "images", "--task", "release"], SSH),
    (["doctor", "--task", "images", "--mirror", BARE], None),
    (["kit", "--save", "{kit}", "--docker-host", TCP], None),
    (["kit", "--save", "{kit}"], SSH),
]


@pytest.mark.parametrize(("args", "docker_host"), CASES, ids=[
    f"{a[0]}-{i}" for i, (a, _) in enumerate(CASES)])
def test_a_planted_password_appears_in_no_output(sample_repo, tmp_path, args, docker_host):
    tree = sample_repo("gopath")
    outside = tmp_path / "outside"
    outside.mkdir()
    kit = outside / "k.tar"
    args = [a.replace("{kit}", str(kit)) for a in args]
    extra: list[str] = []
    if args[0] == "ci":
        extra = ["--report", str(outside / "r.json"), "--junit", str(outside / "j.xml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    env["KBUILD_MIN_DISK_GB"], env["KBUILD_MIN_MEMORY_GB"] = "0", "0"
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    result = inv(*args, "--kube-root", str(tree), *extra, env=env)
    assert result.returncode != 0, result.stdout + result.stderr  # each fails: nothing listens there
    said = result.stdout + result.stderr
    assert "ERROR" in said or "MISSING" in said, said
    assert PW not in said, said
    assert "Traceback" not in said, said
    leaks = [p for p, data in all_bytes_under(tree, outside).items() if PW.encode() in data]
    assert not leaks, leaks
    if args[0] == "ci":  # the report was written, and says what failed, with the password masked
        body = json.loads((outside / "r.json").read_text())
        failed = [s for s in body["steps"] if s["status"] == "failed"]
        assert failed and "u:***@" in json.dumps(failed), body
        assert "u:***@" in (outside / "j.xml").read_text()


def test_ci_report_masks_a_mirror_password_that_reaches_the_images_step(sample_repo, tmp_path, docker_host):
    """With a working engine the doctor passes and the images step fails on the mirror: its message
    (which quotes the flag) is in the report and the JUnit file, masked."""
    tree = sample_repo("gopath")
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    result = inv("ci", "--kube-root", str(tree), "--mirror", BARE, "--report", str(report), "--junit", str(junit))
    assert result.returncode != 0
    assert PW not in result.stdout + result.stderr
    body = json.loads(report.read_text())
    steps = {s["name"]: s for s in body["steps"]}
    assert steps["doctor"]["status"] == "passed" and steps["images"]["status"] == "failed", body
    assert "u:***@127.0.0.1" in steps["images"]["detail"]
    assert PW not in report.read_text() and PW not in junit.read_text()
    assert "u:***@127.0.0.1" in junit.read_text()
    leaks = [p for p, data in all_bytes_under(tree).items() if PW.encode() in data]
    assert not leaks, leaks
