"""Faults and bad input (issue 10): one line and no traceback, nothing lost, never "up to date" when it isn't.

One test (or one parametrized test) per case, with real files, real mounts and real `inv` processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from build import uptodate
from common.errors import KBError
from tests._support.faults import (
    assert_one_line_failure,
    changed,
    no_dac_override,
    project_copy,
    read_only,
    run_inv,
    snapshot,
)
from tests.conftest import REPO, inv, require, sigint_default

KUBECTL = ("--what=cmd/kubectl",)
BIN = "_output/local/bin/linux/amd64"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamps_of(tree: Path) -> object:
    return json.loads((tree / "_output/local/.kbuild/stamps-linux-amd64.json").read_text())


@pytest.fixture
def built(sample_repo, go_toolchain):
    """A gopath-era sample tree with cmd/kubectl built once."""
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), *KUBECTL, check=True)
    return tree


def build(tree: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return inv("build", "--kube-root", str(tree), *KUBECTL, *extra, env=env, check=True)


# --- 1. stamps of any JSON shape ----------------------------------------------------------------------

GARBAGE = ['[]', 'null', '"kubectl"', '5', 'true', '{"kubectl": "x"}', '{"kubectl": null}', '{"kubectl": []}',
           '{"kubectl": {"key": 5}}', '{"kubectl": {"key": "k", "sha256": "s", "size": true, "mtime_ns": 1}}',
           '{"kubectl": {"key": "k", "sha256": "s", "size": 1, "mtime_ns": 1, "ino": "x"}}',
           '{"a": [1, {"b": null}], "kubectl": {"nested": {"deeper": [[]]}}}', '[[[[', '', '\x00\xff',
           '[' * 100_000]


@pytest.mark.go
def test_stamps_of_any_shape_count_as_absent_and_are_rewritten(built):
    binary = built / BIN / "kubectl"
    good = sha(binary)
    stamps = built / "_output/local/.kbuild/stamps-linux-amd64.json"
    for garbage in GARBAGE:
        stamps.write_text(garbage)
        first = build(built)
        assert "1 built" in first.stderr and "Traceback" not in first.stderr, garbage[:40]
        entry = stamps_of(built)["kubectl"]  # type: ignore[index]
        assert entry["sha256"] == sha(binary) == good
        assert "0 built" in build(built).stderr, garbage[:40]  # rewritten: the next build is a no-op again


# --- 2. freshness beyond size and mtime ---------------------------------------------------------------

@pytest.mark.go
def test_binary_rewritten_with_size_and_mtime_kept_is_rebuilt(built):
    binary = built / BIN / "kubectl"
    good = binary.read_bytes()
    st = binary.stat()
    with binary.open("r+b") as fh:  # same inode, same size: what a bad disk or a botched restore leaves
        fh.write(b"\0" * 4096)
    os.utime(binary, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r`: the mtime put back
    assert binary.stat().st_size == st.st_size and binary.stat().st_mtime_ns == st.st_mtime_ns
    result = build(built)
    assert "1 built" in result.stderr
    assert binary.read_bytes() == good


@pytest.mark.go
def test_same_bytes_under_a_new_inode_or_ctime_stay_up_to_date(built):
    binary = built / BIN / "kubectl"
    st = binary.stat()
    os.utime(binary, ns=(st.st_atime_ns, st.st_mtime_ns))  # ctime changes, bytes don't
    assert "0 built" in build(built).stderr
    copy = binary.with_name(".kubectl.copy")
    copy.write_bytes(binary.read_bytes())
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(copy, binary)  # a restore: another inode, same bytes, same mtime
    assert "0 built" in build(built).stderr
    entry = stamps_of(built)["kubectl"]  # type: ignore[index]
    now = binary.stat()
    assert (entry["ino"], entry["ctime_ns"]) == (now.st_ino, now.st_ctime_ns)  # noted: the next check is cheap


def test_the_no_op_check_reads_no_binary(tmp_path, monkeypatch):
    outdir = tmp_path / "bin"
    outdir.mkdir()
    (outdir / "tool").write_bytes(b"binary")
    stamps = tmp_path / ".kbuild" / "stamps.json"
    with uptodate.locked(stamps):
        uptodate.record(stamps, outdir, {"tool": ("key", hashlib.sha256(b"binary").hexdigest())})

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"hashed {path} although nothing changed")

    monkeypatch.setattr(uptodate, "sha256_of", no_hashing)
    assert uptodate.fresh(stamps, outdir, ["tool"], "key") is not None
    assert uptodate.fresh(stamps, outdir, ["tool"], "other key") is None


# --- 3. images --save to devices, pipes, directories and unwritable places ----------------------------

class StandInEngine:
    """The two calls _save makes, writing a small tar-sized payload."""

    def image(self, name: str) -> object:
        return object()

    def save(self, names: list[str], write) -> None:
        for _ in range(4):
            write(b"x" * 65536)


SPECS = [SimpleNamespace(ref=SimpleNamespace(name="k8s.gcr.io/pause:3.4", short="k8s.gcr.io/pause:3.4"))]


def save(path: Path) -> None:
    from images.driver import _save

    _save(StandInEngine(), SPECS, path)  # type: ignore[arg-type]


def test_save_to_a_device_writes_it_and_keeps_the_node():
    before = os.stat("/dev/full")
    with pytest.raises(KBError, match="/dev/full: writing failed: No space left"):
        save(Path("/dev/full"))
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    save(Path("/dev/null"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_save_to_a_pipe_writes_it_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = tmp_path.parent / f"{tmp_path.name}-received"
    with received.open("wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
        save(fifo)
        assert reader.wait(timeout=30) == 0
    assert received.stat().st_size == 4 * 65536
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no .partial left beside it


@pytest.mark.parametrize("where,needle", [
    ("dir", "is a directory"),
    ("missing/x.tar", "does not exist"),
    ("/proc/x.tar", "/proc/x.tar"),
    ("immutable/x.tar", "not writable"),
])
def test_save_refuses_a_place_it_cannot_write(tmp_path, where, needle):
    (tmp_path / "dir").mkdir()
    (tmp_path / "immutable").mkdir()
    if where.startswith("immutable"):
        require(subprocess.run(["chattr", "+i", str(tmp_path / "immutable")]).returncode == 0,
                "chattr +i on the test file system")
    try:
        target = Path(where) if where.startswith("/") else tmp_path / where
        with pytest.raises(KBError) as exc:
            save(target)
        assert needle in exc.value.message and str(target) in exc.value.message
        assert "\n" not in exc.value.message
        assert not any(p.name.startswith(".") for p in (tmp_path / "dir").iterdir())
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "immutable")], check=False)


@pytest.mark.engine
def test_cli_save_to_devices_and_stdout(sample_repo, mkimage, docker_host, tmp_path):
    from images.resolve import resolve
    from workspace.tree import KubeTree

    tree = sample_repo("gopath")
    for spec in resolve(KubeTree(tree), {}):
        mkimage(spec.ref.name)
    full = inv("images", "--kube-root", str(tree), "--save", "/dev/full")
    assert_one_line_failure(full, "/dev/full", "No space left")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with (tmp_path / "out.tar").open("wb") as out:
        proc = subprocess.run(["inv", "--search-root", str(REPO), "images", "--kube-root", str(tree),
                               "--save", "/dev/stdout"], stdout=out, stderr=subprocess.PIPE, text=False,
                              stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    import tarfile

    with tarfile.open(tmp_path / "out.tar") as tar:
        assert "manifest.json" in tar.getnames()
    assert_one_line_failure(inv("images", "--kube-root", str(tree), "--save", str(tmp_path)), "is a directory")


# --- 4. malformed invoke.yaml -------------------------------------------------------------------------

CONFIGS = [
    ("kube: [unclosed\n", "kube"),
    ("kube: 5\n", "kube"),
    ("kube: null\n", "kube"),
    ("kube: {root: 5}\n", "kube.root"),
    ("kube: {url: [1]}\n", "kube.url"),
    ("images: {mirrors: 5}\n", "images.mirrors"),
    ("images: {mirrors: [1, 2]}\n", "images.mirrors"),
    ("images: {layout: {a: b}}\n", "images.layout"),
    ("release: {mode: 3}\n", "release.mode"),
    ("release: [script]\n", "release"),
    ("kube:\n  root: /x\nimages:\n  mirrors: [a, b\n  layout: flat\n", "images.mirrors"),
    ("- a list\n- of things\n", "top level"),
    ("just a string\n", "top level"),
    ("kube: {root: '/x'\n", "kube"),
    ("\tkube: 1\n", ""),
]


@pytest.mark.parametrize("text,key", CONFIGS)
def test_malformed_runtime_config_is_one_line_naming_file_and_key(sample_repo, tmp_path, text, key):
    tree = sample_repo("gopath")
    config = tmp_path / "my config.yaml"
    config.write_text(text)
    for args in (["version", "--kube-root", str(tree)], ["images", "--kube-root", str(tree), "--list"]):
        line = assert_one_line_failure(inv("-f", str(config), *args), str(config), key)
        assert line.startswith("ERROR")


@pytest.mark.parametrize("text,key", [CONFIGS[0], CONFIGS[1], CONFIGS[3], CONFIGS[5], CONFIGS[11]])
def test_malformed_project_config_is_one_line(sample_repo, tmp_path, text, key):
    """The project's invoke.yaml, beside tasks.py: parsed by invoke after loading tasks.py, before any task."""
    tree = sample_repo("gopath")
    project = project_copy(tmp_path / "project")
    (project / "invoke.yaml").write_text(text)
    exe = "inv"
    proc = subprocess.run([exe, "--search-root", str(project), "version", "--kube-root", str(tree)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert_one_line_failure(proc, str(project / "invoke.yaml"), key)


def test_bad_value_in_the_user_config_names_it(sample_repo, tmp_path):
    """~/.invoke.yaml values are checked too (its YAML syntax is parsed by invoke before tasks.py loads)."""
    tree = sample_repo("gopath")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".invoke.yaml").write_text("kube: {root: 5}\n")
    proc = inv("version", "--kube-root", str(tree), env={**os.environ, "HOME": str(home)})
    assert_one_line_failure(proc, str(home / ".invoke.yaml"), "kube.root")


def test_good_config_still_works(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    config = tmp_path / "c.yaml"
    config.write_text(f"kube: {{root: '{tree}'}}\nimages: {{mirrors: [], layout: flat}}\nrelease: {{mode: native}}\n")
    assert "KUBE_GIT_VERSION='v1.20.2'" in inv("-f", str(config), "version", check=True).stdout


# --- 6. inv source --url /nonexistent -----------------------------------------------------------------

def test_source_from_a_missing_url_names_it_and_the_cause(tmp_path):
    dest = tmp_path / "kubernetes"
    proc = inv("source", "--ref", "v1.20.2", "--url", "/nonexistent", "--dest", str(dest))
    line = assert_one_line_failure(proc, "/nonexistent", "does not appear to be a git repository")
    assert "v1.20.2" in line
    assert not dest.exists()


# --- 7. parts of _output that are files ---------------------------------------------------------------

PARTS = ["_output", "_output/local", "_output/local/bin", "_output/local/bin/linux", BIN, "_output/local/go",
         "_output/local/go/src", "_output/local/go/src/k8s.io", "_output/local/.kbuild"]


@pytest.mark.go
@pytest.mark.parametrize("part", PARTS)
def test_a_file_where_output_needs_a_directory(sample_repo, go_toolchain, part):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    (tree / part).parent.mkdir(parents=True, exist_ok=True)
    (tree / part).write_text("someone's file\n")
    before = snapshot(tree)
    for task in (["build", *KUBECTL], ["workspace"]):
        proc = inv(task[0], "--kube-root", str(tree), *task[1:])
        if task[0] == "workspace" and part in ("_output/local/bin", "_output/local/bin/linux", BIN,
                                               "_output/local/.kbuild"):
            assert proc.returncode == 0, proc.stderr  # the workspace doesn't need those
            continue
        line = assert_one_line_failure(proc, str(tree / part))
        assert "not a directory" in line
        assert "TIP" in proc.stderr
        assert changed(before, snapshot(tree)) == []
    assert (tree / part).read_text() == "someone's file\n"


# --- 8. a read-only tree ------------------------------------------------------------------------------

@pytest.mark.go
@pytest.mark.parametrize("state", ["built", "fresh"])
def test_read_only_tree(sample_repo, go_toolchain, tmp_path, state):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    if state == "built":
        inv("build", "--kube-root", str(tree), *KUBECTL, check=True)
    before = snapshot(tree)
    with read_only(tree, tmp_path / "ro") as ro:
        for args in (["workspace"], ["build", *KUBECTL], ["build", *KUBECTL, "--force"], ["clean"]):
            proc = inv(args[0], "--kube-root", str(ro), *args[1:])
            if args == ["clean"] and state == "fresh":
                assert proc.returncode == 0 and "nothing to remove" in proc.stdout
                continue
            line = assert_one_line_failure(proc, "the tree is read-only", str(ro))
            assert "TIP copy the tree" in proc.stderr, line
        # Reading still works.
        assert "v1.20.2" in inv("version", "--kube-root", str(ro), check=True).stdout
        assert inv("build", "--kube-root", str(ro), *KUBECTL, "--dry-run").returncode == 0
    assert changed(before, snapshot(tree)) == []


# --- the funnel: any OSError is one line; KBUILD_TRACEBACK shows the traceback ------------------------

def test_an_unlisted_os_error_is_one_line_with_path_and_operation(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    target = tmp_path / "no-such-dir" / "version.txt"
    line = assert_one_line_failure(inv("version", "--kube-root", str(tree), "--file", str(target)), str(target))
    assert "cannot write" in line and "No such file or directory" in line


def test_kbuild_traceback_shows_the_traceback(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    env = {**os.environ, "KBUILD_TRACEBACK": "1"}
    target = tmp_path / "no-such-dir" / "version.txt"
    proc = inv("version", "--kube-root", str(tree), "--file", str(target), env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ERROR cannot write" in proc.stderr
    config = tmp_path / "c.yaml"
    config.write_text("kube: [unclosed\n")
    proc = inv("-f", str(config), "version", "--kube-root", str(tree), env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and f"ERROR {config}" in proc.stderr


def test_unreadable_tree_file_is_one_line(sample_repo, go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    golang_sh = tree / "hack/lib/golang.sh"
    golang_sh.chmod(0)
    try:
        proc = run_inv("build", "--kube-root", str(tree), *KUBECTL, "--dry-run", prefix=no_dac_override())
        assert_one_line_failure(proc, str(golang_sh), "Permission denied")
    finally:
        golang_sh.chmod(0o644)


# --- interrupts and concurrency stay as good as they were ---------------------------------------------

@pytest.mark.go
def test_ctrl_c_in_a_build_keeps_the_old_binary_and_no_partial(built, tmp_path):
    binary = built / BIN / "kubectl"
    before = binary.read_bytes()
    (built / "cmd/kubectl/extra.go").write_text("package main\n\nvar extra = 1\n")  # so it really rebuilds
    env = {**os.environ, "GOCACHE": str(tmp_path / "cold-gocache")}  # cold: the build takes long enough
    proc = subprocess.Popen(["inv", "--search-root", str(REPO), "build", "--kube-root", str(built), *KUBECTL],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=sigint_default)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if line.startswith("building"):
                break
            assert time.monotonic() < deadline, "no 'building' line"
        time.sleep(2)
        assert proc.poll() is None, "the build ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in rest and "Traceback" not in rest
    assert binary.read_bytes() == before
    assert [p.name for p in binary.parent.iterdir()] == ["kubectl"]


@pytest.mark.go
def test_two_builds_at_once_end_with_a_binary_matching_its_stamp(built):
    binary = built / BIN / "kubectl"
    envs = [dict(os.environ), {**os.environ, "SOURCE_DATE_EPOCH": "0"}]  # different inputs, different bytes
    for _ in range(2):
        procs = [subprocess.Popen(["inv", "--search-root", str(REPO), "build", "--kube-root", str(built), *KUBECTL,
                                   "--force"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True) for env in envs]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        entry = stamps_of(built)["kubectl"]  # type: ignore[index]
        assert sha(binary) == entry["sha256"]
        assert [p.name for p in binary.parent.iterdir()] == ["kubectl"]
        # Whichever build placed its binary last also recorded last: a build with its inputs is a no-op.
        raw = json.loads(subprocess.run([str(binary), "--version=raw"], capture_output=True, text=True,
                                        check=True).stdout)
        winner = envs[1] if raw["buildDate"].startswith("1970") else envs[0]
        assert "0 built" in build(built, env=winner).stderr


def test_a_missing_working_directory_is_not_reported_as_a_missing_program(tmp_path):
    from common.errors import ToolError
    from common.proc import run

    with pytest.raises(ToolError, match=f"cannot run true in {tmp_path / 'gone'}: the directory does not exist"):
        run(["true"], cwd=tmp_path / "gone")


# --- errors translated where they happen; the funnel only prints (issue 21) ---------------------------

def test_file_op_says_the_operation_and_the_path(tmp_path):
    import errno

    from common.errors import PathError, file_op

    (tmp_path / "file").write_text("x")
    with pytest.raises(PathError) as caught, file_op("create directory"):
        (tmp_path / "file" / "sub").mkdir()
    assert caught.value.message == f"cannot create directory {tmp_path / 'file' / 'sub'}: Not a directory"
    assert caught.value.hint == "a file sits where a directory is needed: move it away"
    assert isinstance(caught.value, KBError) and isinstance(caught.value.__cause__, NotADirectoryError)
    with pytest.raises(PathError, match=r"^cannot write /x/y: No space left on device$") as caught, \
            file_op("write", Path("/x/y")):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name: the one given is used
    assert caught.value.hint == "free some disk space"
    with pytest.raises(ValueError), file_op("write"):  # only OSErrors are translated
        raise ValueError("a bug")


def test_the_funnel_prints_an_untranslated_os_error_as_one_generic_line(capsys, monkeypatch):
    import errno

    from invoke.exceptions import Exit

    from common.cli import funnel

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("KBUILD_TRACEBACK", raising=False)

    @funnel
    def unlisted() -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/some/path")

    @funnel
    def bug() -> None:
        raise LookupError("a bug")

    with pytest.raises(Exit) as caught:
        unlisted()
    assert caught.value.code == 1
    assert capsys.readouterr().err == ("ERROR cannot access /some/path: Permission denied\n"
                                       "TIP check the permissions (and the owner) of the path\n")
    with pytest.raises(LookupError):  # a bug keeps its traceback
        bug()
    assert capsys.readouterr().err == ""


def test_config_files_are_found_where_invoke_finds_them(tmp_path):
    from invoke.config import Config

    from common.config import config_files, read_file

    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    (project / "invoke.yml").write_text("kube: {root: /from/yml}\n")  # .yaml is tried first, .json after
    (project / "invoke.json").write_text('{"kube": {"root": "/from/json"}}')
    runtime = tmp_path / "run time.yaml"
    runtime.write_text("images: {layout: flat}\n")
    environ = {"HOME": str(home)}
    argv = ["inv", "--search-root", str(project), "-f", str(runtime), "version", "--kube-root", "/t"]
    files = {f.level: f for f in config_files(project, argv, environ)}
    assert files["system"].paths[0] == "/etc/invoke.yaml" and files["runtime"].paths == (str(runtime),)
    assert files["project"].paths[:2] == (str(project / "invoke.yaml"), str(project / "invoke.yml"))
    assert read_file(files["project"]) == (str(project / "invoke.yml"), {"kube": {"root": "/from/yml"}})
    assert read_file(files["runtime"]) == (str(runtime), {"images": {"layout": "flat"}})
    invoked = Config(project_location=str(project), runtime_path=str(runtime))  # what invoke itself reads
    invoked.load_project()
    invoked.load_runtime()
    assert (invoked.kube.root, invoked.images.layout) == ("/from/yml", "flat")
    by_env = config_files(project, ["inv", "version"], {"INVOKE_RUNTIME_CONFIG": str(runtime)})
    assert by_env[-1].paths == (str(runtime),)
    for not_inv in (["pytest", "-q", "-x", "tests"], ["-c"], []):
        assert [f.level for f in config_files(None, not_inv, {})] == ["system", "user"]


@pytest.mark.parametrize("name,text,expected", [
    ("c.yaml", None, "cannot open {path}: Is a directory"),
    ("c.yaml", "kube: [unclosed\n", "{path}: not a valid config file at line 1 (key kube)"),
    ("c.json", '{"kube": ', "{path}: not a valid config file at line 1"),
    ("c.yaml", "kube: {root: 5}\n", "{path}: kube.root must be a path, not 5"),
    ("c.txt", "kube: {}\n", "{path}: not a valid config file: Config files of type 'txt' (from file '{path}')"),
    ("c.py", "kube = {'root': 5}\n", "{path}: kube.root must be a path, not 5"),
    ("c.py", "import os\n", "{path}: not a valid config file: 'os' is a module"),
    ("c.py", "kube = {'root': '/x'\n", "{path}: not a valid config file"),
])
def test_a_config_file_at_fault_is_named(tmp_path, name, text, expected):
    from common.config import ConfigFile, fault

    path = tmp_path / name
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    found = fault([ConfigFile("user", (str(tmp_path / "missing.yaml"),)), ConfigFile("runtime", (str(path),))])
    assert found is not None and found.message.startswith(expected.format(path=path)), found
    assert found.hint and "\n" not in found.message


def test_a_good_config_is_no_fault_and_a_python_one_runs_only_when_needed(tmp_path):
    from common.config import ConfigError, ConfigFile, check, fault

    ran = tmp_path / "ran"
    py = tmp_path / "invoke.py"
    py.write_text(f"import pathlib as _p\n_p.Path({str(ran)!r}).touch()\nkube = {{'root': 5}}\ndel _p\n")
    files = [ConfigFile("project", (str(tmp_path / "invoke.yaml"), str(py)))]
    check({"kube": {"root": "/x"}}, files)  # what invoke merged is fine: the Python file is not run again
    assert not ran.exists()
    with pytest.raises(ConfigError, match=f"^{py}: kube.root must be a path, not 5$"):
        check({"kube": {"root": 5}}, files)
    assert ran.exists()
    good = tmp_path / "good.yaml"
    good.write_text("kube: {root: /x}\n")
    assert fault([ConfigFile("runtime", (str(good),))]) is None
    with pytest.raises(ConfigError, match="^invoke's merged config: kube.root"):  # no file holds it
        check({"kube": {"root": 5}}, [ConfigFile("runtime", (str(good),))])


def test_the_funnel_reads_no_invoke_internals():
    """Which file invoke was parsing is found by reading the files, not from its frames or private attributes."""
    for name in ("common/cli.py", "common/faults.py", "common/config.py", "common/console.py", "common/errors.py"):
        text = (REPO / name).read_text()
        for needle in ("f_locals", "tb_frame", "extract_tb", "_load_file", "_project_path", "_runtime_path",
                       'f"_{', "re.compile(r\"\\.?(\\w+)\\(\")"):
            assert needle not in text, (name, needle)
