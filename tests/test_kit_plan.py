"""kit.plan and the kit writer, without an engine, Go or the network: the manifest, the checks made
before unpacking, the destination rules, and the tar the writer makes (read back by tarfile)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kit import plan
from kit.plan import ImageRecord, KitError, Manifest, Seen, part_for
from kit.save import KitWriter, installer_script
from kit.unpack import PlainReporter, _keep_modes


def manifest(**over: object) -> Manifest:
    parts = (part_for("installer", "a" * 64, 10), part_for("source-bundle", "b" * 64, 20),
             part_for("go", "c" * 64, 30), part_for("wheels", "d" * 64, 40))
    base = dict(parts=parts, tool_version="abc", stamp={"gitVersion": "v1.20.2"}, tree="git", mode="native",
                images=(ImageRecord("k8s.gcr.io/x:v1", "sha256:" + "e" * 64, ("reg/x@sha256:" + "f" * 64,)),),
                go_version="go1.27.3", go_minimum="go1.15.0", python="3.11", platform="linux-x86_64",
                created="2026-01-01T00:00:00Z")
    base.update(over)
    return Manifest(**base)  # type: ignore[arg-type]


def test_manifest_round_trips():
    m = manifest()
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert again.part("go") == part_for("go", "c" * 64, 30)
    assert again.size == 100
    assert json.loads(m.to_json())["images"][0]["repo_digests"] == ["reg/x@sha256:" + "f" * 64]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": 1}', '{"format": 1, "parts": [{"name": 1}]}'])
def test_garbage_manifest_is_refused_as_the_manifest(text):
    with pytest.raises(KitError) as exc:
        Manifest.from_json(text)
    assert exc.value.part == "manifest"


def test_other_format_is_refused_with_a_hint():
    data = json.loads(manifest().to_json())
    data["format"] = 99
    with pytest.raises(KitError, match="format 99") as exc:
        Manifest.from_json(json.dumps(data))
    assert exc.value.hint


def test_problems_name_the_part():
    m = manifest()
    good = [Seen(p.path, p.sha256, p.size) for p in m.parts]
    assert plan.problems(m, good) == []
    wrong_sum = [*good[:2], Seen(good[2].path, "0" * 64, good[2].size), good[3]]
    assert [p for p, _ in plan.problems(m, wrong_sum)] == ["go"]
    short = [*good[:3], Seen(good[3].path, good[3].sha256, 3)]
    (part, what), = plan.problems(m, short)
    assert part == "wheels" and "truncated" in what
    missing = good[:1]
    assert [p for p, _ in plan.problems(m, missing)] == ["source-bundle", "go", "wheels"]
    err = plan.refusal(plan.problems(m, missing))
    assert err.part == "source-bundle" and "nothing was unpacked" in err.message and "2 more" in err.message


def test_unknown_or_doubled_parts_and_no_source_are_refused():
    m = manifest(parts=(part_for("go", "c" * 64, 1), part_for("go", "c" * 64, 1)))
    with pytest.raises(KitError, match="twice"):
        plan.expected_members(m)
    with pytest.raises(KitError, match="no source"):
        plan.expected_members(manifest(parts=(part_for("go", "c" * 64, 1),)))
    bad = plan.Part("evil", "x", "../x", "0" * 64, 1)
    with pytest.raises(KitError, match="unknown part"):
        plan.expected_members(manifest(parts=(bad,)))


def test_interpreter_must_match_the_wheels():
    plan.check_interpreter(manifest(), "3.11", "linux-x86_64")
    with pytest.raises(KitError, match="Python 3.11 on linux-x86_64") as exc:
        plan.check_interpreter(manifest(), "3.12", "linux-x86_64")
    assert exc.value.part == "wheels"
    with pytest.raises(KitError):
        plan.check_interpreter(manifest(), "3.11", "linux-aarch64")


def test_destination_rules(tmp_path: Path):
    assert plan.check_dest(tmp_path / "new") is False
    (tmp_path / "empty").mkdir()
    assert plan.check_dest(tmp_path / "empty") is True
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(KitError, match="not empty"):
        plan.check_dest(tmp_path / "full")
    (tmp_path / "file").write_text("x")
    with pytest.raises(KitError, match="not a directory"):
        plan.check_dest(tmp_path / "file")
    with pytest.raises(KitError, match="parent"):
        plan.check_dest(tmp_path / "no" / "such")
    assert plan.staging_dir(tmp_path / "d", 7) == tmp_path / ".d.kit-partial-7"


def test_env_script_quotes_the_paths():
    text = plan.env_script(Path("/tmp/a dir/$x"))
    assert "export PATH='/tmp/a dir/$x/go/bin':'/tmp/a dir/$x/venv/bin':\"$PATH\"" in text
    assert "export KUBE_ROOT='/tmp/a dir/$x/kubernetes'" in text
    steps = plan.next_steps(Path("/tmp/a dir"), "native")
    assert steps[0] == ". '/tmp/a dir/env.sh'" and "inv release --mode native --quick" in steps[1]


def test_writer_streams_parts_that_tar_reads_back():
    buf = io.BytesIO()
    report = PlainReporter(io.StringIO())
    writer = KitWriter(buf, report)
    big = bytes(range(256)) * 4099  # not a multiple of 512
    with writer.part("installer", 0o755) as sink:
        sink.write(b"#!/bin/sh\n")
    with writer.part("go") as sink:
        sink.write(big[:1000])
        sink.write(big[1000:])
    with writer.part("wheels") as sink:
        pass  # an empty part is still a member
    writer.member(plan.MANIFEST, b"{}")
    writer.close()
    report.close()
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:") as tar:
        names = tar.getnames()
        assert names == ["install.sh", "parts/go.tar.gz", "parts/wheels.tar", "manifest.json"]
        assert tar.getmember("install.sh").mode == 0o755
        data = tar.extractfile("parts/go.tar.gz").read()  # type: ignore[union-attr]
    assert data == big
    go = next(p for p in writer.parts if p.name == "go")
    assert (go.size, go.sha256) == (len(big), hashlib.sha256(big).hexdigest())
    assert [p.size for p in writer.parts] == [10, len(big), 0]


def test_installer_carries_the_loader_and_runs_without_kbuild(tmp_path: Path):
    import subprocess
    import sys

    script = tmp_path / "install.sh"
    script.write_bytes(installer_script())
    assert script.read_text().startswith("#!/bin/sh\n")
    usage = subprocess.run(["sh", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    # Not a kit: one line, no traceback, and the program never imported anything of kbuild's.
    (tmp_path / "not-a-kit").write_bytes(b"x" * 2000)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = subprocess.run(["sh", str(script), str(tmp_path / "not-a-kit"), str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 1 and out.stderr.startswith("ERROR ") and "Traceback" not in out.stderr
    assert not (tmp_path / "d").exists()


def test_extraction_keeps_modes_but_not_escapes(tmp_path: Path):
    ok = tarfile.TarInfo("a/file")
    ok.mode, ok.type = 0o664, tarfile.REGTYPE
    assert _keep_modes(ok, str(tmp_path)).mode == 0o664
    setuid = tarfile.TarInfo("a/s")
    setuid.mode, setuid.type = 0o4755, tarfile.REGTYPE
    assert _keep_modes(setuid, str(tmp_path)).mode == 0o755
    out = tarfile.TarInfo("../evil")
    with pytest.raises(tarfile.FilterError):
        _keep_modes(out, str(tmp_path))
    link = tarfile.TarInfo("a/l")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(tarfile.FilterError):
        _keep_modes(link, str(tmp_path))


def test_extraction_without_filters_checks_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Pythons before 3.11.4 have no extraction filters: the same rules, applied member by member."""
    from kit.unpack import _checked_by_hand, _extract_all

    def tar_of(*members: tuple[str, bytes, str]) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data, link in members:
                info = tarfile.TarInfo(name)
                if link:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                else:
                    info.size, info.mode, info.uid = len(data), 0o4664, 1234
                tar.addfile(info, io.BytesIO(data) if not link else None)
        buf.seek(0)
        return buf

    monkeypatch.delattr(tarfile, "data_filter")
    good = tmp_path / "good"
    good.mkdir()
    with tarfile.open(fileobj=tar_of(("a/f", b"x", ""), ("a/l", b"", "f")), mode="r|") as tar:
        _extract_all(tar, good)
    assert (good / "a/f").read_bytes() == b"x" and (good / "a/f").stat().st_mode & 0o7777 == 0o664
    assert os.readlink(good / "a/l") == "f"
    for bad in (("../x", b"x", ""), ("/abs", b"x", ""), ("l", b"", "/etc/passwd"), ("d/l", b"", "../../x")):
        dest = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        dest.mkdir()
        with tarfile.open(fileobj=tar_of(bad), mode="r|") as tar, pytest.raises(tarfile.TarError):
            _extract_all(tar, dest)
        assert list(dest.iterdir()) == []
    fifo = tarfile.TarInfo("p")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(tarfile.TarError, match="device"):
        _checked_by_hand(fifo, str(tmp_path))


def test_a_kbuild_unpacked_from_a_kit_knows_its_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import kit.save

    (tmp_path / "kbuild").mkdir()
    monkeypatch.setattr(kit.save, "TOOL_ROOT", tmp_path / "kbuild")
    assert kit.save.tool_version() == "unknown"
    (tmp_path / plan.KEPT_MANIFEST).write_text(manifest(tool_version="v9-abc").to_json())
    assert kit.save.tool_version() == "v9-abc (from a kit)"
