"""engines/: the pure parts (the schedule, the URL rules) and the archive rules on real files.

The engine-facing parts run against real masked engines in tests/test_engines_remote.py.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from common.errors import UsageError
from engines.schedule import Attempt, Schedule, ScheduleError, simulate, weights

A, B, C = "tcp://a:2375", "tcp://b:2375", "ssh://c"


# --- schedule -------------------------------------------------------------------------------------


def test_weights_count_targets_and_a_cgo_kubelet():
    got = weights({"linux/amd64": ["cmd/kube-apiserver", "cmd/kubelet"], "linux/arm64": ["cmd/kubelet"],
                   "linux/s390x": ["cmd/kube-apiserver", "cmd/kubelet"], "darwin/amd64": ["cmd/kubectl"],
                   "windows/amd64": []})
    assert got == {"linux/amd64": 4, "linux/arm64": 3, "linux/s390x": 2, "darwin/amd64": 1, "windows/amd64": 1}


def test_longest_first_ties_by_name_one_platform_per_engine():
    sched = Schedule({"linux/arm": 2, "linux/amd64": 5, "linux/arm64": 5, "darwin/amd64": 1}, [A, B])
    assert sched.order() == ["linux/amd64", "linux/arm64", "linux/arm", "darwin/amd64"]
    first = sched.take(A)
    assert first == Attempt("linux/amd64", A, 1)
    assert sched.take(A) is None  # busy: one platform at a time
    assert sched.take(B) == Attempt("linux/arm64", B, 1)
    sched.succeeded(first)
    assert sched.take(A) == Attempt("linux/arm", A, 1)
    assert not sched.finished


def test_simulated_plan_spreads_the_heavy_platforms():
    plan = simulate({"linux/amd64": 6, "linux/arm64": 6, "linux/arm": 3, "linux/s390x": 3, "darwin/amd64": 1},
                    [A, B])
    assert plan == {A: ["linux/amd64", "linux/arm", "darwin/amd64"], B: ["linux/arm64", "linux/s390x"]}
    assert simulate({"linux/amd64": 1}, [A, B, C]) == {A: ["linux/amd64"], B: [], C: []}


def test_a_failed_platform_is_retried_once_on_another_engine():
    sched = Schedule({"linux/amd64": 3}, [A, B])
    first = sched.take(A)
    assert first is not None and sched.take(B) is None
    assert sched.waiting_for(B)  # B stays: it may get the retry
    sched.failed(first, "the engine went away", gone=True)
    assert sched.take(A) is None  # gone, and it already tried this one
    retry = sched.take(B)
    assert retry == Attempt("linux/amd64", B, 2)
    sched.succeeded(retry)
    assert sched.finished and sched.failure is None and sched.done == {"linux/amd64": B}


def test_a_failure_not_gone_keeps_the_engine_for_other_platforms():
    sched = Schedule({"linux/amd64": 3, "linux/arm64": 2}, [A, B])
    a1 = sched.take(A)
    assert a1 is not None
    sched.failed(a1, "upload refused")  # A still answers
    a2 = sched.take(A)
    assert a2 == Attempt("linux/arm64", A, 1)  # not amd64 again on A
    assert sched.take(B) == Attempt("linux/amd64", B, 2)


def test_the_second_failure_ends_the_release_naming_engine_and_platform():
    sched = Schedule({"linux/arm64": 3}, [A, B, C])
    first = sched.take(A)
    assert first is not None
    sched.failed(first, "stream broke")
    second = sched.take(B)
    assert second is not None
    sched.failed(second, "build container vanished", gone=True)
    assert sched.finished and isinstance(sched.failure, ScheduleError)
    assert sched.take(C) is None  # C is never tried: one retry only
    message = sched.failure.message
    assert "linux/arm64" in message and B in message and "build container vanished" in message


def test_every_engine_gone_strands_the_rest():
    sched = Schedule({"linux/amd64": 3, "linux/arm64": 3}, [A, B])
    a, b = sched.take(A), sched.take(B)
    assert a is not None and b is not None
    sched.failed(a, "refused", gone=True)
    assert sched.failure is None  # B may still take amd64
    sched.failed(b, "refused", gone=True)
    assert sched.failure is not None and "no other engine is left" in sched.failure.message
    assert not sched.waiting_for(A) and not sched.waiting_for(B)


def test_an_engine_lost_before_any_work():
    sched = Schedule({"linux/amd64": 1}, [A])
    sched.engine_lost(A, "cannot reach it")
    assert sched.failure is not None
    assert "linux/amd64" in sched.failure.message and A in sched.failure.message


def test_credentials_in_an_engine_url_never_reach_the_message():
    url = "tcp://builder:s3cret@10.0.0.5:2376"
    sched = Schedule({"linux/amd64": 1}, [url])
    attempt = sched.take(url)
    assert attempt is not None
    sched.failed(attempt, f"cannot reach {url}", gone=True)
    assert sched.failure is not None and "s3cret" not in sched.failure.message
    assert "builder:***@10.0.0.5" in sched.failure.message


def test_engines_named_twice_or_none():
    with pytest.raises(ValueError):
        Schedule({"linux/amd64": 1}, [])
    with pytest.raises(ValueError):
        Schedule({"linux/amd64": 1}, [A, A])


# --- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["tcp://10.0.0.5:2375", "ssh://builder@arm-box", "unix:///run/docker.sock",
                                 "/var/run/docker.sock"])
def test_engine_urls_accepted(url):
    from engines.pool import check_engine_url

    assert check_engine_url(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.5:2375", "10.0.0.5:2375", "tcp://", "", "tcp://a b", "npipe:////./pipe/x"])
def test_engine_urls_refused(url):
    from engines.pool import check_engine_url

    with pytest.raises(UsageError) as info:
        check_engine_url(url)
    assert info.value.message.startswith("--engine") and "\n" not in info.value.message


def test_engine_url_refusal_hides_a_password_and_duplicates_are_refused():
    from engines.pool import check_engine_url, check_engines

    with pytest.raises(UsageError) as info:
        check_engine_url("https://u:pw123@host")
    assert "pw123" not in info.value.message
    with pytest.raises(UsageError, match="given twice"):
        check_engines([A, B, A])


def test_engines_are_for_direct_mode_only():
    from build.release.modes import Mode
    from build.release.plan import ReleaseRequest, check_request

    assert check_request(ReleaseRequest(mode=Mode.DIRECT, engines=(A,))).engines == (A,)
    for mode in (Mode.NATIVE, Mode.SCRIPT):
        with pytest.raises(UsageError, match="--mode direct"):
            check_request(ReleaseRequest(mode=mode, engines=(A,)))
    with pytest.raises(UsageError):
        check_request(ReleaseRequest(mode=Mode.DIRECT, engines=("ftp://x",)))


# --- the tree as a stream ----------------------------------------------------------------------------


def test_tree_stream_sends_the_tree_without_outputs_history_or_special_files(tmp_path):
    from engines.transfer import Moved, tree_stream

    root = tmp_path / "tree"
    (root / "hack/lib").mkdir(parents=True)
    (root / "hack/lib/golang.sh").write_text("echo\n")
    (root / "Makefile").write_text("all:\n")
    (root / "big").write_bytes(os.urandom(3 << 20))  # more than one chunk
    (root / "_output/local").mkdir(parents=True)
    (root / "_output/local/x").write_text("no")
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("no")
    (root / "staging").symlink_to("hack")  # a link to a directory: sent as a link, never followed
    os.mkfifo(root / "fifo")  # would block a reader forever
    moved = Moved()
    chunks = list(tree_stream(root, moved))
    assert len(chunks) >= 3 and moved.nbytes == sum(len(c) for c in chunks)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"hack", "hack/lib", "hack/lib/golang.sh", "Makefile", "big", "staging"}
    assert members["staging"].issym() and members["staging"].linkname == "hack"
    assert members["big"].size == 3 << 20


# --- outputs back: the archive rules ------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes, str]]) -> Path:
    """(name, data, kind) with kind in file/dir/sym:TARGET/lnk:TARGET/chr; written as a real tar file."""
    with tarfile.open(path, "w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind.startswith("sym:"):
                info.type, info.linkname = tarfile.SYMTYPE, kind[4:]
            elif kind.startswith("lnk:"):
                info.type, info.linkname = tarfile.LNKTYPE, kind[4:]
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            else:
                info.size, info.mode = len(data), 0o4755  # setuid: dropped on the way in
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return path


def test_outputs_unpack_under_their_top_directory(tmp_path):
    from engines.transfer import _extract

    tar = _tar(tmp_path / "ok.tar", [("arm64", b"", "dir"), ("arm64/kubelet", b"ELF", "file"),
                                     ("arm64/alias", b"", "sym:kubelet")])
    out = tmp_path / "out"
    out.mkdir()
    _extract(tar, "arm64", out, "test")
    assert (out / "kubelet").read_bytes() == b"ELF" and os.readlink(out / "alias") == "kubelet"
    assert (out / "kubelet").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize(("members", "rule"), [
    ([("arm64/../../evil", b"x", "file")], "'..'"),
    ([("/etc/evil", b"x", "file")], "absolute"),
    ([("amd64/kubelet", b"x", "file")], "outside arm64/"),
    ([("arm64/esc", b"", "sym:../../../etc/passwd")], "outside"),
    ([("arm64/abs", b"", "sym:/etc/passwd")], "absolute"),
    ([("arm64/kubelet", b"x", "file"), ("arm64/hard", b"", "lnk:arm64/kubelet")], "hard link"),
    ([("arm64/null", b"", "chr")], "device"),
    ([("arm64/dir", b"", "sym:."), ("arm64/dir/x", b"x", "file")], "not a directory"),
])
def test_hostile_outputs_are_refused_and_nothing_lands_outside(tmp_path, members, rule):
    from engines.transfer import TransferError, _extract

    before = sorted(p.name for p in tmp_path.iterdir())
    tar = _tar(tmp_path / "bad.tar", members)
    out = tmp_path / "stage" / "out"
    out.mkdir(parents=True)
    with pytest.raises(TransferError) as info:
        _extract(tar, "arm64", out, "from tcp://e:2375")
    assert rule in info.value.message and "tcp://e:2375" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "bad.tar", "stage"])
    assert not Path("/etc/evil").exists()


def test_a_size_that_lies_is_refused(tmp_path):
    """A header that says more bytes than the archive holds: cut off, refused."""
    from engines.transfer import TransferError, _extract

    good = _tar(tmp_path / "good.tar", [("arm64/kubelet", b"A" * 4096, "file")])
    data = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:512 + 1000])  # the header, then part of the data
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TransferError):
        _extract(cut, "arm64", out, "test")


def test_report_entry_shape():
    from engines.fanout import PlatformResult

    entry = PlatformResult(engine=A, attempts=2, bytes_up=10, bytes_down=20,
                           failures=[{"engine": B, "error": "gone"}]).as_report()
    assert entry["engine"] == A and entry["attempts"] == 2 and entry["bytes_up"] == 10
    assert set(entry["seconds"]) == {"upload", "build", "download"}  # type: ignore[arg-type]
    assert entry["failures"] == [{"engine": B, "error": "gone"}]


@pytest.mark.parametrize("seed", range(40))
def test_schedule_invariants_under_random_faults(seed):
    """Random engines failing or vanishing: a platform never runs twice on one engine, never more than
    MAX_ATTEMPTS times, each engine runs one at a time, and the run always ends (built or failed)."""
    import random

    from engines.schedule import MAX_ATTEMPTS

    rnd = random.Random(seed)
    engines = [f"tcp://e{i}:2375" for i in range(rnd.randint(1, 4))]
    platforms = {f"linux/p{i}": rnd.randint(1, 6) for i in range(rnd.randint(1, 6))}
    sched = Schedule(platforms, engines)
    ran: list[tuple[str, str]] = []
    for _ in range(200):
        if sched.finished:
            break
        for e in engines:
            attempt = sched.take(e)
            if attempt is not None:
                assert (attempt.platform, e) not in ran and attempt.number <= MAX_ATTEMPTS
                ran.append((attempt.platform, e))
        if not sched.running:
            break
        engine = rnd.choice(sorted(sched.running))
        attempt = Attempt(sched.running[engine].platform, engine, 0)
        roll = rnd.random()
        if roll < 0.6:
            sched.succeeded(attempt)
        else:
            sched.failed(attempt, "boom", gone=roll > 0.8)
        assert len(sched.running) <= len(engines)
    assert sched.finished
    if sched.failure is None:
        assert set(sched.done) == set(platforms)
    else:
        assert any(p in sched.failure.message for p in platforms)


def test_files_the_build_wrote_go_into_the_tree_never_through_a_symlink_out(tmp_path):
    """What a build on an engine wrote in its tree (code generation) lands at the same path here; a path
    whose directory is a symlink leading out of the tree is refused and nothing is written there."""
    from common.errors import KBError
    from engines.fanout import into_tree

    root, changed, outside = tmp_path / "tree", tmp_path / "tree/_output/kbuild/changed", tmp_path / "outside"
    (changed / "pkg/generated/openapi").mkdir(parents=True)
    (changed / "pkg/generated/openapi/zz_generated.openapi.go").write_text("package openapi\n")
    (root / "pkg/generated/openapi").mkdir(parents=True, exist_ok=True)
    (root / "pkg/generated/openapi/zz_generated.openapi.go").write_text("old\n")
    assert into_tree(changed, root) == ["pkg/generated/openapi/zz_generated.openapi.go"]
    assert (root / "pkg/generated/openapi/zz_generated.openapi.go").read_text() == "package openapi\n"
    assert not changed.exists()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (changed / "link").mkdir(parents=True)
    (changed / "link/evil.go").write_text("x")
    with pytest.raises(KBError) as err:
        into_tree(changed, root)
    assert "link/evil.go" in err.value.message and list(outside.iterdir()) == []
