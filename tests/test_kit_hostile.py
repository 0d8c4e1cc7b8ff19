"""Hostile kits (issue 19, cases 1, 7, 8 and the `kit --save` half of 10): never a write outside the
target, never a hang, always one line.

The kits are built here, tiny and self-consistent (tests/_support/kits.py: the real install.sh, the
sample tree's files, toy go and kbuild parts, a manifest whose sha256 and sizes match): what an
attacker would send. Each refusal is checked for the exit code, one ERROR line naming the member or
field, a time bound, and every file around the destination byte-identical (the destination as it was,
no staging directory left). A hypothesis property test then draws hostile tars from a grammar and
extracts them in-process through kbuild's own member check.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.archive import ArchiveError
from tests._support.faults import snapshot
from tests._support.kits import (
    Entry,
    base_parts,
    realpath_overflow_payload,
    sparse_kit,
    tar_bytes,
    write_kit,
)
from tests.conftest import REPO, require

TIME_BOUND = 20.0
VICTIM = b"the user's file, never to change\n"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from workspace.sample import materialize

    return base_parts(materialize(tmp_path_factory.mktemp("sample") / "tree", "gopath"))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """tmp_path holds: victim (a file the kit must never touch), dest (an empty directory)."""
    (tmp_path / "victim").write_bytes(VICTIM)
    (tmp_path / "dest").mkdir()
    return tmp_path


def run(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"})
    return proc, time.monotonic() - start


def inv_kit(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    return run([shutil.which("inv") or "inv", "--search-root", str(REPO), "kit", *args])


def load_both(kit: Path, work: Path) -> Iterator[tuple[str, subprocess.CompletedProcess[str], float]]:
    """`inv kit --load`, then the kit's own install.sh (this kbuild's: the kit was written with it);
    the caller checks (and resets) between the two."""
    dest = work / "dest"
    script = Path(tempfile.mkdtemp(prefix="kbuild-installer-")) / "install.sh"  # not beside DIR: snapshotted
    with tarfile.open(kit) as tf:
        member = tf.getmember("install.sh")
        data = tf.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
    script.write_bytes(data)
    yield ("inv", *inv_kit("--load", str(kit), "--dest", str(dest), "--no-images"))
    yield ("install.sh", *run(["sh", str(script), str(kit), str(dest), "--no-images"]))
    shutil.rmtree(script.parent)


def refused(proc: subprocess.CompletedProcess[str], seconds: float, *needles: str) -> str:
    """Non-zero, no traceback, exactly one ERROR line (naming each needle), no escape byte, in time."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out and "\x1b" not in out, out
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert seconds < TIME_BOUND, f"{seconds:.1f}s: {errors[0]}"
    return errors[0]


def untouched(work: Path, before: dict[str, str]) -> None:
    """Everything around DIR as it was: the victim, the kit, DIR empty, no staging directory left."""
    after = snapshot(work)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:10]
    assert (work / "victim").read_bytes() == VICTIM and list((work / "dest").iterdir()) == []


def test_a_tiny_kit_loads(parts, work):
    """The baseline: these kits are valid, so each refusal below is the hostile piece's doing."""
    kit = write_kit(work / "k.kit", parts)
    for how, proc, seconds in load_both(kit, work):
        assert proc.returncode == 0, (how, proc.stderr)
        assert (work / "dest/kubernetes/hack/lib/version.sh").is_file()
        assert os.readlink(work / "dest/kubernetes/vendor/k8s.io/client-go") == "../../staging/src/k8s.io/client-go"
        assert (work / "dest/go/bin/gofmt").stat().st_mode & 0o777 == 0o755
        assert seconds < TIME_BOUND
        shutil.rmtree(work / "dest")
        (work / "dest").mkdir()


# --- case 1: a crafted kit writes outside --dest ---------------------------------------------------


def _tarfile_is_fooled(tmp: Path) -> bool:
    """The payload is real: tarfile's own `data` filter, on this Python, lets it overwrite a file
    outside (3.11.7: yes; fixed in 3.11.13). Run in a scratch directory."""
    outer = tmp / "proof"
    into = outer / "x"
    into.mkdir(parents=True)
    (outer / "victim").write_bytes(VICTIM)
    data = tar_bytes(realpath_overflow_payload(len(str(into)), up=1))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(into, filter="data")
    except (tarfile.TarError, OSError):
        return False
    finally:
        fooled = (outer / "victim").read_bytes() != VICTIM or (outer / "newfile").exists()
        shutil.rmtree(outer)
    return fooled


@pytest.mark.parametrize("part", ["kbuild", "source-tree"])
def test_case1_cve_2025_4517_payload_writes_nothing_outside(parts, work, part):
    if part == "kbuild":  # once is enough: the payload does escape tarfile's filter here
        fooled = _tarfile_is_fooled(work)
        assert fooled or sys.version_info >= (3, 11, 13), "the payload should fool tarfile 3.11.7's data filter"
    # Extracted by the old loader into DIR/../.DIR.kit-partial-PID/<part dir>: escape = 2 levels above.
    root_len = len(str(work / ".dest.kit-partial-1234567" / "kbuild"))
    kit = write_kit(work / "k.kit", {**parts, part: tar_bytes(realpath_overflow_payload(root_len, up=2), gz=True)})
    before = snapshot(work)
    for how, proc, seconds in load_both(kit, work):
        line = refused(proc, seconds, f"part {part}", "member ")
        assert "longer than" in line or "passes through" in line, (how, line)
        untouched(work, before)
    assert not (work / "newfile").exists()


# The classic ways out, each in a part of an otherwise valid kit: (entries, words of the rule).
CLASSIC = {
    "dotdot": ([Entry("../victim", data=b"x")], "'..'"),
    "absolute": ([Entry("/tmp/kbuild-hostile-abs", data=b"x")], "absolute"),
    "symlink-out-then-through": ([Entry("up", "symlink", target="../../.."), Entry("up/victim", data=b"x")],
                                 "outside"),
    "symlink-inside-then-through": ([Entry("d", "dir"), Entry("l", "symlink", target="d"),
                                     Entry("l/f", data=b"x")], "passes through"),
    "symlink-chain-out": ([Entry("a", "dir"), Entry("a/b", "dir"), Entry("a/b/x", "symlink", target="../../y"),
                           Entry("y", "symlink", target="a"), Entry("z", "symlink", target="a/b/x/../..")],
                          "outside"),
    "absolute-link": ([Entry("etc", "symlink", target="/etc")], "absolute"),
    "hardlink": ([Entry("h", "hardlink", target="../../victim")], "hard link"),
    "fifo": ([Entry("p", "fifo")], "FIFO"),
    "device": ([Entry("null", "chr")], "device"),
    "duplicate": ([Entry("f", data=b"1"), Entry("f", data=b"2")], "twice"),
}


@pytest.mark.parametrize("case", sorted(CLASSIC))
def test_case1_classic_escapes_are_refused_naming_the_member(parts, work, case):
    entries, rule = CLASSIC[case]
    kit = write_kit(work / "k.kit", {**parts, "kbuild": tar_bytes(entries, gz=True)})
    before = snapshot(work)
    proc, seconds = inv_kit("--load", str(kit), "--dest", str(work / "dest"), "--no-images")
    refused(proc, seconds, "part kbuild", "member ", rule)
    untouched(work, before)
    assert not Path("/tmp/kbuild-hostile-abs").exists()


# --- case 7: sizes that lie, sizes that are huge -----------------------------------------------------


def test_case7_a_sparse_kit_declaring_a_terabyte_part_is_refused_at_once(parts, work, tmp_path_factory):
    kit = sparse_kit(tmp_path_factory.mktemp("sparse") / "k.kit", parts, "go", 10 ** 12)  # not snapshotted
    assert kit.stat().st_size > 10 ** 12 and kit.stat().st_blocks * 512 < 10 ** 7  # a hole, not a TB on disk
    before = snapshot(work)
    for _how, proc, seconds in load_both(kit, work):
        refused(proc, seconds, "--dest", "free")  # the parts do not fit: nothing is hashed
        untouched(work, before)
    listed, seconds = inv_kit("--list", str(kit))
    assert listed.returncode == 0 and seconds < TIME_BOUND and "go" in listed.stdout, listed.stderr
    kit.unlink()


def test_case7_a_terabyte_manifest_is_refused_without_reading_it(parts, work, tmp_path_factory):
    kit = sparse_kit(tmp_path_factory.mktemp("sparse") / "k.kit", parts, "manifest", 10 ** 12)
    before = snapshot(work)
    for _how, proc, seconds in load_both(kit, work):
        refused(proc, seconds, "manifest.json", str(10 ** 12))
        untouched(work, before)
    proc, seconds = inv_kit("--list", str(kit))
    refused(proc, seconds, "manifest.json")
    kit.unlink()


def test_case7_a_header_that_disagrees_with_the_manifest_is_refused_before_hashing(parts, work):
    def lie(data: dict) -> None:
        for p in data["parts"]:
            if p["name"] == "go":
                p["size"] += 1
    kit = write_kit(work / "k.kit", parts, edit=lie)
    before = snapshot(work)
    for _how, proc, seconds in load_both(kit, work):
        refused(proc, seconds, "part go", "the manifest says")
        assert "verify" not in proc.stderr  # refused before any part was read
        untouched(work, before)
    # Inside a part: a member whose header says more than its data (cut off) or more than the disk.
    for entries, rule in (([Entry("f", data=b"abc", size=10 ** 6)], "unexpected end"),
                          ([Entry("f", data=b"abc", size=10 ** 15)], "more than the")):
        kit = write_kit(work / "k.kit", {**parts, "kbuild": tar_bytes(entries, gz=True)})
        before = snapshot(work)
        proc, seconds = inv_kit("--load", str(kit), "--dest", str(work / "dest"), "--no-images")
        refused(proc, seconds, "part kbuild", rule)
        untouched(work, before)


# --- case 8: symlinked members, fields of the wrong type, escape sequences ------------------------


@pytest.mark.parametrize("member", ["parts/go.tar.gz", "manifest.json"])
def test_case8_a_member_stored_as_a_symlink_is_one_line(parts, work, member):
    kit = write_kit(work / "k.kit", parts, replace={member: Entry(member, "symlink", target="install.sh")})
    before = snapshot(work)
    for _how, proc, seconds in load_both(kit, work):
        refused(proc, seconds, repr(member), "symbolic link")
        untouched(work, before)
    proc, seconds = inv_kit("--list", str(kit))
    refused(proc, seconds, repr(member), "symbolic link")


WRONG = {
    "size-a-string": (lambda d: d["parts"][1].update(size="big"), "parts[1].size"),
    "size-negative": (lambda d: d["parts"][1].update(size=-1), "parts[1].size"),
    "size-a-bool": (lambda d: d["parts"][1].update(size=True), "parts[1].size"),
    "stamp-int": (lambda d: d["stamp"].update(gitCommit=1234), "stamp.gitCommit"),
    "stamp-list": (lambda d: d.update(stamp=[1]), "stamp"),
    "sha-short": (lambda d: d["parts"][0].update(sha256="abc"), "parts[0].sha256"),
    "path-escape": (lambda d: d["parts"][2].update(path="../../etc/passwd"), "parts[2].path"),
    "name-unknown": (lambda d: d["parts"][2].update(name="evil"), "parts[2].name"),
    "mode-odd": (lambda d: d.update(mode="native; rm -rf /"), "mode"),
    "images-dict": (lambda d: d.update(images={"a": 1}), "images"),
    "escape-in-created": (lambda d: d.update(created="\x1b]0;owned\x07\x1b[2J"), "created"),
    "parts-missing": (lambda d: d.pop("parts"), "parts"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_case8_manifest_fields_of_the_wrong_shape_are_one_line(parts, work, case):
    edit, field = WRONG[case]
    kit = write_kit(work / "k.kit", parts, edit=edit)
    proc, seconds = inv_kit("--list", str(kit))
    refused(proc, seconds, f"manifest: {field}:")
    before = snapshot(work)
    proc, seconds = inv_kit("--load", str(kit), "--dest", str(work / "dest"), "--no-images")
    refused(proc, seconds, f"manifest: {field}:")
    untouched(work, before)


def test_case8_nothing_from_a_manifest_reaches_the_terminal_raw(parts, work):
    """Escape sequences anywhere in the manifest: refused by the schema, the line shows them escaped;
    and describe() itself never prints one (a manifest made in-process, past the schema)."""
    import dataclasses

    from kit.load import describe
    from kit.plan import ImageRecord, Manifest

    kit = write_kit(work / "k.kit", parts, edit=lambda d: d["stamp"].update(gitVersion="v1\x1b[31mRED\x9b"))
    proc, seconds = inv_kit("--list", str(kit))
    line = refused(proc, seconds, "stamp.gitVersion", "control characters", "\\x1b[31mRED")
    assert "\x9b" not in line
    good = Manifest.from_json(_manifest_of(write_kit(work / "k2.kit", parts)))
    evil = dataclasses.replace(good, created="\x1b]0;t\x07", images=(ImageRecord("a\x1b[2Jb", "sha256:x"),),
                               stamp={"gitVersion": "\r\x1b[Kv9"})
    text = "\n".join(describe(evil))
    assert not any(ch in text for ch in "\x1b\x07\r") and "\\x1b[2J" in text


def _manifest_of(kit: Path) -> str:
    with tarfile.open(kit) as tf:
        return tf.extractfile("manifest.json").read().decode()  # type: ignore[union-attr]


# --- case 10 (the kit --save half): disk full names the path and the step -------------------------


@pytest.mark.go
def test_case10_disk_full_during_save_names_the_path_and_the_step(tmp_path, go_toolchain):
    from workspace.sample import materialize

    require(os.geteuid() == 0 and shutil.which("mount") is not None, "root and mount(8) for a small tmpfs")
    tree = materialize(tmp_path / "tree", "gopath")  # no .git: the source goes as files (no bundle)
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)
    try:
        kit = full / "k.kit"
        proc, seconds = inv_kit("--save", str(kit), "--kube-root", str(tree), "--no-images")
        line = refused(proc, seconds, f"cannot write {kit} while saving part go", "No space left on device")
        assert "no path given" not in line and "TIP free some disk space" in proc.stderr
        assert list(full.iterdir()) == []  # no kit, no partial file, no scratch directory
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)


def test_save_writes_no_hard_links_since_the_loader_refuses_them(tmp_path):
    """A tree with a file under two names (nlink 2) goes into a part as two regular files."""
    from kit.save import _Sink, write_tar
    from kit.unpack import _extract_all

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "one").write_bytes(b"same inode\n")
    os.link(tree / "one", tree / "two")
    out = io.BytesIO()
    write_tar(_Sink(out, lambda n: None), [(tree, "t")], compress=False)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert {m.name: m.type for m in tf.getmembers() if m.name != "t"} == {
            "t/one": tarfile.REGTYPE, "t/two": tarfile.REGTYPE}
    (tmp_path / "x").mkdir()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r|") as tf:
        _extract_all(tf, tmp_path / "x")
    assert (tmp_path / "x/t/two").read_bytes() == b"same inode\n"


# --- the property: hostile tars from a grammar, extracted in-process ---------------------------------

_COMPONENT = st.one_of(
    st.sampled_from(["a", "b", "..", ".", "", "d" * 255, "e" * 256, "é", "\x1b[2J", "a\nb", "x" * 100]),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=8))
_NAME = st.one_of(st.lists(_COMPONENT, min_size=1, max_size=5).map("/".join),
                  st.lists(_COMPONENT, min_size=1, max_size=3).map(lambda c: "/" + "/".join(c)),
                  st.sampled_from(["victim", "../victim", "../../outside/new", "l/x", "l/../../victim"]))
_TARGET = st.one_of(_NAME, st.sampled_from(["..", "../..", "/", "/etc", ".", "l", "l/..", "a/../.."]))
_ENTRY = st.builds(
    Entry, name=_NAME, kind=st.sampled_from(["file", "file", "dir", "symlink", "symlink", "hardlink", "fifo",
                                             "chr", "blk"]),
    data=st.binary(max_size=64), target=_TARGET, mode=st.sampled_from([0o644, 0o755, 0o4755, 0o000, 0o777]),
    size=st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 20), st.just(10 ** 13)))


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=st.lists(_ENTRY, min_size=1, max_size=8))
def test_property_hostile_tars_never_write_outside(tmp_path, entries):
    from kit.unpack import _extract_all

    case = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    root = case / "stage" / "root"
    root.mkdir(parents=True)
    (case / "victim").write_bytes(VICTIM)
    (case / "outside").mkdir()
    (case / "stage" / "sibling").write_bytes(VICTIM)
    before = snapshot(case)
    absolute = {e.name for e in entries if e.name.startswith("/")}  # outside everything: must not appear
    there = {n for n in absolute if os.path.lexists(n)}
    try:
        data = tar_bytes(entries)
    except (ValueError, UnicodeError, OverflowError):
        return  # a name tarfile itself cannot write: not an archive anyone can send
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
            _extract_all(tf, root, budget=1 << 30)
    except ArchiveError as exc:
        message = str(exc)
        assert "\n" not in message and "\x1b" not in message and message.startswith("member "), message
    except tarfile.TarError as exc:  # the tar itself unreadable (tarfile's own reading, before any write)
        assert "\n" not in str(exc)
    else:
        for dirpath, dirnames, filenames in os.walk(root):  # success: every link made resolves inside
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if path.is_symlink():
                    assert os.path.realpath(path).startswith(str(root.resolve())), (path, os.readlink(path))
    assert {n for n in absolute if os.path.lexists(n)} == there
    after = {k: v for k, v in snapshot(case).items() if not k.startswith("stage/root/")}
    assert after == before, sorted(set(after.items()) ^ set(before.items()))
    shutil.rmtree(case)
