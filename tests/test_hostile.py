"""Every task against hostile environments (issue 10), property style.

Hypothesis draws the environment — a read-only or unreadable tree, a file where _output needs a
directory, a stamps file of any JSON shape, a malformed config, a tree path with spaces, quotes and
``$(...)`` — and every task runs in it with a cheap invocation (no engine, no network). Whatever
happens: the exit is non-zero or the task did its job, there is no traceback, a failure is at most a
few lines, and every file that existed before is byte-identical afterwards (outside ``_output`` for a
task that succeeded: building and cleaning is what those are for).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import problems
from tests._support.faults import changed, no_dac_override, read_only, run_inv, snapshot
from tests.conftest import require

pytestmark = pytest.mark.go

# One cheap invocation per task; {tree} and {scratch} are filled in per run.
TASKS: dict[str, list[str]] = {
    "source": ["source", "--ref", "v1.20.2", "--url", "{tree}", "--dest", "{scratch}/clone"],
    "workspace": ["workspace", "--kube-root", "{tree}"],
    "version": ["version", "--kube-root", "{tree}", "--json"],
    "build": ["build", "--kube-root", "{tree}", "--what=cmd/kubectl"],
    "demo": ["demo", "--era", "nosuch"],
    "images": ["images", "--kube-root", "{tree}", "--list"],
    "release": ["release", "--kube-root", "{tree}", "--mode", "nosuch"],
    "compare": ["compare", "--reference", "{tree}/_output/release-tars", "--candidate", "{scratch}/none", "--no-run"],
    "ci": ["ci", "--kube-root", "{tree}", "--release", "--mode", "nosuch"],
    "smoke": ["smoke", "--kube-root", "{tree}", "--what=cmd/nosuch"],
    "doctor": ["doctor", "--kube-root", "{tree}"],
    "clean": ["clean", "--kube-root", "{tree}"],
    "kit": ["kit", "--save", "{scratch}/k.tar", "--kube-root", "{tree}", "--mode", "nosuch"],
}
EXTRA = [["workspace", "--kube-root", "{tree}", "--env"], ["build", "--kube-root", "{tree}", "--what=cmd/kubectl",
                                                            "--dry-run"]]
MAX_STDERR_LINES = 6
SETTINGS = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def base_tree(tmp_path_factory: pytest.TempPathFactory, go_toolchain) -> Path:
    """The gopath-era sample tree as a tagged git repository; copied for every example."""
    require(go_toolchain is not None, "a Go toolchain")
    from workspace.sample import materialize
    from workspace.source import init_repo

    dest = tmp_path_factory.mktemp("hostile") / "base"
    materialize(dest, "gopath")
    init_repo(dest, "v1.20.2")
    return dest


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["DOCKER_HOST"] = "unix:///nonexistent/kbuild-test.sock"  # doctor: fast and the same everywhere
    return environ


class Example:
    """A fresh copy of the tree for one example, removed afterwards."""

    def __init__(self, base: Path, name: str = "tree") -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="hostile-", dir=base.parent))
        self.tree = self.scratch / name
        shutil.copytree(base, self.tree, symlinks=True)

    def close(self) -> None:
        for dirpath, dirnames, _ in os.walk(self.scratch):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(self.scratch, ignore_errors=True)


@pytest.fixture
def example(base_tree):
    made: list[Example] = []

    def make(name: str = "tree") -> Example:
        ex = Example(base_tree, name)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.close()


def argv_for(args: list[str], tree: Path, scratch: Path) -> list[str]:
    return [a.replace("{tree}", str(tree)).replace("{scratch}", str(scratch)) for a in args]


def run_all(tree: Path, scratch: Path, env: dict[str, str], *, snap: Path | None = None,
            prefix: list[str] | None = None, pre: list[str] | None = None
            ) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every task once, checking the invariants after each; returns the results by task."""
    snap = snap or tree
    results = {}
    for name, args in [*TASKS.items(), *((f"{a[0]} {a[-1]}", a) for a in EXTRA)]:
        before = snapshot(snap)
        proc = run_inv(*(pre or []), *argv_for(args, tree, scratch), env=env, prefix=prefix)
        after = snapshot(snap)
        out = f"inv {' '.join(argv_for(args, tree, scratch))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stdout + proc.stderr, out
        if proc.returncode != 0:
            assert len(proc.stderr.strip().splitlines()) <= MAX_STDERR_LINES, out
            assert any(line.startswith("ERROR") for line in proc.stderr.splitlines()), out
            assert changed(before, after) == [], out
        else:
            outside = {k: v for k, v in before.items() if not k.startswith("_output")}
            assert changed(outside, after) == [], out
        results[name] = proc
    return results


# Subtasks that run what their collection's default task runs with a flag (`inv images.list` is
# `inv images --list`): covered by that task's invocation above.
SUBTASK_OF = {"images.list": "images", "images.env": "images", "images.save": "images", "images.load": "images",
              "kit.save": "kit", "kit.load": "kit", "kit.list": "kit"}


def test_every_task_is_covered():
    """A new task must get a cheap invocation here (a collection's default task by the collection's name)."""
    listed = json.loads(run_inv("--list", "--list-format=json").stdout)
    names = [t["name"] for t in listed["tasks"]]
    for coll in listed["collections"]:
        names += [coll["name"] if t["name"] == coll["default"] else f"{coll['name']}.{t['name']}"
                  for t in coll["tasks"]]
    assert sorted(n for n in names if n not in SUBTASK_OF) == sorted(TASKS)
    assert sorted(n for n in names if n in SUBTASK_OF) == sorted(SUBTASK_OF)


# --- the environments ---------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
STAMPS = st.one_of(
    JSON,
    st.dictionaries(st.just("kubectl"), JSON, min_size=1),
    st.fixed_dictionaries({"kubectl": st.fixed_dictionaries(
        {"key": JSON, "sha256": JSON, "size": JSON, "mtime_ns": JSON, "ino": JSON, "ctime_ns": JSON})}),
).map(json.dumps) | st.sampled_from(["", "[[[[", "\x00\xff", "{" * 50_000, '{"kubectl": '])


@settings(SETTINGS, max_examples=5)
@given(stamps=STAMPS)
def test_garbage_stamps(example, env, stamps):
    ex = example()
    assert run_inv("build", "--kube-root", str(ex.tree), "--what=cmd/kubectl", env=env).returncode == 0
    (ex.tree / "_output/local/.kbuild/stamps-linux-amd64.json").write_text(stamps)
    results = run_all(ex.tree, ex.scratch, env)
    assert results["build"].returncode == 0 and "1 built" in results["build"].stderr


BROKEN_YAML = ["kube: [unclosed\n", "kube: {root: '/x'\n", "\tkube: 1\n", "kube:\n  root: a\n root: b\n",
               "images: {mirrors: [a, b\n", "- a\n- b\n", "just text\n", "kube: !!python/object:os.system x\n",
               "%YAML 9.9\n---\nkube: {}\n", "kube: &a [*a]\n"]
CONFIG = st.one_of(
    st.sampled_from(BROKEN_YAML),
    st.fixed_dictionaries({}, optional={"kube": st.one_of(JSON, st.fixed_dictionaries(
        {}, optional={"root": JSON, "url": JSON})),
        "images": st.one_of(JSON, st.fixed_dictionaries({}, optional={"mirrors": JSON, "layout": JSON})),
        "release": st.one_of(JSON, st.fixed_dictionaries({}, optional={"mode": JSON}))}).map(
        lambda d: yaml.safe_dump(d)),
)


def _is_bad(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return True
    return any(True for _ in problems(data))


@settings(SETTINGS, max_examples=6)
@given(config=CONFIG)
def test_malformed_config(example, env, config):
    ex = example()
    path = ex.scratch / "bad config.yaml"
    path.write_text(config)
    results = run_all(ex.tree, ex.scratch, env, pre=["-f", str(path)])
    if _is_bad(config):
        for name, proc in results.items():
            assert proc.returncode != 0 and str(path) in proc.stderr, (name, config, proc.stderr)


PARTS = ["_output", "_output/local", "_output/local/bin", "_output/local/bin/linux", "_output/local/bin/linux/amd64",
         "_output/local/go", "_output/local/go/src", "_output/local/go/src/k8s.io", "_output/local/.kbuild",
         "_output/bin"]


@settings(SETTINGS, max_examples=4)
@given(part=st.sampled_from(PARTS), kind=st.sampled_from(["file", "dangling link", "empty file"]))
def test_output_parts_that_are_files(example, env, part, kind):
    ex = example()
    target = ex.tree / part
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dangling link":
        target.symlink_to(ex.scratch / "nowhere")
    else:
        target.write_text("" if kind == "empty file" else "someone's notes\n")
    results = run_all(ex.tree, ex.scratch, env)
    if part != "_output/bin":
        assert results["build"].returncode != 0 and part in results["build"].stderr


@settings(SETTINGS, max_examples=2)
@given(built=st.booleans())
def test_read_only_tree(example, env, built):
    ex = example()
    if built:
        assert run_inv("build", "--kube-root", str(ex.tree), "--what=cmd/kubectl", env=env).returncode == 0
    with read_only(ex.tree, ex.scratch / "ro") as ro:
        results = run_all(ro, ex.scratch, env, snap=ex.tree)
    assert "the tree is read-only" in results["build"].stderr
    assert results["build --dry-run"].returncode == 0 and results["version"].returncode == 0


UNREADABLE = ["hack/lib/golang.sh", "hack/lib", "cmd/kubectl", "cmd/kubectl/kubectl.go", "build/common.sh",
              ".git/HEAD", "."]


@settings(SETTINGS, max_examples=3)
@given(what=st.sampled_from(UNREADABLE))
def test_unreadable_tree(example, env, what):
    ex = example()
    target = ex.tree / what
    mode = target.stat().st_mode
    target.chmod(0)
    try:
        run_all(ex.tree, ex.scratch, env, prefix=no_dac_override())
    finally:
        target.chmod(mode & 0o7777)


NAME = st.lists(st.sampled_from(["a", " ", "'", '"', "$(touch x)", "`touch x`", ";", "&", "*", "\\", "$HOME"]),
                min_size=1, max_size=5).map(lambda parts: "tree " + "".join(parts) + " end")


@settings(SETTINGS, max_examples=3)
@given(name=NAME)
def test_odd_tree_paths(example, env, name):
    ex = example(name)
    results = run_all(ex.tree, ex.scratch, env)
    assert results["version"].returncode == 0 and results["workspace"].returncode == 0
    assert results["build"].returncode == 0, results["build"].stderr  # -trimpath of a path with spaces
    assert not (ex.tree / "x").exists() and not (ex.scratch / "x").exists()  # nothing ran $(touch x)
