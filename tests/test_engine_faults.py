"""Deadlines on the engine and on registries (issue 19, cases 3, 4 and 9), against real daemons.

A private dockerd frozen with SIGSTOP or killed with SIGKILL by pid; registries that misbehave
through a loopback proxy in front of the session's real registry (tests/_support/stall.py). Each
run must end within a bound, in one ERROR line naming the engine or the registry and the image,
with a non-zero exit, no traceback, and nothing changed: no half-written file, no new tag.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from images.refs import mirror_ref
from images.resolve import resolve
from tests._support import engine as eng
from tests._support.stall import StallProxy
from tests.conftest import REPO
from workspace.tree import KubeTree

pytestmark = pytest.mark.engine

STALL = 3  # KBUILD_STALL_SECONDS in these tests: every fault must end within a few of these
BIG = 24 << 20  # a layer well past the proxies' 1 MB trip point and the kernel's socket buffers


# --- helpers ------------------------------------------------------------------------------------------


def pause_spec(tree: Path):
    return next(s for s in resolve(KubeTree(tree), {}) if s.role == "pause")


def big_layer_tar(size: int = BIG) -> bytes:
    """A root fs of one file of random bytes (incompressible: the blob is as big as the file)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("data.bin")
        info.size, info.mode = size, 0o644
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def import_big(client, repo_tag: str, size: int = BIG) -> str:
    repo, tag = eng.split_ref(repo_tag)
    client.api.import_image_from_data(big_layer_tar(size), repository=repo, tag=tag)
    return str(client.api.inspect_image(repo_tag)["Id"])


def seed_mirror(client, registry, tree: Path, prefix: str) -> str:
    """A big stand-in for the tree's pause image in the real registry under ``prefix``; its mirror path."""
    ref = mirror_ref(pause_spec(tree).ref, f"{registry.address}/{prefix}", "nested")
    import_big(client, ref.name)
    eng.push(client, ref.name)
    client.api.remove_image(ref.name, force=True)
    return ref.path


def env_for(host: str, tmp_path: Path, stall: float = STALL) -> dict[str, str]:
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=host, DOCKER_CONFIG=str(config), KBUILD_STALL_SECONDS=str(stall), NO_COLOR="1")
    return env


def start_inv(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = "inv"
    return subprocess.Popen([exe, "--search-root", str(REPO), *args], cwd=REPO, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str], bound: float) -> tuple[int, str, str]:
    """Wait for ``proc`` at most ``bound`` seconds (a hang fails the test, and is killed)."""
    try:
        out, err = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running after {bound:.0f} s (a hang):\n{out}\n{err}")
    return proc.returncode, out, err


def run_inv(*args: str, env: dict[str, str], bound: float) -> tuple[int, str, str, float]:
    start = time.monotonic()
    code, out, err = finish(start_inv(*args, env=env), bound)
    return code, out, err, time.monotonic() - start


def one_error(stderr: str) -> str:
    """The run's single ERROR line (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, stderr
    return errors[0]


def engine_state(client) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((i["Id"], tuple(sorted(i.get("RepoTags") or []))) for i in client.api.images(all=True))


def wait_for(condition, bound: float, what: str) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound:.0f} s")
        time.sleep(0.002)


@pytest.fixture
def tree(sample_repo):
    return sample_repo("gopath")


# --- 3. a frozen engine ---------------------------------------------------------------------------


def test_frozen_engine_images_and_doctor_end_in_one_line(tree, fresh_engine, tmp_path):
    env = env_for(fresh_engine.host, tmp_path)
    os.kill(fresh_engine.pid, signal.SIGSTOP)
    try:
        code, _, err, took = run_inv("images", "--kube-root", str(tree), "--only", "pause", env=env, bound=30)
        line = one_error(err)
        assert code != 0 and took < 15, (code, took)
        assert f"the engine at {fresh_engine.host}" in line and f"did not answer within {STALL} s" in line, line

        code, out, err, took = run_inv("doctor", "--kube-root", str(tree), "--task", "images", env=env, bound=30)
        assert code == 1 and took < 15 and "Traceback" not in err, (code, took, err)
        from tests._support.doctor import doctor_rows

        row = doctor_rows(out)["engine"]
        assert "MISSING" in row and f"did not answer within {STALL} s" in row, out
        assert all(len(line) <= 100 or max(map(len, line.split())) > 40 for line in out.splitlines()), out
    finally:
        os.kill(fresh_engine.pid, signal.SIGCONT)


def test_engine_frozen_mid_pull_ends_in_one_line(tree, fresh_engine, registry, engine_client, tmp_path):
    path = seed_mirror(engine_client, registry, tree, "frozen")
    try:
        with StallProxy(registry.address, "stop-sending") as proxy:
            proc = start_inv("images", "--kube-root", str(tree), "--only", "pause",
                             "--mirror", f"{proxy.address}/frozen", env=env_for(fresh_engine.host, tmp_path))
            try:
                assert proxy.stalled.wait(30), "the pull never reached the blob"
                os.kill(fresh_engine.pid, signal.SIGSTOP)
                frozen = time.monotonic()
                code, _, err = finish(proc, 30)
            finally:
                if proc.poll() is None:
                    proc.kill()
    finally:
        os.kill(fresh_engine.pid, signal.SIGCONT)
    line = one_error(err)
    assert code != 0 and time.monotonic() - frozen < 4 * STALL, time.monotonic() - frozen
    assert (f"the engine at {fresh_engine.host} did not answer within {STALL} s during pull of "
            f"{proxy.address}/{path}@sha256:") in line, line


def test_bad_stall_setting_is_one_line(tree, tmp_path):
    env = env_for(f"unix://{tmp_path}/no-engine.sock", tmp_path)  # refused before any engine is contacted
    env["KBUILD_STALL_SECONDS"] = "ten"
    code, _, err, _ = run_inv("images", "--kube-root", str(tree), "--only", "pause", env=env, bound=30)
    assert code == 2 and "KBUILD_STALL_SECONDS='ten': expected a positive number of seconds" in one_error(err)


# --- 9. the engine killed mid-transfer ------------------------------------------------------------------


def test_engine_killed_mid_pull_says_it_went_away(tree, fresh_engine, registry, engine_client, tmp_path):
    path = seed_mirror(engine_client, registry, tree, "killed")
    with StallProxy(registry.address, "stop-sending") as proxy:
        env = env_for(fresh_engine.host, tmp_path, stall=60)  # it is the kill that must end it, not a stall
        proc = start_inv("images", "--kube-root", str(tree), "--only", "pause",
                         "--mirror", f"{proxy.address}/killed", env=env)
        try:
            assert proxy.stalled.wait(30), "the pull never reached the blob"
            killed = time.monotonic()
            os.kill(fresh_engine.pid, signal.SIGKILL)
            code, _, err = finish(proc, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
    line = one_error(err)
    assert code != 0 and time.monotonic() - killed < 10
    assert f"the engine at {fresh_engine.host} went away during pull of {proxy.address}/{path}@sha256:" in line, line


def test_engine_killed_mid_save_leaves_no_file(tree, fresh_engine, tmp_path):
    pause = pause_spec(tree)
    import_big(fresh_engine.client(timeout=120), pause.ref.short, 64 << 20)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "images.tar"
    proc = start_inv("images", "--kube-root", str(tree), "--only", "pause", "--save", str(out),
                     env=env_for(fresh_engine.host, tmp_path))
    try:
        def saving() -> bool:
            return any(p.stat().st_size > 0 for p in outdir.glob(".images.tar.partial-*"))

        wait_for(saving, 30, "the save started")
        os.kill(fresh_engine.pid, signal.SIGSTOP)  # mid-stream, whatever the speed; then dead
        os.kill(fresh_engine.pid, signal.SIGKILL)
        code, _, err = finish(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    line = one_error(err)
    assert code != 0 and f"the engine at {fresh_engine.host} went away during save of {pause.ref.short}" in line, line
    assert list(outdir.iterdir()) == []  # no tar, no partial


def test_engine_killed_mid_load_says_it_went_away(tree, fresh_engine, engine_client, tmp_path):
    pause = pause_spec(tree)
    import_big(engine_client, pause.ref.short, 64 << 20)
    tar = tmp_path / "images.tar"
    with tar.open("wb") as fh:
        for chunk in engine_client.api.get_image(pause.ref.short):
            fh.write(chunk)
    engine_client.api.remove_image(pause.ref.short, force=True)
    proc = start_inv("images", "--kube-root", str(tree), "--only", "pause", "--load", str(tar),
                     env=env_for(fresh_engine.host, tmp_path))
    try:
        def reading() -> bool:
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == str(tar):
                        pos = int(Path(f"/proc/{proc.pid}/fdinfo/{fd.name}").read_text().split()[1])
                        return pos > 0
                except (OSError, ValueError, IndexError):
                    continue
            return False

        wait_for(reading, 30, "the load started")
        os.kill(fresh_engine.pid, signal.SIGSTOP)
        os.kill(fresh_engine.pid, signal.SIGKILL)
        code, _, err = finish(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    line = one_error(err)
    assert code != 0 and f"the engine at {fresh_engine.host} went away during load of {tar}" in line, line


# --- 4. registries that stall ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode, doing", [("silent", "resolving"), ("stop-sending", "pulling"),
                                         ("cut", "pulling")])
def test_stalling_registry_ends_in_one_line(mode, doing, tree, registry, engine_client, docker_host, tmp_path):
    path = seed_mirror(engine_client, registry, tree, f"stall-{mode}")
    before = engine_state(engine_client)
    with StallProxy(registry.address, mode) as proxy:
        code, out, err, took = run_inv("images", "--kube-root", str(tree), "--only", "pause",
                                       "--mirror", f"{proxy.address}/stall-{mode}",
                                       env=env_for(docker_host, tmp_path), bound=60)
        assert proxy.stalled.is_set()
    line = one_error(err)
    assert code == 1 and took < 5 * STALL + 5, (code, took)
    stalled = f"registry {proxy.address} stalled while {doing} {proxy.address}/{path}" in line
    if mode == "cut" and not stalled:
        # A registry that is gone refuses connections: when the daemon's own retries end before the
        # stall deadline (a loaded machine), its in-band error is the line, naming the registry and the ref.
        assert f"{proxy.address}/{path}" in line and "unreachable" in line and "connection refused" in line, line
    else:
        assert stalled, line
        assert f"(no data for {STALL} s" in line, line
    assert engine_state(engine_client) == before  # no new image, no tag


def test_push_to_a_registry_that_stops_reading(registry, docker_engine, engine_client, tmp_path):
    """The release's push step (`inv release --images-only --push REGISTRY`) against a registry that stops
    reading mid-upload: the push is abandoned after the stall deadline, with one line naming both."""
    from build.release.package import load_and_push
    from images.engine import Engine

    name = f"registry.k8s.io/kube-apiserver-amd64:v0-stall-{os.getpid()}"
    import_big(engine_client, name)
    tar = tmp_path / "kube-apiserver.tar"
    with tar.open("wb") as fh:
        for chunk in engine_client.api.get_image(name):
            fh.write(chunk)
    engine = Engine.connect({"DOCKER_HOST": docker_engine.host, "KBUILD_STALL_SECONDS": str(STALL)})
    said: list[str] = []
    with StallProxy(registry.address, "stop-reading") as proxy:
        start = time.monotonic()
        results = load_and_push(engine, [tar], [proxy.address], said.append)
        took = time.monotonic() - start
        assert proxy.stalled.is_set()
    assert took < 5 * STALL + 10, took
    target = f"{proxy.address}/kube-apiserver-amd64:v0-stall-{os.getpid()}"
    assert results[0].errors and not results[0].pushed, results
    assert f"registry {proxy.address} stalled while pushing {target} (no data for {STALL} s" in results[0].errors[0]
    assert any(line.startswith(f"FAILED push {target}: registry {proxy.address} stalled") for line in said), said


# --- a build container's log: silence is fine, a frozen engine is not -------------------------------------


def test_quiet_container_is_followed_and_a_frozen_engine_ends_it(fresh_engine):
    from images.engine import Engine, EngineGone

    client = fresh_engine.client()
    eng.make_image(client, "kbuild-logs:1", "logs")
    engine = Engine.connect({"DOCKER_HOST": fresh_engine.host, "KBUILD_STALL_SECONDS": "1"})

    def run(script: str) -> str:
        cid = client.api.create_container("kbuild-logs:1", command=["sh", "-c", script],
                                          host_config=client.api.create_host_config(network_mode="none"))["Id"]
        client.api.start(cid)
        return str(cid)

    # Three quiet seconds with a one-second stall deadline: the engine answers its pings, so it goes on.
    assert b"".join(engine.follow_logs(run("echo one; sleep 3; echo two"))).split() == [b"one", b"two"]
    quiet = run("echo one; sleep 60")
    chunks = engine.follow_logs(quiet)
    assert next(chunks).strip() == b"one"
    os.kill(fresh_engine.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(EngineGone, match=r"did not answer within 1 s during logs of container [0-9a-f]{12}"):
            list(chunks)
        assert time.monotonic() - start < 8
    finally:
        os.kill(fresh_engine.pid, signal.SIGCONT)
        client.api.remove_container(quiet, force=True)  # the engine's shutdown would wait for it


# --- the setting and the names in messages (pure) -------------------------------------------------------


@pytest.mark.parametrize("raw, seconds", [("", 60.0), ("3", 3.0), (" 0.5 ", 0.5), ("120", 120.0)])
def test_stall_seconds_reads_the_setting(raw, seconds):
    from images.engine import stall_seconds

    assert stall_seconds({"KBUILD_STALL_SECONDS": raw} if raw else {}) == seconds


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "3s", "nan", "inf", "1e999"])
def test_stall_seconds_refuses_what_is_not_a_positive_number(raw):
    from common.errors import UsageError
    from images.engine import stall_seconds

    with pytest.raises(UsageError, match="expected a positive number of seconds"):
        stall_seconds({"KBUILD_STALL_SECONDS": raw})


def test_registry_and_engine_names_in_messages():
    from images.engine import registry_of, shown_host

    assert registry_of("127.0.0.1:5000/m/pause:3.2") == "127.0.0.1:5000"
    assert registry_of("k8s.gcr.io/pause@sha256:" + "0" * 64) == "k8s.gcr.io"
    assert registry_of("localhost/x:1") == "localhost"
    assert registry_of("library/busybox:1") == registry_of("busybox") == "docker.io"
    assert shown_host("tcp://user:secret@10.0.0.1:2376") == "tcp://10.0.0.1:2376"
    assert shown_host("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"
