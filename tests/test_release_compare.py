"""build.release.compare: two small release-tars directories built with tarfile, compared for real.

The kube-apiserver in them is a #!/bin/sh script answering --version and --version=raw,
so the binary checks run real processes; nothing is mocked.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from build.release.compare import Comparison, compare_releases, main, render
from common.errors import UsageError
from tests.conftest import REPO

SERVER = "kubernetes-server-linux-amd64.tar.gz"
CLIENT = "kubernetes-client-linux-amd64.tar.gz"
NODE_ARM = "kubernetes-node-linux-arm64.tar.gz"
TEST = "kubernetes-test-linux-amd64.tar.gz"
FULL = "kubernetes.tar.gz"
APISERVER = "kubernetes/server/bin/kube-apiserver"
IMAGE = "kubernetes/server/bin/kube-apiserver.tar"
DOCKER_TAG = "kubernetes/server/bin/kube-apiserver.docker_tag"
LINK = "kubernetes/server/bin/apiserver"


@dataclass
class Member:
    name: str
    kind: str = "file"  # file, dir, symlink
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def version_script(git: str = "v1.20.2", date: str = "2021-02-18T16:03:00Z", *, raw: str = "json",
                   log: Path | None = None) -> bytes:
    """A stand-in Kubernetes binary: --version and --version=raw like verflag's."""
    if raw == "json":
        raw_line = json.dumps({"major": "1", "minor": "20", "gitVersion": git, "buildDate": date})
    else:  # Go's %#v of version.Info, which is what real Kubernetes binaries print
        raw_line = f'version.Info{{Major:"1", Minor:"20", GitVersion:"{git}", BuildDate:"{date}"}}'
    record = f'echo "$1" >> {log}\n' if log else ""
    return (f"#!/bin/sh\n{record}case \"$1\" in\n"
            f"  --version) echo 'Kubernetes {git}' ;;\n"
            f"  --version=raw) echo '{raw_line}' ;;\n"
            "  *) echo \"unknown flag $1\" >&2; exit 2 ;;\nesac\n").encode()


NO_VERSION = b"#!/bin/sh\necho 'flag provided but not defined: -version' >&2\nexit 2\n"


def docker_save(tags: list[str], *, manifest: bool = True) -> bytes:
    """A docker-save-like archive: a layer, then manifest.json (or only the legacy repositories)."""
    files: dict[str, bytes] = {"abc123/layer.tar": b"\0" * 1024, "abc123.json": b"{}"}
    if manifest:
        files["manifest.json"] = json.dumps(
            [{"Config": "abc123.json", "RepoTags": tags, "Layers": ["abc123/layer.tar"]}]).encode()
    repos: dict[str, dict[str, str]] = {}
    for tag in tags:
        repo, _, version = tag.rpartition(":")
        repos.setdefault(repo, {})[version] = "abc123"
    files["repositories"] = json.dumps(repos).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def release(*, git: str = "v1.20.2", date: str = "2021-02-18T16:03:00Z",
            tags: tuple[str, ...] = ("k8s.gcr.io/kube-apiserver:v1.20.2",), raw: str = "json",
            log: Path | None = None) -> dict[str, list[Member]]:
    """The layout of a small release: tarball name -> members, in archive order."""
    apiserver = version_script(git, date, raw=raw, log=log)
    kubectl = version_script(git, date, raw=raw)
    return {
        FULL: [Member("kubernetes", "dir", mode=0o755), Member("kubernetes/version", data=git.encode()),
               Member("kubernetes/cluster", "dir", mode=0o755),
               Member("kubernetes/cluster/get-kube.sh", data=b"#!/bin/sh\n", mode=0o755)],
        SERVER: [Member("kubernetes", "dir", mode=0o755), Member("kubernetes/server", "dir", mode=0o755),
                 Member("kubernetes/server/bin", "dir", mode=0o755),
                 Member(APISERVER, data=apiserver, mode=0o755),
                 Member(IMAGE, data=docker_save(list(tags))),
                 Member(DOCKER_TAG, data=f"{git}\n".encode()),
                 Member(LINK, "symlink", target="kube-apiserver"),
                 Member("kubernetes/server/bin/kubectl", data=kubectl, mode=0o755),
                 Member("kubernetes/server/bin/README", data=b"not a binary: no exec bit")],
        CLIENT: [Member("kubernetes", "dir", mode=0o755), Member("kubernetes/client/bin", "dir", mode=0o755),
                 Member("kubernetes/client/bin/kubectl", data=kubectl, mode=0o755)],
        # Not the host platform: never run, so its (side-specific) version cannot matter.
        NODE_ARM: [Member("kubernetes", "dir", mode=0o755),
                   Member("kubernetes/node/bin/kubelet", data=version_script(git, date), mode=0o755)],
        TEST: [Member("kubernetes", "dir", mode=0o755),
               Member("kubernetes/test/bin/e2e.test", data=NO_VERSION, mode=0o755)],
    }


def write_tarball(path: Path, members: list[Member]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            info.mtime = 1_600_000_000
            if m.kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif m.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = m.target
                info.mode = 0o777
                tf.addfile(info)
            else:
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))


def write_release(directory: Path, layout: dict[str, list[Member]]) -> Path:
    directory.mkdir(parents=True)
    for name, members in layout.items():
        write_tarball(directory / name, members)
    return directory


def replace(layout: dict[str, list[Member]], tarball: str, name: str, **changes: object) -> None:
    """Change one member of a layout in place (the member must exist)."""
    members = layout[tarball]
    index = next(i for i, m in enumerate(members) if m.name == name)
    members[index] = Member(**{**members[index].__dict__, **changes})  # type: ignore[arg-type]


def drop(layout: dict[str, list[Member]], tarball: str, name: str) -> None:
    before = len(layout[tarball])
    layout[tarball] = [m for m in layout[tarball] if m.name != name]
    assert len(layout[tarball]) == before - 1


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    return write_release(tmp_path / "reference", release())


def candidate_of(tmp_path: Path, layout: dict[str, list[Member]]) -> Path:
    return write_release(tmp_path / "candidate", layout)


def differences_about(result: Comparison, *words: str) -> list[str]:
    return [d for d in result.differences if all(w in d for w in words)]


# --- Same ---------------------------------------------------------------------------------------


def test_identical_releases_are_the_same_and_counted(tmp_path: Path, reference: Path) -> None:
    candidate = candidate_of(tmp_path, release())
    result = compare_releases(reference, candidate)
    assert result.ok, result.differences
    assert result.differences == []
    members = sum(len(ms) for ms in release().values())
    # Binaries: server kube-apiserver + kubectl, client kubectl, test e2e.test (the arm64 kubelet is not run).
    assert result.counts == {"tarballs": 5, "members": members, "binaries": 4, "images": 1}
    assert render(result) == [f"same: 5 tarballs, {members} members, 4 binaries, 1 image"]


def test_builds_differing_only_in_mtime_and_owner_are_the_same(tmp_path: Path, reference: Path) -> None:
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for name, members in release().items():
        with tarfile.open(candidate / name, "w:gz") as tf:
            for m in members:
                info = tarfile.TarInfo(m.name)
                info.mode, info.mtime, info.uid, info.uname = m.mode, 1_700_000_000, 1000, "builder"
                if m.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tf.addfile(info)
                elif m.kind == "symlink":
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, m.target, 0o777
                    tf.addfile(info)
                else:
                    info.size = len(m.data)
                    tf.addfile(info, io.BytesIO(m.data))
    result = compare_releases(reference, candidate)
    assert result.ok, result.differences


def test_identical_binary_bytes_are_run_once(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    ref = write_release(tmp_path / "ref", release(log=log))
    cand = write_release(tmp_path / "cand", release(log=log))
    result = compare_releases(ref, cand)
    assert result.ok, result.differences
    # The same kube-apiserver bytes on both sides: one --version and one --version=raw in all.
    assert log.read_text().split() == ["--version", "--version=raw"]


# --- Tarballs and members -----------------------------------------------------------------------


def test_a_tarball_missing_from_the_candidate(tmp_path: Path, reference: Path) -> None:
    layout = release()
    del layout[CLIENT]
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert not result.ok
    assert result.differences == [f"tarball only in reference: {CLIENT}"]
    assert result.counts["tarballs"] == 4


def test_a_member_missing_from_the_candidate(tmp_path: Path, reference: Path) -> None:
    layout = release()
    drop(layout, FULL, "kubernetes/cluster/get-kube.sh")
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [f"{FULL}: member only in reference: kubernetes/cluster/get-kube.sh"]


def test_many_extra_members_are_listed_up_to_ten(tmp_path: Path, reference: Path) -> None:
    layout = release()
    layout[FULL] += [Member(f"kubernetes/extra/file-{i:02d}") for i in range(15)]
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    only = differences_about(result, FULL, "only in candidate")
    assert len(only) == 11
    assert only[0].endswith("kubernetes/extra/file-00")
    assert only[-1] == f"{FULL}: member only in candidate: ... and 5 more members only in candidate"


def test_a_mode_difference_is_shown_in_octal(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, FULL, "kubernetes/cluster/get-kube.sh", mode=0o644)
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [
        f"{FULL}: kubernetes/cluster/get-kube.sh: mode 0755 (reference) vs 0644 (candidate)"]


def test_a_type_difference(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, FULL, "kubernetes/cluster", kind="file", mode=0o644)
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [f"{FULL}: kubernetes/cluster: type dir (reference) vs file (candidate)"]


def test_a_symlink_target_difference(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, LINK, target="kubectl")
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [
        f"{SERVER}: {LINK}: symlink target 'kube-apiserver' (reference) vs 'kubectl' (candidate)"]


# --- Binaries -----------------------------------------------------------------------------------


def test_a_binary_version_difference(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, APISERVER, data=version_script("v1.20.3"))
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert not result.ok
    assert differences_about(result, APISERVER, "--version ", "'Kubernetes v1.20.2'", "'Kubernetes v1.20.3'")
    assert differences_about(result, APISERVER, "--version=raw gitVersion", "'v1.20.2'", "'v1.20.3'")
    assert all(APISERVER in d for d in result.differences)  # the kubectls did not change


@pytest.mark.parametrize("raw", ["json", "go"])
def test_a_build_date_difference_is_a_note(tmp_path: Path, reference: Path, raw: str) -> None:
    ref = write_release(tmp_path / "ref", release(raw=raw))
    cand = write_release(tmp_path / "cand", release(raw=raw, date="2026-12-01T00:00:00Z"))
    result = compare_releases(ref, cand)
    assert result.ok, result.differences
    date_notes = [n for n in result.notes if "buildDate" in n or "BuildDate" in n]
    assert len(date_notes) == 3  # server kube-apiserver, server kubectl, client kubectl
    assert any(APISERVER in n and "2026-12-01" in n for n in date_notes)
    assert "note " + date_notes[0] in render(result)


def test_go_syntax_raw_version_difference(tmp_path: Path) -> None:
    ref = write_release(tmp_path / "ref", release(raw="go"))
    layout = release(raw="go")
    replace(layout, SERVER, APISERVER, data=version_script("v1.20.3", raw="go"))
    result = compare_releases(ref, candidate_of(tmp_path, layout))
    assert differences_about(result, APISERVER, "--version=raw GitVersion", "'v1.20.3'")


def test_no_run_skips_binaries(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, APISERVER, data=version_script("v1.20.3"))
    result = compare_releases(reference, candidate_of(tmp_path, layout), run_binaries=False)
    assert result.ok, result.differences
    assert result.counts["binaries"] == 0


def test_only_host_platform_binaries_run(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, NODE_ARM, "kubernetes/node/bin/kubelet", data=version_script("v9.9.9"))
    assert compare_releases(reference, candidate_of(tmp_path, layout)).ok
    # ...but when arm64 is the host platform, it is run and differs.
    result = compare_releases(reference, tmp_path / "candidate", host_platform="linux/arm64")
    assert differences_about(result, NODE_ARM, "kubelet", "v9.9.9")
    assert result.counts["binaries"] == 1


def test_a_binary_that_runs_on_neither_side_is_a_note(tmp_path: Path) -> None:
    layout = release()
    replace(layout, SERVER, APISERVER, data=b"\x7fELF not really an executable")
    ref = write_release(tmp_path / "ref", layout)
    cand = write_release(tmp_path / "cand", layout)
    result = compare_releases(ref, cand)
    assert result.ok, result.differences
    assert any(APISERVER in n and "did not run on either side" in n for n in result.notes)


def test_a_timeout_counts_as_did_not_run(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, APISERVER, data=b"#!/bin/sh\nsleep 30\n")
    candidate = candidate_of(tmp_path, layout)
    started = time.monotonic()
    result = compare_releases(reference, candidate, timeout=0.5)
    assert differences_about(result, APISERVER, "--version ", "did not run (timed out after 0.5s)")
    # The script's child (sleep) holds stdout open: only killing the whole group returns promptly.
    assert time.monotonic() - started < 10


# --- Images -------------------------------------------------------------------------------------


def test_an_image_repotags_difference(tmp_path: Path, reference: Path) -> None:
    layout = release(tags=("k8s.gcr.io/kube-apiserver-amd64:v1.20.2",))
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [
        (f"{SERVER}: {IMAGE}: RepoTags ['k8s.gcr.io/kube-apiserver:v1.20.2'] (reference) vs "
         "['k8s.gcr.io/kube-apiserver-amd64:v1.20.2'] (candidate)")]
    assert result.counts["images"] == 1


def test_legacy_repositories_file_is_read_without_manifest(tmp_path: Path) -> None:
    ref_layout, cand_layout = release(), release()
    replace(ref_layout, SERVER, IMAGE, data=docker_save(["k8s.gcr.io/kube-apiserver:v1.20.2"], manifest=False))
    replace(cand_layout, SERVER, IMAGE, data=docker_save(["k8s.gcr.io/kube-apiserver:v1.20.3"], manifest=False))
    result = compare_releases(write_release(tmp_path / "ref", ref_layout), candidate_of(tmp_path, cand_layout))
    assert differences_about(result, IMAGE, "RepoTags", "'k8s.gcr.io/kube-apiserver:v1.20.3'")


def test_an_unreadable_image_tar_is_a_difference(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, IMAGE, data=b"this is not a tar archive at all" * 40)
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert differences_about(result, IMAGE, "unreadable image in candidate")
    assert result.counts["tarballs"] == 5  # the rest of the server tarball was still compared


def test_a_docker_tag_difference(tmp_path: Path, reference: Path) -> None:
    layout = release()
    replace(layout, SERVER, DOCKER_TAG, data=b"v1.20.2-dirty\n")
    result = compare_releases(reference, candidate_of(tmp_path, layout))
    assert result.differences == [
        f"{SERVER}: {DOCKER_TAG}: content 'v1.20.2' (reference) vs 'v1.20.2-dirty' (candidate)"]


# --- Damaged input and usage errors -------------------------------------------------------------


@pytest.mark.parametrize("damage", ["not-gzip", "truncated"])
def test_a_corrupt_tarball_is_a_difference_not_an_exception(tmp_path: Path, reference: Path, damage: str) -> None:
    candidate = candidate_of(tmp_path, release())
    bad = candidate / FULL
    if damage == "not-gzip":
        bad.write_bytes(b"definitely not gzip")
    else:  # a valid gzip header, the stream cut short
        data = gzip.compress(b"x" * 100_000)
        bad.write_bytes(data[: len(data) // 2])
    result = compare_releases(reference, candidate)
    assert not result.ok
    assert len(result.differences) == 1
    assert result.differences[0].startswith(f"{FULL}: unreadable in candidate ({bad}): ")
    assert result.counts["tarballs"] == 4


def test_a_missing_directory_is_a_usage_error(tmp_path: Path, reference: Path) -> None:
    with pytest.raises(UsageError) as caught:
        compare_releases(reference, tmp_path / "nowhere")
    assert "nowhere" in caught.value.message
    assert caught.value.code == 2
    assert caught.value.hint and "release-tars" in caught.value.hint


def test_a_directory_without_tarballs_is_a_usage_error(tmp_path: Path, reference: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "SHA256SUMS").write_text("")
    with pytest.raises(UsageError, match="no \\*.tar.gz"):
        compare_releases(empty, reference)


def test_a_bad_host_platform_is_a_usage_error(tmp_path: Path, reference: Path) -> None:
    with pytest.raises(UsageError, match="os/arch"):
        compare_releases(reference, reference, host_platform="amd64")


# --- Command line -------------------------------------------------------------------------------


def test_main_exit_codes(tmp_path: Path, reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = candidate_of(tmp_path, release())
    assert main([str(reference), str(same)]) == 0
    assert capsys.readouterr().out.startswith("same: 5 tarballs")

    other = write_release(tmp_path / "other", release(git="v1.20.3"))
    assert main([str(reference), str(other)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("DIFF ")
    assert out[-1].startswith("different: ")

    assert main([str(reference), str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ERROR candidate ")
    assert "\nTIP " in captured.err
    assert "Traceback" not in captured.err


def test_main_bad_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["only-one"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR ")
    assert "TIP usage:" in err


def test_main_json(tmp_path: Path, reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = release()
    drop(layout, FULL, "kubernetes/version")
    candidate = candidate_of(tmp_path, layout)
    assert main([str(reference), str(candidate), "--json", "--no-run"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["differences"] == [f"{FULL}: member only in reference: kubernetes/version"]
    assert report["counts"]["binaries"] == 0
    assert report["reference"] == str(reference)


def test_runs_as_a_module(tmp_path: Path, reference: Path) -> None:
    candidate = candidate_of(tmp_path, release())
    proc = subprocess.run([sys.executable, "-m", "build.release.compare", str(reference), str(candidate), "--json"],
                          check=False, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def usage_script(seed: str, status: int = 2) -> bytes:
    """A binary without --version: it prints its usage, with a value of the moment, and fails."""
    return f"#!/bin/sh\necho 'tool usage: -seed (default {seed})'\nexit {status}\n".encode()


def test_usage_text_of_a_binary_failing_alike_is_a_note(tmp_path: Path) -> None:
    ref_layout, cand_layout = release(), release()
    replace(ref_layout, SERVER, APISERVER, data=usage_script("1764600000"))
    replace(cand_layout, SERVER, APISERVER, data=usage_script("1764600042"))
    ref = write_release(tmp_path / "ref", ref_layout)
    result = compare_releases(ref, write_release(tmp_path / "cand", cand_layout))
    assert result.ok, result.differences
    assert any(APISERVER in n and "1764600042" in n for n in result.notes)
    # Failing differently (another exit status) is still a difference.
    replace(cand_layout, SERVER, APISERVER, data=usage_script("1764600042", status=3))
    result = compare_releases(ref, write_release(tmp_path / "cand3", cand_layout))
    assert differences_about(result, APISERVER, "--version", "exit 2", "exit 3")
